package server

import (
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
)

// The URLs handed to clients (Location, Upload-File-Url, the status API, the 303 of a
// placed upload) are built per request, from public_url or else from how this client
// reached the server, and never stored: one client's Host must not end up in the links
// everybody else is given.

// forwarding are the headers through which a proxy tells what the client asked for.
var forwarding = []string{"Forwarded", "X-Forwarded-Host", "X-Forwarded-Proto"}

// normaliseForwarding removes the forwarding headers of requests that do not come from a
// trusted proxy, and rewrites those of requests that do into one validated form:
// X-Forwarded-Host and X-Forwarded-Proto, each a single value, or absent. tusd (told to
// respect them) reads that form exactly as baseURL does, so its Location and the
// links built here always agree; left as sent, tusd would read a quoted or
// capitalised Forwarded parameter differently and take a host up to the next ';'
// (in "host=a, for=b" that is "a, for=b"), and hand out an upload URL that leads
// nowhere.
func (s *instance) normaliseForwarding(r *http.Request) {
	var host, proto string
	if s.trustedPeer(r.RemoteAddr) {
		host, proto = forwardedTo(r.Header)
	}
	for _, h := range forwarding {
		r.Header.Del(h)
	}
	if host != "" {
		r.Header.Set("X-Forwarded-Host", host)
	}
	if proto != "" {
		r.Header.Set("X-Forwarded-Proto", proto)
	}
}

func (s *instance) trustedPeer(remote string) bool {
	if len(s.cfg.TrustedProxies) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

var (
	// A parameter of one Forwarded element: names are case-insensitive, values may
	// be quoted (RFC 7239, section 4).
	forwardedHost  = regexp.MustCompile(`(?i)(?:^|;)\s*host="?([^;,"]*)"?\s*(?:;|$)`)
	forwardedProto = regexp.MustCompile(`(?i)(?:^|;)\s*proto="?([a-z]*)"?\s*(?:;|$)`)
	// hostChars is what a host[:port] may hold; anything else falls back to Host.
	hostChars = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)
)

// forwardedTo is the host and scheme a proxy says the client asked for: Forwarded
// (its first element, which the proxy nearest the client added) over
// X-Forwarded-Host and X-Forwarded-Proto. A host that is no host[:port] is dropped, and
// so is a scheme other than http and https: the request's own are used instead.
func forwardedTo(h http.Header) (host, proto string) {
	host = h.Get("X-Forwarded-Host")
	proto = strings.ToLower(h.Get("X-Forwarded-Proto"))
	if f := h.Get("Forwarded"); f != "" {
		first, _, _ := strings.Cut(f, ",")
		if m := forwardedHost.FindStringSubmatch(first); m != nil {
			host = m[1]
		}
		if m := forwardedProto.FindStringSubmatch(first); m != nil {
			proto = strings.ToLower(m[1])
		}
	}
	if !hostChars.MatchString(host) {
		host = ""
	}
	if proto != "http" && proto != "https" {
		proto = ""
	}
	return host, proto
}

// baseURL is this server's URL as the client knows it: public_url, or the scheme and
// host of the request, as forwarded by a trusted proxy (see normaliseForwarding). It reads
// the forwarding headers the way tusd does for Location, so the two agree.
func (s *instance) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	host, proto := r.Host, "http"
	if r.TLS != nil {
		proto = "https"
	}
	if h := r.Header.Get("X-Forwarded-Host"); h != "" {
		host = h
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		proto = p
	}
	switch proto {
	case "http":
		host = strings.TrimSuffix(host, ":80")
	case "https":
		host = strings.TrimSuffix(host, ":443")
	}
	return proto + "://" + host
}
