package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// webhookID names an event by what it announces, so that publishing the same event
// twice (say, a placement retried after a crash) gives the app the same idempotency
// key, and so does every retry. Upload ids are unique, and an upload has at most one
// event of each type.
func webhookID(ev Event) string {
	h := sha256.New()
	for _, s := range []string{ev.Type, ev.Data.Set, ev.Data.ID} {
		h.Write([]byte(s))
		h.Write([]byte{0}) // no name contains NUL: ("a", "bc") and ("ab", "c") differ
	}
	return "msg_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// request is one signed attempt: the timestamp, and so the signature, is that of the
// attempt, as Standard Webhooks wants, so that receivers can refuse replays.
func (t *target) request(ctx context.Context, id string, at time.Time, body []byte) (*http.Request, error) {
	sig, err := t.wh.Sign(id, at, body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set(standardwebhooks.HeaderWebhookID, id)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(at.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "uploadsets")
	return req, nil
}
