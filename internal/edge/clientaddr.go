package edge

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address of the client: the TCP peer, or with
// TrustForwardedFor the last X-Forwarded-For entry, the one our own proxy
// appended (entries to its left are whatever the client sent, so they are
// never used, not even when the last one does not parse).
func clientAddr(r *http.Request, trustForwardedFor bool) netip.Addr {
	if trustForwardedFor {
		if last := lastForwardedFor(r.Header.Values("X-Forwarded-For")); last != "" {
			if a, err := netip.ParseAddr(last); err == nil {
				return a.Unmap()
			}
		}
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
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

// lastForwardedFor is the last non-empty entry of X-Forwarded-For, which may
// come as several headers of comma-separated entries.
func lastForwardedFor(vals []string) string {
	for i := len(vals) - 1; i >= 0; i-- {
		parts := strings.Split(vals[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			if p := strings.TrimSpace(parts[j]); p != "" {
				return p
			}
		}
	}
	return ""
}
