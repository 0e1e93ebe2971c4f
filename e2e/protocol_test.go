package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func sha256Header(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256 " + base64.StdEncoding.EncodeToString(s[:])
}

// A checksummed PATCH is kept whole or not at all: a wrong checksum, or a body cut
// in the middle, leaves the offset where it was, and the file ends exact.
func TestChecksumThroughTheBinary(t *testing.T) {
	s := startServer(t, oneSet)
	data := randomBytes(t, 6<<20)
	res, _ := create(t, s.URL+"/uploads/files/", "sum.bin", int64(len(data)))
	url := res.Header.Get("Location")
	const chunk = 1 << 20
	offset := func() int64 {
		res, _ := do(t, http.MethodHead, url, nil, nil)
		n, _ := strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
		return n
	}
	send := func(off int, body []byte, sum string) (*http.Response, string) {
		return do(t, http.MethodPatch, url, bytes.NewReader(body), map[string]string{
			"Upload-Offset": strconv.Itoa(off), "Content-Type": "application/offset+octet-stream", "Upload-Checksum": sum,
		})
	}
	for off := 0; off < len(data); off += chunk {
		part := data[off : off+chunk]
		switch off / chunk {
		case 2: // a wrong checksum: 460, nothing kept
			bad := append([]byte{}, part...)
			bad[100] ^= 1
			res, body := send(off, bad, sha256Header(part))
			if res.StatusCode != 460 || !strings.Contains(body, `set "files"`) {
				t.Fatalf("wrong checksum: %d %s, want 460", res.StatusCode, body)
			}
			if got := offset(); got != int64(off) {
				t.Fatalf("after a checksum mismatch the offset is %d, want %d", got, off)
			}
		case 4: // a body cut half-way: the half that arrived cannot be verified
			cutPatch(t, url, off, part[:chunk/2], len(part), sha256Header(part))
			deadline := time.Now().Add(10 * time.Second)
			for offset() != int64(off) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := offset(); got != int64(off) {
				t.Fatalf("after a cut checksummed PATCH the offset is %d, want %d", got, off)
			}
		}
		if res, body := send(off, part, sha256Header(part)); res.StatusCode != http.StatusNoContent {
			t.Fatalf("PATCH at %d: %d %s", off, res.StatusCode, body)
		}
	}
	if fileSHA(t, filepath.Join(s.Uploads("files"), "sum.bin")) != sha(data) {
		t.Error("the stored file is not the upload's bytes")
	}
	res, body := send(0, []byte("x"), "sha512 "+base64.StdEncoding.EncodeToString([]byte("x")))
	if res.StatusCode != 400 || !strings.Contains(body, "sha1,sha256,md5,crc32") {
		t.Errorf("unknown algorithm: %d %s", res.StatusCode, body)
	}
}

// cutPatch sends a PATCH declaring length bytes, writes body and closes the connection.
func cutPatch(t *testing.T, url string, off int, body []byte, length int, sum string) {
	t.Helper()
	host := strings.TrimPrefix(url, "http://")
	path := host[strings.Index(host, "/"):]
	host = host[:strings.Index(host, "/")]
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "PATCH "+path+" HTTP/1.1\r\nHost: "+host+"\r\nTus-Resumable: 1.0.0\r\n"+
		"Content-Type: application/offset+octet-stream\r\nUpload-Offset: "+strconv.Itoa(off)+"\r\n"+
		"Upload-Checksum: "+sum+"\r\nContent-Length: "+strconv.Itoa(length)+"\r\n\r\n")
	conn.Write(body)
	time.Sleep(50 * time.Millisecond) // let the server read what was sent
}

func TestProtocolThroughTheBinary(t *testing.T) {
	s := startServer(t, oneSet)
	endpoint := s.URL + "/uploads/files/"
	named := encodeMeta(map[string]string{"filename": "p.bin"})
	tests := map[string]struct {
		method, url string
		header      map[string]string
		code        int
		resHeader   map[string]string
		says        string
	}{
		"OPTIONS lists expiration and checksum": {"OPTIONS", endpoint, nil, 200,
			map[string]string{"Tus-Extension": "creation,creation-with-upload,termination,creation-defer-length,expiration,checksum", "Tus-Checksum-Algorithm": "sha1,sha256,md5,crc32"}, ""},
		"a GET overridden to OPTIONS": {"GET", endpoint, map[string]string{"X-HTTP-Method-Override": "OPTIONS"}, 200,
			map[string]string{"Tus-Version": "1.0.0"}, ""},
		"412 names the version": {"POST", endpoint, map[string]string{"Tus-Resumable": "0.2.0", "Upload-Length": "1"}, 412,
			map[string]string{"Tus-Version": "1.0.0"}, ""},
		"concatenation": {"POST", endpoint, map[string]string{"Upload-Length": "1", "Upload-Concat": "partial", "Upload-Metadata": named}, 400,
			nil, "concatenation"},
		"metadata with a trailing comma": {"POST", endpoint, map[string]string{"Upload-Length": "1", "Upload-Metadata": named + ","}, 400,
			nil, "pair 2"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res, body := do(t, tc.method, tc.url, nil, tc.header)
			if res.StatusCode != tc.code || !strings.Contains(body, tc.says) {
				t.Errorf("%d %q, want %d saying %q", res.StatusCode, body, tc.code, tc.says)
			}
			for k, v := range tc.resHeader {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}

	data := randomBytes(t, 1000)
	res, _ := create(t, endpoint, "p.bin", int64(len(data)))
	url := res.Header.Get("Location")
	res, body := do(t, http.MethodPatch, url, bytes.NewReader(data[:10]), map[string]string{"Upload-Offset": "0"})
	if res.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("PATCH without Content-Type: %d %s, want 415", res.StatusCode, body)
	}
	patch(t, url, 0, data[:500])
	res, _ = do(t, http.MethodHead, url, nil, nil)
	if res.Header.Get("Upload-Expires") == "" {
		t.Error("HEAD of an unfinished upload has no Upload-Expires")
	}
	// X-HTTP-Method-Override turns a POST into the PATCH it stands for.
	res, body = do(t, http.MethodPost, url, bytes.NewReader(data[500:]), map[string]string{
		"X-HTTP-Method-Override": "PATCH", "Upload-Offset": "500", "Content-Type": "application/offset+octet-stream",
	})
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Upload-File-Name") != "p.bin" {
		t.Fatalf("POST overridden to PATCH: %d %s", res.StatusCode, body)
	}
	for _, m := range []string{http.MethodHead, http.MethodPatch} {
		res, _ := do(t, m, url, nil, map[string]string{"Upload-Offset": "1000", "Content-Type": "application/offset+octet-stream"})
		if res.Header.Get("Upload-Expires") != "" || res.Header.Get("Upload-File-Name") != "p.bin" {
			t.Errorf("%s of a finished upload: Upload-Expires %q, name %q", m, res.Header.Get("Upload-Expires"), res.Header.Get("Upload-File-Name"))
		}
	}
	res, body = patch(t, url, 1000, []byte("more"))
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("bytes past the length of a finished upload: %d %s, want 413", res.StatusCode, body)
	}
	if fileSHA(t, filepath.Join(s.Uploads("files"), "p.bin")) != sha(data) {
		t.Error("the stored file changed")
	}
}
