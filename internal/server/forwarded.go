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

// trustForwarding removes the forwarding headers of requests that do not come from a
// trusted proxy, so that everything after it (tusd included, which is told to respect
// them) can read them without asking who sent them.
func (s *Server) trustForwarding(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.trustedPeer(r.RemoteAddr) {
			for _, h := range forwarding {
				r.Header.Del(h)
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) trustedPeer(remote string) bool {
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
	forwardedHost  = regexp.MustCompile(`(?i)host="?([^;,"]+)`)
	forwardedProto = regexp.MustCompile(`(?i)proto="?(https?)`)
	// hostChars is what a host[:port] may hold; anything else falls back to Host.
	hostChars = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)
)

// baseURL is this server's URL as the client knows it: public_url, or the scheme and
// host of the request, as forwarded by a trusted proxy. It reads the forwarding headers
// the way tusd does for Location, so the two agree.
func (s *Server) baseURL(r *http.Request) string {
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
	if f := r.Header.Get("Forwarded"); f != "" {
		if m := forwardedHost.FindStringSubmatch(f); m != nil {
			host = m[1]
		}
		if m := forwardedProto.FindStringSubmatch(f); m != nil {
			proto = strings.ToLower(m[1])
		}
	}
	if !hostChars.MatchString(host) {
		host = r.Host
	}
	switch proto {
	case "http":
		host = strings.TrimSuffix(host, ":80")
	case "https":
		host = strings.TrimSuffix(host, ":443")
	}
	return proto + "://" + host
}
