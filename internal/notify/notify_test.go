package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/uploadsets/uploadsets/sets"
	bolt "go.etcd.io/bbolt"
)

// The Standard Webhooks test vector's key; 24 bytes.
const specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func specKey(t testing.TB) []byte {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(specSecret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// clock is a fake time that moves only when told to.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// logs collects log output; hclog writes from the delivery goroutines.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logs) logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: l, Level: hclog.Debug})
}

// request is what a receiver got.
type request struct {
	header http.Header
	body   []byte
}

// receiver is an app: answer decides the response to the n-th request (from 1).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      []request
	inFlight atomic.Int32
	maxSeen  atomic.Int32
	// counting keeps only the number of requests: a test that measures the heap
	// shares its process with the receiver.
	counting bool
	count    int
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := rc.inFlight.Add(1)
		defer rc.inFlight.Add(-1)
		for m := rc.maxSeen.Load(); n > m && !rc.maxSeen.CompareAndSwap(m, n); m = rc.maxSeen.Load() {
		}
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		if !rc.counting {
			rc.got = append(rc.got, request{r.Header.Clone(), body})
		}
		rc.count++
		count := rc.count
		rc.mu.Unlock()
		answer(count, w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.got...)
}

func ok(int, http.ResponseWriter, *http.Request) {}

// open opens an outbox in dir that is closed when the test ends.
func open(t testing.TB, path string, log hclog.Logger, targets ...Target) *Outbox {
	t.Helper()
	o, err := Open(path, targets, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// boltDB is the file of an outbox made by Open.
func boltDB(o *Outbox) *bolt.DB { return o.q.(*boltQueue).db }

// run starts delivery; the returned stop waits until Run has returned.
func run(o *Outbox) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		o.Run(ctx)
		close(done)
	}()
	return func() {
		cancel()
		<-done
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func placed(set, id string) Event {
	return Event{Type: Placed, Data: Data{
		ID: id, Set: set, Name: "cat.png", URL: "http://127.0.0.1:8080/files/" + set + "/cat.png",
		Size: 1234, Type: "image/png", Metadata: map[string]string{"filename": "cat.png", "album": "pets"},
	}}
}

// verifyByHand checks a signature with crypto/hmac, not with the library the code
// signs with.
func verifyByHand(t *testing.T, key []byte, r request) {
	t.Helper()
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", r.header.Get("webhook-id"), r.header.Get("webhook-timestamp"), r.body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if got := r.header.Get("webhook-signature"); got != want {
		t.Errorf("webhook-signature = %q, want %q", got, want)
	}
}

func gather(t *testing.T, o *Outbox, want string) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(o.Collector())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

const metricsHelp = `
# HELP uploadsets_notify_deliveries_total Attempts to notify an app, by outcome: delivered, retried (failed, tried again later) or dropped (failed past max_age).
# TYPE uploadsets_notify_deliveries_total counter
# HELP uploadsets_notify_pending Events in the outbox not yet delivered to an app.
# TYPE uploadsets_notify_pending gauge
`

func TestRetriedUntilDelivered(t *testing.T) {
	clk := newClock()
	t0 := clk.Now()
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		clk.Advance(time.Minute)
		switch n {
		case 1:
			w.WriteHeader(http.StatusInternalServerError)
		case 2: // longer than Target.Timeout
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
	})
	var lg logs
	key := specKey(t)
	o := open(t, filepath.Join(t.TempDir(), "notify.db"), lg.logger(),
		Target{Name: "app", URL: rc.URL + "/hooks?token=app-secret-token", Key: key, Timeout: 200 * time.Millisecond})
	o.now = clk.Now
	o.backoff = func(int) time.Duration { return 0 }

	if err := o.Publish(placed("photos", "u1")); err != nil {
		t.Fatal(err)
	}
	if got := o.Pending("app"); got != 1 {
		t.Fatalf("Pending = %d before delivery, want 1", got)
	}
	defer run(o)()
	waitFor(t, "the delivery", func() bool { return o.Pending("app") == 0 })

	got := rc.requests()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3 (500, timeout, 200)", len(got))
	}
	id := got[0].header.Get("webhook-id")
	if !regexp.MustCompile(`^msg_[0-9a-f]{32}$`).MatchString(id) {
		t.Errorf("webhook-id %q", id)
	}
	for i, r := range got {
		if h := r.header.Get("webhook-id"); h != id {
			t.Errorf("attempt %d: webhook-id %q, want %q as on the first", i+1, h, id)
		}
		// The clock moves a minute per request: each attempt is signed at its own time.
		if ts, want := r.header.Get("webhook-timestamp"), strconv.FormatInt(t0.Add(time.Duration(i)*time.Minute).Unix(), 10); ts != want {
			t.Errorf("attempt %d: webhook-timestamp %s, want %s", i+1, ts, want)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		if !bytes.Equal(r.body, got[0].body) {
			t.Errorf("attempt %d sent another body:\n%s\n%s", i+1, r.body, got[0].body)
		}
		verifyByHand(t, key, r)
	}
	want := `{"type":"upload.placed","timestamp":"2026-03-01T12:00:00Z","data":{"id":"u1","set":"photos","name":"cat.png","url":"http://127.0.0.1:8080/files/photos/cat.png","size":1234,"type":"image/png","metadata":{"album":"pets","filename":"cat.png"}}}`
	if string(got[0].body) != want {
		t.Errorf("body\n%s\nwant\n%s", got[0].body, want)
	}

	gather(t, o, metricsHelp+`
uploadsets_notify_deliveries_total{notify="app",result="delivered"} 1
uploadsets_notify_deliveries_total{notify="app",result="dropped"} 0
uploadsets_notify_deliveries_total{notify="app",result="retried"} 2
uploadsets_notify_pending{notify="app"} 0
`)
	out := lg.String()
	for _, want := range []string{
		"[WARN]  NotifyFailed: notify=app set=photos type=upload.placed upload=u1 webhook_id=" + id + " attempts=1 error=\"answered 500 Internal Server Error\" retry_in=0s",
		"attempts=2 error=\"no answer within the timeout of 200ms\"",
		"[DEBUG] NotifyDelivered: notify=app set=photos type=upload.placed upload=u1 webhook_id=" + id + " attempts=3",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{strings.TrimPrefix(specSecret, "whsec_"), "app-secret-token"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs show %q:\n%s", secret, out)
		}
	}
}

func TestFilters(t *testing.T) {
	key := specKey(t)
	path := filepath.Join(t.TempDir(), "notify.db")
	o := open(t, path, nil,
		Target{Name: "photos", URL: "http://127.0.0.1:1/", Key: key, Sets: []string{"photos"}},
		Target{Name: "outcomes", URL: "http://127.0.0.1:1/", Key: key, Events: []string{Placed, Rejected}},
		Target{Name: "docs-created", URL: "http://127.0.0.1:1/", Key: key, Sets: []string{"docs"}, Events: []string{Created}},
		Target{Name: "all", URL: "http://127.0.0.1:1/", Key: key},
	)
	events := []Event{
		placed("photos", "p1"),
		{Type: Created, Data: Data{ID: "p2", Set: "photos"}},
		{Type: Rejected, Data: Data{ID: "d1", Set: "docs", Reason: "not a PDF"}},
		{Type: Created, Data: Data{ID: "d2", Set: "docs"}},
		{Type: Expired, Data: Data{ID: "a1", Set: "attachments"}},
	}
	for _, ev := range events {
		if err := o.Publish(ev); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]int{"photos": 2, "outcomes": 2, "docs-created": 1, "all": 5, "unknown": 0} {
		if got := o.Pending(name); got != want {
			t.Errorf("Pending(%q) = %d, want %d", name, got, want)
		}
	}

	if err := o.Publish(Event{Type: "upload.finished", Data: Data{Set: "photos"}}); err == nil {
		t.Error("Publish of an unknown type: no error")
	}
}

func TestNoMatchingTargetWritesNothing(t *testing.T) {
	o := open(t, filepath.Join(t.TempDir(), "notify.db"), nil,
		Target{Name: "photos", URL: "http://127.0.0.1:1/", Key: specKey(t), Sets: []string{"photos"}})
	lastTx := func() (id int) {
		boltDB(o).View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
		return id
	}
	before := lastTx()
	if err := o.Publish(placed("docs", "d1")); err != nil {
		t.Fatal(err)
	}
	if after := lastTx(); after != before {
		t.Errorf("a publish no target wants committed a transaction (%d → %d)", before, after)
	}
}

func TestDroppedAfterMaxAge(t *testing.T) {
	clk := newClock()
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		clk.Advance(20 * time.Minute)
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	})
	var lg logs
	o := open(t, filepath.Join(t.TempDir(), "notify.db"), lg.logger(),
		Target{Name: "app", URL: rc.URL, Key: specKey(t), MaxAge: time.Hour})
	o.now = clk.Now
	o.backoff = func(int) time.Duration { return 0 }
	if err := o.Publish(Event{Type: Rejected, Data: Data{ID: "u9", Set: "docs", Reason: "not a PDF"}}); err != nil {
		t.Fatal(err)
	}
	defer run(o)()
	waitFor(t, "the drop", func() bool { return o.Pending("app") == 0 })

	// Attempts at 0, 20 and 40 minutes; the third ends at the hour, past max_age.
	if n := len(rc.requests()); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	gather(t, o, metricsHelp+`
uploadsets_notify_deliveries_total{notify="app",result="delivered"} 0
uploadsets_notify_deliveries_total{notify="app",result="dropped"} 1
uploadsets_notify_deliveries_total{notify="app",result="retried"} 2
uploadsets_notify_pending{notify="app"} 0
`)
	id := rc.requests()[0].header.Get("webhook-id")
	want := "[ERROR] NotifyDropped: notify=app set=docs type=upload.rejected upload=u9 webhook_id=" + id + " attempts=3 age=1h0m0s max_age=1h0m0s last_error=\"answered 503 Service Unavailable\""
	if !strings.Contains(lg.String(), want) {
		t.Errorf("logs lack %q:\n%s", want, lg.String())
	}
	if n := entries(t, o, "app"); len(n) != 0 {
		t.Errorf("%d entries left in the file", len(n))
	}
}

// entries reads what the file holds for a target.
func entries(t *testing.T, o *Outbox, target string) []entry {
	t.Helper()
	var out []entry
	err := boltDB(o).View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(target)).Bucket(entriesBucket).ForEach(func(_, v []byte) error {
			var e entry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReopenDeliversPending(t *testing.T) {
	rc := newReceiver(t, ok)
	path := filepath.Join(t.TempDir(), "notify.db")
	target := Target{Name: "app", URL: rc.URL, Key: specKey(t)}
	o, err := Open(path, []Target{target}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := o.Publish(placed("photos", fmt.Sprint("u", i))); err != nil {
			t.Fatal(err)
		}
	}
	// Closed without delivering: what a crash leaves, minus the crash (TestKill9 has one).
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}

	o = open(t, path, nil, target)
	if got := o.Pending("app"); got != 3 {
		t.Fatalf("Pending after reopening = %d, want 3", got)
	}
	defer run(o)()
	waitFor(t, "the deliveries", func() bool { return o.Pending("app") == 0 })
	if n := len(rc.requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestRestartKeepsTheSchedule(t *testing.T) {
	clk := newClock()
	t0 := clk.Now()
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	path := filepath.Join(t.TempDir(), "notify.db")
	target := Target{Name: "app", URL: rc.URL, Key: specKey(t)}
	o, err := Open(path, []Target{target}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.now = clk.Now
	o.backoff = func(int) time.Duration { return time.Hour }
	if err := o.Publish(placed("photos", "u1")); err != nil {
		t.Fatal(err)
	}
	stop := run(o)
	waitFor(t, "the first attempt", func() bool {
		e := entries(t, o, "app")
		return len(e) == 1 && e[0].Attempts == 1
	})
	stop()
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}

	o = open(t, path, nil, target)
	o.now = clk.Now
	e := entries(t, o, "app")
	if len(e) != 1 || e[0].Attempts != 1 || !e[0].Next.Equal(t0.Add(time.Hour)) || e[0].LastError != "answered 502 Bad Gateway" {
		t.Fatalf("entry after restart: %+v", e)
	}
	defer run(o)()
	time.Sleep(200 * time.Millisecond)
	if n := len(rc.requests()); n != 1 {
		t.Fatalf("%d requests before the retry was due, want 1", n)
	}
	clk.Advance(time.Hour)
	o.targets[0].poke() // the loop sleeps in real time; the fake hour passed at once
	waitFor(t, "the retry", func() bool { return o.Pending("app") == 0 })
	got := rc.requests()
	if len(got) != 2 || got[1].header.Get("webhook-id") != got[0].header.Get("webhook-id") {
		t.Errorf("after restart: %d requests; webhook-id %q, first %q", len(got), got[len(got)-1].header.Get("webhook-id"), got[0].header.Get("webhook-id"))
	}
}

// A dead receiver must cost disk, not memory: 10 000 events wait in the file while at
// most maxInFlight are read and sent at once.
func TestDeadReceiverHoldsBoundedMemory(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers; the client's timeout ends each attempt
	})
	rc.counting = true
	o := open(t, filepath.Join(t.TempDir(), "notify.db"), nil,
		Target{Name: "app", URL: rc.URL, Key: specKey(t), Timeout: 20 * time.Millisecond})
	o.backoff = func(int) time.Duration { return 0 }
	var peak atomic.Int64
	quit, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			peak.Store(max(peak.Load(), int64(o.targets[0].inFlightCount())))
			select {
			case <-quit:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	stop := run(o)

	const events, publishers = 10_000, 50
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range events / publishers {
				if err := o.Publish(placed("photos", fmt.Sprintf("u%d-%d", p, i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := o.Pending("app"); got != events {
		t.Errorf("Pending = %d, want %d", got, events)
	}
	time.Sleep(300 * time.Millisecond) // several rounds of timeouts
	after := heap()
	stop()
	close(quit)
	<-sampled
	rc.mu.Lock()
	attempts := rc.count
	rc.mu.Unlock()
	t.Logf("heap %d KiB before publishing, %d KiB with %d events waiting; %d attempts", before>>10, after>>10, events, attempts)
	// Holding the waiting entries would take their size; what grows instead is bbolt's
	// bookkeeping of a larger file.
	if grown, held := int64(after)-int64(before), int64(events*len(entries(t, o, "app")[0].Body)); grown > held/2 {
		t.Errorf("the heap grew by %d KiB with a dead receiver; the events are %d KiB", grown>>10, held>>10)
	}
	if got := rc.maxSeen.Load(); got > maxInFlight || got == 0 {
		t.Errorf("the receiver saw up to %d requests at once, want 1 to %d", got, maxInFlight)
	}
	if got := peak.Load(); got > maxInFlight || got == 0 {
		t.Errorf("up to %d entries in flight, want 1 to %d", got, maxInFlight)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	key := specKey(t)
	tests := map[string][]Target{
		"repeated name": {{Name: "a", URL: "http://x/", Key: key}, {Name: "a", URL: "http://y/", Key: key}},
		"no key":        {{Name: "a", URL: "http://x/"}},
		"no url":        {{Name: "a", Key: key}},
	}
	for name, targets := range tests {
		t.Run(name, func(t *testing.T) {
			if o, err := Open(filepath.Join(dir, "notify.db"), targets, nil); err == nil {
				o.Close()
				t.Error("no error")
			}
		})
	}
	t.Run("locked", func(t *testing.T) {
		path := filepath.Join(dir, "locked.db")
		open(t, path, nil)
		if _, err := Open(path, nil, nil); err == nil || !strings.Contains(err.Error(), "in use by another outbox") {
			t.Errorf("second Open: %v", err)
		}
	})
}

func TestOrphanedTargetIsKept(t *testing.T) {
	var lg logs
	path := filepath.Join(t.TempDir(), "notify.db")
	o, err := Open(path, []Target{{Name: "old", URL: "http://127.0.0.1:1/", Key: specKey(t)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.Publish(placed("photos", "u1"))
	o.Close()
	open(t, path, lg.logger())
	if !strings.Contains(lg.String(), "NotifyOrphaned: notify=old pending=1") {
		t.Errorf("logs: %s", lg.String())
	}
	o = open(t, filepath.Join(t.TempDir(), "other.db"), nil)
	if err := o.Publish(placed("photos", "u1")); err != nil {
		t.Errorf("Publish without targets: %v", err)
	}
}

func TestWebhookID(t *testing.T) {
	a := placed("photos", "u1")
	if webhookID(a) != webhookID(placed("photos", "u1")) {
		t.Error("the same event has two ids")
	}
	for name, ev := range map[string]Event{
		"another type":   {Type: Rejected, Data: a.Data},
		"another set":    placed("docs", "u1"),
		"another upload": placed("photos", "u2"),
		"shifted fields": placed("photo", "su1"),
	} {
		if webhookID(ev) == webhookID(a) {
			t.Errorf("%s: same id", name)
		}
	}
}

func TestBackoff(t *testing.T) {
	for failures, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 9: 256 * time.Second, 10: maxBackoff, 64: maxBackoff, 1 << 30: maxBackoff} {
		for range 100 {
			if got := backoff(failures); got < want/2 || got > want {
				t.Fatalf("backoff(%d) = %s, want between %s and %s", failures, got, want/2, want)
			}
		}
	}
}

// The config and this package must agree on the names and on Target's shape.
func TestMatchesConfig(t *testing.T) {
	if fmt.Sprint(EventTypes) != fmt.Sprint(sets.NotifyEvents) {
		t.Errorf("EventTypes %v, sets.NotifyEvents %v", EventTypes, sets.NotifyEvents)
	}
	n := sets.Notify{Name: "app", URL: "http://x/", Key: []byte("k"), Timeout: time.Second}
	if got := Target(n); got.Name != "app" || got.Timeout != time.Second {
		t.Errorf("Target(n) = %+v", got)
	}
}

// An attempt that ends after another attempt stored the entry's outcome (a read of the
// queue older than that outcome) changes nothing: it neither counts the entry twice
// nor puts it back to be sent again. Under load this drove Pending to -1, and a
// restarted outbox never looked empty.
func TestOutcomeOfAGoneEntryChangesNothing(t *testing.T) {
	o := open(t, filepath.Join(t.TempDir(), "notify.db"), nil, crashTarget)
	if err := o.Publish(placed("photos", "u1")); err != nil {
		t.Fatal(err)
	}
	ctx, tg, q := context.Background(), o.targets[0], o.q.(*boltQueue)
	items, _, err := q.due(ctx, tg, time.Now(), 10)
	if err != nil || len(items) != 1 {
		t.Fatalf("due = %d items, %v", len(items), err)
	}
	stale := items[0]
	if err := q.done(ctx, tg, stale); err != nil {
		t.Fatal(err)
	}
	if err := q.done(ctx, tg, stale); err != nil {
		t.Fatal(err)
	}
	if got := o.Pending("app"); got != 0 {
		t.Errorf("Pending after the entry was done twice = %d, want 0", got)
	}
	e := stale.entry
	e.Attempts, e.Next = 1, time.Now()
	if err := q.reschedule(ctx, tg, stale, e); err != nil {
		t.Fatal(err)
	}
	if items, _, _ := q.due(ctx, tg, time.Now().Add(time.Hour), 10); len(items) != 0 {
		t.Errorf("a failed attempt of a delivered entry put it back: %d due", len(items))
	}
}
