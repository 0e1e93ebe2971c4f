package e2e

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// toxic puts an in-process toxiproxy between a client and the server and returns the
// base URL to use instead of s.URL, and the proxy to add toxics to.
func toxic(t *testing.T, s *server) (string, *toxiproxy.Proxy) {
	t.Helper()
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(api, t.Name(), "127.0.0.1:0", strings.TrimPrefix(s.URL, "http://"))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return "http://" + p.Listen, p
}

func addToxic(t *testing.T, p *toxiproxy.Proxy, json string) {
	t.Helper()
	if _, err := p.Toxics.AddToxicJson(strings.NewReader(json)); err != nil {
		t.Fatal(err)
	}
}

// dropper is an HTTP proxy that forwards every request to the server but, for the
// first response that completes an upload (the one carrying Upload-File-Name), closes
// the client's connection instead of answering: the server finished the upload, the
// client never hears of it.
type dropper struct {
	upstream string
	dropped  atomic.Int32
	once     sync.Once
}

func dropFinalResponse(t *testing.T, s *server) (string, *dropper) {
	d := &dropper{upstream: s.URL}
	ts := httptest.NewServer(d)
	t.Cleanup(ts.Close)
	return ts.URL, d
}

func (d *dropper) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	out, _ := http.NewRequest(r.Method, d.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	out.Header = r.Header.Clone()
	res, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	resBody, _ := io.ReadAll(res.Body)
	drop := false
	if res.Header.Get("Upload-File-Name") != "" && r.Method != http.MethodHead {
		d.once.Do(func() { drop = true })
	}
	if drop {
		d.dropped.Add(1)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	for k, v := range res.Header {
		w.Header()[k] = v
	}
	// The proxy's own origin differs from the server's; keep the server's URLs so
	// the client talks through the proxy.
	if loc := res.Header.Get("Location"); loc != "" {
		w.Header().Set("Location", strings.Replace(loc, d.upstream, "http://"+r.Host, 1))
	}
	w.WriteHeader(res.StatusCode)
	w.Write(resBody)
}
