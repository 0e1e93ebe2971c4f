// Package web serves the upload page: one HTML document and the assets it
// loads, built from web/src by build.mjs into web/dist and embedded here, so
// that `go build` needs no Node and the page works with no internet.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed dist
var dist embed.FS

// ContentSecurityPolicy is sent with every response of Handler. The page runs
// only its own script and style, and talks only to its own origin (the API and
// the tus endpoints are served by the same server). Images may be blob: URLs
// (Uppy's thumbnails of the files being uploaded) or data: URLs (icons in
// Uppy's stylesheet).
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' blob: data:; connect-src 'self'; font-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const (
	// index.html names the assets it loads, so it must be revalidated.
	cacheIndex = "no-cache"
	// Every name under /assets/ carries a hash of its content (build.mjs).
	cacheAsset = "public, max-age=31536000, immutable"
)

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	gzipped     []byte // nil when compression does not pay
	contentType string
	etag        string
	cache       string
}

// Handler serves the page at "/" and its assets under "/assets/"; any other
// path is 404. Mount it at both "/" and "/assets/".
func Handler() http.Handler {
	assets, err := load(dist)
	if err != nil {
		// dist/ is embedded at compile time; a broken one is a build error.
		panic(fmt.Sprintf("web: embedded page: %v", err))
	}
	return assets
}

type site map[string]*asset // URL path -> asset

func load(fsys fs.FS) (site, error) {
	s := site{}
	index, err := fs.ReadFile(fsys, "dist/index.html")
	if err != nil {
		return nil, err
	}
	s["/"] = newAsset(index, "text/html; charset=utf-8", cacheIndex)

	entries, err := fs.ReadDir(fsys, "dist/assets")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		body, err := fs.ReadFile(fsys, "dist/assets/"+e.Name())
		if err != nil {
			return nil, err
		}
		s["/assets/"+e.Name()] = newAsset(body, contentType(e.Name()), cacheAsset)
	}
	return s, nil
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	// build.mjs writes nothing else; no guess from the host's mime tables.
	return "application/octet-stream"
}

func newAsset(body []byte, contentType, cache string) *asset {
	sum := sha256.Sum256(body)
	a := &asset{
		body:        body,
		contentType: contentType,
		etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
		cache:       cache,
	}
	if len(body) >= 1024 {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid
		_, _ = zw.Write(body)                                    // writes to a bytes.Buffer do not fail
		_ = zw.Close()
		if buf.Len() < len(body)*9/10 {
			a.gzipped = buf.Bytes()
		}
	}
	return a
}

func (s site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")

	a, ok := s[r.URL.Path]
	if !ok {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}

	body, etag := a.body, a.etag
	if a.gzipped != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			body = a.gzipped
			etag = strings.TrimSuffix(a.etag, `"`) + `-gz"`
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", a.cache)
	h.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip
// (any listing of "gzip" without q=0).
func acceptsGzip(r *http.Request) bool {
	for _, field := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(field, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				continue
			}
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
