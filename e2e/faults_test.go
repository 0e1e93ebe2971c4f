package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The faults here are real: connections cut by toxiproxy or by a proxy that drops a
// response, a server killed with SIGKILL, a filesystem that is full. Each test checks
// the stored bytes by SHA-256 and counts the files in the destination.

func TestLostFinalResponse(t *testing.T) {
	s := startServer(t, defaultSets)
	base, d := dropFinalResponse(t, s)
	data := randomBytes(t, 2<<20)
	r := tusJS(t, jsOptions{Endpoint: base + "/uploads/files/", File: writeTemp(t, data), Name: "lost.bin", ChunkSize: 512 << 10})
	if d.dropped.Load() != 1 {
		t.Fatalf("the proxy dropped %d completing responses, want 1", d.dropped.Load())
	}
	if !r.OK {
		t.Fatalf("tus-js-client did not report success after losing the final response: %+v", r)
	}
	// It learnt the result from its HEAD instead.
	if r.FileName != "lost.bin" {
		t.Errorf("file name learnt by the client = %q", r.FileName)
	}
	if got := files(t, s.Uploads("files")); len(got) != 1 {
		t.Fatalf("destination holds %v, want exactly one file", got)
	}
	if fileSHA(t, filepath.Join(s.Uploads("files"), "lost.bin")) != sha(data) {
		t.Error("bytes differ")
	}
	id := r.URL[strings.LastIndex(r.URL, "/")+1:]
	_, body := do(t, http.MethodGet, s.URL+"/api/uploads/files/"+id, nil, nil)
	var st struct{ State, Name, URL string }
	json.Unmarshal([]byte(body), &st)
	if st.State != "complete" || st.Name != "lost.bin" || st.URL == "" {
		t.Errorf("api: %s", body)
	}
}

func TestFlakyNetworkResumes(t *testing.T) {
	s := startServer(t, defaultSets)
	base, p := toxic(t, s)
	// Every connection is cut after ~1 MiB of request bytes.
	addToxic(t, p, `{"name":"cut","type":"limit_data","stream":"upstream","toxicity":1,"attributes":{"bytes":1048576}}`)
	data := randomBytes(t, 20<<20)
	delays := make([]int, 10)
	r := tusJS(t, jsOptions{Endpoint: base + "/uploads/files/", File: writeTemp(t, data), Name: "train.bin", RetryDelays: delays, TimeoutMs: 100_000})
	if !r.OK {
		t.Fatalf("upload through a connection cut every MiB failed: %+v", r)
	}
	if r.Requests < 10 {
		t.Errorf("only %d requests: the connection was not cut as often as intended", r.Requests)
	}
	t.Logf("20 MiB through a connection cut every 1 MiB: %d requests", r.Requests)
	if got := files(t, s.Uploads("files")); len(got) != 1 {
		t.Fatalf("destination holds %v", got)
	}
	if fileSHA(t, filepath.Join(s.Uploads("files"), "train.bin")) != sha(data) {
		t.Error("bytes differ")
	}
}

// slowPatch starts a PATCH whose body the test feeds through a pipe.
func slowPatch(t *testing.T, url string, offset int64, length int) (*io.PipeWriter, chan *http.Response) {
	t.Helper()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPatch, url, pr)
	req.ContentLength = int64(length)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	done := make(chan *http.Response, 1)
	go func() {
		res, err := client.Do(req)
		if err != nil {
			done <- nil
			return
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		done <- res
	}()
	return pw, done
}

// waitSize waits until the file at path holds at least n bytes.
func waitSize(t *testing.T, path string, n int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := os.Stat(path); err == nil && st.Size() >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s never reached %d bytes", path, n)
}

func uploadID(url string) string { return url[strings.LastIndex(url, "/")+1:] }

func TestKillDuringPatch(t *testing.T) {
	dir := t.TempDir()
	s := startServerIn(t, dir, baseConfig+defaultSets)
	data := randomBytes(t, 8<<20)
	res, _ := create(t, s.URL+"/uploads/files/", "crash.bin", int64(len(data)))
	path := strings.TrimPrefix(res.Header.Get("Location"), s.URL)
	acked := int64(2 << 20)
	if res, body := patch(t, s.URL+path, 0, data[:acked]); res.StatusCode != 204 {
		t.Fatalf("PATCH: %d %s", res.StatusCode, body)
	}
	pw, _ := slowPatch(t, s.URL+path, acked, len(data)-int(acked))
	pw.Write(data[acked : acked+1<<20])
	waitSize(t, filepath.Join(dir, "data", "files", uploadID(path)), acked+1<<20)
	s.Kill()
	pw.CloseWithError(fmt.Errorf("server killed"))

	s2 := startServerIn(t, dir, baseConfig+defaultSets)
	res, _ = do(t, http.MethodHead, s2.URL+path, nil, nil)
	offset, _ := strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
	if res.StatusCode != 200 || offset < acked || offset > int64(len(data)) {
		t.Fatalf("HEAD after kill -9: %d offset %d; want ≥ %d acknowledged", res.StatusCode, offset, acked)
	}
	t.Logf("kill -9 mid-PATCH: %d bytes acknowledged, %d kept", acked, offset)
	res, body := patch(t, s2.URL+path, offset, data[offset:])
	if res.StatusCode != 204 || res.Header.Get("Upload-File-Name") != "crash.bin" {
		t.Fatalf("finishing PATCH: %d %s", res.StatusCode, body)
	}
	if fileSHA(t, filepath.Join(s2.Uploads("files"), "crash.bin")) != sha(data) {
		t.Error("bytes differ after kill -9 and resume")
	}
}

// completeOnDisk leaves an upload whose every byte reached the disk but which was
// never placed: what a crash right after the last write leaves behind.
func completeOnDisk(t *testing.T, dir string, data []byte) (s *server, path string) {
	t.Helper()
	s = startServerIn(t, dir, baseConfig+defaultSets)
	res, _ := create(t, s.URL+"/uploads/photos/", "photo.png", int64(len(data)))
	path = strings.TrimPrefix(res.Header.Get("Location"), s.URL)
	patch(t, s.URL+path, 0, data[:len(data)-1])
	s.Kill()
	f, err := os.OpenFile(filepath.Join(dir, "data", "photos", uploadID(path)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(data[len(data)-1:])
	f.Close()
	return s, path
}

func TestCompleteUploadIsPlacedAtStart(t *testing.T) {
	dir := t.TempDir()
	data := fakePNG(t, 100_000)
	_, path := completeOnDisk(t, dir, data)

	s := startServerIn(t, dir, baseConfig+defaultSets)
	if got := files(t, s.Uploads("photos")); len(got) != 1 || got[0] != "photo.png" {
		t.Fatalf("after restart the destination holds %v, want [photo.png]", got)
	}
	if fileSHA(t, filepath.Join(s.Uploads("photos"), "photo.png")) != sha(data) {
		t.Error("bytes differ")
	}
	res, _ := do(t, http.MethodHead, s.URL+path, nil, nil)
	if res.Header.Get("Upload-Offset") != strconv.Itoa(len(data)) || res.Header.Get("Upload-File-Name") != "photo.png" {
		t.Errorf("HEAD: %d %v", res.StatusCode, res.Header)
	}
}

func TestCrashAfterLinkIsNotPlacedTwice(t *testing.T) {
	dir := t.TempDir()
	data := fakePNG(t, 100_000)
	_, path := completeOnDisk(t, dir, data)
	// The crash came after placement linked the file in, before it was recorded.
	dest := filepath.Join(dir, "uploads", "photos")
	os.MkdirAll(dest, 0o755)
	if err := os.Link(filepath.Join(dir, "data", "photos", uploadID(path)), filepath.Join(dest, "photo.png")); err != nil {
		t.Fatal(err)
	}

	s := startServerIn(t, dir, baseConfig+defaultSets)
	if got := files(t, dest); len(got) != 1 {
		t.Fatalf("destination holds %v, want the one file placed before the crash", got)
	}
	if got := files(t, filepath.Join(dir, "data", "photos")); len(got) != 0 {
		t.Errorf("data dir holds %v, want nothing (records are in the record log)", got)
	}
	res, _ := do(t, http.MethodHead, s.URL+path, nil, nil)
	if res.Header.Get("Upload-File-Name") != "photo.png" {
		t.Errorf("HEAD: %v", res.Header)
	}
}

func TestConcurrentPatchesNeverInterleave(t *testing.T) {
	s := startServer(t, defaultSets)
	data := randomBytes(t, 4<<20)
	res, _ := create(t, s.URL+"/uploads/files/", "race.bin", int64(len(data)))
	url := res.Header.Get("Location")
	dataPath := filepath.Join(s.Dir, "data", "files", uploadID(url))

	// A stale PATCH holds the upload, as one from a connection that silently died.
	pw, staleDone := slowPatch(t, url, 0, len(data))
	pw.Write(data[:1<<20])
	waitSize(t, dataPath, 1<<20)

	// The resuming client: its HEAD takes the upload over at once, not after a
	// lock timeout, and sees every byte the stale request stored.
	start := time.Now()
	res, _ = do(t, http.MethodHead, url, nil, nil)
	took := time.Since(start)
	offset, _ := strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
	if res.StatusCode != 200 || offset < 1<<20 {
		t.Fatalf("HEAD: %d offset %d", res.StatusCode, offset)
	}
	if took > 2*time.Second {
		t.Errorf("HEAD waited %s for the stale PATCH's lock", took)
	}
	t.Logf("hand-off from a stale PATCH took %s", took)
	if r := <-staleDone; r != nil && r.StatusCode < 400 {
		t.Errorf("the stale PATCH ended with %d", r.StatusCode)
	}
	// The stale body keeps arriving; none of it may land after the takeover.
	go pw.Write(data[1<<20 : 2<<20])
	res, body := patch(t, url, offset, data[offset:])
	if res.StatusCode != 204 {
		t.Fatalf("resuming PATCH: %d %s", res.StatusCode, body)
	}
	pw.Close()
	if fileSHA(t, filepath.Join(s.Uploads("files"), "race.bin")) != sha(data) {
		t.Error("bytes differ: two PATCHes interleaved")
	}
}

func TestTerminate(t *testing.T) {
	s := startServer(t, defaultSets)
	res, _ := create(t, s.URL+"/uploads/files/", "gone.bin", 100)
	url := res.Header.Get("Location")
	patch(t, url, 0, randomBytes(t, 50))
	if res, body := do(t, http.MethodDelete, url, nil, nil); res.StatusCode != 204 {
		t.Fatalf("DELETE: %d %s", res.StatusCode, body)
	}
	if left := files(t, filepath.Join(s.Dir, "data", "files")); len(left) != 0 {
		t.Errorf("DELETE left %v", left)
	}
	if res, _ := do(t, http.MethodHead, url, nil, nil); res.StatusCode != 404 {
		t.Errorf("HEAD after DELETE: %d", res.StatusCode)
	}

	url, _ = upload(t, s.URL+"/uploads/files/", "kept.bin", randomBytes(t, 10), 10)
	if res, body := do(t, http.MethodDelete, url, nil, nil); res.StatusCode != 403 || !strings.Contains(body, `set "files"`) {
		t.Errorf("DELETE of a placed upload: %d %q, want 403 naming the set", res.StatusCode, body)
	}
	if got := files(t, s.Uploads("files")); len(got) != 1 {
		t.Errorf("placed file deleted through the upload URL: %v", got)
	}
}
