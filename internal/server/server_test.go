package server

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/uploadsets/uploadsets/sets"
)

const testConfig = `
public_url = "http://uploads.test"
data_dir = "./data"
uploads_default_dest = "./uploads"
set "photos" {
  extensions = images
  deny       = ["svg"]
  max_size   = "1KiB"
}
set "cdn" {
  extensions = all
  url        = "https://cdn.example/c/"
}
`

func newTestServer(t *testing.T) (*Server, string) {
	t.Helper()
	dir := t.TempDir()
	cfg, diags := sets.Parse([]byte(testConfig), filepath.Join(dir, "config.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	s, err := New(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, dir
}

// httpTest is one request and what must come back, in the style of tusd's tests.
type httpTest struct {
	Method    string
	URL       string
	ReqHeader map[string]string
	ReqBody   string
	Code      int
	ResHeader map[string]string
	Contains  []string
}

func (tc httpTest) run(t *testing.T, h http.Handler) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(tc.Method, tc.URL, strings.NewReader(tc.ReqBody))
	for k, v := range tc.ReqHeader {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != tc.Code {
		t.Errorf("%s %s: status %d, want %d (%s)", tc.Method, tc.URL, w.Code, tc.Code, w.Body)
	}
	for k, v := range tc.ResHeader {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s %s: %s = %q, want %q", tc.Method, tc.URL, k, got, v)
		}
	}
	for _, s := range tc.Contains {
		if !strings.Contains(w.Body.String(), s) {
			t.Errorf("%s %s: body %q lacks %q", tc.Method, tc.URL, w.Body, s)
		}
	}
	return w
}

// meta is Upload-Metadata for one file name ("a.png" → "filename YS5wbmc=").
func meta(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, kv[i]+" "+b64(kv[i+1]))
	}
	return strings.Join(parts, ",")
}

func TestRoutes(t *testing.T) {
	s, _ := newTestServer(t)
	tus := map[string]string{"Tus-Resumable": "1.0.0"}
	with := func(h map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range h {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	tests := map[string]httpTest{
		"options advertises the set": {Method: "OPTIONS", URL: "/uploads/photos/", Code: 200,
			ResHeader: map[string]string{"Tus-Max-Size": "1024", "Tus-Version": "1.0.0", "Tus-Extension": "creation,creation-with-upload,termination"}},
		"extension refused": {Method: "POST", URL: "/uploads/photos/", ReqHeader: with(tus, "Upload-Length", "10", "Upload-Metadata", meta("filename", "run.exe")),
			Code: 415, Contains: []string{`set "photos"`, `".exe"`}},
		"denied preset member refused": {Method: "POST", URL: "/uploads/photos/", ReqHeader: with(tus, "Upload-Length", "10", "Upload-Metadata", meta("name", "logo.svg")),
			Code: 415, Contains: []string{`".svg"`}},
		"too large refused": {Method: "POST", URL: "/uploads/photos/", ReqHeader: with(tus, "Upload-Length", "2048", "Upload-Metadata", meta("filename", "a.png")),
			Code: 413, Contains: []string{`set "photos"`, "1 KiB"}},
		"no name refused": {Method: "POST", URL: "/uploads/photos/", ReqHeader: with(tus, "Upload-Length", "10"),
			Code: 400, Contains: []string{`set "photos"`, "name"}},
		"uppy's name key accepted": {Method: "POST", URL: "/uploads/photos/", ReqHeader: with(tus, "Upload-Length", "10", "Upload-Metadata", meta("name", "a.PNG", "type", "image/png")),
			Code: 201},
		"deferred length not offered": {Method: "POST", URL: "/uploads/photos/", ReqHeader: with(tus, "Upload-Defer-Length", "1", "Upload-Metadata", meta("filename", "a.png")),
			Code: 400, Contains: []string{`set "photos" needs Upload-Length`}},
		"negative length": {Method: "POST", URL: "/uploads/photos/", ReqHeader: with(tus, "Upload-Length", "-1", "Upload-Metadata", meta("filename", "a.png")),
			Code: 400},
		"unknown set":    {Method: "POST", URL: "/uploads/nope/", ReqHeader: with(tus, "Upload-Length", "1"), Code: 404},
		"malformed id":   {Method: "HEAD", URL: "/uploads/photos/not-an-id", ReqHeader: tus, Code: 404},
		"upper-case id":  {Method: "HEAD", URL: "/uploads/photos/0123456789ABCDEF0123456789ABCDEF", ReqHeader: tus, Code: 404},
		"unknown id":     {Method: "HEAD", URL: "/uploads/photos/0123456789abcdef0123456789abcdef", ReqHeader: tus, Code: 404},
		"no tus version": {Method: "POST", URL: "/uploads/photos/", ReqHeader: map[string]string{"Upload-Length": "1"}, Code: 412},
		"files of a set with its own url are not served here": {Method: "GET", URL: "/files/cdn/x.txt", Code: 404},
		"health":       {Method: "GET", URL: "/healthz", Code: 200},
		"sets":         {Method: "GET", URL: "/api/sets", Code: 200, Contains: []string{`"name":"photos"`, `"endpoint":"http://uploads.test/uploads/photos/"`, `"url":"https://cdn.example/c/"`}},
		"upload state": {Method: "GET", URL: "/api/uploads/photos/0123456789abcdef0123456789abcdef", Code: 404},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { tc.run(t, s.Handler()) })
	}
}

func TestFinishPlacesAndReports(t *testing.T) {
	s, dir := newTestServer(t)
	tus := map[string]string{"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream"}
	w := httpTest{Method: "POST", URL: "/uploads/photos/", ReqHeader: map[string]string{
		"Tus-Resumable": "1.0.0", "Upload-Length": "16", "Upload-Metadata": meta("filename", "../a b.PNG"),
	}, Code: 201}.run(t, s.Handler())
	loc := w.Header().Get("Location")
	if !strings.HasPrefix(loc, "http://uploads.test/uploads/photos/") {
		t.Fatalf("Location %q", loc)
	}
	path := strings.TrimPrefix(loc, "http://uploads.test")
	tus["Upload-Offset"] = "0"
	httpTest{Method: "PATCH", URL: path, ReqHeader: tus, ReqBody: pngHeader, Code: 204, ResHeader: map[string]string{
		"Upload-Offset": "16", "Upload-File-Name": "a_b.png", "Upload-File-Url": "http://uploads.test/files/photos/a_b.png",
	}}.run(t, s.Handler())
	if b, err := os.ReadFile(filepath.Join(dir, "uploads", "photos", "a_b.png")); err != nil || string(b) != pngHeader {
		t.Errorf("placed file: %q, %v", b, err)
	}
	httpTest{Method: "HEAD", URL: path, ReqHeader: tus, Code: 200, ResHeader: map[string]string{
		"Upload-Offset": "16", "Upload-Length": "16", "Upload-File-Name": "a_b.png", "Upload-File-Url": "http://uploads.test/files/photos/a_b.png",
	}}.run(t, s.Handler())
	httpTest{Method: "DELETE", URL: path, ReqHeader: tus, Code: 403}.run(t, s.Handler())
	httpTest{Method: "GET", URL: path, Code: 303, ResHeader: map[string]string{"Location": "http://uploads.test/files/photos/a_b.png"}}.run(t, s.Handler())
	httpTest{Method: "GET", URL: "/files/photos/a_b.png", ReqHeader: map[string]string{"Range": "bytes=1-2"}, Code: 206,
		ResHeader: map[string]string{"Content-Type": "image/png", "X-Content-Type-Options": "nosniff"}, Contains: []string{"PN"}}.run(t, s.Handler())
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// pngHeader is the start of a PNG file: enough for content sniffing.
const pngHeader = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
