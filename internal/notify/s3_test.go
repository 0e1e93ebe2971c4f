//go:build linux

// testsrv.S3 runs versitygw on Linux only.

package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/testutil"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/uploadsets/uploadsets/internal/testsrv"
)

// testPoll is how often the tests' instances look at the bucket: short, so that
// another instance's events are picked up in milliseconds; what a test waits for
// is counted (requests, looks), never timed.
const testPoll = 20 * time.Millisecond

// bucket is one S3 gateway and bucket of a test; its instances are outboxes on it.
type bucket struct {
	srv    *testsrv.S3Server
	name   string
	prefix string
}

func newBucket(t *testing.T) *bucket {
	t.Helper()
	srv := testsrv.S3(t)
	return &bucket{srv: srv, name: srv.Bucket(t, "outbox"), prefix: "data/.notify/"}
}

// instance opens an outbox on the bucket with a client of its own, as another
// server would, and closes it when the test ends.
func (b *bucket) instance(t testing.TB, log hclog.Logger, targets ...Target) *Outbox {
	t.Helper()
	o, err := OpenS3(b.srv.Client(), b.name, b.prefix, targets, log)
	if err != nil {
		t.Fatal(err)
	}
	o.poll = testPoll
	t.Cleanup(func() { o.Close() })
	return o
}

// objects reads every object under the prefix: key → entry.
func (b *bucket) objects(t *testing.T) map[string]s3Entry {
	t.Helper()
	c := b.srv.Client()
	out := map[string]s3Entry{}
	list, err := c.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: &b.name, Prefix: &b.prefix})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Contents {
		got, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: &b.name, Key: o.Key})
		if isNotFound(err) {
			continue // delivered since the listing
		}
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(got.Body)
		got.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var e s3Entry
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("%s: %v", aws.ToString(o.Key), err)
		}
		out[strings.TrimPrefix(aws.ToString(o.Key), b.prefix)] = e
	}
	return out
}

func (b *bucket) empty(t *testing.T) bool { return len(b.objects(t)) == 0 }

func looks(o *Outbox) int64 { return o.q.(*s3Queue).targets[o.targets[0]].looks.Load() }

// waitLooks waits until o has listed its first target's entries n more times.
func waitLooks(t *testing.T, o *Outbox, n int64) {
	t.Helper()
	from := looks(o)
	waitFor(t, fmt.Sprintf("%d looks at the bucket", n), func() bool { return looks(o) >= from+n })
}

// verifyWithLibrary checks a delivery with the Standard Webhooks Go library, given
// the secret as an app holds it. A fake clock's timestamps are months off the real
// one, past the library's tolerance: those are checked without it.
func verifyWithLibrary(t *testing.T, r request, realTime bool) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	verify := wh.Verify
	if !realTime {
		verify = wh.VerifyIgnoringTimestamp
	}
	if err := verify(r.body, r.header); err != nil {
		t.Errorf("the Standard Webhooks library refuses delivery %s: %v", r.header.Get("webhook-id"), err)
	}
	if err := verify(bytes.Replace(r.body, []byte(`"data"`), []byte(`"Data"`), 1), r.header); err == nil {
		t.Error("the library accepts a changed body: the check checks nothing")
	}
}

func TestS3RetriedUntilDelivered(t *testing.T) {
	b := newBucket(t)
	clk := newClock()
	t0 := clk.Now()
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		clk.Advance(time.Minute)
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	var lg logs
	o := b.instance(t, lg.logger(), Target{Name: "app", URL: rc.URL, Key: specKey(t)})
	o.now = clk.Now
	o.backoff = func(int) time.Duration { return time.Hour }

	if err := o.Publish(placed("photos", "u1")); err != nil {
		t.Fatal(err)
	}
	// Written before Publish returned, due now, unclaimed.
	objs := b.objects(t)
	id := webhookID(placed("photos", "u1"))
	first := "app/20260301T120000.000000000Z_" + id + ".json"
	if e, ok := objs[first]; len(objs) != 1 || !ok || e.ID != id || e.Attempts != 0 || e.ClaimedBy != "" || !e.Next.Equal(t0) {
		t.Fatalf("after Publish: %+v, want one entry at %s", objs, first)
	}
	if got := o.Pending("app"); got != 1 {
		t.Errorf("Pending = %d, want 1", got)
	}

	defer run(o)()
	// The first attempt fails at t0+1m: the entry moves to the key of its retry.
	retry := "app/20260301T130100.000000000Z_" + id + ".json"
	waitFor(t, "the retry's entry", func() bool {
		_, ok := b.objects(t)[retry]
		return ok
	})
	objs = b.objects(t)
	if e := objs[retry]; len(objs) != 1 || e.Attempts != 1 || e.LastError != "answered 500 Internal Server Error" || e.ClaimedBy != "" || !e.Next.Equal(t0.Add(time.Minute+time.Hour)) {
		t.Fatalf("after the failure: %+v", objs)
	}
	waitLooks(t, o, 3)
	if n := len(rc.requests()); n != 1 {
		t.Fatalf("%d requests before the retry was due, want 1", n)
	}
	clk.Advance(time.Hour) // the loop looks again within its poll, unpoked
	waitFor(t, "the delivery", func() bool { return len(rc.requests()) == 2 && b.empty(t) })

	got := rc.requests()
	for i, r := range got {
		if h := r.header.Get("webhook-id"); h != id {
			t.Errorf("attempt %d: webhook-id %q, want %q", i+1, h, id)
		}
		if !bytes.Equal(r.body, got[0].body) {
			t.Errorf("attempt %d sent another body:\n%s\n%s", i+1, r.body, got[0].body)
		}
		verifyByHand(t, specKey(t), r)
		verifyWithLibrary(t, r, false)
	}
	if ts, want := got[1].header.Get("webhook-timestamp"), strconv.FormatInt(t0.Add(time.Hour+time.Minute).Unix(), 10); ts != want {
		t.Errorf("the retry's webhook-timestamp %s, want %s (its own time)", ts, want)
	}
	waitFor(t, "Pending 0", func() bool { return o.Pending("app") == 0 })
	gather(t, o, metricsHelp+`
uploadsets_notify_deliveries_total{notify="app",result="delivered"} 1
uploadsets_notify_deliveries_total{notify="app",result="dropped"} 0
uploadsets_notify_deliveries_total{notify="app",result="retried"} 1
uploadsets_notify_pending{notify="app"} 0
`)
	for _, want := range []string{
		"[WARN]  NotifyFailed: notify=app set=photos type=upload.placed upload=u1 webhook_id=" + id + " attempts=1 error=\"answered 500 Internal Server Error\" retry_in=1h0m0s",
		"[DEBUG] NotifyDelivered: notify=app set=photos type=upload.placed upload=u1 webhook_id=" + id + " attempts=2",
	} {
		if !strings.Contains(lg.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, lg.String())
		}
	}
}

// Two instances on one bucket, events published on both: each is delivered, by
// one of them, once.
func TestS3TwoInstances(t *testing.T) {
	b := newBucket(t)
	var mu sync.Mutex
	count := map[string]int{}
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		count[r.Header.Get("webhook-id")]++
		mu.Unlock()
		// A receiver that takes its time fills an instance's slots, so that the
		// other takes a share of its events.
		time.Sleep(30 * time.Millisecond)
	})
	target := Target{Name: "app", URL: rc.URL, Key: specKey(t)}
	a, c := b.instance(t, nil, target), b.instance(t, nil, target)
	defer run(a)()
	defer run(c)()

	const events = 50
	ids := map[string]bool{}
	var wg sync.WaitGroup
	for i := range events {
		ev := placed("photos", fmt.Sprint("u", i))
		ids[webhookID(ev)] = true
		o := a
		if i%2 == 1 {
			o = c
		}
		wg.Go(func() {
			if err := o.Publish(ev); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	waitFor(t, "every delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(count) == events && b.empty(t)
	})
	waitFor(t, "Pending 0 on both", func() bool { return a.Pending("app") == 0 && c.Pending("app") == 0 })

	dups := 0
	for id, n := range count {
		if !ids[id] {
			t.Errorf("delivered %s, which was not published", id)
		}
		if n > 2 {
			t.Errorf("%s delivered %d times", id, n)
		}
		dups += n - 1
	}
	delivered := func(o *Outbox) float64 {
		return testutil.ToFloat64(o.metrics.deliveries.WithLabelValues("app", "delivered"))
	}
	t.Logf("%d events, %d duplicate deliveries; delivered by A %v, by B %v", events, dups, delivered(a), delivered(c))
	if dups != 0 {
		t.Errorf("%d duplicate deliveries in a calm run: the claims did not keep the instances apart", dups)
	}
	if delivered(a) == 0 || delivered(c) == 0 {
		t.Errorf("one instance delivered everything (A %v, B %v): the test did not make them share", delivered(a), delivered(c))
	}
	for _, r := range rc.requests() {
		verifyWithLibrary(t, r, true)
	}
}

// Events published by an instance that stops before delivering any are delivered by
// another: closed, or gone without a word.
func TestS3PublisherGone(t *testing.T) {
	for _, how := range []string{"closed", "abandoned"} {
		t.Run(how, func(t *testing.T) {
			b := newBucket(t)
			rc := newReceiver(t, ok)
			target := Target{Name: "app", URL: rc.URL, Key: specKey(t)}
			a, err := OpenS3(b.srv.Client(), b.name, b.prefix, []Target{target}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				if err := a.Publish(placed("photos", fmt.Sprint("u", i))); err != nil {
					t.Fatal(err)
				}
			}
			if how == "closed" {
				if err := a.Close(); err != nil {
					t.Fatal(err)
				}
			} // else left as a process killed would leave it: never run, never closed

			c := b.instance(t, nil, target)
			if got := c.Pending("app"); got != 10 {
				t.Errorf("the other instance's Pending = %d, want 10", got)
			}
			defer run(c)()
			waitFor(t, "the deliveries", func() bool { return len(rc.requests()) == 10 && b.empty(t) })
		})
	}
}

// Every event Publish returned for before a kill -9 is delivered by another instance.
func TestS3Kill9(t *testing.T) {
	b := newBucket(t)
	cfg, err := json.Marshal(crashS3{Endpoint: b.srv.Endpoint(), Region: b.srv.Region, AccessKey: b.srv.AccessKey, SecretKey: b.srv.SecretKey, Bucket: b.name, Prefix: b.prefix})
	if err != nil {
		t.Fatal(err)
	}
	published := killPublisher(t, crashS3Env+"="+string(cfg), 50)

	rc := newReceiver(t, ok)
	o := b.instance(t, nil, Target{Name: "app", URL: rc.URL, Key: crashTarget.Key})
	if got := o.Pending("app"); got <= published {
		t.Fatalf("%d events in the bucket after the kill, want at least %d", got, published+1)
	}
	defer run(o)()
	waitFor(t, "the deliveries", func() bool { return b.empty(t) })
	seen := map[string]bool{}
	for _, r := range rc.requests() {
		var p payload
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		seen[p.Data.ID] = true
	}
	for i := 0; i <= published; i++ {
		if !seen[strconv.Itoa(i)] {
			t.Errorf("event %d was published before the kill and never delivered", i)
		}
	}
}

// An instance that dies mid-attempt leaves its claim; the entry waits until the
// claim runs out, then another instance delivers it.
func TestS3ClaimOfADeadInstanceRunsOut(t *testing.T) {
	b := newBucket(t)
	clk := newClock()
	rc := newReceiver(t, ok)
	target := Target{Name: "app", URL: rc.URL, Key: specKey(t), Timeout: 10 * time.Second}
	dead := b.instance(t, nil, target)
	dead.now = clk.Now
	if err := dead.Publish(placed("photos", "u1")); err != nil {
		t.Fatal(err)
	}
	// The dead instance's loop got as far as claiming the entry.
	items, _, err := dead.q.due(t.Context(), dead.targets[0], clk.Now(), maxInFlight)
	if err != nil || len(items) != 1 {
		t.Fatalf("claiming: %v, %d items", err, len(items))
	}
	claimedBy := dead.q.(*s3Queue).instance
	objs := b.objects(t)
	for key, e := range objs {
		if e.ClaimedBy != claimedBy || !e.ClaimedUntil.Equal(clk.Now().Add(10*time.Second+claimMargin)) {
			t.Fatalf("%s: claimed by %q until %s", key, e.ClaimedBy, e.ClaimedUntil)
		}
	}

	other := b.instance(t, nil, target)
	other.now = clk.Now
	defer run(other)()
	waitLooks(t, other, 5)
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("%d deliveries while the claim lasted", n)
	}
	clk.Advance(10*time.Second + claimMargin - time.Nanosecond)
	waitLooks(t, other, 3)
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("%d deliveries at the claim's last instant", n)
	}
	clk.Advance(time.Nanosecond) // claimed_until itself is past the claim
	waitFor(t, "the delivery", func() bool { return len(rc.requests()) == 1 && b.empty(t) })
	verifyWithLibrary(t, rc.requests()[0], false)
}

// An instance whose claim ran out while it attempted leaves the outcome to the
// instance that took the entry over.
func TestS3ClaimLost(t *testing.T) {
	b := newBucket(t)
	clk := newClock()
	target := Target{Name: "app", URL: "http://127.0.0.1:1/", Key: specKey(t), Timeout: time.Second}
	slow, other := b.instance(t, nil, target), b.instance(t, nil, target)
	slow.now, other.now = clk.Now, clk.Now
	for _, id := range []string{"u1", "u2"} {
		if err := slow.Publish(placed("photos", id)); err != nil {
			t.Fatal(err)
		}
	}
	mine, _, err := slow.q.due(t.Context(), slow.targets[0], clk.Now(), 2)
	if err != nil || len(mine) != 2 {
		t.Fatalf("claiming: %v, %d items", err, len(mine))
	}
	if got, _, err := other.q.due(t.Context(), other.targets[0], clk.Now(), 2); err != nil || len(got) != 0 {
		t.Fatalf("the other instance claimed %d entries held by the first (%v)", len(got), err)
	}
	clk.Advance(time.Second + claimMargin)
	theirs, _, err := other.q.due(t.Context(), other.targets[0], clk.Now(), 2)
	if err != nil || len(theirs) != 2 {
		t.Fatalf("claims that ran out: %v, %d taken over", err, len(theirs))
	}

	// The slow instance's outcomes, too late: neither a delete nor a move.
	if err := slow.q.done(t.Context(), slow.targets[0], mine[0]); !errors.Is(err, errClaimLost) {
		t.Errorf("done after the claim was lost: %v", err)
	}
	e := mine[1].entry
	e.Attempts, e.Next, e.LastError = 1, clk.Now().Add(time.Hour), "answered 500"
	if err := slow.q.reschedule(t.Context(), slow.targets[0], mine[1], e); !errors.Is(err, errClaimLost) {
		t.Errorf("reschedule after the claim was lost: %v", err)
	}
	objs := b.objects(t)
	if len(objs) != 2 {
		t.Errorf("%d objects after the lost claims, want the 2 the other instance holds: %v", len(objs), slices.Collect(maps.Keys(objs)))
	}
	for key, e := range objs {
		if e.ClaimedBy != other.q.(*s3Queue).instance || e.Attempts != 0 {
			t.Errorf("%s: claimed by %q, %d attempts", key, e.ClaimedBy, e.Attempts)
		}
	}
	for _, it := range theirs {
		if err := other.q.done(t.Context(), other.targets[0], it); err != nil {
			t.Errorf("done by the instance holding the claim: %v", err)
		}
	}
	if !b.empty(t) {
		t.Errorf("left: %v", b.objects(t))
	}
}

// An attempt cut short by Close gives its entry back at once: another instance
// sends it without waiting for the claim to run out (an hour here).
func TestS3CloseReleasesClaims(t *testing.T) {
	b := newBucket(t)
	var calls atomic.Int32
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			<-r.Context().Done() // the first instance's attempt, until it is closed
		}
	})
	target := Target{Name: "app", URL: rc.URL, Key: specKey(t), Timeout: time.Hour}
	first, err := OpenS3(b.srv.Client(), b.name, b.prefix, []Target{target}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Publish(placed("photos", "u1")); err != nil {
		t.Fatal(err)
	}
	stop := run(first)
	waitFor(t, "the first attempt", func() bool { return len(rc.requests()) == 1 })
	stop()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	for key, e := range b.objects(t) {
		if e.ClaimedBy != "" || e.Attempts != 0 {
			t.Errorf("%s after Close: claimed by %q, %d attempts", key, e.ClaimedBy, e.Attempts)
		}
	}
	other := b.instance(t, nil, target)
	defer run(other)()
	waitFor(t, "the delivery by the other instance", func() bool { return len(rc.requests()) == 2 && b.empty(t) })
}

// Of instances claiming the same entries at the same moment, exactly one gets each.
func TestS3ClaimRace(t *testing.T) {
	b := newBucket(t)
	target := Target{Name: "app", URL: "http://127.0.0.1:1/", Key: specKey(t)}
	const instances, events = 4, 30
	var outboxes []*Outbox
	for range instances {
		outboxes = append(outboxes, b.instance(t, nil, target))
	}
	for i := range events {
		if err := outboxes[i%instances].Publish(placed("photos", fmt.Sprint("u", i))); err != nil {
			t.Fatal(err)
		}
	}
	claimed := make([][]item, instances)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, o := range outboxes {
		wg.Go(func() {
			<-start
			items, _, err := o.q.due(t.Context(), o.targets[0], time.Now(), events)
			if err != nil {
				t.Error(err)
			}
			claimed[i] = items
		})
	}
	close(start)
	wg.Wait()
	by := map[string]int{}
	var share []int
	for i, items := range claimed {
		share = append(share, len(items))
		for _, it := range items {
			if j, ok := by[it.ID]; ok {
				t.Errorf("%s claimed by instances %d and %d", it.ID, j, i)
			}
			by[it.ID] = i
		}
	}
	t.Logf("claims per instance: %v", share)
	if len(by) != events {
		t.Errorf("%d of %d entries claimed", len(by), events)
	}
}

func TestS3DroppedAfterMaxAge(t *testing.T) {
	b := newBucket(t)
	clk := newClock()
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		clk.Advance(20 * time.Minute)
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	})
	var lg logs
	o := b.instance(t, lg.logger(), Target{Name: "app", URL: rc.URL, Key: specKey(t), MaxAge: time.Hour})
	o.now = clk.Now
	o.backoff = func(int) time.Duration { return 0 }
	if err := o.Publish(Event{Type: Rejected, Data: Data{ID: "u9", Set: "docs", Reason: "not a PDF"}}); err != nil {
		t.Fatal(err)
	}
	defer run(o)()
	waitFor(t, "the drop", func() bool { return o.Pending("app") == 0 && b.empty(t) })

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
}

// The same event published again at the same instant is the same object; later, it is
// a second entry, delivered again under the same webhook-id (as with the bbolt file).
func TestS3PublishedTwice(t *testing.T) {
	b := newBucket(t)
	clk := newClock()
	o := b.instance(t, nil, Target{Name: "app", URL: "http://127.0.0.1:1/", Key: specKey(t)})
	o.now = clk.Now
	for range 2 {
		if err := o.Publish(placed("photos", "u1")); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(b.objects(t)); n != 1 || o.Pending("app") != 1 {
		t.Errorf("published twice at one instant: %d objects, Pending %d; want 1", n, o.Pending("app"))
	}
	clk.Advance(time.Second)
	if err := o.Publish(placed("photos", "u1")); err != nil {
		t.Fatal(err)
	}
	if n := len(b.objects(t)); n != 2 {
		t.Errorf("published again later: %d objects, want 2", n)
	}
}

// A Publish writes one object per target that wants the event, in the target's folder.
func TestS3Filters(t *testing.T) {
	b := newBucket(t)
	o := b.instance(t, nil,
		Target{Name: "photos", URL: "http://127.0.0.1:1/", Key: specKey(t), Sets: []string{"photos"}},
		Target{Name: "all", URL: "http://127.0.0.1:1/", Key: specKey(t)},
	)
	for _, ev := range []Event{placed("photos", "p1"), {Type: Rejected, Data: Data{ID: "d1", Set: "docs", Reason: "not a PDF"}}} {
		if err := o.Publish(ev); err != nil {
			t.Fatal(err)
		}
	}
	folders := map[string]int{}
	for key := range b.objects(t) {
		folders[strings.SplitN(key, "/", 2)[0]]++
	}
	if folders["photos"] != 1 || folders["all"] != 2 || len(folders) != 2 {
		t.Errorf("objects per folder: %v", folders)
	}
	for name, want := range map[string]int{"photos": 1, "all": 2, "unknown": 0} {
		if got := o.Pending(name); got != want {
			t.Errorf("Pending(%q) = %d, want %d", name, got, want)
		}
	}
}

func TestOpenS3(t *testing.T) {
	b := newBucket(t)
	var lg logs
	old, err := OpenS3(b.srv.Client(), b.name, "data/.notify", []Target{{Name: "old", URL: "http://127.0.0.1:1/", Key: specKey(t)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Publish(placed("photos", "u1")); err != nil {
		t.Fatal(err)
	}
	old.Close()
	// The prefix is a folder with or without its slash.
	keys := slices.Collect(maps.Keys(b.objects(t)))
	if len(keys) != 1 || !regexp.MustCompile(`^old/\d{8}T\d{6}\.\d{9}Z_msg_[0-9a-f]{32}\.json$`).MatchString(keys[0]) {
		t.Errorf("keys %q", keys)
	}
	b.instance(t, lg.logger(), Target{Name: "app", URL: "http://127.0.0.1:1/", Key: specKey(t)})
	if !strings.Contains(lg.String(), "NotifyOrphaned: notify=old pending=1") {
		t.Errorf("logs: %s", lg.String())
	}
	if _, err := OpenS3(b.srv.Client(), "no-such-bucket", "", []Target{{Name: "app", URL: "http://127.0.0.1:1/", Key: specKey(t)}}, nil); err == nil {
		t.Error("OpenS3 on a bucket that does not exist: no error")
	}
	if _, err := OpenS3(b.srv.Client(), b.name, "", []Target{{Name: "a/b", URL: "http://127.0.0.1:1/", Key: specKey(t)}}, nil); err == nil {
		t.Error("a target name with a slash: no error")
	}
}

// countingClient counts an S3 client's requests by method, listings as LIST.
type countingClient struct {
	next s3.HTTPClient
	mu   sync.Mutex
	n    map[string]int
}

func (c *countingClient) Do(r *http.Request) (*http.Response, error) {
	method := r.Method
	if r.URL.Query().Has("list-type") {
		method = "LIST"
	}
	c.mu.Lock()
	c.n[method]++
	c.mu.Unlock()
	return c.next.Do(r)
}

func (c *countingClient) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// A dead receiver with a thousand events waiting: at most maxInFlight read and sent
// at once, one page of keys listed per look, and memory that does not grow with the
// events.
func TestS3DeadReceiverHoldsBoundedMemory(t *testing.T) {
	b := newBucket(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	rc.counting = true
	counter := &countingClient{n: map[string]int{}}
	client := s3.New(b.srv.Client().Options(), func(o *s3.Options) {
		counter.next = o.HTTPClient
		o.HTTPClient = counter
	})
	o, err := OpenS3(client, b.name, b.prefix, []Target{{Name: "app", URL: rc.URL, Key: specKey(t), Timeout: 20 * time.Millisecond}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	o.poll = testPoll
	o.backoff = func(int) time.Duration { return 0 }

	const events, publishers = 1000, 20
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
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
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
	stop := run(o)
	attempted := func(n int) func() bool {
		return func() bool {
			rc.mu.Lock()
			defer rc.mu.Unlock()
			return rc.count >= n
		}
	}
	// Measured from the first round on, so that the connections to the receiver
	// and to S3 are there in both measurements.
	waitFor(t, "a first round of timeouts", attempted(maxInFlight))
	before, counted, looked, recorded0 := heap(), counter.counts(), looks(o), retried(o)
	waitFor(t, "several rounds of timeouts", attempted(6*maxInFlight))
	stop()
	close(quit)
	<-sampled
	after, requests := heap(), counter.counts()
	looked = looks(o) - looked
	rc.mu.Lock()
	attempts := rc.count
	rc.mu.Unlock()
	t.Logf("heap %d KiB after the first round, %d KiB after %d attempts with %d events waiting; %d looks, S3 requests %v", before>>10, after>>10, attempts, events, looked, requests)
	if grown, held := int64(after)-int64(before), int64(events*len(placedBody(t))); grown > held/2 {
		t.Errorf("the heap grew by %d KiB with a dead receiver; the events are %d KiB", grown>>10, held>>10)
	}
	if got := rc.maxSeen.Load(); got > maxInFlight || got == 0 {
		t.Errorf("the receiver saw up to %d requests at once, want 1 to %d", got, maxInFlight)
	}
	if got := peak.Load(); got > maxInFlight || got == 0 {
		t.Errorf("up to %d entries in flight, want 1 to %d", got, maxInFlight)
	}
	// An attempt reads its object once, to claim it; those in flight at either
	// end of the measurement (at most maxInFlight each) are read but not recorded
	// within it, or the other way round. A look lists one page (the keys in
	// flight are a few of its hundred), and every countEvery all keys, a thousand a
	// listing.
	gets, lists := requests["GET"]-counted["GET"], requests["LIST"]-counted["LIST"]
	recorded := retried(o) - recorded0
	if gets > recorded+2*maxInFlight {
		t.Errorf("%d objects read for %d attempts recorded: objects read that were not attempted", gets, recorded)
	}
	if lists > int(looked)+4 {
		t.Errorf("%d listings in %d looks", lists, looked)
	}
}

func retried(o *Outbox) int {
	return int(testutil.ToFloat64(o.metrics.deliveries.WithLabelValues("app", "retried")))
}

// placedBody is the body of placed's event.
func placedBody(t *testing.T) []byte {
	t.Helper()
	body, err := json.Marshal(payload{Type: Placed, Timestamp: time.Now().UTC().Format(time.RFC3339Nano), Data: placed("photos", "u0-0").Data})
	if err != nil {
		t.Fatal(err)
	}
	return body
}
