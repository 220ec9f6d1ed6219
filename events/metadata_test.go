package events_test

import (
	"strings"
	"testing"

	"github.com/litehost/litehost/events"
)

func TestClientNetworkOf(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.77":                 "203.0.113.0/24",
		"::ffff:198.51.100.9":          "198.51.100.0/24",
		"2001:db8:1234:5678::1":        "2001:db8:1234::/48",
		"2001:db8:abcd:ffff:1:2:3:4":   "2001:db8:abcd::/48",
		"fe80::1%eth0":                 "fe80::/48",
		"":                             "",
		"not an address":               "",
		"203.0.113.77:443":             "",
		"2001:db8::1/64":               "",
		"127.0.0.1":                    "127.0.0.0/24",
		"::1":                          "::/48",
		"0000:0000:0000:0000:0000::ab": "::/48",
	} {
		if got := events.ClientNetworkOf(in); got != want {
			t.Errorf("ClientNetworkOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReduceUserAgent(t *testing.T) {
	for in, want := range map[string]string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36": "Mozilla/5.0 AppleWebKit/537.36 Chrome/120.0.0.0 Safari/537.36",
		"curl/8.5.0":                    "curl/8.5.0",
		"Go-http-client/1.1":            "Go-http-client/1.1",
		"a (nested (deep) comment) b/1": "a b/1",
		"unbalanced ) x (y":             "unbalanced ) x",
		"":                              "",
		strings.Repeat("é", 100):        strings.Repeat("é", 64),
	} {
		if got := events.ReduceUserAgent(in); got != want {
			t.Errorf("ReduceUserAgent(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMarshalStoresNoClientAddress checks what the log keeps: the network, not the address, and
// the user agent without its comments; the in-request value keeps the full address for the rate
// limits. Metadata written before the rule (a full clientIp) is reduced on read.
func TestMarshalStoresNoClientAddress(t *testing.T) {
	md := events.Metadata{CorrelationID: "c", Actor: "anonymous", ClientIP: "203.0.113.77",
		UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) Mobile/15E148"}
	b := string(md.Marshal())
	for _, leak := range []string{"203.0.113.77", "iPhone", "clientIp"} {
		if strings.Contains(b, leak) {
			t.Errorf("stored metadata holds %q: %s", leak, b)
		}
	}
	got, err := events.ParseMetadata([]byte(b))
	if err != nil || got.ClientNetwork != "203.0.113.0/24" || got.UserAgent != "Mozilla/5.0 Mobile/15E148" || got.ClientIP != "" {
		t.Errorf("parsed %+v, %v", got, err)
	}
	if md.ClientIP != "203.0.113.77" {
		t.Error("Marshal changed the in-request value")
	}
	old, err := events.ParseMetadata([]byte(`{"correlationId":"c","actor":"anonymous","clientIp":"2001:db8:1:2::9","userAgent":"x/1 (secret device)"}`))
	if err != nil || old.ClientIP != "" || old.ClientNetwork != "2001:db8:1::/48" || old.UserAgent != "x/1" {
		t.Errorf("old metadata parsed as %+v, %v", old, err)
	}
}
