package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHostileRequestsGetA4xxAndLeaveNothing(t *testing.T) {
	s := startServer(t, defaultSets)
	endpoint := s.URL + "/uploads/files/"
	name := encodeMeta(map[string]string{"filename": "a.bin"})
	tests := map[string]struct {
		method, url string
		header      map[string]string
		status      int
	}{
		"metadata not base64":   {"POST", endpoint, map[string]string{"Upload-Length": "1", "Upload-Metadata": "filename !!!notbase64!!!"}, 400},
		"metadata garbage":      {"POST", endpoint, map[string]string{"Upload-Length": "1", "Upload-Metadata": ",,, , a b c,"}, 400},
		"length not a number":   {"POST", endpoint, map[string]string{"Upload-Length": "ten", "Upload-Metadata": name}, 400},
		"negative length":       {"POST", endpoint, map[string]string{"Upload-Length": "-5", "Upload-Metadata": name}, 400},
		"length past int64":     {"POST", endpoint, map[string]string{"Upload-Length": "99999999999999999999999", "Upload-Metadata": name}, 400},
		"length over max_size":  {"POST", endpoint, map[string]string{"Upload-Length": "9223372036854775807", "Upload-Metadata": name}, 413},
		"both lengths":          {"POST", endpoint, map[string]string{"Upload-Length": "1", "Upload-Defer-Length": "1", "Upload-Metadata": name}, 400},
		"wrong tus version":     {"POST", endpoint, map[string]string{"Tus-Resumable": "0.2.2", "Upload-Length": "1", "Upload-Metadata": name}, 412},
		"set with dots":         {"POST", s.URL + "/uploads/../files/", map[string]string{"Upload-Length": "1", "Upload-Metadata": name}, 404},
		"encoded set traversal": {"POST", s.URL + "/uploads/%2e%2e%2ffiles/", map[string]string{"Upload-Length": "1", "Upload-Metadata": name}, 404},
		"id not ours":           {"HEAD", endpoint + strings.Repeat("f", 32), nil, 404},
		"id too short":          {"PATCH", endpoint + "abc", map[string]string{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}, 404},
		"id with traversal":     {"DELETE", endpoint + "..%2f..%2fconfig.hcl", nil, 404},
		"api id not ours":       {"GET", s.URL + "/api/uploads/files/..%2fx", nil, 404},
	}
	for tname, tc := range tests {
		t.Run(tname, func(t *testing.T) {
			res, body := do(t, tc.method, tc.url, nil, tc.header)
			if res.StatusCode != tc.status {
				t.Errorf("%d %q, want %d", res.StatusCode, body, tc.status)
			}
		})
	}

	// An offset that is not the upload's: 409, with the right one.
	res, _ := create(t, endpoint, "a.bin", 100)
	url := res.Header.Get("Location")
	patch(t, url, 0, randomBytes(t, 40))
	res, body := patch(t, url, 10, randomBytes(t, 10))
	if res.StatusCode != 409 || res.Header.Get("Upload-Offset") != "40" {
		t.Errorf("PATCH at a wrong offset: %d %q Upload-Offset=%q; want 409 with 40", res.StatusCode, body, res.Header.Get("Upload-Offset"))
	}
	// More bytes than declared: refused, nothing past the length stored.
	res, _ = patch(t, url, 40, randomBytes(t, 100))
	if res.StatusCode != 413 {
		t.Errorf("PATCH past Upload-Length: %d, want 413", res.StatusCode)
	}
	if off, _ := do(t, http.MethodHead, url, nil, nil); off.Header.Get("Upload-Offset") != "40" {
		t.Errorf("offset after a refused PATCH: %s", off.Header.Get("Upload-Offset"))
	}
	do(t, http.MethodDelete, url, nil, nil)

	if left := files(t, filepath.Join(s.Dir, "data", "files")); len(left) != 0 {
		t.Errorf("hostile requests left %v in the data dir", left)
	}
	if left := files(t, s.Uploads("files")); len(left) != 0 {
		t.Errorf("hostile requests left %v in the destination", left)
	}
}

func TestOversizedHeaders(t *testing.T) {
	s := startServer(t, defaultSets)
	res, _ := do(t, http.MethodPost, s.URL+"/uploads/files/", nil, map[string]string{
		"Upload-Length": "1", "Upload-Metadata": "filename " + strings.Repeat("QUFB", 40_000),
	})
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("160 KB of headers: %d, want 431", res.StatusCode)
	}
}

func TestSlowHeadersAreCut(t *testing.T) {
	t.Parallel()
	s := startServer(t, defaultSets)
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Half a request, then nothing: a slowloris.
	io.WriteString(conn, "POST /uploads/files/ HTTP/1.1\r\nHost: x\r\nUpload-Length: 1\r\n")
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	bufio.NewReader(conn).ReadString('\n')
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("a connection with unfinished headers was held %s", took)
	}
}

func TestStalledBodyIsTimedOutAndKept(t *testing.T) {
	s := startServer(t, `
network_timeout = "1s"
set "files" { extensions = all }`)
	res, _ := create(t, s.URL+"/uploads/files/", "stall.bin", 1<<20)
	url := res.Header.Get("Location")
	pw, done := slowPatch(t, url, 0, 1<<20)
	pw.Write(randomBytes(t, 100<<10))
	start := time.Now()
	select {
	case r := <-done:
		if r != nil && r.StatusCode < 500 {
			t.Errorf("a stalled PATCH got %d; clients retry only 5xx", r.StatusCode)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a stalled PATCH was not cut by the network timeout")
	}
	t.Logf("stalled PATCH cut after %s", time.Since(start).Round(100*time.Millisecond))
	pw.Close()
	res, _ = do(t, http.MethodHead, url, nil, nil)
	if res.Header.Get("Upload-Offset") != strconv.Itoa(100<<10) {
		t.Errorf("after the timeout the offset is %s, want the %d bytes received", res.Header.Get("Upload-Offset"), 100<<10)
	}
}

func TestGracefulShutdownKeepsInFlightBytes(t *testing.T) {
	dir := t.TempDir()
	cfg := baseConfig + "shutdown_timeout = \"5s\"\n" + defaultSets
	s := startServerIn(t, dir, cfg)
	res, _ := create(t, s.URL+"/uploads/files/", "term.bin", 4<<20)
	path := strings.TrimPrefix(res.Header.Get("Location"), s.URL)
	pw, done := slowPatch(t, s.URL+path, 0, 4<<20)
	data := randomBytes(t, 4<<20)
	pw.Write(data[:1<<20])
	waitSize(t, filepath.Join(dir, "data", "files", uploadID(path)), 1<<20)

	start := time.Now()
	s.Stop(t)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("SIGTERM took %s with an upload in flight; shutdown_timeout is 5s", took)
	}
	if r := <-done; r != nil && r.StatusCode < 500 {
		t.Errorf("the interrupted PATCH got %d, want a 5xx (clients retry those)", r.StatusCode)
	}
	pw.Close()
	if !strings.Contains(s.Log(), "Stopped") {
		t.Errorf("no clean stop in the log:\n%s", s.Log())
	}

	s2 := startServerIn(t, dir, cfg)
	res, _ = do(t, http.MethodHead, s2.URL+path, nil, nil)
	offset, _ := strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
	if offset < 1<<20 {
		t.Fatalf("after a graceful stop the offset is %d, want the %d bytes received", offset, 1<<20)
	}
	res, body := patch(t, s2.URL+path, offset, data[offset:])
	if res.StatusCode != 204 || fileSHA(t, filepath.Join(s2.Uploads("files"), "term.bin")) != sha(data) {
		t.Errorf("finishing after restart: %d %s", res.StatusCode, body)
	}
}
