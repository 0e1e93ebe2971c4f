package server

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"
)

// The lock hand-off and shutdown both need to end a request that is still reading
// its body. tusd does it by cancelling the request's context, and in tusd v2.10.1 that
// path reads the request's body reader without synchronisation (the race detector
// reports it; tus/tusd#1192). Here a request is cut instead the way a dead network
// cuts it: its connection gets a read deadline in the past. tusd stores the bytes
// read so far and ends the request, exactly as for a network timeout.

type cutKey struct{}

// cutter ends one request's body read; tusd resets the deadline after every read
// that returns data, so it is applied until the request lets go.
type cutter struct {
	rc *http.ResponseController
	by atomic.Int32 // why it was cut, if it was
}

// Why a request was cut: tusd sees a read timeout either way, and the response (and
// the log) should say what really happened.
const (
	notCut int32 = iota
	cutByHandoff
	cutByShutdown
)

func (c *cutter) cut(by int32) {
	c.by.CompareAndSwap(notCut, by)
	c.rc.SetReadDeadline(time.Now())
}

// cutUntil applies c until done is closed or a second has passed.
func (c *cutter) cutUntil(done <-chan struct{}) {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for range 500 {
		select {
		case <-done:
			return
		default:
		}
		c.cut(cutByHandoff)
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// withCutter makes a request cuttable by the lock hand-off. w must be the server's
// own writer (or one that unwraps to it).
func withCutter(w http.ResponseWriter, r *http.Request) (*http.Request, *cutter) {
	c := &cutter{rc: http.NewResponseController(w)}
	return r.WithContext(context.WithValue(r.Context(), cutKey{}, c)), c
}

// handoffLocker is tusd's in-process locker with the prompt hand-off done by cutting
// the holder's body read: a client resuming right after a dropped connection gets the
// upload within a few milliseconds, not after a lock timeout.
type handoffLocker struct {
	inner handler.Locker
	// failed, when set, is told why a lock could not be had (other than a timeout):
	// Redis out of reach, which the operator must hear of.
	failed func(error)
}

func (l handoffLocker) NewLock(id string) (handler.Lock, error) {
	inner, err := l.inner.NewLock(id)
	if err != nil {
		return nil, err
	}
	return &handoffLock{inner: inner, failed: l.failed}, nil
}

type handoffLock struct {
	inner    handler.Lock
	failed   func(error)
	released chan struct{} // closed by Unlock
}

// Lock ignores tusd's requestRelease (the context cancellation above) and offers the
// inner lock a release that cuts this request instead.
func (l *handoffLock) Lock(ctx context.Context, _ func()) error {
	released := make(chan struct{})
	l.released = released
	c, _ := ctx.Value(cutKey{}).(*cutter)
	var once sync.Once
	release := func() {
		if c != nil {
			once.Do(func() { go c.cutUntil(released) })
		}
	}
	err := l.inner.Lock(ctx, release)
	if err != nil && l.failed != nil && !errors.Is(err, handler.ErrLockTimeout) {
		l.failed(err)
	}
	return err
}

func (l *handoffLock) Unlock() error {
	close(l.released)
	return l.inner.Unlock()
}

// inFlight is the set of requests that may be reading an upload body, for shutdown
// to cut.
type inFlight struct {
	mu   sync.Mutex
	reqs map[*cutter]struct{}
}

func (f *inFlight) add(c *cutter) {
	f.mu.Lock()
	if f.reqs == nil {
		f.reqs = map[*cutter]struct{}{}
	}
	f.reqs[c] = struct{}{}
	f.mu.Unlock()
}

func (f *inFlight) remove(c *cutter) {
	f.mu.Lock()
	delete(f.reqs, c)
	f.mu.Unlock()
}

// cutAll cuts every request in flight until done is closed.
func (f *inFlight) cutAll(done <-chan struct{}) {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		f.mu.Lock()
		for c := range f.reqs {
			c.cut(cutByShutdown)
		}
		f.mu.Unlock()
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}
