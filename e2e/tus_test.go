package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// A raw tus 1.0.0 client: every request spelled out, so tests can stop, break or
// repeat any step of the protocol.

func encodeMeta(meta map[string]string) string {
	var parts []string
	for k, v := range meta {
		parts = append(parts, k+" "+base64.StdEncoding.EncodeToString([]byte(v)))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func do(t *testing.T, method, url string, body io.Reader, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if method != http.MethodGet && method != http.MethodOptions {
		req.Header.Set("Tus-Resumable", "1.0.0")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if b, ok := body.(*bytes.Reader); ok {
		req.ContentLength = int64(b.Len())
	}
	return roundTrip(t, req)
}

// roundTrip sends req and reads the whole response.
func roundTrip(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// create POSTs a new upload of size bytes named name (no body).
func create(t *testing.T, endpoint, name string, size int64) (*http.Response, string) {
	t.Helper()
	return do(t, http.MethodPost, endpoint, nil, map[string]string{
		"Upload-Length":   strconv.FormatInt(size, 10),
		"Upload-Metadata": encodeMeta(map[string]string{"filename": name}),
	})
}

func patch(t *testing.T, url string, offset int64, chunk []byte) (*http.Response, string) {
	t.Helper()
	return do(t, http.MethodPatch, url, bytes.NewReader(chunk), map[string]string{
		"Upload-Offset": strconv.FormatInt(offset, 10),
		"Content-Type":  "application/offset+octet-stream",
	})
}

// upload sends data in chunks of chunk bytes and returns the upload URL and the
// response that completed it.
func upload(t *testing.T, endpoint, name string, data []byte, chunk int) (string, *http.Response) {
	t.Helper()
	res, body := create(t, endpoint, name, int64(len(data)))
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", name, res.StatusCode, body)
	}
	url := res.Header.Get("Location")
	if len(data) == 0 {
		return url, res
	}
	var last *http.Response
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		res, body := patch(t, url, int64(off), data[off:end])
		if res.StatusCode != http.StatusNoContent {
			t.Fatalf("PATCH %s at %d: %d %s", name, off, res.StatusCode, body)
		}
		if got := res.Header.Get("Upload-Offset"); got != strconv.Itoa(end) {
			t.Fatalf("PATCH %s: Upload-Offset %s, want %d", name, got, end)
		}
		last = res
	}
	return url, last
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha(b)
}

// files lists the regular files directly in dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	return names
}

// fakePNG is n bytes that start like a PNG, enough for content sniffing.
func fakePNG(t *testing.T, n int) []byte {
	t.Helper()
	b := randomBytes(t, n)
	copy(b, "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	return b
}
