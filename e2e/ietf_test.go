package e2e

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// ietf sends a request of the IETF resumable-upload draft, interop version 6, in the
// shape Apple's URLSession uses (iOS 17+, macOS 14+).
func ietf(t *testing.T, method, u string, body []byte, header map[string]string) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Upload-Draft-Interop-Version", "6")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return roundTrip(t, req)
}

func TestIETFDraftUploads(t *testing.T) {
	s := startServer(t, oneSet+`
set "small" {
  extensions = ["bin"]
  max_size   = "1MiB"
}`)
	endpoint := s.URL + "/uploads/files/"

	t.Run("the whole file in one request", func(t *testing.T) {
		data := randomBytes(t, 300_000)
		res, body := ietf(t, http.MethodPost, endpoint, data, map[string]string{
			"Upload-Complete":     "?1",
			"Content-Type":        "application/octet-stream",
			"Content-Disposition": `attachment; filename*=UTF-8''caf%C3%A9%20menu.bin`,
		})
		name, _ := url.PathUnescape(res.Header.Get("Upload-File-Name"))
		if res.StatusCode != http.StatusCreated || name != "café_menu.bin" || res.Header.Get("Upload-File-Url") == "" {
			t.Fatalf("POST: %d %s %v", res.StatusCode, body, res.Header)
		}
		if fileSHA(t, filepath.Join(s.Uploads("files"), "café_menu.bin")) != sha(data) {
			t.Error("bytes differ")
		}
	})

	t.Run("resumed after the connection dropped", func(t *testing.T) {
		data := randomBytes(t, 2<<20)
		// The length is unknown until the last request (Upload-Complete: ?0).
		res, body := ietf(t, http.MethodPost, endpoint, data[:700_000], map[string]string{
			"Upload-Complete": "?0", "Content-Disposition": `attachment; filename="train.bin"`,
		})
		loc := res.Header.Get("Location")
		if res.StatusCode != http.StatusCreated || loc == "" {
			t.Fatalf("POST: %d %s", res.StatusCode, body)
		}
		res, _ = ietf(t, http.MethodHead, loc, nil, nil)
		off, _ := strconv.Atoi(res.Header.Get("Upload-Offset"))
		if off != 700_000 || res.Header.Get("Upload-Complete") != "?0" {
			t.Fatalf("HEAD: %d %v", res.StatusCode, res.Header)
		}
		res, body = ietf(t, http.MethodPatch, loc, data[off:], map[string]string{
			"Upload-Offset": strconv.Itoa(off), "Upload-Complete": "?1", "Content-Type": "application/partial-upload",
		})
		if res.StatusCode != http.StatusNoContent || res.Header.Get("Upload-File-Name") != "train.bin" {
			t.Fatalf("PATCH: %d %s %v", res.StatusCode, body, res.Header)
		}
		if fileSHA(t, filepath.Join(s.Uploads("files"), "train.bin")) != sha(data) {
			t.Error("bytes differ")
		}
		res, _ = ietf(t, http.MethodHead, loc, nil, nil)
		if res.Header.Get("Upload-Complete") != "?1" || res.Header.Get("Upload-File-Name") != "train.bin" {
			t.Errorf("HEAD after completion: %v", res.Header)
		}
	})

	t.Run("the same policy", func(t *testing.T) {
		res, body := ietf(t, http.MethodPost, s.URL+"/uploads/small/", []byte("MZ"), map[string]string{
			"Upload-Complete": "?1", "Content-Disposition": `attachment; filename="run.exe"`,
		})
		if res.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(body, `set "small"`) {
			t.Errorf("an .exe: %d %s", res.StatusCode, body)
		}
		res, body = ietf(t, http.MethodPost, s.URL+"/uploads/small/", []byte("x"), map[string]string{"Upload-Complete": "?1"})
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "name") {
			t.Errorf("no Content-Disposition: %d %s", res.StatusCode, body)
		}
	})

	t.Run("an unknown length is kept within max_size", func(t *testing.T) {
		res, _ := ietf(t, http.MethodPost, s.URL+"/uploads/small/", make([]byte, 600<<10), map[string]string{
			"Upload-Complete": "?0", "Content-Disposition": `attachment; filename="big.bin"`,
		})
		loc := res.Header.Get("Location")
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("POST: %d", res.StatusCode)
		}
		res, body := ietf(t, http.MethodPatch, loc, make([]byte, 600<<10), map[string]string{
			"Upload-Offset": strconv.Itoa(600 << 10), "Upload-Complete": "?0", "Content-Type": "application/partial-upload",
		})
		if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, `set "small"`) {
			t.Fatalf("the PATCH that crosses max_size: %d %s, want 413 naming the set", res.StatusCode, body)
		}
		st, err := os.Stat(filepath.Join(s.Dir, "data", "small", uploadID(loc)))
		if err != nil || st.Size() > 1<<20 {
			t.Fatalf("data file: %v, %v; no byte past max_size may be stored", st.Size(), err)
		}
		if got := files(t, s.Uploads("small")); len(got) != 0 {
			t.Errorf("placed %v", got)
		}
	})

	t.Run("tus-js-client's ietf-draft-05", func(t *testing.T) {
		data := randomBytes(t, 1<<20)
		r := tusJS(t, jsOptions{Endpoint: endpoint, File: writeTemp(t, data), Name: "js-ietf.bin", Protocol: "ietf-draft-05"})
		if !r.OK || r.FileName != "js-ietf.bin" {
			t.Fatalf("tus-js-client: %+v", r)
		}
		if fileSHA(t, filepath.Join(s.Uploads("files"), "js-ietf.bin")) != sha(data) {
			t.Error("bytes differ")
		}
	})
}

// tus's creation-defer-length, now offered: a length declared past max_size on a later
// PATCH is refused, and so are bytes past it when no length is declared.
func TestDeferredLengthKeepsToMaxSize(t *testing.T) {
	s := startServer(t, `
set "small" {
  extensions = ["bin"]
  max_size   = "64KiB"
}`)
	meta := encodeMeta(map[string]string{"filename": "d.bin"})
	res, _ := do(t, http.MethodPost, s.URL+"/uploads/small/", nil, map[string]string{"Upload-Defer-Length": "1", "Upload-Metadata": meta})
	url := res.Header.Get("Location")
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST with Upload-Defer-Length: %d", res.StatusCode)
	}
	res, body := do(t, http.MethodPatch, url, bytes.NewReader(make([]byte, 10)), map[string]string{
		"Upload-Offset": "0", "Upload-Length": strconv.Itoa(1 << 20), "Content-Type": "application/offset+octet-stream",
	})
	if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, `set "small"`) {
		t.Errorf("declaring 1 MiB: %d %s", res.StatusCode, body)
	}
	data := randomBytes(t, 50_000)
	res, body = do(t, http.MethodPatch, url, bytes.NewReader(data), map[string]string{
		"Upload-Offset": "0", "Upload-Length": "50000", "Content-Type": "application/offset+octet-stream",
	})
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Upload-File-Name") != "d.bin" {
		t.Fatalf("declaring 50000 with the bytes: %d %s", res.StatusCode, body)
	}
	if fileSHA(t, filepath.Join(s.Uploads("small"), "d.bin")) != sha(data) {
		t.Error("bytes differ")
	}
}
