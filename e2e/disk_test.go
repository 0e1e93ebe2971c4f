package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// tinyFS mounts a size-limited tmpfs at dir, which needs root; without it the
// store-level tests of internal/store/disk cover the same paths with a fault injector.
func tinyFS(t *testing.T, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	os.MkdirAll(dir, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

func TestFullDataDiskKeepsBytesAndResumes(t *testing.T) {
	dir := t.TempDir()
	tinyFS(t, filepath.Join(dir, "data"), "3m")
	// Something else holds most of the space.
	filler := filepath.Join(dir, "data", "filler")
	if err := os.WriteFile(filler, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServerIn(t, dir, baseConfig+defaultSets)
	data := randomBytes(t, 2<<20)
	res, _ := create(t, s.URL+"/uploads/files/", "big.bin", int64(len(data)))
	url := res.Header.Get("Location")

	res, body := patch(t, url, 0, data)
	if res.StatusCode != 503 || !strings.Contains(body, "space") || !strings.Contains(body, `set "files"`) {
		t.Fatalf("PATCH into a full disk: %d %q, want a 503 that says so and names the set", res.StatusCode, body)
	}
	if strings.Contains(body, dir) {
		t.Errorf("the error leaks a path: %q", body)
	}
	res, _ = do(t, http.MethodHead, url, nil, nil)
	offset, _ := strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
	if offset <= 0 || offset >= int64(len(data)) {
		t.Fatalf("after ENOSPC the offset is %d; the bytes written before it must be kept", offset)
	}
	if got := files(t, s.Uploads("files")); len(got) != 0 {
		t.Fatalf("a partial file appeared in the destination: %v", got)
	}
	t.Logf("disk full after %d of %d bytes; freeing space and resuming", offset, len(data))

	os.Remove(filler)
	res, body = patch(t, url, offset, data[offset:])
	if res.StatusCode != 204 {
		t.Fatalf("resume after space came back: %d %s", res.StatusCode, body)
	}
	if fileSHA(t, filepath.Join(s.Uploads("files"), "big.bin")) != sha(data) {
		t.Error("bytes differ")
	}
}

func TestFullDestinationNeverHoldsAPartialFile(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "uploads", "files")
	tinyFS(t, dest, "1m") // another filesystem: placement copies
	s := startServerIn(t, dir, baseConfig+defaultSets)
	data := randomBytes(t, 2<<20)
	res, _ := create(t, s.URL+"/uploads/files/", "big.bin", int64(len(data)))
	url := res.Header.Get("Location")

	res, body := patch(t, url, 0, data)
	if res.StatusCode != 503 || !strings.Contains(body, `set "files"`) {
		t.Fatalf("completing PATCH into a full destination: %d %s, want a 503 naming the set", res.StatusCode, body)
	}
	entries, _ := os.ReadDir(dest)
	if len(entries) != 0 {
		t.Fatalf("the destination holds %d entries after a failed placement", len(entries))
	}
	// The upload must not look complete, or the client's retry would declare success.
	res, _ = do(t, http.MethodHead, url, nil, nil)
	if res.Header.Get("Upload-Offset") == strconv.Itoa(len(data)) {
		t.Fatal("HEAD reports a complete upload that was never placed")
	}
	offset, _ := strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)

	// Space comes back; the client's retry of the missing byte places it.
	exec.Command("mount", "-o", "remount,size=8m", dest).Run()
	res, body = patch(t, url, offset, data[offset:])
	if res.StatusCode != 204 || res.Header.Get("Upload-File-Name") != "big.bin" {
		t.Fatalf("retry after space came back: %d %s", res.StatusCode, body)
	}
	if got := files(t, dest); len(got) != 1 || fileSHA(t, filepath.Join(dest, "big.bin")) != sha(data) {
		t.Errorf("destination holds %v", got)
	}
}
