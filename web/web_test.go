package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// assetPaths returns the /assets/ paths that index.html loads.
func assetPaths(t *testing.T, h http.Handler) (js, css string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	html := rec.Body.String()
	m := regexp.MustCompile(`<script defer src="(/assets/app-[A-Z0-9]+\.js)"></script>`).FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("index.html loads no /assets/app-*.js:\n%s", html)
	}
	js = m[1]
	m = regexp.MustCompile(`<link rel="stylesheet" href="(/assets/app-[A-Z0-9]+\.css)">`).FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("index.html loads no /assets/app-*.css:\n%s", html)
	}
	return js, m[1]
}

func TestHandler(t *testing.T) {
	h := Handler()
	js, css := assetPaths(t, h)

	tests := map[string]struct {
		Method    string
		URL       string
		ReqHeader map[string]string
		Code      int
		ResHeader map[string]string
		BodyHas   string
	}{
		"page": {
			Method: "GET", URL: "/", Code: http.StatusOK,
			ResHeader: map[string]string{
				"Content-Type":  "text/html; charset=utf-8",
				"Cache-Control": "no-cache",
			},
			BodyHas: `<select id="set"`,
		},
		"page HEAD": {
			Method: "HEAD", URL: "/", Code: http.StatusOK,
			ResHeader: map[string]string{"Content-Type": "text/html; charset=utf-8"},
		},
		"script": {
			Method: "GET", URL: js, Code: http.StatusOK,
			ResHeader: map[string]string{
				"Content-Type":  "text/javascript; charset=utf-8",
				"Cache-Control": "public, max-age=31536000, immutable",
			},
			BodyHas: "Upload-File-Name",
		},
		"stylesheet": {
			Method: "GET", URL: css, Code: http.StatusOK,
			ResHeader: map[string]string{
				"Content-Type":  "text/css; charset=utf-8",
				"Cache-Control": "public, max-age=31536000, immutable",
			},
			BodyHas: ".uppy-Dashboard",
		},
		"script gzipped": {
			Method: "GET", URL: js, ReqHeader: map[string]string{"Accept-Encoding": "br, gzip"},
			Code:      http.StatusOK,
			ResHeader: map[string]string{"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
		},
		"gzip refused": {
			Method: "GET", URL: js, ReqHeader: map[string]string{"Accept-Encoding": "gzip;q=0"},
			Code:      http.StatusOK,
			ResHeader: map[string]string{"Content-Encoding": ""},
			BodyHas:   "Upload-File-Name",
		},
		"unknown asset": {Method: "GET", URL: "/assets/app.js", Code: http.StatusNotFound},
		"unknown page":  {Method: "GET", URL: "/index.html", Code: http.StatusNotFound},
		"traversal":     {Method: "GET", URL: "/assets/../web.go", Code: http.StatusNotFound},
		"POST":          {Method: "POST", URL: "/", Code: http.StatusMethodNotAllowed, ResHeader: map[string]string{"Allow": "GET, HEAD"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest(tt.Method, tt.URL, nil)
			for k, v := range tt.ReqHeader {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			res := rec.Result()

			if res.StatusCode != tt.Code {
				t.Fatalf("%s %s: status %d, want %d", tt.Method, tt.URL, res.StatusCode, tt.Code)
			}
			// Every answer, errors included, carries the security headers.
			want := map[string]string{
				"X-Content-Type-Options":  "nosniff",
				"Content-Security-Policy": ContentSecurityPolicy,
			}
			for k, v := range tt.ResHeader {
				want[k] = v
			}
			for k, v := range want {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if tt.BodyHas != "" && !strings.Contains(rec.Body.String(), tt.BodyHas) {
				t.Errorf("body lacks %q", tt.BodyHas)
			}
		})
	}
}

func TestCSPIsStrict(t *testing.T) {
	for _, loose := range []string{"unsafe-inline", "unsafe-eval", "*", "http:", "https:"} {
		if strings.Contains(ContentSecurityPolicy, loose) {
			t.Errorf("Content-Security-Policy allows %q: %s", loose, ContentSecurityPolicy)
		}
	}
	for _, d := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(ContentSecurityPolicy, d) {
			t.Errorf("Content-Security-Policy lacks %q", d)
		}
	}
}

// The page must not reach beyond its own origin for code or style: no CDN.
func TestNoExternalLoads(t *testing.T) {
	h := Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	for _, tag := range regexp.MustCompile(`<(?:script|link)[^>]*>`).FindAllString(rec.Body.String(), -1) {
		if strings.Contains(tag, "//") {
			t.Errorf("index.html loads from elsewhere: %s", tag)
		}
	}
}

func TestGzipRoundTrip(t *testing.T) {
	h := Handler()
	js, _ := assetPaths(t, h)
	get := func(enc string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, js, nil)
		req.Header.Set("Accept-Encoding", enc)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	plain, zipped := get(""), get("gzip")
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain.Body.Bytes()) {
		t.Error("gzipped script does not unzip to the plain one")
	}
	if plain.Header().Get("ETag") == zipped.Header().Get("ETag") {
		t.Error("plain and gzipped answers share an ETag")
	}
}

func TestNotModified(t *testing.T) {
	h := Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	etag := rec.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on /")
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("revalidation: status %d, want 304", rec.Code)
	}
}

func TestContentType(t *testing.T) {
	tests := map[string]string{
		"app-X.js":   "text/javascript; charset=utf-8",
		"app-X.css":  "text/css; charset=utf-8",
		"l-X.txt":    "text/plain; charset=utf-8",
		"unknown.zz": "application/octet-stream",
	}
	for name, want := range tests {
		if got := contentType(name); got != want {
			t.Errorf("contentType(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	tests := map[string]bool{
		"":                  false,
		"gzip":              true,
		"GZIP":              true,
		"br, gzip;q=0.5":    true,
		"gzip;q=0":          false,
		"gzip; q=0":         false,
		"deflate, identity": false,
		"x-gzip":            false,
	}
	for header, want := range tests {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if header != "" {
			req.Header.Set("Accept-Encoding", header)
		}
		if got := acceptsGzip(req); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}
