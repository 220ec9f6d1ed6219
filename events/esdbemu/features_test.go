package esdbemu_test

import (
	"net"
	"strings"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/litehost/litehost/events/esdbemu"
)

// The v4 client asks ServerFeatures once per connection; without it GetServerVersion answers
// 0.0.0 and the client treats the node as pre-21.10.
func TestServerFeaturesReportVersion(t *testing.T) {
	_, c := start(t)
	// The client connects lazily: one call makes it discover the node and read its features.
	mustAppend(t, c, uniq("features"), esdb.Any{}, evData("test.happened.v1"))
	v, err := c.GetServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(esdbemu.ServerVersion, ".")
	if got := []int{v.Major, v.Minor, v.Patch}; len(want) != 3 || got[0] != 24 || got[1] != 10 || got[2] != 0 {
		t.Errorf("server version = %v, want %s", got, esdbemu.ServerVersion)
	}
}

// Gossip makes the emulator answer discover and gossip-seed connection strings as the leader of a
// one-node cluster; a dead seed next to it is skipped, as with a cluster that lost a node.
func TestGossipDiscovery(t *testing.T) {
	srv, _ := start(t)
	dead := deadAddr(t)
	for _, url := range []string{
		"esdb+discover://" + srv.Addr() + "?tls=false&nodePreference=leader",
		"esdb://" + dead + "," + srv.Addr() + "?tls=false&nodePreference=follower&maxDiscoverAttempts=3&discoveryInterval=50",
	} {
		t.Run(url, func(t *testing.T) {
			cfg, err := esdb.ParseConnectionString(url)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !cfg.DnsDiscover && len(cfg.GossipSeeds) != 2 {
				t.Fatalf("config = %+v, want discovery or two seeds", cfg)
			}
			cfg.Logger = esdb.NoopLogging()
			c, err := esdb.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			stream := uniq("gossip")
			mustAppend(t, c, stream, esdb.NoStream{}, evData("test.happened.v1"))
			if got, err := readStream(t, c, stream, esdb.ReadStreamOptions{From: esdb.Start{}}, 10); err != nil || len(got) != 1 {
				t.Errorf("read %d events through discovery (%v), want 1", len(got), err)
			}
			if v, err := c.GetServerVersion(); err != nil || v.Major != 24 {
				t.Errorf("version through discovery = %+v, %v", v, err)
			}
		})
	}
}

// deadAddr is a loopback address nothing listens on: a port taken and released at once.
func deadAddr(t *testing.T) string {
	t.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}
