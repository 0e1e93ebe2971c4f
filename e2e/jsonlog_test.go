package e2e

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// An operator's view with log { format = "json" }: every line is a JSON object, each
// upload event carries the set, the upload, its name and the request's ID (the
// client's own X-Request-ID, echoed, or one the server made), and /metrics has the
// duration and size of placed uploads.
func TestJSONLogsCarryRequestIDs(t *testing.T) {
	s := startServer(t, `
log {
  format = "json"
}
`+oneSet)
	data := randomBytes(t, 3000)
	res, _ := do(t, http.MethodPost, s.URL+"/uploads/files/", nil, map[string]string{
		"Upload-Length": "3000", "Upload-Metadata": encodeMeta(map[string]string{"filename": "log me.bin"}),
		"X-Request-ID": "trace-123.A_b",
	})
	if res.Header.Get("X-Request-ID") != "trace-123.A_b" {
		t.Errorf("X-Request-ID echoed as %q", res.Header.Get("X-Request-ID"))
	}
	url := res.Header.Get("Location")
	res, _ = do(t, http.MethodPatch, url, strings.NewReader(string(data)), map[string]string{
		"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream", "X-Request-ID": "bad id with=spaces \"and\" quotes",
	})
	made := res.Header.Get("X-Request-ID")
	if res.StatusCode != 204 || !regexp.MustCompile(`^[A-Z2-7]{16}$`).MatchString(made) {
		t.Fatalf("PATCH: %d, X-Request-ID %q: a malformed one must be replaced by the server's", res.StatusCode, made)
	}

	// The log reaches the test through a pipe: wait for the line, not for luck.
	waitLog(t, s, `"@message":"UploadPlaced"`, 1)
	events := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(s.Log()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		if m, _ := v["@message"].(string); strings.HasPrefix(m, "Upload") {
			events[m] = v
		}
	}
	for name, want := range map[string]map[string]any{
		"UploadCreated": {"set": "files", "id": uploadID(url), "name": "log me.bin", "request_id": "trace-123.A_b"},
		"UploadPlaced":  {"set": "files", "id": uploadID(url), "name": "log_me.bin", "request_id": made},
	} {
		got := events[name]
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %v, want %v (line %v)", name, k, got[k], v, got)
			}
		}
	}

	_, metrics := do(t, http.MethodGet, s.URL+"/metrics", nil, nil)
	for _, want := range []string{
		`uploadsets_upload_duration_seconds_count{set="files"} 1`,
		`uploadsets_upload_size_bytes_bucket{set="files",le="4096"} 1`,
		`uploadsets_uploads_active{set="files"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// A creation-with-upload is logged as its events happened: the upload is created,
// then placed, in one request.
func TestCreationWithUploadLogsCreationFirst(t *testing.T) {
	s := startServer(t, oneSet)
	res, _ := do(t, http.MethodPost, s.URL+"/uploads/files/", strings.NewReader("hello"), map[string]string{
		"Upload-Length": "5", "Upload-Metadata": encodeMeta(map[string]string{"filename": "one.txt"}),
		"Content-Type": "application/offset+octet-stream",
	})
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("creation-with-upload: %d", res.StatusCode)
	}
	waitLog(t, s, "UploadPlaced", 1)
	log := s.Log()
	created, placed := strings.Index(log, "UploadCreated:"), strings.Index(log, "UploadPlaced:")
	if created < 0 || created > placed {
		t.Errorf("UploadCreated at %d, UploadPlaced at %d: want the creation first\n%s", created, placed, log)
	}
}
