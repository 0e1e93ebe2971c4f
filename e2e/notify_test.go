package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver is the app's webhook endpoint: it records what arrives and answers with
// the status fail decides.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []delivery
	fail func(n int) int // the status of the n-th request (0-based); 0 = 204
}

type delivery struct {
	header http.Header
	body   []byte
	event  struct {
		Type      string
		Timestamp string
		Data      map[string]any
	}
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{fail: func(int) int { return 0 }}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		d := delivery{header: r.Header.Clone(), body: body}
		json.Unmarshal(body, &d.event)
		rc.mu.Lock()
		n := len(rc.got)
		rc.got = append(rc.got, d)
		status := rc.fail(n)
		rc.mu.Unlock()
		if status == 0 {
			status = http.StatusNoContent
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// delivered are the deliveries answered 2xx, by event type and upload ID.
func (rc *receiver) delivered() map[string]delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string]delivery{}
	for i, d := range rc.got {
		if st := rc.fail(i); st == 0 || st < 300 {
			out[d.event.Type+" "+d.event.Data["id"].(string)] = d
		}
	}
	return out
}

func (rc *receiver) wait(t *testing.T, keys ...string) map[string]delivery {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := rc.delivered()
		var missing []string
		for _, k := range keys {
			if _, ok := got[k]; !ok {
				missing = append(missing, k)
			}
		}
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered within 20s: %v (got %d deliveries)", missing, len(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// verifyWithJS checks a delivery with the Standard Webhooks library for JavaScript.
func verifyWithJS(t *testing.T, secret string, d delivery) {
	t.Helper()
	if _, err := os.Stat("js/node_modules/standardwebhooks"); err != nil {
		t.Fatal("standardwebhooks is not installed: run `make deps` (npm ci in e2e/js)")
	}
	headers := map[string]string{}
	for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		headers[k] = d.header.Get(k)
	}
	in, _ := json.Marshal(map[string]any{"secret": secret, "headers": headers, "body": string(d.body)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "js/verify-webhook.mjs")
	cmd.Stdin = bytes.NewReader(in)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("the Standard Webhooks JS library refuses the %s notification: %v %s", d.event.Type, err, out)
	}
}

func TestNotificationsReachTheApp(t *testing.T) {
	rc := newReceiver(t)
	// The first delivery fails: it is retried with the same webhook-id.
	rc.fail = func(n int) int {
		if n == 0 {
			return 500
		}
		return 0
	}
	dir := t.TempDir()
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("thirty-two bytes of webhook key!"))
	os.WriteFile(filepath.Join(dir, "notify.key"), []byte(secret+"\n"), 0o600)
	config := baseConfig + `
expire_after = "2s"
notify "app" {
  url         = "` + rc.URL + `/hooks"
  secret_file = "./notify.key"
  timeout     = "2s"
}
` + defaultSets
	s := startServerIn(t, dir, config)

	data := fakePNG(t, 5000)
	placedURL, _ := upload(t, s.URL+"/uploads/photos/", "cat.png", data, len(data))
	placed := uploadID(placedURL)
	html := []byte("<html><script>x</script></html>")
	res, _ := create(t, s.URL+"/uploads/photos/", "fake.png", int64(len(html)))
	rejected := uploadID(res.Header.Get("Location"))
	if res, _ := patch(t, res.Header.Get("Location"), 0, html); res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("HTML named .png: %d", res.StatusCode)
	}
	res, _ = create(t, s.URL+"/uploads/files/", "gone.bin", 10)
	terminated := uploadID(res.Header.Get("Location"))
	do(t, http.MethodDelete, res.Header.Get("Location"), nil, nil)
	res, _ = create(t, s.URL+"/uploads/files/", "abandoned.bin", 10)
	expired := uploadID(res.Header.Get("Location"))

	got := rc.wait(t, "upload.created "+placed, "upload.placed "+placed, "upload.rejected "+rejected,
		"upload.terminated "+terminated, "upload.expired "+expired)
	p := got["upload.placed "+placed]
	if p.event.Data["name"] != "cat.png" || p.event.Data["set"] != "photos" || p.event.Data["type"] != "image/png" ||
		p.event.Data["size"] != float64(len(data)) || p.event.Data["url"] != s.URL+"/files/photos/cat.png" {
		t.Errorf("upload.placed data: %v", p.event.Data)
	}
	if meta, _ := p.event.Data["metadata"].(map[string]any); meta["filename"] != "cat.png" {
		t.Errorf("upload.placed metadata: %v", p.event.Data["metadata"])
	}
	if r := got["upload.rejected "+rejected]; !strings.Contains(r.event.Data["reason"].(string), "text/html") {
		t.Errorf("upload.rejected reason: %v", r.event.Data)
	}
	if p.header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", p.header.Get("Content-Type"))
	}
	rc.mu.Lock()
	first := rc.got[0]
	rc.mu.Unlock()
	retried := got[first.event.Type+" "+first.event.Data["id"].(string)]
	if first.header.Get("webhook-id") == "" || retried.header.Get("webhook-id") != first.header.Get("webhook-id") {
		t.Errorf("the retry of %s has webhook-id %q, the failed attempt %q", first.event.Type, retried.header.Get("webhook-id"), first.header.Get("webhook-id"))
	}
	for _, d := range got {
		verifyWithJS(t, secret, d)
	}
}

// kill -9 with events in the outbox: they are delivered after the restart.
func TestNotificationsSurviveKill9(t *testing.T) {
	rc := newReceiver(t)
	down := true
	rc.fail = func(int) int {
		if down {
			return 503
		}
		return 0
	}
	dir := t.TempDir()
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("thirty-two bytes of webhook key!"))
	os.WriteFile(filepath.Join(dir, "notify.key"), []byte(secret), 0o600)
	config := baseConfig + `
notify "app" {
  url         = "` + rc.URL + `/hooks"
  secret_file = "./notify.key"
  events      = ["upload.placed"]
}
` + oneSet
	s := startServerIn(t, dir, config)
	data := randomBytes(t, 1000)
	url, _ := upload(t, s.URL+"/uploads/files/", "kept.bin", data, len(data))
	s.Kill()
	rc.mu.Lock()
	down = false
	rc.mu.Unlock()
	startServerIn(t, dir, config)
	got := rc.wait(t, "upload.placed "+uploadID(url))
	verifyWithJS(t, secret, got["upload.placed "+uploadID(url)])
	for _, d := range rc.delivered() {
		if d.event.Type != "upload.placed" {
			t.Errorf("events = [upload.placed], yet %s was sent", d.event.Type)
		}
	}
}
