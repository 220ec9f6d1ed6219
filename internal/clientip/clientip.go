// Package clientip groups client addresses for per-client limits. One IPv6 subscriber is
// usually given a whole /64 and can pick any address in it, so counting IPv6 clients per address
// would let one client multiply its allowance by 2^64; IPv4 clients are counted per address.
package clientip

import (
	"net/netip"
	"strings"
)

// Group returns the key that per-client limits count ip under: an IPv4 address (or an
// IPv4-mapped IPv6 address) as itself, an IPv6 address as its /64 prefix ("2001:db8:1:2::/64").
// A value that is not an IP address (a test stand-in, a unix socket) is returned unchanged.
func Group(ip string) string {
	addr, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return ip
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	return netip.PrefixFrom(addr, 64).Masked().String()
}
