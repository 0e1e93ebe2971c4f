package e2e

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

func TestContentMismatchIsRejected(t *testing.T) {
	s := startServer(t, defaultSets)
	html := []byte("<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>")
	res, body := create(t, s.URL+"/uploads/photos/", "cute.png", int64(len(html)))
	if res.StatusCode != 201 {
		t.Fatalf("POST: %d %s", res.StatusCode, body)
	}
	uploadURL := res.Header.Get("Location")
	res, body = patch(t, uploadURL, 0, html)
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("completing PATCH: %d %s, want 422", res.StatusCode, body)
	}
	for _, want := range []string{`set "photos"`, "text/html", ".png"} {
		if !strings.Contains(body, want) {
			t.Errorf("422 body %q lacks %q", body, want)
		}
	}
	if got := files(t, s.Uploads("photos")); len(got) != 0 {
		t.Errorf("destination holds %v", got)
	}
	if got := files(t, filepath.Join(s.Dir, "data", "photos")); len(got) != 1 {
		t.Errorf("data dir holds %v, want only the record", got)
	}
	// HEAD must not report a complete upload, or tus-js-client would declare success.
	res, _ = do(t, http.MethodHead, uploadURL, nil, nil)
	if res.StatusCode < 400 {
		t.Errorf("HEAD of a rejected upload: %d offset=%s", res.StatusCode, res.Header.Get("Upload-Offset"))
	}
	id := uploadURL[strings.LastIndex(uploadURL, "/")+1:]
	_, body = do(t, http.MethodGet, s.URL+"/api/uploads/photos/"+id, nil, nil)
	var st struct{ State, Reason string }
	json.Unmarshal([]byte(body), &st)
	if st.State != "rejected" || !strings.Contains(st.Reason, "text/html") {
		t.Errorf("api: %s", body)
	}

	// A real PNG passes the same check.
	png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), randomBytes(t, 100)...)
	_, last := upload(t, s.URL+"/uploads/photos/", "real.png", png, 1<<20)
	if last.Header.Get("Upload-File-Name") != "real.png" {
		t.Errorf("a real PNG was not placed: %v", last.Header)
	}
}

func TestTusJSClientDoesNotReportRejectedAsSuccess(t *testing.T) {
	s := startServer(t, defaultSets)
	r := tusJS(t, jsOptions{Endpoint: s.URL + "/uploads/photos/", File: writeTemp(t, []byte("<html><body>hi</body></html>")), Name: "x.png"})
	if r.OK || r.Status != 422 || !strings.Contains(r.Body, "text/html") {
		t.Fatalf("want a failed upload with the 422 reason, got %+v", r)
	}
}
