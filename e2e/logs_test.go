package e2e

import (
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// What an operator reads: one line per creation and termination with the client's
// address, names that cannot forge a line, and no ERROR (nor a counted error) for a
// client that pauses, a resume that takes over, or a shutdown that cuts a body.
func TestLogsSayWhatHappenedAndOnlyErrorsAreErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := baseConfig + "shutdown_timeout = \"5s\"\n" + oneSet
	s := startServerIn(t, dir, cfg)
	forged := "a.txt\n2026-12-01T00:00:00.000Z [ERROR] uploadsets: forged line"
	res, _ := create(t, s.URL+"/uploads/files/", forged, 10)
	url := res.Header.Get("Location")
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d", res.StatusCode)
	}
	res, _ = do(t, http.MethodDelete, url, nil, nil)
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d", res.StatusCode)
	}

	// A stale PATCH taken over by the resume, then one cut by shutdown.
	data := randomBytes(t, 4<<20)
	res, _ = create(t, s.URL+"/uploads/files/", "cut.bin", int64(len(data)))
	url = res.Header.Get("Location")
	dataPath := filepath.Join(dir, "data", "files", uploadID(url))
	pw, stale := slowPatch(t, url, 0, len(data))
	pw.Write(data[:1<<20])
	waitSize(t, dataPath, 1<<20)
	patchDone := make(chan *http.Response, 1)
	pw2, resumed := slowPatch(t, url, 1<<20, len(data)-1<<20)
	go func() { patchDone <- <-resumed }()
	if r := <-stale; r == nil || r.StatusCode != http.StatusBadRequest {
		t.Errorf("the PATCH taken over by another: %v, want 400 ERR_UPLOAD_INTERRUPTED", r)
	}
	pw.Close()
	pw2.Write(data[1<<20 : 2<<20])
	waitSize(t, dataPath, 2<<20)
	time.Sleep(50 * time.Millisecond)
	metrics := func() string { _, body := do(t, http.MethodGet, s.URL+"/metrics", nil, nil); return body }
	before := metrics()

	s.Stop(t)
	if r := <-patchDone; r == nil || r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Errorf("the PATCH cut by shutdown: %v, want 503 with Retry-After", r)
	}
	pw2.Close()

	log := s.Log()
	if regexp.MustCompile(`(?m)^2026-12-01T00:00:00.000Z \[ERROR\] uploadsets: forged`).MatchString(log) {
		t.Error("a client's file name forged a log line")
	}
	created := regexp.MustCompile(`UploadCreated: (request_id=\S+ )?set=files (request_id=\S+ )?id=[0-9a-f]{32} name="a\.txt\\n2026-12-01T00:00:00\.000Z \[ERROR\] uploadsets: forged line" size=10 client=127\.0\.0\.1:\d+`)
	if !created.MatchString(log) {
		t.Errorf("no UploadCreated line with the escaped name and the client:\n%s", log)
	}
	if !regexp.MustCompile(`UploadTerminated: (request_id=\S+ )?set=files (request_id=\S+ )?id=[0-9a-f]{32} client=127\.0\.0\.1:\d+`).MatchString(log) {
		t.Error("no UploadTerminated line with the client")
	}
	level := regexp.MustCompile(`^\S+ \[(ERROR|WARN) *\]`)
	for _, line := range strings.Split(log, "\n") {
		if level.MatchString(line) {
			t.Errorf("an ERROR or WARN line for a hand-off or a shutdown: %s", line)
		}
	}
	if strings.Contains(before, `uploadsets_errors_total{code="ERR_READ_TIMEOUT"`) || strings.Contains(before, `status="500"`) {
		t.Errorf("a hand-off was counted as a server error:\n%s", grep(before, "errors_total"))
	}
}

func grep(s, word string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
