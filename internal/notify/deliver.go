package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"
)

const (
	// maxInFlight bounds, per target, the requests open and the entries held in memory:
	// a dead receiver with a million events waiting costs this many entries, and as
	// many deliveries to a quick one share a commit of the outbox.
	maxInFlight = 16
	maxBackoff  = 5 * time.Minute
	// idle is how long a loop over the bbolt file with nothing due sleeps before
	// looking again anyway; Publish and finished attempts wake it sooner.
	idle = time.Minute
	// maxErrorWait is the longest a loop waits after failing to read its queue: the
	// wait doubles from Outbox.poll with every failure in a row, so that a store
	// that is down is neither hammered nor logged about every second.
	maxErrorWait = 30 * time.Second
	// publishTimeout bounds a Publish's writes (S3 requests and their retries).
	publishTimeout = 30 * time.Second
	// writeTimeout bounds the recording of an attempt's outcome. It is not cut short
	// by Close: an answer the app gave is recorded, not sent again.
	writeTimeout = 20 * time.Second
)

// backoff is the wait after the given number of failed attempts: 1s, 2s, 4s... up to
// 5 minutes, each between half and all of that. The jitter keeps a receiver that comes
// back from getting every pending event in the same second.
func backoff(failures int) time.Duration {
	d := maxBackoff
	if failures <= 20 {
		d = min(maxBackoff, time.Second<<max(failures-1, 0))
	}
	return d/2 + rand.N(d/2+1)
}

// Run delivers events until ctx is done or Close is called, and returns once the
// attempts it started have ended. Call it once.
func (o *Outbox) Run(ctx context.Context) {
	o.mu.Lock()
	if o.closed || o.ran {
		o.mu.Unlock()
		return
	}
	o.ran = true
	o.runs.Add(1)
	o.mu.Unlock()
	defer o.runs.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(o.stopped, cancel)()
	var wg sync.WaitGroup
	for _, t := range o.targets {
		wg.Go(func() { o.deliver(ctx, t) })
	}
	wg.Wait()
}

// deliver is the loop of one target: start what is due, up to maxInFlight at once, then
// sleep until the next entry is due or something changes.
func (o *Outbox) deliver(ctx context.Context, t *target) {
	var attempts sync.WaitGroup
	defer attempts.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	failures := 0
	for {
		wait := o.poll
		if free := maxInFlight - t.inFlightCount(); free > 0 {
			now := o.now()
			t.forgetReleased()
			items, next, err := o.q.due(ctx, t, now, free)
			// An entry whose attempt ended while the queue was being read may have
			// been read as it was before its outcome was stored (a bbolt
			// transaction, a listing): it is looked at again next time, by a read
			// that sees the outcome, rather than attempted twice.
			items = slices.DeleteFunc(items, func(it item) bool { return t.releasedSince(it.key) })
			switch {
			case err != nil && ctx.Err() == nil:
				o.log.Error("NotifyOutboxError", "notify", t.Name, "error", err)
				failures++
				wait = max(o.poll, min(o.poll<<min(failures, 10), maxErrorWait))
			case err == nil:
				failures = 0
				if !next.IsZero() {
					wait = min(next.Sub(now), o.poll)
				}
			}
			for _, it := range items {
				t.take(it.key)
				attempts.Go(func() { o.attempt(ctx, t, it) })
			}
		}
		timer.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
		case <-timer.C:
		}
	}
}

func (t *target) take(key string) {
	t.mu.Lock()
	t.inFlight[key] = true
	t.mu.Unlock()
}

func (t *target) release(key string) {
	t.mu.Lock()
	delete(t.inFlight, key)
	t.released[key] = true
	t.mu.Unlock()
	t.poke() // a slot is free
}

// forgetReleased starts a new read of the queue: what is released from now on
// ended after the read began (releasedSince).
func (t *target) forgetReleased() {
	t.mu.Lock()
	clear(t.released)
	t.mu.Unlock()
}

// releasedSince reports whether key's attempt ended since forgetReleased.
func (t *target) releasedSince(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.released[key]
}

func (t *target) busy(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inFlight[key]
}

func (t *target) inFlightCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.inFlight)
}

// attempt sends one entry once and records the outcome. The entry stays in flight
// until the outcome is stored, so that the loop never picks up its old schedule.
func (o *Outbox) attempt(ctx context.Context, t *target, it item) {
	defer t.release(it.key)
	err := o.post(ctx, t, it.entry, o.now())
	// The outcome is recorded even if ctx ends now: an answer the app gave is not
	// thrown away, to be sent again.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	log := o.log.With("notify", t.Name, "webhook_id", it.ID, "type", it.Type, "set", it.Set, "upload", it.Upload)
	if err != nil && ctx.Err() != nil {
		// Shutting down: not the receiver's failure. Sent again after the next
		// Open, or by another instance, which release lets take it at once.
		if rerr := o.q.release(wctx, t, it); rerr != nil {
			log.Warn("NotifyOutboxError", "error", rerr, "why", "an attempt cut short by shutdown holds its entry until its claim runs out")
		}
		return
	}
	now := o.now()
	e := it.entry
	e.Attempts++
	deadline := e.Created.Add(t.MaxAge)
	var result string
	var werr error
	switch {
	case err == nil:
		result = "delivered"
		werr = o.q.done(wctx, t, it)
	case !now.Before(deadline):
		result = "dropped"
		werr = o.q.done(wctx, t, it)
	default:
		result = "retried"
		// The last attempt is made at the deadline rather than skipped.
		e.Next = now.Add(o.backoff(e.Attempts))
		if e.Next.After(deadline) {
			e.Next = deadline
		}
		e.LastError = err.Error()
		werr = o.q.reschedule(wctx, t, it, e)
	}
	switch {
	case errors.Is(werr, errClaimLost):
		// The attempt was made, so it counts; what follows is the other instance's.
		log.Warn("NotifyClaimLost", "result", result, "why", "another instance took the entry over after this one's claim ran out; it attempts it again")
	case werr != nil:
		// Nothing changed in the store, so the entry is due again at once: pausing
		// keeps a failing store from turning into a flood of repeated deliveries.
		log.Error("NotifyOutboxError", "error", werr)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
		return
	}
	o.metrics.deliveries.WithLabelValues(t.Name, result).Inc()
	switch result {
	case "delivered":
		log.Debug("NotifyDelivered", "attempts", e.Attempts)
	case "dropped":
		log.Error("NotifyDropped", "attempts", e.Attempts, "age", now.Sub(e.Created).Round(time.Second), "max_age", t.MaxAge, "last_error", err.Error())
	default:
		log.Warn("NotifyFailed", "attempts", e.Attempts, "error", err.Error(), "retry_in", e.Next.Sub(now).Round(time.Millisecond))
	}
}

// post makes one attempt; any answer but 2xx is an error.
func (o *Outbox) post(ctx context.Context, t *target, e entry, at time.Time) error {
	req, err := t.request(ctx, e.ID, at, e.Body)
	if err != nil {
		return err
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return describe(err, t)
	}
	defer resp.Body.Close()
	// Read a little of the answer so that the connection can be reused, not so much
	// that a receiver streaming garbage holds the slot.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

// describe says why a request failed without the URL, whose query may hold the
// app's own token.
func describe(err error, t *target) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if os.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer within the timeout of %s", t.Timeout)
	}
	return err
}
