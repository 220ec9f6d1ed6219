package clientip

import "testing"

func TestGroup(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":                    "203.0.113.7",
		"::ffff:203.0.113.7":             "203.0.113.7",
		"2001:db8:1:2:aaaa:bbbb:cccc:dd": "2001:db8:1:2::/64",
		"2001:db8:1:2::1":                "2001:db8:1:2::/64",
		"2001:db8:1:3::1":                "2001:db8:1:3::/64",
		"fe80::1%eth0":                   "fe80::/64",
		"not-an-ip":                      "not-an-ip",
	} {
		if got := Group(in); got != want {
			t.Errorf("Group(%q) = %q, want %q", in, got, want)
		}
	}
}
