// Package redislock is a tusd handler.Locker kept in Redis, so that several
// instances of a server can share uploads: a PATCH on one instance and a resume
// of the same upload on another exclude each other, and the newer asks the older
// to stop.
//
// # Leases
//
// A lock is the key <Prefix>lock:<upload id>, set with SET NX PX TTL to a random
// token drawn for each acquisition. The holder renews it every TTL/3 with a script
// that extends the key only while it still holds its token, and Unlock deletes it
// with a script that deletes only its own token. A holder that crashes leaves a key
// that expires after at most TTL.
//
// # Release requests
//
// A caller that finds the key held appends "+" to the holder's token (so the
// request outlives a lost message) and publishes "r:<holder's token>" on the
// channel <Prefix>lock, in the same script that failed to take the key. Every
// Locker keeps one subscription to that channel, on one connection, from its
// first Lock to Close, whatever the number of locks it holds; the holder's Locker
// calls the requestRelease of that lock, which in tusd cancels the request that
// holds it. Every instance hears every message of the prefix: two per contended
// lock, none for an uncontended one. A holder that missed the
// message finds the "+" at its next renewal. Unlock of a key that was asked for
// publishes "u:<upload id>", and the waiters of every instance try again at once;
// they also try again on a backoff of 5 to 100 ms, so that a lost message costs a
// waiter at most 100 ms. A Lock that has not got the key when its context ends
// returns handler.ErrLockTimeout.
//
// # Failing closed
//
// Every call to Redis is bounded by Options.Timeout (1 s, and at most TTL/3). A
// Lock that cannot reach Redis returns ErrUnavailable (503), never a lock it did not
// confirm. A holder whose renewal fails, or finds the key gone or holding another
// token (Redis restarted empty, the lease expired while the process was stalled),
// calls requestRelease at once; its Unlock then deletes nothing and returns nil.
// go-redis applies the deadline of a call to reads and writes only when the client
// has ContextTimeoutEnabled; NewClient makes such a client, with dial, read and
// write timeouts of DefaultTimeout.
//
// # What this does not guarantee
//
// A lease is not a fence. Redis knows nothing of the writes a holder makes to the
// store, so a holder that stalls for longer than the TTL (a GC pause, a frozen VM,
// a network partition from Redis but not from the store) can still be writing when
// its key has expired and another instance has taken it. The holder is told: its
// next renewal, at most TTL/3 plus Timeout after the last one that succeeded,
// fails or finds the key changed, and it calls requestRelease; with Timeout at most
// TTL/3 that is before its lease ends unless the process itself stalls. Stopping
// the writes is then up to the request. A store that must never see two writers
// needs a fencing token it checks itself, which tusd's Locker interface cannot
// carry. Redis replication is asynchronous, so a failover to a replica can lose a
// key that was just set: the same limit as Redis itself. The locker has been
// tested against one Redis server (not Cluster or Sentinel, although it uses one
// key per script and plain PUBLISH, which both allow). It needs Redis 6.0 or
// later (SET KEEPTTL).
package redislock

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tus/tusd/v2/pkg/handler"
)

const (
	// DefaultPrefix starts every key and the channel of a Locker.
	DefaultPrefix = "uploadsets:"
	// DefaultTTL is the lease of a lock that its holder does not renew.
	DefaultTTL = 10 * time.Second
	// DefaultTimeout bounds one call to Redis, and so how long a Lock takes to
	// report that Redis cannot be reached.
	DefaultTimeout = time.Second
)

// ErrUnavailable is what Lock returns when it cannot confirm a lock with Redis:
// the client is told to retry later, never given a lock nobody holds. The error
// Lock returns wraps it and the cause (for logs; errors.Is and errors.As find it),
// and its message names no address.
var ErrUnavailable = handler.NewError("ERR_LOCK_UNAVAILABLE",
	"the upload cannot be locked at the moment, please retry shortly", http.StatusServiceUnavailable)

var errClosed = errors.New("redislock: the locker is closed")

// Options configure a Locker. Only Client is required.
type Options struct {
	// Client reaches Redis. It should honour the deadlines of contexts
	// (ContextTimeoutEnabled, as NewClient's does), or else its own read
	// timeout, not Timeout, bounds a call to a Redis that stopped answering.
	Client redis.UniversalClient
	// Prefix starts the keys and the channel; Lockers that share it share locks.
	// Default DefaultPrefix.
	Prefix string
	// TTL is the lease; it is renewed every TTL/3. Default DefaultTTL.
	TTL time.Duration
	// Timeout bounds one call to Redis. Default DefaultTimeout; never more than
	// TTL/3, so that a holder learns of a failed renewal before its lease ends.
	Timeout time.Duration
}

// Locker hands out locks kept in Redis. Its zero value is not usable: call New.
type Locker struct {
	client  redis.UniversalClient
	prefix  string
	channel string
	ttl     time.Duration
	timeout time.Duration

	mu sync.Mutex
	// holders are the locks of this Locker, by token, from just before their
	// acquisition to their Unlock: a release request names a token.
	holders map[string]*holding
	// waiters wake a Lock waiting for an upload id, when its holder unlocks.
	waiters map[string]map[chan struct{}]struct{}
	sub     *redis.PubSub
	// subscribing is the attempt to subscribe in flight, shared by every Lock
	// that needs it, so that an unreachable Redis costs each of them one Timeout.
	subscribing *attempt
	listened    chan struct{} // closed when the listener returns
	closed      bool
}

type attempt struct {
	done chan struct{}
	err  error
}

// New returns a Locker. It connects on the first Lock.
func New(opts Options) *Locker {
	if opts.Client == nil {
		panic("redislock: Options.Client is nil")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	opts.TTL = max(opts.TTL, 3*time.Millisecond) // PX counts milliseconds; renewal is every TTL/3
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	opts.Timeout = min(opts.Timeout, opts.TTL/3)
	return &Locker{
		client:  opts.Client,
		prefix:  opts.Prefix,
		channel: opts.Prefix + "lock",
		ttl:     opts.TTL,
		timeout: opts.Timeout,
		holders: make(map[string]*holding),
		waiters: make(map[string]map[chan struct{}]struct{}),
	}
}

// NewClient returns a client for a redis:// or rediss:// URL whose dials, reads
// and writes give up after DefaultTimeout unless the URL's query says otherwise
// (dial_timeout=, read_timeout=, write_timeout=), and that honours the deadline
// the Locker sets on each call. It dials once per attempt rather than go-redis's
// five: the command's own retries, within the deadline, cover a dropped
// connection, and a refused one should fail the Lock fast.
func NewClient(rawURL string) (*redis.Client, error) {
	o, err := redis.ParseURL(rawURL)
	if err != nil {
		// url.Error repeats the URL, password and all.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redislock: invalid Redis URL: %w", err)
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultTimeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = DefaultTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultTimeout
	}
	o.DialerRetries = 1
	o.ContextTimeoutEnabled = true
	return redis.NewClient(o), nil
}

// UseIn adds the locker to the composer.
func (l *Locker) UseIn(composer *handler.StoreComposer) {
	composer.UseLocker(l)
}

// NewLock returns an unlocked lock of the upload id.
func (l *Locker) NewLock(id string) (handler.Lock, error) {
	return &lock{locker: l, id: id, key: l.prefix + "lock:" + id}, nil
}

// Close ends the Locker's subscription; a Lock after Close fails with
// ErrUnavailable. Call it after the handler has stopped; it does not unlock the
// locks still held, whose keys expire after TTL. It does not close the client.
func (l *Locker) Close() error {
	l.mu.Lock()
	l.closed = true
	sub, listened := l.sub, l.listened
	l.sub = nil
	l.mu.Unlock()
	if sub == nil {
		return nil
	}
	err := sub.Close()
	<-listened
	return err
}

// subscribe makes sure the Locker's subscription is up, or says why it is not.
// The attempt runs on its own deadline, so that a caller with little time left
// does not fail it for the others.
func (l *Locker) subscribe(ctx context.Context) error {
	l.mu.Lock()
	if l.sub != nil {
		l.mu.Unlock()
		return nil
	}
	if l.closed {
		l.mu.Unlock()
		return errClosed
	}
	a := l.subscribing
	if a == nil {
		a = &attempt{done: make(chan struct{})}
		l.subscribing = a
		go l.trySubscribe(a)
	}
	l.mu.Unlock()
	select {
	case <-a.done:
		return a.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *Locker) trySubscribe(a *attempt) {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	sub := l.client.Subscribe(ctx, l.channel)
	// Lock relies on the subscription only once Redis has confirmed it: a
	// release request published before that would be lost.
	_, err := sub.Receive(ctx)

	l.mu.Lock()
	l.subscribing = nil
	if err == nil && l.closed {
		err = errClosed
	}
	if err == nil {
		l.sub = sub
		l.listened = make(chan struct{})
		go l.listen(sub.ChannelWithSubscriptions(), l.listened)
	}
	a.err = err
	l.mu.Unlock()
	if err != nil {
		_ = sub.Close()
	}
	close(a.done)
}

// listen dispatches the channel's messages until the subscription is closed.
// go-redis resubscribes by itself after a lost connection; what was published
// meanwhile is lost, so every waiter tries again at once (holders find release
// requests at their next renewal).
func (l *Locker) listen(ch <-chan any, done chan<- struct{}) {
	defer close(done)
	for m := range ch {
		switch m := m.(type) {
		case *redis.Message:
			l.dispatch(m.Payload)
		case *redis.Subscription:
			l.wakeAll()
		}
	}
}

func (l *Locker) dispatch(payload string) {
	kind, arg, _ := strings.Cut(payload, ":")
	switch kind {
	case "r": // release request, naming the holder's token
		l.mu.Lock()
		h := l.holders[arg]
		l.mu.Unlock()
		if h != nil {
			h.release()
		}
	case "u": // released, naming the upload
		l.mu.Lock()
		for w := range l.waiters[arg] {
			wake(w)
		}
		l.mu.Unlock()
	}
}

func (l *Locker) wakeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ws := range l.waiters {
		for w := range ws {
			wake(w)
		}
	}
}

// wake never blocks: a waiter that has a wake-up pending needs no second.
func wake(w chan struct{}) {
	select {
	case w <- struct{}{}:
	default:
	}
}

func (l *Locker) hold(token string, h *holding) {
	l.mu.Lock()
	l.holders[token] = h
	l.mu.Unlock()
}

func (l *Locker) drop(token string) {
	l.mu.Lock()
	delete(l.holders, token)
	l.mu.Unlock()
}

func (l *Locker) wait(id string) chan struct{} {
	w := make(chan struct{}, 1)
	l.mu.Lock()
	if l.waiters[id] == nil {
		l.waiters[id] = make(map[chan struct{}]struct{})
	}
	l.waiters[id][w] = struct{}{}
	l.mu.Unlock()
	return w
}

func (l *Locker) unwait(id string, w chan struct{}) {
	l.mu.Lock()
	delete(l.waiters[id], w)
	if len(l.waiters[id]) == 0 {
		delete(l.waiters, id)
	}
	l.mu.Unlock()
}

// holding is what a release request reaches: the requestRelease of one
// acquisition, called once however often it is asked.
type holding struct {
	once           sync.Once
	requestRelease func()
}

func (h *holding) release() {
	h.once.Do(h.requestRelease)
}
