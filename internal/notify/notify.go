// Package notify tells apps what happened to uploads: signed POSTs following Standard
// Webhooks v1, delivered at least once from a durable outbox.
//
// Publish writes the event into the outbox and returns once it is durable; Run sends
// it, retrying with backoff (jittered, capped at 5 minutes) until the target's
// MaxAge, then drops it with an error log line and a metric. Every attempt of an
// event sends the same webhook-id (derived from the event) and the same body (kept
// in the outbox), signed at the attempt's own time. A slow or dead receiver delays
// nothing but its own deliveries, and costs storage, not memory: entries wait in the
// outbox, and at most maxInFlight per target are read and in flight at once.
//
// # Two outboxes
//
// Open keeps the outbox in a bbolt file (<data_dir>/notify.db) for a server alone on
// its data_dir: Publish returns once the transaction is fsynced (concurrent
// publishes share commits), and the file's lock refuses a second server.
//
// OpenS3 keeps it in a bucket shared by every instance, for a data_dir on S3. One
// object per event and target, named by its next attempt:
//
//	<prefix><target>/<next attempt, 20060102T150405.000000000Z in UTC>_<webhook-id>.json
//
// holding the entry as JSON (id, type, set, upload, created, body, attempts, next,
// last_error) and, while an instance attempts it, that instance's claim (claimed_by,
// claimed_until). Publish writes every target's object (If-None-Match "*") before it
// returns, so that an event survives the instance that published it, however it
// dies. Nothing of the outbox is in Redis, nor in an instance's memory that another
// needs.
//
// Each instance's loop lists a target's keys every second (at once after a Publish
// of its own, or when a slot frees), a page of 100 at a time: S3 lists in key order,
// which is the order entries fall due, so a look stops at the first key not yet due
// however many wait. Putting the schedule in the key rather than in the object alone
// is what keeps that cheap: objects are read only to be attempted. Its price is that
// a retry is a new key (below), and that publishing the same event again later is a
// second object rather than a no-op (again at the same instant, it is the same key):
// delivered again under the same webhook-id, as from the bbolt file.
//
// # Claims
//
// Before an attempt, an instance reads the object and rewrites it with its claim
// (its name and claimed_until = now + the target's timeout + 30s) on condition that
// it is the version read (If-Match); a 412 means another instance claimed it first,
// and it is skipped. A claim that is still running is skipped by the others (seen
// once, remembered by version, not read again until it runs out). After the
// attempt, the claimant
//   - on success, or a failure past MaxAge, deletes the object, If-Match its claim;
//   - on a failure, writes the entry with attempts+1, the next attempt and the error,
//     unclaimed, under the key of its next attempt (If-None-Match "*"), then deletes
//     the claimed object, If-Match its claim;
//   - when cut short by Close, rewrites the object unclaimed (If-Match), for any
//     instance to take at once.
//
// A 412 on one of those deletes means the claim ran out and another instance took
// the entry over: the outcome is left to that instance (NotifyClaimLost), and a new
// object written for the retry is removed again.
//
// Delivery is at least once, never exactly once: the app deduplicates by webhook-id.
// In a calm run no event is sent twice (the tests observe none), but these send one
// again:
//   - an instance that dies, or is cut off from S3, between the app's answer and the
//     delete: the claim runs out and another instance sends the event again;
//   - an instance that dies between writing a retry's object and deleting the claimed
//     one leaves both: each is sent;
//   - an attempt that outlasts its claim (the app answering near the timeout while
//     the outcome cannot be written for 30s, or clocks of the instances more than
//     about 30s apart): another instance may attempt it at the same time;
//   - publishing the same event again (a placement retried after a crash).
//
// An instance that dies mid-attempt delays its events by the claim's length at most.
//
// The prefix must be the outbox's alone (the server's is <data_dir>/.notify/): every
// folder under it is taken for a target's. The store must honour If-None-Match "*"
// and If-Match on PutObject and If-Match on DeleteObject, as AWS S3 and versitygw
// do (412 when the object is not as named): the conditions are what keeps instances
// apart. No event is lost on a store that ignores them; more are sent twice.
//
// Pending is exact for the bbolt file. For S3 it is what this instance last counted
// (every look while a page or less waits; otherwise all keys, a thousand a listing,
// every 30 seconds) plus what it published and removed since: other instances'
// deliveries show up at the next count.
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
	released map[string]bool // keys whose attempt ended since the last read of the queue began
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
		inFlight: map[string]bool{}, released: map[string]bool{},
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
