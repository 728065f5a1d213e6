package edge

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address of the client: the TCP peer, unless the peer
// is one of the trusted proxies; then the rightmost X-Forwarded-For entry
// that is not itself a trusted proxy (entries left of it are whatever the
// client sent, so they are never used). An entry that does not parse ends
// the walk at the last trusted hop.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := remoteAddr(r.RemoteAddr)
	if !isTrusted(peer, trusted) {
		return peer
	}
	entries := forwardedFor(r.Header.Values("X-Forwarded-For"))
	client := peer
	for i := len(entries) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(entries[i])
		if err != nil {
			return client
		}
		client = a.Unmap()
		if !isTrusted(client, trusted) {
			return client
		}
	}
	return client
}

func remoteAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addrKey is the rate-limit key of an address: IPv4 as is, IPv6 by its /64,
// since one client usually holds a whole /64 and could rotate through it.
func addrKey(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "unknown"
	case a.Is4():
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return a.String()
	}
	return p.String()
}

// forwardedFor lists the non-empty X-Forwarded-For entries, left to right,
// over all the headers (a proxy may add a header or extend the last one).
func forwardedFor(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
