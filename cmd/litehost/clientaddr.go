package main

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
)

// trustedProxies decides the client address of a request the way the Gin engine does for the
// API (LITEHOST_TRUSTED_PROXIES), for the parts served outside it (the hosted sites): the TCP
// peer, unless that peer is a trusted proxy, in which case X-Forwarded-For is read from the right
// and the first address not itself a trusted proxy is the client.
type trustedProxies []netip.Prefix

func parseTrustedProxies(list []string) trustedProxies {
	var out trustedProxies
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	return out
}

func (t trustedProxies) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP returns the client address of r.
func (t trustedProxies) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !t.trusted(peer) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: trust nothing further left
		}
		if !t.trusted(a) {
			return a.Unmap().String()
		}
	}
	return host
}

// inFlight counts work running at once and remembers the peak.
type inFlight struct {
	mu        sync.Mutex
	now, peak int
}

func (f *inFlight) add(delta int) {
	f.mu.Lock()
	f.now += delta
	f.peak = max(f.peak, f.now)
	f.mu.Unlock()
}

// max returns the most seen at once.
func (f *inFlight) max() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peak
}
