package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Failure paths an operator meets: links that a client's Host could poison, readers
// that stop reading, a destination full of one name, file modes, unusable directories
// and placement across file systems.

// send is do with the request's Host set to host when it is not empty, as a client
// that reached the server under another name sends it.
func send(t *testing.T, method, url, host string, body []byte, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	if host != "" {
		req.Host = host
	}
	if method != http.MethodGet {
		req.Header.Set("Tus-Resumable", "1.0.0")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return roundTrip(t, req)
}

// apiURL is the url the status API gives for the upload at uploadURL.
func apiURL(t *testing.T, s *server, set, uploadURL string, header map[string]string) string {
	t.Helper()
	res, body := send(t, http.MethodGet, s.URL+"/api/uploads/"+set+"/"+uploadID(uploadURL), "", nil, header)
	var info struct{ State, URL string }
	if err := json.Unmarshal([]byte(body), &info); res.StatusCode != 200 || err != nil {
		t.Fatalf("status API: %d %s (%v)", res.StatusCode, body, err)
	}
	if info.State != "complete" {
		t.Fatalf("status API: state %q, want complete", info.State)
	}
	return info.URL
}

// TestNoHostPoisoning: without public_url, links are built from each request, so the
// Host one client sent never reaches the links another is given.
func TestNoHostPoisoning(t *testing.T) {
	s := startServer(t, defaultSets)
	endpoint := s.URL + "/uploads/files/"
	want := s.URL + "/files/files/host.bin"
	data := randomBytes(t, 1000)

	// Client A completes the upload under another Host.
	res, _ := create(t, endpoint, "host.bin", int64(len(data)))
	url := res.Header.Get("Location")
	res, body := send(t, http.MethodPatch, url, "evil.example", data, map[string]string{
		"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream",
	})
	if res.StatusCode != 204 {
		t.Fatalf("A's completing PATCH: %d %s", res.StatusCode, body)
	}
	t.Logf("A was told Upload-File-Url: %s", res.Header.Get("Upload-File-Url"))

	// Client B, with the server's own Host, is given links to the server.
	res, _ = do(t, http.MethodHead, url, nil, nil)
	if got := res.Header.Get("Upload-File-Url"); got != want {
		t.Errorf("B's HEAD: Upload-File-Url %q, want %q", got, want)
	}
	if got := apiURL(t, s, "files", url, nil); got != want {
		t.Errorf("B's status API: url %q, want %q", got, want)
	}
	res, _ = send(t, http.MethodGet, url, "", nil, nil)
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || (loc != want && loc != "/files/files/host.bin") {
		t.Errorf("B's GET of the placed upload: %d Location %q, want 303 to %q", res.StatusCode, loc, want)
	}
	if fileSHA(t, filepath.Join(s.Uploads("files"), "host.bin")) != sha(data) {
		t.Error("placed bytes differ")
	}

	// Forwarding headers from a peer that is not a trusted proxy are ignored.
	forwarded := map[string]map[string]string{
		"X-Forwarded": {"X-Forwarded-Host": "up.example", "X-Forwarded-Proto": "https"},
		"Forwarded":   {"Forwarded": "for=192.0.2.1;host=fw.example;proto=https"},
	}
	for name, header := range forwarded {
		t.Run("untrusted "+name, func(t *testing.T) {
			url, fileURL := forwardedUpload(t, endpoint, "untrusted.bin", header)
			if !strings.HasPrefix(url, endpoint) {
				t.Errorf("POST: Location %q, want it under %q", url, endpoint)
			}
			if !strings.HasPrefix(fileURL, s.URL+"/files/files/untrusted") {
				t.Errorf("completing PATCH: Upload-File-Url %q, want it under %s", fileURL, s.URL)
			}
			res, _ := do(t, http.MethodHead, url, nil, header)
			if got := res.Header.Get("Upload-File-Url"); got != fileURL {
				t.Errorf("HEAD: Upload-File-Url %q, want %q", got, fileURL)
			}
			if got := apiURL(t, s, "files", url, header); got != fileURL {
				t.Errorf("status API: url %q, want %q", got, fileURL)
			}
		})
	}
	if got := files(t, s.Uploads("files")); len(got) != 3 {
		t.Errorf("destination holds %v, want host.bin and two untrusted*.bin", got)
	}
}

// forwardedUpload creates and completes a 100-byte upload named name, sending header
// with both requests, and returns the POST's Location and the completing
// Upload-File-Url.
func forwardedUpload(t *testing.T, endpoint, name string, header map[string]string) (url, fileURL string) {
	t.Helper()
	h := map[string]string{
		"Upload-Length":   "100",
		"Upload-Metadata": encodeMeta(map[string]string{"filename": name}),
	}
	for k, v := range header {
		h[k] = v
	}
	res, body := send(t, http.MethodPost, endpoint, "", nil, h)
	if res.StatusCode != 201 {
		t.Fatalf("POST: %d %s", res.StatusCode, body)
	}
	url = res.Header.Get("Location")
	h = map[string]string{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
	for k, v := range header {
		h[k] = v
	}
	// The Location may name another host: the request goes to the server all the same.
	res, body = send(t, http.MethodPatch, endpoint+uploadID(url), "", randomBytes(t, 100), h)
	if res.StatusCode != 204 {
		t.Fatalf("completing PATCH: %d %s", res.StatusCode, body)
	}
	return url, res.Header.Get("Upload-File-Url")
}

// TestTrustedProxyForwardingIsHonoured: behind a trusted proxy, every link (tusd's
// Location and ours) uses the scheme and host the proxy forwards.
func TestTrustedProxyForwardingIsHonoured(t *testing.T) {
	s := startServer(t, `trusted_proxies = ["127.0.0.1"]`+"\n"+defaultSets)
	endpoint := s.URL + "/uploads/files/"
	tests := map[string]struct {
		header map[string]string
		base   string
	}{
		"X-Forwarded": {map[string]string{"X-Forwarded-Host": "up.example", "X-Forwarded-Proto": "https"}, "https://up.example"},
		"Forwarded":   {map[string]string{"Forwarded": "for=192.0.2.1;host=fw.example:8443;proto=https"}, "https://fw.example:8443"},
		"none":        {nil, s.URL},
		// RFC 7239: parameter names are case-insensitive, values may be quoted, and
		// each proxy on the way adds an element: the first is the client's view.
		"Forwarded quoted": {map[string]string{"Forwarded": `for=192.0.2.1;proto="https";host="up.example"`}, "https://up.example"},
		"Forwarded case":   {map[string]string{"Forwarded": "For=192.0.2.1;Proto=https;Host=up.example"}, "https://up.example"},
		"Forwarded list":   {map[string]string{"Forwarded": "for=192.0.2.1;proto=https;host=up.example, for=10.0.0.1;host=inner.example"}, "https://up.example"},
		// A host that is no host is not used; the request's Host is.
		"X-Forwarded-Host list": {map[string]string{"X-Forwarded-Host": "up.example, inner.example", "X-Forwarded-Proto": "https"}, "https://" + strings.TrimPrefix(s.URL, "http://")},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			file := strings.ReplaceAll(strings.ToLower(name), " ", "-") + ".bin"
			url, fileURL := forwardedUpload(t, endpoint, file, tt.header)
			id := uploadID(url)
			if want := tt.base + "/uploads/files/" + id; url != want {
				t.Errorf("POST: Location %q, want %q", url, want)
			}
			want := tt.base + "/files/files/" + file
			if fileURL != want {
				t.Errorf("completing PATCH: Upload-File-Url %q, want %q", fileURL, want)
			}
			res, _ := do(t, http.MethodHead, endpoint+id, nil, tt.header)
			if got := res.Header.Get("Upload-File-Url"); got != want {
				t.Errorf("HEAD: Upload-File-Url %q, want %q", got, want)
			}
			if got := apiURL(t, s, "files", url, tt.header); got != want {
				t.Errorf("status API: url %q, want %q", got, want)
			}
			res, _ = send(t, http.MethodGet, endpoint+id, "", nil, tt.header)
			if got := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || got != want {
				t.Errorf("GET of the placed upload: %d Location %q, want 303 to %q", res.StatusCode, got, want)
			}
		})
	}
}

// dialSmall connects to s with a small receive buffer, so that a reader that stops
// reading stops the server's writes after a few hundred KiB instead of megabytes.
func dialSmall(t *testing.T, s *server) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// stalledGet sends GET path on a connection of its own, reads the response's headers
// and the first n bytes of its body, and then stops reading. The rest of the body can
// be read from the returned response.
func stalledGet(t *testing.T, s *server, path string, n int) (net.Conn, *http.Response, []byte) {
	t.Helper()
	conn := dialSmall(t, s)
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), req)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, n)
	if _, err := io.ReadFull(res.Body, head); err != nil {
		t.Fatalf("GET %s: reading the first %d bytes: %v", path, n, err)
	}
	return conn, res, head
}

// TestSlowReaderOfAPartialUploadHoldsNoLock: GET of a partial upload is served outside
// tusd's lock, so a reader that stops reading never keeps its owner from resuming.
func TestSlowReaderOfAPartialUploadHoldsNoLock(t *testing.T) {
	s := startServer(t, defaultSets)
	data := randomBytes(t, 32<<20)
	half := len(data) / 2
	res, _ := create(t, s.URL+"/uploads/files/", "partial.bin", int64(len(data)))
	url := res.Header.Get("Location")
	if res, body := patch(t, url, 0, data[:half]); res.StatusCode != 204 {
		t.Fatalf("first half: %d %s", res.StatusCode, body)
	}

	// A reader of the 16 MiB received so far reads a little and stops.
	_, got, head := stalledGet(t, s, strings.TrimPrefix(url, s.URL), 16)
	if got.StatusCode != 200 || got.ContentLength != int64(half) || !bytes.Equal(head, data[:16]) {
		t.Fatalf("GET of the partial upload: %d, Content-Length %d (want %d), first bytes match: %v",
			got.StatusCode, got.ContentLength, half, bytes.Equal(head, data[:16]))
	}
	checkAttachment(t, got.Header, "attachment; filename=partial.bin")

	// Meanwhile the owner resumes, without waiting for the reader.
	start := time.Now()
	res, body := patch(t, url, int64(half), data[half:])
	took := time.Since(start)
	if res.StatusCode != 204 || res.Header.Get("Upload-File-Name") != "partial.bin" {
		t.Fatalf("resuming PATCH while a reader stalls: %d %s after %s", res.StatusCode, body, took)
	}
	if took > 10*time.Second {
		t.Errorf("resuming PATCH took %s while a reader stalled", took)
	}
	t.Logf("resuming PATCH of %d MiB took %s", (len(data)-half)>>20, took.Round(time.Millisecond))
	if got := files(t, s.Uploads("files")); len(got) != 1 || fileSHA(t, filepath.Join(s.Uploads("files"), "partial.bin")) != sha(data) {
		t.Errorf("destination holds %v, want partial.bin with the upload's bytes", got)
	}

	// A name that is not ASCII is given as RFC 5987's filename*.
	res, _ = create(t, s.URL+"/uploads/files/", "café.bin", 100)
	url = res.Header.Get("Location")
	part := randomBytes(t, 40)
	patch(t, url, 0, part)
	res, body = send(t, http.MethodGet, url, "", nil, nil)
	if res.StatusCode != 200 || body != string(part) {
		t.Errorf("GET of a partial upload: %d, %d bytes, want 200 with the 40 received", res.StatusCode, len(body))
	}
	checkAttachment(t, res.Header, "attachment; filename*=utf-8''caf%C3%A9.bin")
}

// checkAttachment checks the headers that keep a browser from running a download.
func checkAttachment(t *testing.T, h http.Header, disposition string) {
	t.Helper()
	if got := h.Get("Content-Type"); got != "application/octet-stream" {
		t.Errorf("Content-Type %q, want application/octet-stream", got)
	}
	if got := h.Get("Content-Disposition"); got != disposition {
		t.Errorf("Content-Disposition %q, want %q", got, disposition)
	}
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q, want nosniff", got)
	}
	if got := h.Get("Content-Security-Policy"); !strings.Contains(got, "sandbox") {
		t.Errorf("Content-Security-Policy %q, want a sandbox", got)
	}
}

// TestStalledFileReaderIsCut: each write of a placed file gets network_timeout, so a
// reader that stops reading loses the connection instead of holding it.
func TestStalledFileReaderIsCut(t *testing.T) {
	t.Parallel()
	s := startServer(t, `
network_timeout = "2s"
set "files" { extensions = all }`)
	data := randomBytes(t, 32<<20)
	upload(t, s.URL+"/uploads/files/", "big.bin", data, len(data))

	conn, res, head := stalledGet(t, s, "/files/files/big.bin", 16)
	if res.StatusCode != 200 || res.ContentLength != int64(len(data)) || !bytes.Equal(head, data[:16]) {
		t.Fatalf("GET: %d, Content-Length %d", res.StatusCode, res.ContentLength)
	}
	// Well past network_timeout; then what the server had sent before it gave up is
	// all there is.
	time.Sleep(5 * time.Second)
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	n, err := io.Copy(io.Discard, res.Body)
	got := int64(len(head)) + n
	var ne net.Error
	timedOut := errors.As(err, &ne) && ne.Timeout()
	if got >= int64(len(data)) || err == nil || timedOut {
		t.Errorf("a reader that stopped for 5s got %d of %d bytes, ending with %v; want fewer, then EOF or a reset", got, len(data), err)
	}
	t.Logf("the stalled reader got %d of %d bytes, then %v", got, len(data), err)

	// A reader that keeps reading gets the whole file.
	res2, body := send(t, http.MethodGet, s.URL+"/files/files/big.bin", "", nil, nil)
	if res2.StatusCode != 200 || sha([]byte(body)) != sha(data) {
		t.Errorf("a steady reader: %d, %d bytes, want the whole file", res2.StatusCode, len(body))
	}
}

// TestNamesNeverRunOut: a destination holding every numbered variant of a name still
// takes one more upload of it, under a suffix drawn from the upload's ID.
func TestNamesNeverRunOut(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "uploads", "files")
	if err := os.MkdirAll(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	// cat.xxx, cat_1.xxx ... cat_10000.xxx: every numbered name there is, and more.
	const taken = 10001
	for i := range taken {
		name := "cat.xxx"
		if i > 0 {
			name = "cat_" + strconv.Itoa(i) + ".xxx"
		}
		if err := os.WriteFile(filepath.Join(dest, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := startServerIn(t, dir, baseConfig+defaultSets)
	hashed := regexp.MustCompile(`^cat_[0-9a-f]{8}\.xxx$`)
	placed := map[string]string{}
	for range 2 {
		data := randomBytes(t, 1000)
		start := time.Now()
		_, last := upload(t, s.URL+"/uploads/files/", "cat.xxx", data, len(data))
		name, _ := neturl.PathUnescape(last.Header.Get("Upload-File-Name"))
		if !hashed.MatchString(name) {
			t.Fatalf("placed as %q, want cat_<8 hex digits>.xxx", name)
		}
		t.Logf("placed as %s in %s", name, time.Since(start).Round(time.Millisecond))
		placed[name] = sha(data)
	}
	if len(placed) != 2 {
		t.Errorf("two uploads of cat.xxx got one name: %v", placed)
	}
	for name, sum := range placed {
		if fileSHA(t, filepath.Join(dest, name)) != sum {
			t.Errorf("%s does not hold its upload's bytes", name)
		}
	}
	if got := len(files(t, dest)); got != taken+2 {
		t.Errorf("destination holds %d files, want %d", got, taken+2)
	}
}

// mode is the permission bits of path.
func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// TestFileAndDirModes: placed files and created directories get file_mode and dir_mode
// exactly, whatever the umask, whether placement links or copies.
func TestFileAndDirModes(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "other")
	tinyFS(t, other, "8m") // another file system: placement copies
	// A umask that would strip group write: only a server that sets the modes
	// itself gets 0664 and 0775. Tests that are not parallel run alone, and the
	// server inherits it at start.
	old := syscall.Umask(0o027)
	s := startServerIn(t, dir, baseConfig+`
file_mode = "0664"
dir_mode  = "0775"
set "files" { extensions = all }
set "private" {
  extensions = all
  file_mode  = "0640"
}
set "copied" {
  extensions  = all
  destination = "./other/copied"
}
`)
	syscall.Umask(old)
	if !strings.Contains(s.Log(), "uploadsets.copied: PlacementCopies") {
		t.Fatalf("set copied does not copy; its test proves nothing:\n%s", s.Log())
	}
	tests := map[string]struct {
		dest string
		file fs.FileMode
	}{
		"files":   {s.Uploads("files"), 0o664},
		"private": {s.Uploads("private"), 0o640},
		"copied":  {filepath.Join(other, "copied"), 0o664},
	}
	for set, tt := range tests {
		t.Run(set, func(t *testing.T) {
			data := randomBytes(t, 1000)
			upload(t, s.URL+"/uploads/"+set+"/", "m.bin", data, len(data))
			placed := filepath.Join(tt.dest, "m.bin")
			if got := files(t, tt.dest); len(got) != 1 || fileSHA(t, placed) != sha(data) {
				t.Fatalf("destination holds %v, want m.bin with the upload's bytes", got)
			}
			if got := mode(t, placed); got != tt.file {
				t.Errorf("placed file has mode %04o, want %04o", got, tt.file)
			}
			if got := mode(t, tt.dest); got != 0o775 {
				t.Errorf("destination %s has mode %04o, want dir_mode 0775", tt.dest, got)
			}
		})
	}
	if got := mode(t, filepath.Join(dir, "uploads")); got != 0o775 {
		t.Errorf("uploads_default_dest has mode %04o, want dir_mode 0775", got)
	}

	t.Run("defaults", func(t *testing.T) {
		s := startServer(t, `set "files" { extensions = all }`)
		data := randomBytes(t, 1000)
		upload(t, s.URL+"/uploads/files/", "d.bin", data, len(data))
		if got := mode(t, filepath.Join(s.Uploads("files"), "d.bin")); got != 0o644 {
			t.Errorf("placed file has mode %04o, want 0644", got)
		}
		if got := mode(t, s.Uploads("files")); got != 0o755 {
			t.Errorf("destination has mode %04o, want 0755", got)
		}
	})
}

// readOnlyFS mounts an empty read-only tmpfs at dir.
func readOnlyFS(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	os.MkdirAll(dir, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// position is where s first appears in config, as diagnostics name it.
func position(config, s string) string {
	i := strings.Index(config, s)
	if i < 0 {
		panic("not in the config: " + s)
	}
	line := strings.Count(config[:i], "\n") + 1
	col := i - strings.LastIndex(config[:i], "\n")
	return fmt.Sprintf("config.hcl:%d,%d", line, col)
}

// tree lists every path under dir with its mode and size.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %s %d", p, info.Mode(), info.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUnusableDirectoriesAreReportedAtTheirAttribute: check and serve try each
// directory with a file and report the ones that cannot be used at their attribute.
func TestUnusableDirectoriesAreReportedAtTheirAttribute(t *testing.T) {
	dir := t.TempDir()
	readOnlyFS(t, filepath.Join(dir, "ro"))
	readOnlyFS(t, filepath.Join(dir, "rodata"))
	if err := os.WriteFile(filepath.Join(dir, "blocked"), []byte("a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	// data_dir is missing on a read-only file system: check probes the directory
	// where it would be made.
	config := `
listen   = "127.0.0.1:0"
data_dir = "./rodata/data"
set "x" {
  destination = "./blocked"
}
set "y" {
  destination = "./ro"
}
set "fine" {}
`
	if err := os.WriteFile(filepath.Join(dir, "config.hcl"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	want := []string{
		position(config, `"./rodata/data"`) + ": data_dir " + filepath.Join(dir, "rodata", "data") + " cannot be used: the file system is read-only",
		position(config, `"./blocked"`) + `: destination of set "x" ` + filepath.Join(dir, "blocked") + " cannot be used: ",
		position(config, `"./ro"`) + `: destination of set "y" ` + filepath.Join(dir, "ro") + " cannot be used: the file system is read-only",
	}
	before := tree(t, dir)
	for _, cmd := range []string{"check", "serve"} {
		t.Run(cmd, func(t *testing.T) {
			_, stderr, code := runBinary(t, dir, cmd, "-config", "config.hcl")
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			lines := strings.Split(stderr, "\n")
			for _, w := range want {
				if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, w) }) {
					t.Errorf("no line starting %q in:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "Serving") {
				t.Errorf("%s started serving:\n%s", cmd, stderr)
			}
			// serve may make the directories it can (those of set "fine"); check
			// makes none.
			if after := tree(t, dir); cmd == "check" && !slices.Equal(before, after) {
				t.Errorf("check changed the directory:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
}

// TestCheckCreatesNothingServeCreatesWithDirMode: check probes where a missing
// destination would be made without making it; serve makes it, with dir_mode.
func TestCheckCreatesNothingServeCreatesWithDirMode(t *testing.T) {
	dir := t.TempDir()
	config := baseConfig + `
dir_mode = "0770"
set "deep" {
  extensions  = all
  destination = "./missing/deep"
}
`
	if err := os.WriteFile(filepath.Join(dir, "config.hcl"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	before := tree(t, dir)
	stdout, stderr, code := runBinary(t, dir, "check", "-config", "config.hcl")
	if code != 0 {
		t.Fatalf("check: exit code %d\n%s%s", code, stdout, stderr)
	}
	if after := tree(t, dir); !slices.Equal(before, after) {
		t.Fatalf("check changed the directory:\nbefore %q\nafter  %q", before, after)
	}
	s := startServerIn(t, dir, config)
	for _, d := range []string{"missing", "missing/deep", "data"} {
		if got := mode(t, filepath.Join(dir, d)); got != 0o770 {
			t.Errorf("serve made %s with mode %04o, want dir_mode 0770", d, got)
		}
	}
	data := randomBytes(t, 1000)
	upload(t, s.URL+"/uploads/deep/", "d.bin", data, len(data))
	if got := files(t, filepath.Join(dir, "missing", "deep")); len(got) != 1 || fileSHA(t, filepath.Join(dir, "missing", "deep", "d.bin")) != sha(data) {
		t.Errorf("destination holds %v", got)
	}
}

// TestReadOnlyDestinationIsToldAndRetried: a destination that turns read-only after
// start fails the completing PATCH with a 5xx naming the set and the step; the
// client's retry of the withheld last byte places the file once it is writable again.
func TestReadOnlyDestinationIsToldAndRetried(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "uploads", "files")
	tinyFS(t, dest, "8m")
	s := startServerIn(t, dir, baseConfig+defaultSets)
	t.Cleanup(func() { exec.Command("mount", "-o", "remount,rw", dest).Run() })
	data := randomBytes(t, 1<<20)
	res, _ := create(t, s.URL+"/uploads/files/", "ro.bin", int64(len(data)))
	url := res.Header.Get("Location")

	remount(t, dest, "ro")
	res, body := patch(t, url, 0, data)
	const told = `set "files": could not place the file: the destination is read-only`
	if res.StatusCode < 500 || !strings.Contains(body, told) {
		t.Errorf("completing PATCH into a read-only destination: %d %q, want a 5xx saying %q", res.StatusCode, body, told)
	}
	if strings.Contains(body, dir) || regexp.MustCompile(`(^|\s)/\w`).MatchString(body) {
		t.Errorf("the error shows a path: %q", body)
	}
	waitLog(t, s, "PlaceFailed", 1)
	var failed []string
	for _, l := range strings.Split(s.Log(), "\n") {
		if strings.Contains(l, "uploadsets.files: PlaceFailed:") && strings.Contains(l, "read-only") {
			failed = append(failed, l)
		}
	}
	if len(failed) != 1 {
		t.Errorf("want one PlaceFailed log line of set files saying read-only, got %q", failed)
	}
	if len(failed) == 1 && !strings.Contains(failed[0], dest) {
		t.Errorf("PlaceFailed does not name the destination %s: %s", dest, failed[0])
	}
	if got := files(t, dest); len(got) != 0 {
		t.Fatalf("read-only destination holds %v", got)
	}

	remount(t, dest, "rw")
	res, _ = do(t, http.MethodHead, url, nil, nil)
	if got := res.Header.Get("Upload-Offset"); got != strconv.Itoa(len(data)-1) {
		t.Fatalf("HEAD after the failure: Upload-Offset %s, want %d (all but the last byte)", got, len(data)-1)
	}
	res, body = patch(t, url, int64(len(data)-1), data[len(data)-1:])
	if res.StatusCode != 204 || res.Header.Get("Upload-File-Name") != "ro.bin" {
		t.Fatalf("retry of the last byte: %d %s", res.StatusCode, body)
	}
	if got := files(t, dest); len(got) != 1 || fileSHA(t, filepath.Join(dest, "ro.bin")) != sha(data) {
		t.Errorf("destination holds %v, want ro.bin once with the upload's bytes", got)
	}
}

// TestPlacementAcrossFileSystemsIsLoggedOnce: serve warns at start, once, of each set
// whose placements are copies, under the set's logger.
func TestPlacementAcrossFileSystemsIsLoggedOnce(t *testing.T) {
	dir := t.TempDir()
	elsewhere := filepath.Join(dir, "elsewhere")
	tinyFS(t, elsewhere, "8m")
	s := startServerIn(t, dir, baseConfig+`
set "same" { extensions = all }
set "other" {
  extensions  = all
  destination = "./elsewhere"
}
`)
	data := randomBytes(t, 1000)
	upload(t, s.URL+"/uploads/other/", "o.bin", data, len(data))
	upload(t, s.URL+"/uploads/same/", "s.bin", data, len(data))
	if got := files(t, elsewhere); len(got) != 1 || fileSHA(t, filepath.Join(elsewhere, "o.bin")) != sha(data) {
		t.Errorf("elsewhere holds %v", got)
	}
	if got := files(t, s.Uploads("same")); len(got) != 1 || fileSHA(t, filepath.Join(s.Uploads("same"), "s.bin")) != sha(data) {
		t.Errorf("the same file system's destination holds %v", got)
	}
	s.Stop(t)
	var warned []string
	for _, l := range strings.Split(s.Log(), "\n") {
		if strings.Contains(l, "PlacementCopies") {
			warned = append(warned, l)
		}
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "[WARN]") || !strings.Contains(warned[0], "uploadsets.other: PlacementCopies:") ||
		!strings.Contains(warned[0], "destination="+elsewhere) {
		t.Errorf("want one PlacementCopies warning of set other with destination=%s, got %q in:\n%s", elsewhere, warned, s.Log())
	}
}

// TestDockerfileHasOneVolume: data_dir and the uploads on two volumes would be two file
// systems, and every placement a copy.
func TestDockerfileHasOneVolume(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	volumes := regexp.MustCompile(`(?m)^VOLUME\s+(.*)$`).FindAllStringSubmatch(df, -1)
	if len(volumes) != 1 {
		t.Fatalf("%d VOLUME instructions, want 1", len(volumes))
	}
	var paths []string
	if err := json.Unmarshal([]byte(volumes[0][1]), &paths); err != nil {
		paths = strings.Fields(volumes[0][1])
	}
	if len(paths) != 1 {
		t.Fatalf("VOLUME declares %q, want one path", paths)
	}
	workdirs := regexp.MustCompile(`(?m)^WORKDIR\s+(\S+)$`).FindAllStringSubmatch(df, -1)
	if len(workdirs) == 0 {
		t.Fatal("no WORKDIR")
	}
	workdir := workdirs[len(workdirs)-1][1] // the final stage's, which the config is resolved in
	for _, attr := range []string{"data_dir", "uploads_default_dest"} {
		m := regexp.MustCompile(`-e 's\|\^` + attr + ` \*=\.\*\|` + attr + ` *= "([^"]+)"\|'`).FindStringSubmatch(df)
		if m == nil {
			t.Errorf("the Dockerfile does not set %s", attr)
			continue
		}
		if p := path.Join(workdir, m[1]); !strings.HasPrefix(p, paths[0]+"/") {
			t.Errorf("%s is %s, outside the volume %s", attr, p, paths[0])
		}
	}
}

// TestSlowSteadyFileReaderIsServed: a reader that keeps taking bytes, however slowly
// (a phone on a poor network), is not taken for a stalled one. Without a low-water mark
// on the send buffer, a write waits for a third of a multi-MiB buffer to drain, longer
// than network_timeout at this pace, and the reader was cut while reading.
func TestSlowSteadyFileReaderIsServed(t *testing.T) {
	t.Parallel()
	s := startServer(t, `
network_timeout = "3s"
set "files" { extensions = all }`)
	data := randomBytes(t, 16<<20)
	upload(t, s.URL+"/uploads/files/", "big.bin", data, len(data))

	conn, res, head := stalledGet(t, s, "/files/files/big.bin", 16)
	if res.StatusCode != 200 {
		t.Fatalf("GET: %d", res.StatusCode)
	}
	got := int64(len(head))
	buf := make([]byte, 16<<10)
	for start := time.Now(); time.Since(start) < 8*time.Second; time.Sleep(50 * time.Millisecond) {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := io.ReadFull(res.Body, buf) // 320 KiB/s, at most
		got += int64(n)
		if err != nil {
			t.Fatalf("a reader taking 320 KiB/s was cut after %d bytes: %v", got, err)
		}
	}
	t.Logf("read %d bytes in 8 s without being cut", got)
}
