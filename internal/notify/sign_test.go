package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The Standard Webhooks test vector, as the reference libraries' own tests state it.
func TestSignSpecVector(t *testing.T) {
	tg := newTarget(Target{Name: "app", URL: "http://127.0.0.1:1/", Key: specKey(t)})
	req, err := tg.request(context.Background(), "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	want := http.Header{
		"Webhook-Id":        {"msg_p5jXN8AQM9LWM0D4loKWxJek"},
		"Webhook-Timestamp": {"1614265330"},
		"Webhook-Signature": {"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
		"Content-Type":      {"application/json"},
		"User-Agent":        {"uploadsets"},
	}
	for k, v := range want {
		if got := req.Header.Get(k); got != v[0] {
			t.Errorf("%s = %q, want %q", k, got, v[0])
		}
	}
	verifyByHand(t, specKey(t), request{req.Header, []byte(`{"test": 2432232314}`)})
}

// A delivery is checked with the JavaScript reference library, as an app would check
// it: e2e/js/verify-webhook.mjs.
func TestVerifiedByJSLibrary(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the signature is not checked with the JavaScript library")
	}
	dir, err := filepath.Abs("../../e2e/js")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks")); err != nil {
		t.Skip("e2e/js/node_modules lacks standardwebhooks (run npm ci in e2e/js): the signature is not checked with the JavaScript library")
	}
	rc := newReceiver(t, ok)
	o := open(t, filepath.Join(t.TempDir(), "notify.db"), nil, Target{Name: "app", URL: rc.URL, Key: specKey(t)})
	ev := placed("photos", "u1")
	ev.Data.Name = "été ☀.png" // the body is UTF-8, and signed as bytes
	ev.Data.Owner = "user-42"
	ev.Data.Thumbnails = map[string]string{"small": "http://127.0.0.1:8080/files/photos/thumbs/small/été ☀.jpg"}
	if err := o.Publish(ev); err != nil {
		t.Fatal(err)
	}
	defer run(o)()
	waitFor(t, "the delivery", func() bool { return len(rc.requests()) == 1 })
	r := rc.requests()[0]

	verify := func(secret string, body []byte) error {
		headers := map[string]string{}
		for k := range r.header {
			headers[k] = r.header.Get(k)
		}
		in, err := json.Marshal(map[string]any{"secret": secret, "headers": headers, "body": string(body)})
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(node, "verify-webhook.mjs")
		cmd.Dir = dir
		cmd.Stdin = bytes.NewReader(in)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return errors.New(stderr.String())
		}
		return nil
	}
	if err := verify(specSecret, r.body); err != nil {
		t.Errorf("the JavaScript library refuses the delivery: %v", err)
	}
	if err := verify(specSecret, bytes.Replace(r.body, []byte("u1"), []byte("u2"), 1)); err == nil {
		t.Error("the JavaScript library accepts a changed body: the check checks nothing")
	}
	if err := verify("whsec_"+"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", r.body); err == nil {
		t.Error("the JavaScript library accepts another key: the check checks nothing")
	}
}
