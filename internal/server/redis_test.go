package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uploadsets/uploadsets/internal/testsrv"
)

// With a redis block, upload locks live in Redis: when it cannot be reached, a
// request that needs a lock fails with 503 and changes nothing, and the same
// request succeeds once Redis is back (restarted empty: it held nothing to lose).
func TestLocksInRedisFailClosed(t *testing.T) {
	rs := testsrv.Redis(t)
	dir := t.TempDir()
	config := `
data_dir = "./data"
uploads_default_dest = "./uploads"
redis { url = "` + rs.URL() + `" }
set "files" { extensions = all }
`
	os.WriteFile(filepath.Join(dir, "config.hcl"), []byte(config), 0o644)
	srv := startPowercutServer(t, dir)
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	do := func(method, url, body string, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Tus-Resumable", "1.0.0")
		for i := 0; i < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		res.Header.Set("X-Body", string(b))
		return res
	}
	res := do(http.MethodPost, ts.URL+"/uploads/files/", "", "Upload-Length", "5", "Upload-Metadata", "filename YS50eHQ=")
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", res.StatusCode, res.Header.Get("X-Body"))
	}
	url := res.Header.Get("Location")
	patch := func(offset, body string) *http.Response {
		return do(http.MethodPatch, url, body, "Upload-Offset", offset, "Content-Type", "application/offset+octet-stream")
	}
	if res := patch("0", "he"); res.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH with Redis up: %d %s", res.StatusCode, res.Header.Get("X-Body"))
	}

	rs.Stop()
	res = patch("2", "llo")
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(res.Header.Get("X-Body"), "ERR_LOCK_UNAVAILABLE") {
		t.Fatalf("PATCH with Redis down: %d %s, want 503 ERR_LOCK_UNAVAILABLE", res.StatusCode, res.Header.Get("X-Body"))
	}
	if res.Header.Get("Retry-After") == "" {
		t.Error("the 503 says not when to retry")
	}
	if res := do(http.MethodHead, url, ""); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("HEAD with Redis down: %d, want 503 (it locks too)", res.StatusCode)
	}

	rs.Start()
	if res := do(http.MethodHead, url, ""); res.StatusCode != http.StatusOK || res.Header.Get("Upload-Offset") != "2" {
		t.Fatalf("HEAD with Redis back: %d at %s, want 200 at 2 (nothing of the refused PATCH kept)", res.StatusCode, res.Header.Get("Upload-Offset"))
	}
	if res := patch("2", "llo"); res.StatusCode != http.StatusNoContent || res.Header.Get("Upload-File-Name") != "a.txt" {
		t.Fatalf("PATCH with Redis back: %d %s %v", res.StatusCode, res.Header.Get("X-Body"), res.Header)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "uploads", "files", "a.txt")); string(got) != "hello" {
		t.Errorf("placed file holds %q", got)
	}
}
