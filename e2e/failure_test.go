package e2e

// Failure paths of placement: what happens to a file when a step after its last byte
// fails or the server dies in the middle of one. Every test counts the files in the
// destination and compares their SHA-256.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// oneSet is a set that accepts anything, so content checks stay out of the way.
const oneSet = `
set "files" {
  extensions = all
}
`

func remount(t *testing.T, dir, opts string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+opts, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s %s: %v %s", dir, opts, err, out)
	}
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

func apiState(t *testing.T, s *server, set, id string) (state string, offset int64) {
	t.Helper()
	_, body := do(t, http.MethodGet, s.URL+"/api/uploads/"+set+"/"+id, nil, nil)
	var v struct {
		State  string
		Offset int64
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("status API: %v: %s", err, body)
	}
	return v.State, v.Offset
}

// One tmpfs holds data_dir and the destination, so placement links: the placed file
// and the data file are one inode. The disk is then filled so exactly that the
// record of the placement cannot be committed. The client is told, the file is not
// left in the destination, and the retry of the last byte places it whole: it used to
// truncate the data file, and with it the placed file, by a byte.
func TestPlacedFileNeverChangesWhenItsRecordFails(t *testing.T) {
	dir := t.TempDir()
	tinyFS(t, filepath.Join(dir, "fs"), "1m")
	s := startServerIn(t, dir, `
listen = "127.0.0.1:0"
data_dir = "./fs/data"
uploads_default_dest = "./fs/uploads"
`+oneSet)
	dest := filepath.Join(dir, "fs", "uploads", "files")
	const size = 256 << 10

	// A record of a few pages (its metadata padded): the upload's new state needs
	// as many pages in one run, which the log has only past the end of its file, in
	// blocks the full disk no longer has.
	res, body := do(t, http.MethodPost, s.URL+"/uploads/files/", nil, map[string]string{
		"Upload-Length":   strconv.Itoa(size),
		"Upload-Metadata": encodeMeta(map[string]string{"filename": "a.bin", "pad": strings.Repeat("p", 9000)}),
	})
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", res.StatusCode, body)
	}
	url := res.Header.Get("Location")
	filler := filepath.Join(dir, "fs", "filler")
	if err := os.WriteFile(filler, make([]byte, freeBytes(t, filepath.Join(dir, "fs"))-size), 0o600); err != nil {
		t.Fatal(err)
	}

	data := randomBytes(t, size)
	res, body = patch(t, url, 0, data)
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `set "files"`) {
		t.Fatalf("completing PATCH on a full disk: %d %s, want a 503 naming the set", res.StatusCode, body)
	}
	if got := files(t, dest); len(got) != 0 {
		t.Fatalf("after the failure the destination holds %v; the client was told it failed", got)
	}
	res, _ = do(t, http.MethodHead, url, nil, nil)
	if res.Header.Get("Upload-Offset") != strconv.Itoa(size-1) {
		t.Fatalf("HEAD after the failure: offset %s, want %d (the last byte withheld)", res.Header.Get("Upload-Offset"), size-1)
	}
	if state, off := apiState(t, s, "files", uploadID(url)); state != "uploading" || off != size-1 {
		t.Errorf("status API after the failure: %s at %d; HEAD says uploading at %d", state, off, size-1)
	}

	os.Remove(filler)
	res, body = patch(t, url, size-1, data[size-1:])
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Upload-File-Name") != "a.bin" {
		t.Fatalf("retry of the last byte: %d %s %v", res.StatusCode, body, res.Header)
	}
	if got := files(t, dest); len(got) != 1 || fileSHA(t, filepath.Join(dest, "a.bin")) != sha(data) {
		t.Fatalf("destination holds %v, or a.bin is not the upload's bytes", got)
	}
	if st, _ := os.Stat(filepath.Join(dest, "a.bin")); st.Sys().(*syscall.Stat_t).Nlink != 1 {
		t.Errorf("a.bin has %d links: the data file was not let go", st.Sys().(*syscall.Stat_t).Nlink)
	}
}

// The destination is another file system, so placement copies. A crash after the copy
// is linked into place (and before the upload's record says so), or between that link
// and the removal of the temp copy, must neither place a second copy at the next start
// nor rewrite the file in place.
func TestCrashDuringACopyPlacesOnce(t *testing.T) {
	for _, step := range []string{"copy-linked", "placed"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			dest := filepath.Join(dir, "uploads", "files")
			tinyFS(t, dest, "16m")
			config := baseConfig + oneSet
			s := startServerEnv(t, dir, config, "UPLOADSETS_CRASH_AT="+step)
			data := randomBytes(t, 3<<20)
			res, _ := create(t, s.URL+"/uploads/files/", "a.bin", int64(len(data)))
			url := res.Header.Get("Location")
			path := strings.TrimPrefix(url, s.URL)
			req, _ := http.NewRequest(http.MethodPatch, url, bytes.NewReader(data))
			req.Header.Set("Tus-Resumable", "1.0.0")
			req.Header.Set("Upload-Offset", "0")
			req.Header.Set("Content-Type", "application/offset+octet-stream")
			if res, err := client.Do(req); err == nil {
				res.Body.Close()
				t.Fatalf("the completing PATCH was answered (%d): the server did not crash at %s", res.StatusCode, step)
			}
			select {
			case <-s.exited:
			case <-time.After(10 * time.Second):
				t.Fatal("the server did not die at the crash point")
			}
			past := time.Now().Add(-time.Minute).Truncate(time.Second)
			os.Chtimes(filepath.Join(dest, "a.bin"), past, past)

			s = startServerIn(t, dir, config)
			if got := files(t, dest); len(got) != 1 || got[0] != "a.bin" {
				t.Fatalf("after restart the destination holds %v, want [a.bin]", got)
			}
			if fileSHA(t, filepath.Join(dest, "a.bin")) != sha(data) {
				t.Error("a.bin is not the upload's bytes")
			}
			if st, _ := os.Stat(filepath.Join(dest, "a.bin")); !st.ModTime().Equal(past) {
				t.Error("the placed file was written again at start")
			}
			if entries, _ := os.ReadDir(dest); len(entries) != 1 {
				t.Errorf("the destination holds %d entries: a temp copy was left", len(entries))
			}
			res, _ = do(t, http.MethodHead, s.URL+path, nil, nil)
			if res.Header.Get("Upload-File-Name") != "a.bin" || res.Header.Get("Upload-Offset") != strconv.Itoa(len(data)) {
				t.Errorf("HEAD after restart: %d %v", res.StatusCode, res.Header)
			}
		})
	}
}

// A creation-with-upload POST whose placement fails answers with the upload's
// Location, so the client can resume it; the next start does not place it behind the
// client's back (the client may have started over instead, and would find two files).
func TestFailedCreationWithUploadStaysResumable(t *testing.T) {
	for _, client := range []string{"resumes", "starts over"} {
		t.Run(client, func(t *testing.T) {
			dir := t.TempDir()
			dest := filepath.Join(dir, "uploads", "files")
			tinyFS(t, dest, "1m")
			config := baseConfig + oneSet
			s := startServerIn(t, dir, config)
			data := randomBytes(t, 2<<20)
			post := func() (*http.Response, string) {
				return do(t, http.MethodPost, s.URL+"/uploads/files/", bytes.NewReader(data), map[string]string{
					"Upload-Length":   strconv.Itoa(len(data)),
					"Upload-Metadata": encodeMeta(map[string]string{"filename": "big.bin"}),
					"Content-Type":    "application/offset+octet-stream",
				})
			}
			res, body := post()
			loc := res.Header.Get("Location")
			if res.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(loc, s.URL+"/uploads/files/") {
				t.Fatalf("POST into a full destination: %d %q, Location %q; want a 503 that says where the upload is", res.StatusCode, body, loc)
			}
			path := strings.TrimPrefix(loc, s.URL)
			res, _ = do(t, http.MethodHead, loc, nil, nil)
			if res.StatusCode != 200 || res.Header.Get("Upload-Offset") != strconv.Itoa(len(data)-1) {
				t.Fatalf("HEAD of the failed upload: %d offset %s", res.StatusCode, res.Header.Get("Upload-Offset"))
			}
			if state, off := apiState(t, s, "files", uploadID(path)); state != "uploading" || off != int64(len(data)-1) {
				t.Errorf("status API: %s at %d; HEAD says uploading at %d", state, off, len(data)-1)
			}

			s.Stop(t)
			remount(t, dest, "size=8m")
			s = startServerIn(t, dir, config)
			if got := files(t, dest); len(got) != 0 {
				t.Fatalf("the restart placed %v, an upload whose client was told it failed", got)
			}
			if client == "resumes" {
				res, body = patch(t, s.URL+path, int64(len(data)-1), data[len(data)-1:])
				if res.StatusCode != http.StatusNoContent || res.Header.Get("Upload-File-Name") != "big.bin" {
					t.Fatalf("resume: %d %s", res.StatusCode, body)
				}
			} else {
				if res, body := post(); res.StatusCode != http.StatusCreated || res.Header.Get("Upload-File-Name") != "big.bin" {
					t.Fatalf("new upload: %d %s", res.StatusCode, body)
				}
				// Another restart still leaves the abandoned one alone.
				s.Stop(t)
				s = startServerIn(t, dir, config)
			}
			if got := files(t, dest); len(got) != 1 || fileSHA(t, filepath.Join(dest, "big.bin")) != sha(data) {
				t.Fatalf("destination holds %v, want one big.bin with the upload's bytes", got)
			}
		})
	}
}

// A zero-byte upload has no last byte to withhold: if its placement fails, HEAD (and an
// empty PATCH) retry the placement, and answer 5xx until it succeeds.
func TestEmptyUploadWhosePlacementFailedIsRetried(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "uploads", "files")
	tinyFS(t, dest, "1m")
	s := startServerIn(t, dir, baseConfig+oneSet)
	remount(t, dest, "ro")
	t.Cleanup(func() { exec.Command("mount", "-o", "remount,rw", dest).Run() })

	res, body := create(t, s.URL+"/uploads/files/", "empty.bin", 0)
	loc := res.Header.Get("Location")
	want := `set "files": could not place the file: the destination is read-only`
	if res.StatusCode != 500 || !strings.Contains(body, want) || loc == "" || strings.Contains(body, dir) {
		t.Fatalf("POST of an empty upload into a read-only destination: %d %q Location %q; want 500 %q", res.StatusCode, body, loc, want)
	}
	waitLog(t, s, dest, 1) // the log says which path failed
	res, body = do(t, http.MethodHead, loc, nil, nil)
	if res.StatusCode < 500 {
		t.Fatalf("HEAD while the destination is still read-only: %d; a 2xx would tell the client it is done", res.StatusCode)
	}
	remount(t, dest, "rw")
	res, _ = do(t, http.MethodHead, loc, nil, nil)
	if res.StatusCode != 200 || res.Header.Get("Upload-File-Name") != "empty.bin" {
		t.Fatalf("HEAD once the destination is writable: %d %v", res.StatusCode, res.Header)
	}
	if got := files(t, dest); len(got) != 1 || got[0] != "empty.bin" {
		t.Fatalf("destination holds %v", got)
	}
	// Placed: a repeated HEAD or empty PATCH changes nothing.
	res, _ = patch(t, loc, 0, nil)
	if res.StatusCode != http.StatusNoContent || len(files(t, dest)) != 1 {
		t.Errorf("empty PATCH after placement: %d, files %v", res.StatusCode, files(t, dest))
	}
}

// HEAD during placement waits for it and then carries the final name; the status API,
// which takes no lock, never reports every byte in before the upload is placed.
func TestHeadDuringPlacementWaitsForTheName(t *testing.T) {
	dir := t.TempDir()
	s := startServerEnv(t, dir, baseConfig+oneSet, "UPLOADSETS_PAUSE_AT=placing", "UPLOADSETS_PAUSE_FOR=1500ms")
	data := randomBytes(t, 1<<20)
	res, _ := create(t, s.URL+"/uploads/files/", "slow.bin", int64(len(data)))
	url := res.Header.Get("Location")
	done := make(chan *http.Response, 1)
	go func() {
		res, _ := patch(t, url, 0, data)
		done <- res
	}()
	waitSize(t, filepath.Join(dir, "data", "files", uploadID(url)), int64(len(data)))
	time.Sleep(100 * time.Millisecond) // into the pause

	if state, off := apiState(t, s, "files", uploadID(url)); state != "uploading" || off >= int64(len(data)) {
		t.Errorf("status API during placement: %s at %d of %d", state, off, len(data))
	}
	res, _ = do(t, http.MethodHead, url, nil, nil)
	if res.Header.Get("Upload-Offset") == strconv.Itoa(len(data)) && res.Header.Get("Upload-File-Name") != "slow.bin" {
		t.Fatalf("HEAD during placement says complete without the name: %v", res.Header)
	}
	if res.Header.Get("Upload-File-Name") != "slow.bin" || res.Header.Get("Upload-File-Url") == "" {
		t.Errorf("HEAD during placement: %d %v; want it to wait for the name", res.StatusCode, res.Header)
	}
	final := <-done
	if final.StatusCode != http.StatusNoContent || final.Header.Get("Upload-File-Name") != "slow.bin" {
		t.Errorf("completing PATCH: %d %v", final.StatusCode, final.Header)
	}
	if state, off := apiState(t, s, "files", uploadID(url)); state != "complete" || off != int64(len(data)) {
		t.Errorf("status API after placement: %s at %d", state, off)
	}
}
