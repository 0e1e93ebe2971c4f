// Package notify tells apps what happened to uploads: signed POSTs following Standard
// Webhooks v1, delivered at least once from a durable outbox.
//
// Publish writes the event into a bbolt file and returns once it is on disk; Run sends
// it, retrying with backoff until the target's MaxAge. A slow or dead receiver delays
// nothing but its own deliveries, and costs disk, not memory: entries wait in the file,
// and at most a few per target are read and in flight at once.
package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The event types, as the app sees them in "type".
const (
	Created    = "upload.created"
	Placed     = "upload.placed"
	Rejected   = "upload.rejected"
	Terminated = "upload.terminated"
	Expired    = "upload.expired"
)

// EventTypes are all the event types, the default of a Target's Events.
var EventTypes = []string{Created, Placed, Rejected, Terminated, Expired}

// Data is the "data" of a notification: the upload it is about.
type Data struct {
	ID         string            `json:"id"`
	Set        string            `json:"set"`
	Name       string            `json:"name"`
	URL        string            `json:"url"`
	Size       int64             `json:"size"`
	Type       string            `json:"type"`     // sniffed media type
	Metadata   map[string]string `json:"metadata"` // the client's Upload-Metadata
	Owner      string            `json:"owner,omitempty"`
	Reason     string            `json:"reason,omitempty"`
	Thumbnails map[string]string `json:"thumbnails,omitempty"`
}

// Event is something that happened to an upload.
type Event struct {
	Type string // one of EventTypes
	Data Data
}

// Target is an app to notify. Its fields are those of sets.Notify, so a config's block
// converts with Target(*n).
type Target struct {
	Name    string
	URL     string
	Key     []byte        // HMAC key, decoded from "whsec_..."
	Sets    []string      // nil = every set
	Events  []string      // nil = every event type
	Timeout time.Duration // per attempt; 0 = 10s
	MaxAge  time.Duration // retrying stops this long after Publish; 0 = 72h
}

// Outbox holds the events not yet delivered, durably: in a bbolt file (Open) or in
// S3 (OpenS3).
type Outbox struct {
	q       queue
	log     hclog.Logger
	targets []*target
	metrics *metrics

	// Tests replace these to run hours of retries in milliseconds.
	now     func() time.Time
	backoff func(failures int) time.Duration
	// poll is the longest a delivery loop sleeps before looking at the queue again:
	// long for a file only this process writes (Publish wakes the loop), short for
	// a bucket other instances publish into.
	poll time.Duration

	stop    context.CancelFunc // Close stops Run with it
	stopped context.Context
	mu      sync.Mutex // guards closed and the start of runs
	closed  bool
	ran     bool
	runs    sync.WaitGroup
}

type target struct {
	Target
	wh     *standardwebhooks.Webhook
	client *http.Client
	wake   chan struct{} // a new entry or a free slot: look at the outbox again

	mu       sync.Mutex
	inFlight map[string]bool // keys of the entries being attempted
}

// Open opens (or creates) the outbox at path; the server keeps it at
// <data_dir>/notify.db. Entries of a target no longer configured stay in the file
// untouched, with a warning, in case it comes back.
func Open(path string, targets []Target, log hclog.Logger) (*Outbox, error) {
	o, err := newOutbox(targets, log)
	if err != nil {
		return nil, err
	}
	if o.q, err = openBolt(path, o.targets, o.log); err != nil {
		return nil, err
	}
	o.poll = idle
	return o, nil
}

// newOutbox checks targets and makes an outbox of them, without its queue.
func newOutbox(targets []Target, log hclog.Logger) (*Outbox, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	o := &Outbox{log: log, now: time.Now, backoff: backoff}
	o.stopped, o.stop = context.WithCancel(context.Background())
	seen := map[string]bool{}
	for _, t := range targets {
		switch {
		case t.Name == "" || seen[t.Name]:
			return nil, fmt.Errorf("notify: target name %q is empty or repeated", t.Name)
		case len(t.Key) == 0:
			return nil, fmt.Errorf("notify %q: no key", t.Name)
		case t.URL == "":
			return nil, fmt.Errorf("notify %q: no url", t.Name)
		}
		seen[t.Name] = true
		o.targets = append(o.targets, newTarget(t))
	}
	o.metrics = newMetrics(o)
	return o, nil
}

func newTarget(t Target) *target {
	if t.Timeout <= 0 {
		t.Timeout = 10 * time.Second
	}
	if t.MaxAge <= 0 {
		t.MaxAge = 72 * time.Hour
	}
	t.Key = slices.Clone(t.Key)
	wh, _ := standardwebhooks.NewWebhookRaw(t.Key) // never fails: the key is used as it is
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = maxInFlight
	return &target{
		Target: t,
		wh:     wh,
		client: &http.Client{
			Timeout:   t.Timeout,
			Transport: transport,
			// A redirect is an answer that is not 2xx: retried, and never followed to
			// a place the operator did not configure.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		wake:     make(chan struct{}, 1),
		inFlight: map[string]bool{},
	}
}

func (t *target) wants(ev Event) bool {
	return (t.Sets == nil || slices.Contains(t.Sets, ev.Data.Set)) &&
		(t.Events == nil || slices.Contains(t.Events, ev.Type))
}

// poke tells the target's delivery loop to look at the outbox again, without waiting.
func (t *target) poke() {
	select {
	case t.wake <- struct{}{}:
	default: // already poked
	}
}

// payload is the body of a notification.
type payload struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      Data   `json:"data"`
}

// Publish stores ev for every target that wants it and returns once it is durable
// (fsynced, or written to S3), so an event published before the client hears of the
// outcome survives a crash right after. Concurrent calls share commits of the bbolt
// file. Delivery happens later, in Run.
func (o *Outbox) Publish(ev Event) error {
	if !slices.Contains(EventTypes, ev.Type) {
		return fmt.Errorf("notify: unknown event type %q", ev.Type)
	}
	var to []*target
	for _, t := range o.targets {
		if t.wants(ev) {
			to = append(to, t)
		}
	}
	if len(to) == 0 {
		return nil
	}
	now := o.now()
	if ev.Data.Metadata == nil {
		ev.Data.Metadata = map[string]string{} // apps read {} more easily than null
	}
	body, err := json.Marshal(payload{Type: ev.Type, Timestamp: now.UTC().Format(time.RFC3339Nano), Data: ev.Data})
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	e := entry{ID: webhookID(ev), Type: ev.Type, Set: ev.Data.Set, Upload: ev.Data.ID, Created: now, Next: now, Body: body}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := o.q.add(ctx, to, e); err != nil {
		return fmt.Errorf("notify: write outbox: %w", err)
	}
	for _, t := range to {
		t.poke()
	}
	return nil
}

// Pending is the number of events waiting to be delivered to target.
func (o *Outbox) Pending(target string) int {
	for _, t := range o.targets {
		if t.Name == target {
			return o.q.pending(t)
		}
	}
	return 0
}

// Close stops Run, waits for it to return and closes the queue. Attempts cut short are
// not counted: those events are sent again after the next Open (or, in S3, by
// whichever instance looks first).
func (o *Outbox) Close() error {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.stop()
	o.runs.Wait()
	return o.q.close()
}
