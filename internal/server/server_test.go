package server

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
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
			ResHeader: map[string]string{"Tus-Max-Size": "1024", "Tus-Version": "1.0.0", "Tus-Extension": "creation,creation-with-upload,termination,creation-defer-length,expiration,checksum",
				"Tus-Checksum-Algorithm": "sha1,sha256,md5,crc32"}},
		"method override whatever the method": {Method: "GET", URL: "/uploads/photos/", ReqHeader: map[string]string{"X-HTTP-Method-Override": "OPTIONS"}, Code: 200,
			ResHeader: map[string]string{"Tus-Version": "1.0.0", "Tus-Max-Size": "1024"}},
		"412 says which version": {Method: "POST", URL: "/uploads/photos/", ReqHeader: map[string]string{"Tus-Resumable": "0.2.2", "Upload-Length": "1"}, Code: 412,
			ResHeader: map[string]string{"Tus-Version": "1.0.0"}},
		"patch without content type": {Method: "PATCH", URL: "/uploads/photos/0123456789abcdef0123456789abcdef", ReqHeader: with(tus, "Upload-Offset", "0"), Code: 415,
			Contains: []string{`set "photos"`, "application/offset+octet-stream"}},
		"patch with the wrong content type": {Method: "PATCH", URL: "/uploads/photos/0123456789abcdef0123456789abcdef", ReqHeader: with(tus, "Upload-Offset", "0", "Content-Type", "text/plain"), Code: 415},
		"concatenation refused": {Method: "POST", URL: "/uploads/photos/", ReqHeader: with(tus, "Upload-Length", "10", "Upload-Concat", "partial", "Upload-Metadata", meta("filename", "a.png")),
			Code: 400, Contains: []string{`set "photos" does not offer concatenation`}},
		"metadata value not base64": {Method: "POST", URL: "/uploads/photos/", ReqHeader: with(tus, "Upload-Length", "10", "Upload-Metadata", "filename a.png"),
			Code: 400, Contains: []string{`pair 1 ("filename a.png")`, "not base64"}},
		"metadata pair of three parts": {Method: "POST", URL: "/uploads/photos/", ReqHeader: with(tus, "Upload-Length", "10", "Upload-Metadata", meta("filename", "a.png")+",type aW1n eA=="),
			Code: 400, Contains: []string{"pair 2", "more than a key and a value"}},
		"metadata trailing comma": {Method: "POST", URL: "/uploads/photos/", ReqHeader: with(tus, "Upload-Length", "10", "Upload-Metadata", meta("filename", "a.png")+","),
			Code: 400, Contains: []string{"pair 2", "no key"}},
		"metadata duplicate key": {Method: "POST", URL: "/uploads/photos/", ReqHeader: with(tus, "Upload-Length", "10", "Upload-Metadata", meta("filename", "a.png", "filename", "b.png")),
			Code: 400, Contains: []string{"pair 2", `repeats the key "filename"`}},
		"metadata key with a space": {Method: "POST", URL: "/uploads/photos/", ReqHeader: with(tus, "Upload-Length", "10", "Upload-Metadata", "file name "+b64("a.png")),
			Code: 400, Contains: []string{"pair 1"}},
		"metadata key alone is fine": {Method: "POST", URL: "/uploads/photos/", ReqHeader: with(tus, "Upload-Length", "10", "Upload-Metadata", meta("filename", "a.png")+",private"),
			Code: 201},
		"checksum algorithm unknown": {Method: "POST", URL: "/uploads/photos/", ReqHeader: with(tus, "Upload-Length", "10", "Upload-Metadata", meta("filename", "a.png"), "Upload-Checksum", "sha512 "+b64("x")),
			Code: 400, Contains: []string{`algorithm "sha512" is not supported`}},
		"checksum malformed": {Method: "POST", URL: "/uploads/photos/", ReqHeader: with(tus, "Upload-Length", "10", "Upload-Metadata", meta("filename", "a.png"), "Upload-Checksum", "sha1 !!"),
			Code: 400, Contains: []string{"base64 of the 20-byte sha1"}},
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
		"deferred length": {Method: "POST", URL: "/uploads/photos/", ReqHeader: with(tus, "Upload-Defer-Length", "1", "Upload-Metadata", meta("filename", "a.png")),
			Code: 201},
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

// TestChecksumAndLength: a PATCH's bytes are kept only if they match its checksum,
// and bytes past the length are refused even on a finished upload.
func TestChecksumAndLength(t *testing.T) {
	s, dir := newTestServer(t)
	w := httpTest{Method: "POST", URL: "/uploads/photos/", ReqHeader: map[string]string{
		"Tus-Resumable": "1.0.0", "Upload-Length": "16", "Upload-Metadata": meta("filename", "c.png"),
	}, Code: 201}.run(t, s.Handler())
	path := strings.TrimPrefix(w.Header().Get("Location"), "http://uploads.test")
	data := pngHeader
	patch := func(offset int, body, checksum string, code int, offsetAfter string) {
		t.Helper()
		h := map[string]string{"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream", "Upload-Offset": strconv.Itoa(offset)}
		if checksum != "" {
			h["Upload-Checksum"] = checksum
		}
		httpTest{Method: "PATCH", URL: path, ReqHeader: h, ReqBody: body, Code: code}.run(t, s.Handler())
		httpTest{Method: "HEAD", URL: path, ReqHeader: h, Code: 200, ResHeader: map[string]string{"Upload-Offset": offsetAfter}}.run(t, s.Handler())
	}
	sum := func(algo, b string) string {
		var h hash.Hash
		switch algo {
		case "sha1":
			h = sha1.New()
		case "sha256":
			h = sha256.New()
		case "md5":
			h = md5.New()
		case "crc32":
			h = crc32.NewIEEE()
		}
		h.Write([]byte(b))
		return algo + " " + base64.StdEncoding.EncodeToString(h.Sum(nil))
	}
	patch(0, data[:4], sum("sha256", data[:4]), 204, "4")
	patch(4, data[4:8], sum("md5", "wrong"), 460, "4") // discarded: the offset stays
	patch(4, data[4:8], sum("md5", data[4:8]), 204, "8")
	patch(8, data[8:12], sum("crc32", data[8:12]), 204, "12")
	patch(12, data[12:], sum("sha1", data[12:]+"x"), 460, "12")
	patch(12, data[12:], sum("sha1", data[12:]), 204, "16")
	if b, err := os.ReadFile(filepath.Join(dir, "uploads", "photos", "c.png")); err != nil || string(b) != data {
		t.Errorf("placed file %q, %v", b, err)
	}
	// Finished: bytes sent anyway are refused, not silently dropped.
	patch(16, "more", "", 413, "16")
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// pngHeader is the start of a PNG file: enough for content sniffing.
const pngHeader = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
