package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitLog waits until the server's log holds n lines containing word.
func waitLog(t *testing.T, s *server, word string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(s.Log(), word) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %d× %q in the log:\n%s", n, word, s.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SIGHUP swaps in an edited config: new and changed sets apply to uploads created from
// then on, uploads in flight (even in a removed set, even mid-request) finish, and a
// broken file changes nothing but is reported with its positions.
func TestReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	before := baseConfig + `
set "files" {
  extensions = all
}
set "old" {
  extensions = all
}
`
	s := startServerIn(t, dir, before)
	data := randomBytes(t, 200_000)
	res, _ := create(t, s.URL+"/uploads/files/", "kept.bin", int64(len(data)))
	inFiles := res.Header.Get("Location")
	patch(t, inFiles, 0, data[:1000])
	res, _ = create(t, s.URL+"/uploads/old/", "orphan.bin", int64(len(data)))
	inOld := res.Header.Get("Location")
	patch(t, inOld, 0, data[:1000])
	// And one mid-request when the signal comes.
	res, _ = create(t, s.URL+"/uploads/files/", "midway.bin", int64(len(data)))
	midway := res.Header.Get("Location")
	pw, midDone := slowPatch(t, midway, 0, len(data))
	pw.Write(data[:50_000])
	waitSize(t, filepath.Join(dir, "data", "files", uploadID(midway)), 50_000)

	after := strings.Replace(baseConfig, `"127.0.0.1:0"`, `"127.0.0.1:1"`, 1) + `
set "files" {
  extensions = all
  max_size   = "2KiB"
}
set "new" {
  extensions = ["txt"]
}
`
	os.WriteFile(s.Config, []byte(after), 0o644)
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, s, "Reloaded", 1)
	if !strings.Contains(s.Log(), "ReloadNeedsRestart: attribute=listen") {
		t.Error("a changed listen is not logged as needing a restart")
	}

	pw.Write(data[50_000:])
	pw.Close()
	if r := <-midDone; r == nil || r.StatusCode != http.StatusNoContent {
		t.Errorf("the PATCH running across the reload: %v", r)
	}
	if res, body := patch(t, inFiles, 1000, data[1000:]); res.StatusCode != 204 || res.Header.Get("Upload-File-Name") != "kept.bin" {
		t.Errorf("an upload admitted before max_size was lowered: %d %s", res.StatusCode, body)
	}
	if res, body := patch(t, inOld, 1000, data[1000:]); res.StatusCode != 204 || res.Header.Get("Upload-File-Name") != "orphan.bin" {
		t.Errorf("an upload in progress in a removed set: %d %s", res.StatusCode, body)
	}
	for name, dest := range map[string]string{"kept.bin": "files", "midway.bin": "files", "orphan.bin": "old"} {
		if fileSHA(t, filepath.Join(s.Uploads(dest), name)) != sha(data) {
			t.Errorf("%s: bytes differ", name)
		}
	}
	if res, body := create(t, s.URL+"/uploads/files/", "big.bin", 100_000); res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a new upload over the new max_size: %d %s", res.StatusCode, body)
	}
	if res, body := create(t, s.URL+"/uploads/old/", "x.bin", 10); res.StatusCode != http.StatusNotFound || !strings.Contains(body, `set "old" is no longer`) {
		t.Errorf("a new upload in the removed set: %d %s", res.StatusCode, body)
	}
	upload(t, s.URL+"/uploads/new/", "hello.txt", []byte("hello"), 5)

	// A broken config is reported and changes nothing.
	os.WriteFile(s.Config, []byte(after+"\nset \"bad\" {\n  naming = \"random\"\n}\n"), 0o644)
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, s, "ReloadFailed", 1)
	if !strings.Contains(s.Log(), `at="`+s.Config+`:15,12"`) {
		t.Errorf("the failed reload does not say where the problem is:\n%s", s.Log())
	}
	upload(t, s.URL+"/uploads/new/", "still.txt", []byte("still"), 5)
	_, metrics := do(t, http.MethodGet, s.URL+"/metrics", nil, nil)
	for _, want := range []string{`uploadsets_config_reloads_total{result="ok"} 1`, `uploadsets_config_reloads_total{result="failed"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
