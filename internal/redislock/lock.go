package redislock

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tus/tusd/v2/pkg/handler"
)

// The waiters' backoff: short, because the "released" message makes the wait
// short whenever it arrives, and bounded, because it may not.
const (
	minRetry = 5 * time.Millisecond
	maxRetry = 100 * time.Millisecond
)

// Results of the scripts.
const (
	lost   = 0 // the key is gone or holds another token
	held   = 1 // the key holds our token
	asked  = 2 // the key holds our token, and somebody asked for it
	marker = "+"
)

// acquire takes the key with SET NX PX. Failing that, it accepts the key if it
// already holds our token: go-redis retries a call whose reply was lost, and the
// retry of a SET NX that took the key would otherwise find it held by "someone".
// Failing that too, it asks the holder to release, in the key (the marker, for
// the holder's next renewal) and on the channel (for now).
//
// KEYS[1] key; ARGV[1] token, ARGV[2] TTL in ms, ARGV[3] channel.
var acquire = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
	return 1
end
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] or v == ARGV[1] .. '+' then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
	return 1
end
local holder = v
if string.sub(v, -1) == '+' then
	holder = string.sub(v, 1, -2)
else
	redis.call('SET', KEYS[1], v .. '+', 'KEEPTTL')
end
redis.call('PUBLISH', ARGV[3], 'r:' .. holder)
return 0
`)

// renew extends the lease while the key holds our token, and says whether
// somebody asked for it.
//
// KEYS[1] key; ARGV[1] token, ARGV[2] TTL in ms.
var renew = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
	return 1
end
if v == ARGV[1] .. '+' then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
	return 2
end
return 0
`)

// release deletes the key if it holds our token, and tells the waiters if
// somebody asked for it.
//
// KEYS[1] key; ARGV[1] token, ARGV[2] channel, ARGV[3] the "released" message.
var release = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
	redis.call('DEL', KEYS[1])
	return 1
end
if v == ARGV[1] .. '+' then
	redis.call('DEL', KEYS[1])
	redis.call('PUBLISH', ARGV[2], ARGV[3])
	return 1
end
return 0
`)

// errLocked is a programming error: tusd locks each lock once.
var errLocked = errors.New("redislock: Lock of a lock already held")

type lock struct {
	locker *Locker
	id     string
	key    string

	// mu guards what Lock hands to Unlock: tusd calls both from one goroutine,
	// but nothing forces a caller to.
	mu    sync.Mutex
	token string // "" while not held
	stop  context.CancelFunc
	done  chan struct{} // closed when the renewal has stopped
}

// Lock takes the lock, asking its holder to release it for as long as ctx
// allows. requestRelease is called, once, from the Locker's listener or the
// renewal, when another caller asks for the lock or the lease cannot be
// confirmed; it should return quickly (tusd's cancels a context).
func (k *lock) Lock(ctx context.Context, requestRelease func()) error {
	l := k.locker
	if ctx.Err() != nil {
		return handler.ErrLockTimeout
	}
	k.mu.Lock()
	again := k.token != ""
	k.mu.Unlock()
	if again {
		return errLocked
	}
	if requestRelease == nil {
		requestRelease = func() {}
	}
	// Registered before the first attempt: a release request can reach the
	// token as soon as the key holds it, before the reply reaches us.
	token := rand.Text()
	h := &holding{requestRelease: requestRelease}
	l.hold(token, h)
	w := l.wait(k.id)
	defer l.unwait(k.id, w)

	if err := l.subscribe(ctx); err != nil {
		l.drop(token)
		return failed(ctx, err)
	}
	delay := minRetry
	for {
		n, err := l.run(ctx, acquire, k.key, token, l.ttl.Milliseconds(), l.channel)
		if err != nil {
			l.drop(token)
			l.abandon(err, k.id, k.key, token)
			return failed(ctx, err)
		}
		if n == held {
			break
		}
		t := time.NewTimer(delay/2 + mathrand.N(delay/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			l.drop(token)
			return handler.ErrLockTimeout
		case <-w:
			t.Stop()
		case <-t.C:
		}
		delay = min(2*delay, maxRetry)
	}

	renewing, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	k.mu.Lock()
	k.token, k.stop, k.done = token, stop, done
	k.mu.Unlock()
	go k.renew(renewing, token, h, done)
	return nil
}

// renew keeps the lease until Unlock stops it. A renewal that fails or finds
// the key changed asks the holder to release: the lock can no longer be
// confirmed, so the request must stop writing. After a failure it keeps trying,
// so that the key, if still ours, lasts until Unlock deletes it.
func (k *lock) renew(ctx context.Context, token string, h *holding, done chan<- struct{}) {
	defer close(done)
	l := k.locker
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := l.run(ctx, renew, k.key, token, l.ttl.Milliseconds())
		switch {
		case ctx.Err() != nil:
			return
		case err != nil, n == asked:
			h.release()
		case n == lost:
			h.release()
			return
		}
	}
}

// Unlock releases the lock. A lock that was not held, or whose key is gone or
// holds another token, has nothing to release: that is not an error.
func (k *lock) Unlock() error {
	k.mu.Lock()
	token, stop, done := k.token, k.stop, k.done
	k.token = ""
	k.mu.Unlock()
	if token == "" {
		return nil
	}
	stop()
	<-done
	l := k.locker
	l.drop(token)
	if _, err := l.run(context.Background(), release, k.key, token, l.channel, "u:"+k.id); err != nil {
		// The key, if still ours, expires within TTL.
		return fmt.Errorf("%w: unlock: %w", ErrUnavailable, err)
	}
	return nil
}

// run runs a script within Timeout and returns its integer result.
func (l *Locker) run(ctx context.Context, s *redis.Script, key string, args ...any) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	return s.Run(ctx, l.client, []string{key}, args...).Int64()
}

// abandon deletes the key if a failed acquire took it after all (its reply
// was lost, or came too late), so that it does not block the upload for a TTL.
// A refused dial or a closed client sent nothing.
func (l *Locker) abandon(err error, id, key, token string) {
	var op *net.OpError
	if (errors.As(err, &op) && op.Op == "dial") || errors.Is(err, redis.ErrClosed) {
		return
	}
	go func() {
		_, _ = l.run(context.Background(), release, key, token, l.channel, "u:"+id)
	}()
}

// failed is the error of a Lock that could not reach Redis: a timeout if the
// caller's context ended first, else ErrUnavailable.
func failed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return handler.ErrLockTimeout
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
