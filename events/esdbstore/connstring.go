package esdbstore

import (
	"net/url"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// ConnectionStringError says why an EventStoreDB connection string was rejected. Reason is the
// client's own message with any credentials of the string cut out, so it is safe to log.
type ConnectionStringError struct{ Reason string }

func (e *ConnectionStringError) Error() string { return "esdb connection string: " + e.Reason }

// ParseConnectionString checks a connection string with the v4 client's own parser, so what is
// accepted here is exactly what the client dials: a single node (esdb://host:2113), DNS or seed
// discovery of a cluster (esdb+discover://host:2113, or esdb+discover://h1:2113,h2:2113,h3:2113),
// gossip seeds (esdb://h1:2113,h2:2113,h3:2113), and the settings such as nodePreference, tls and
// maxDiscoverAttempts. It returns *ConnectionStringError on a rejected string.
func ParseConnectionString(raw string) (*esdb.Configuration, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, &ConnectionStringError{Reason: "empty"}
	}
	cfg, err := esdb.ParseConnectionString(raw)
	if err != nil {
		return nil, &ConnectionStringError{Reason: redact(err.Error(), raw)}
	}
	if cfg.DnsDiscover && len(cfg.GossipSeeds) > 0 {
		// esdb+discover://h1,h2,h3 parses into seeds plus discover mode, and v4.2.0 (like the
		// KurrentDB client 1.1) then dials only cfg.Address, which is empty for a host list: it
		// would never connect. A host list means "gossip with these seeds", so say that.
		cfg.DnsDiscover = false
	}
	return cfg, nil
}

// redact removes the string's userinfo from a parser message: net/url quotes the whole string in
// its errors and the client quotes hosts, and the string may hold a password.
func redact(msg, raw string) string {
	userinfo := ""
	if _, rest, ok := strings.Cut(raw, "://"); ok {
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			userinfo = rest[:at]
		}
	}
	if userinfo != "" {
		msg = strings.ReplaceAll(msg, userinfo, "***")
		if esc := url.PathEscape(userinfo); esc != userinfo {
			msg = strings.ReplaceAll(msg, esc, "***")
		}
	}
	return msg
}

// Topology is what a parsed connection string connects to, for the start-up log.
func Topology(cfg *esdb.Configuration) []any {
	seeds := make([]string, len(cfg.GossipSeeds))
	for i, s := range cfg.GossipSeeds {
		seeds[i] = s.String()
	}
	mode := "single-node"
	switch {
	case cfg.DnsDiscover:
		mode = "discover"
	case len(seeds) > 0:
		mode = "gossip-seeds"
	}
	return []any{"esdb_mode", mode, "esdb_address", cfg.Address, "esdb_seeds", seeds, "esdb_node_preference", cfg.NodePreference.String(), "esdb_tls", !cfg.DisableTLS}
}
