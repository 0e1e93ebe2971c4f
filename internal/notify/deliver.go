package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"sync"
	"time"
)

const (
	// maxInFlight bounds, per target, the requests open and the entries held in memory:
	// a dead receiver with a million events waiting costs this many entries, and as
	// many deliveries to a quick one share a commit of the outbox.
	maxInFlight = 16
	maxBackoff  = 5 * time.Minute
	// idle is how long a loop with nothing due sleeps before looking again anyway;
	// Publish and finished attempts wake it sooner.
	idle = time.Minute
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
	for {
		wait := idle
		if free := maxInFlight - t.inFlightCount(); free > 0 {
			now := o.now()
			items, next, err := o.due(t, now, free)
			switch {
			case err != nil:
				o.log.Error("NotifyOutboxError", "notify", t.Name, "error", err)
			case !next.IsZero():
				wait = next.Sub(now)
			}
			for _, it := range items {
				t.take(it.seq)
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

func (t *target) take(seq uint64) {
	t.mu.Lock()
	t.inFlight[seq] = true
	t.mu.Unlock()
}

func (t *target) release(seq uint64) {
	t.mu.Lock()
	delete(t.inFlight, seq)
	t.mu.Unlock()
	t.poke() // a slot is free
}

func (t *target) busy(seq uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inFlight[seq]
}

func (t *target) inFlightCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.inFlight)
}

// attempt sends one entry once and records the outcome. The entry stays in flight
// until the outcome is on disk, so that the loop never picks up its old schedule.
func (o *Outbox) attempt(ctx context.Context, t *target, it item) {
	defer t.release(it.seq)
	err := o.post(ctx, t, it.entry, o.now())
	if ctx.Err() != nil {
		return // shutting down: not the receiver's failure; sent again after the next Open
	}
	now := o.now()
	log := o.log.With("notify", t.Name, "webhook_id", it.ID, "type", it.Type, "set", it.Set, "upload", it.Upload)
	old := it.Next
	it.Attempts++
	deadline := it.Created.Add(t.MaxAge)
	var result string
	var werr error
	switch {
	case err == nil:
		result = "delivered"
		werr = o.done(t, it)
	case !now.Before(deadline):
		result = "dropped"
		werr = o.done(t, it)
	default:
		result = "retried"
		// The last attempt is made at the deadline rather than skipped.
		it.Next = now.Add(o.backoff(it.Attempts))
		if it.Next.After(deadline) {
			it.Next = deadline
		}
		it.LastError = err.Error()
		werr = o.reschedule(t, it, old)
	}
	if werr != nil {
		// Nothing changed on disk, so the entry is due again at once: pausing keeps a
		// failing disk from turning into a flood of repeated deliveries.
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
		t.pending.Add(-1)
		log.Debug("NotifyDelivered", "attempts", it.Attempts)
	case "dropped":
		t.pending.Add(-1)
		log.Error("NotifyDropped", "attempts", it.Attempts, "age", now.Sub(it.Created).Round(time.Second), "max_age", t.MaxAge, "last_error", err.Error())
	default:
		log.Warn("NotifyFailed", "attempts", it.Attempts, "error", err.Error(), "retry_in", it.Next.Sub(now).Round(time.Millisecond))
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
