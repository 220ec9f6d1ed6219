package esdbstore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/esdbemu"
	"github.com/litehost/litehost/events/esdbstore"
)

func TestParseConnectionString(t *testing.T) {
	for _, tc := range []struct {
		url      string
		discover bool
		seeds    []string
		pref     esdb.NodePreference
	}{
		{url: "esdb://127.0.0.1:2113?tls=false", pref: esdb.NodePreferenceLeader},
		// A discover host list becomes gossip seeds (see ParseConnectionString).
		{url: "esdb+discover://es1:2113,es2:2113,es3:2113?tls=false&nodePreference=follower",
			seeds: []string{"es1:2113", "es2:2113", "es3:2113"}, pref: esdb.NodePreferenceFollower},
		{url: "esdb+discover://cluster.internal:2113?nodePreference=random", discover: true, pref: esdb.NodePreferenceRandom},
		{url: "esdb://admin:changeit@es1:2113,es2:2113,es3:2113?tls=false&nodePreference=readonlyreplica",
			seeds: []string{"es1:2113", "es2:2113", "es3:2113"}, pref: esdb.NodePreferenceReadOnlyReplica},
	} {
		cfg, err := esdbstore.ParseConnectionString(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		var seeds []string
		for _, s := range cfg.GossipSeeds {
			seeds = append(seeds, s.String())
		}
		if cfg.DnsDiscover != tc.discover || strings.Join(seeds, ",") != strings.Join(tc.seeds, ",") || cfg.NodePreference != tc.pref {
			t.Errorf("%s: discover=%v seeds=%v preference=%v", tc.url, cfg.DnsDiscover, seeds, cfg.NodePreference)
		}
	}
}

func TestParseConnectionStringRejects(t *testing.T) {
	for _, bad := range []string{
		"",
		"postgres://es1:2113",
		"esdb://es1:2113?nodePreference=closest",
		"esdb://es1:2113,,es3:2113",
		"esdb://es1:port",
		"esdb://admin:s3cretpass@es1:2113?tls=maybe",
		"esdb://admin:s3cretpass%zz@es1:2113",
	} {
		_, err := esdbstore.ParseConnectionString(bad)
		var cse *esdbstore.ConnectionStringError
		if !errors.As(err, &cse) {
			t.Errorf("%q: err = %v, want *ConnectionStringError", bad, err)
			continue
		}
		if strings.Contains(err.Error(), "s3cretpass") {
			t.Errorf("%q: the error quotes the password: %v", bad, err)
		}
	}
}

// A discover URL and a seed list holding one dead node reach the emulator through its gossip
// (it answers as the leader of a one-node cluster), the way they reach a real cluster's leader.
func TestDialClusterForms(t *testing.T) {
	srv, err := esdbemu.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	for _, url := range []string{
		"esdb+discover://" + srv.Addr() + "?tls=false&nodePreference=leader",
		"esdb://127.0.0.1:1," + srv.Addr() + "?tls=false&maxDiscoverAttempts=3&discoveryInterval=50",
		"esdb+discover://127.0.0.1:1," + srv.Addr() + "?tls=false&maxDiscoverAttempts=3&discoveryInterval=50&nodePreference=follower",
	} {
		s := dialStore(t, url)
		stream := uniq("cluster")
		if _, err := s.Append(t.Context(), stream, events.NoStream(), []events.EventData{ev("cluster.a.v1")}); err != nil {
			t.Errorf("%s: append: %v", url, err)
			continue
		}
		got, err := s.ReadStream(t.Context(), stream, 0, 10)
		if err != nil || len(got) != 1 {
			t.Errorf("%s: read = %d events, %v", url, len(got), err)
		}
	}
}
