package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// jsResult is what js/upload.mjs prints.
type jsResult struct {
	OK       bool   `json:"ok"`
	URL      string `json:"url"`
	FileName string `json:"fileName"`
	FileURL  string `json:"fileUrl"`
	Error    string `json:"error"`
	Status   int    `json:"status"`
	Body     string `json:"body"`
	Requests int    `json:"requests"`
}

type jsOptions struct {
	Endpoint    string            `json:"endpoint"`
	File        string            `json:"file"`
	Name        string            `json:"name"`
	Type        string            `json:"type,omitempty"`
	ChunkSize   int               `json:"chunkSize,omitempty"`
	RetryDelays []int             `json:"retryDelays,omitempty"`
	ResumeFrom  string            `json:"resumeFrom,omitempty"`
	TimeoutMs   int               `json:"timeoutMs,omitempty"`
	Protocol    string            `json:"protocol,omitempty"` // tus-v1 (default) or ietf-draft-05
	Headers     map[string]string `json:"headers,omitempty"`  // sent with every request (an upload token)
}

// tusJS uploads with tus-js-client under Node.
func tusJS(t *testing.T, opts jsOptions) jsResult {
	t.Helper()
	if _, err := os.Stat("js/node_modules/tus-js-client"); err != nil {
		t.Fatal("tus-js-client is not installed: run `make deps` (npm ci in e2e/js)")
	}
	arg, _ := json.Marshal(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "node", "js/upload.mjs", string(arg)).Output()
	if err != nil {
		t.Fatalf("node: %v: %s", err, out)
	}
	var r jsResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("node printed %q: %v", out, err)
	}
	return r
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "upload.bin")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTusJSClient(t *testing.T) {
	s := startServer(t, defaultSets)
	data := randomBytes(t, 3<<20+17)
	r := tusJS(t, jsOptions{Endpoint: s.URL + "/uploads/files/", File: writeTemp(t, data), Name: "holiday video.DAT", ChunkSize: 1 << 20})
	if !r.OK {
		t.Fatalf("tus-js-client failed: %+v", r)
	}
	if r.FileName != "holiday_video.dat" || r.FileURL != s.URL+"/files/files/holiday_video.dat" {
		t.Errorf("result %+v", r)
	}
	if got := fileSHA(t, filepath.Join(s.Uploads("files"), r.FileName)); got != sha(data) {
		t.Error("stored bytes differ")
	}
}

func TestTusJSClientSeesPolicyErrors(t *testing.T) {
	s := startServer(t, defaultSets)
	r := tusJS(t, jsOptions{Endpoint: s.URL + "/uploads/photos/", File: writeTemp(t, []byte("MZ...")), Name: "setup.exe"})
	if r.OK || r.Status != 415 || r.Body == "" {
		t.Fatalf("want a 415 with a reason, got %+v", r)
	}
	if got := files(t, s.Uploads("photos")); len(got) != 0 {
		t.Errorf("destination holds %v", got)
	}
}
