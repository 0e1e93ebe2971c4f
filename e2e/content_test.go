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
	if got := files(t, filepath.Join(s.Dir, "data", "photos")); len(got) != 0 {
		t.Errorf("data dir holds %v, want nothing (records are in the record log)", got)
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

// SVG is markup that runs script, so it is not "an image" for a .png; a .svg must be SVG
// in the shapes editors write (here a DOCTYPE with no XML declaration, which mimetype
// alone does not recognise); a .doc must be an OLE2 compound file.
func TestContentSVGAndOfficeMismatchesAreRejected(t *testing.T) {
	s := startServer(t, defaultSets)
	svg := `<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.domain)" width="10" height="10"/>`
	minified := `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><script>alert(1)</script></svg>`
	html := "<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
	tests := map[string]struct{ set, name, data, detected string }{
		"svg named .png":       {"photos", "logo.png", minified, "image/svg+xml"},
		"svg named .gif":       {"photos", "logo.gif", svg, "text/plain"},
		"html named .svg":      {"photos", "logo.svg", html, "text/html"},
		"html saved as a .doc": {"docs", "report.doc", "<html><body><p>Q3</p></body></html>", "text/html"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			res, body := create(t, s.URL+"/uploads/"+tt.set+"/", tt.name, int64(len(tt.data)))
			if res.StatusCode != http.StatusCreated {
				t.Fatalf("POST: %d %s", res.StatusCode, body)
			}
			res, body = patch(t, res.Header.Get("Location"), 0, []byte(tt.data))
			if res.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("completing PATCH: %d %s, want 422", res.StatusCode, body)
			}
			for _, want := range []string{tt.detected, filepath.Ext(tt.name)} {
				if !strings.Contains(body, want) {
					t.Errorf("422 body %q lacks %q", body, want)
				}
			}
		})
	}
	for _, set := range []string{"photos", "docs"} {
		if got := files(t, s.Uploads(set)); len(got) != 0 {
			t.Errorf("%s destination holds %v", set, got)
		}
	}

	// The same shapes pass where they are what they claim.
	_, last := upload(t, s.URL+"/uploads/photos/", "logo.svg", []byte(svg), 1<<20)
	if last.Header.Get("Upload-File-Name") != "logo.svg" {
		t.Errorf("an SVG was not placed: %v", last.Header)
	}
	ole := append([]byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"), make([]byte, 504)...)
	_, last = upload(t, s.URL+"/uploads/docs/", "report.doc", ole, 1<<20)
	if !strings.HasSuffix(last.Header.Get("Upload-File-Name"), ".doc") {
		t.Errorf("an OLE2 file was not placed as .doc: %v", last.Header)
	}
}

func TestTusJSClientDoesNotReportRejectedAsSuccess(t *testing.T) {
	s := startServer(t, defaultSets)
	r := tusJS(t, jsOptions{Endpoint: s.URL + "/uploads/photos/", File: writeTemp(t, []byte("<html><body>hi</body></html>")), Name: "x.png"})
	if r.OK || r.Status != 422 || !strings.Contains(r.Body, "text/html") {
		t.Fatalf("want a failed upload with the 422 reason, got %+v", r)
	}
}
