package redislock_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/internal/redislock"
	"github.com/uploadsets/uploadsets/internal/testsrv"
)

// Generous bounds: a test fails on these only if something is wrong, not slow.
const (
	wait   = 5 * time.Second        // for anything that should happen
	prompt = time.Second            // for what should take a round trip or two
	ttl    = 600 * time.Millisecond // short leases: renewed every 200 ms
)

// newLocker is one instance: a Locker with its own client and connections.
func newLocker(t testing.TB, addr string, opts redislock.Options) *redislock.Locker {
	t.Helper()
	client, err := redislock.NewClient("redis://" + addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Client = client
	l := redislock.New(opts)
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		_ = client.Close()
	})
	return l
}

// rawClient reads and changes the keys behind the lockers' backs.
func rawClient(t testing.TB, srv *testsrv.RedisServer) *redis.Client {
	t.Helper()
	client, err := redislock.NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func newLock(t testing.TB, l *redislock.Locker, id string) handler.Lock {
	t.Helper()
	k, err := l.NewLock(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// released returns a requestRelease and what it closes.
func released() (func(), <-chan struct{}) {
	ch := make(chan struct{})
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }, ch
}

func noRelease() {}

func lockNow(t testing.TB, k handler.Lock, requestRelease func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := k.Lock(ctx, requestRelease); err != nil {
		t.Fatalf("Lock: %v", err)
	}
}

func unlock(t testing.TB, k handler.Lock) {
	t.Helper()
	if err := k.Unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
}

func within[T any](t testing.TB, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s: not within %v", what, d)
		panic("unreachable")
	}
}

// lockAsync starts a Lock and returns where its result arrives.
func lockAsync(k handler.Lock, timeout time.Duration, requestRelease func()) <-chan error {
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		got <- k.Lock(ctx, requestRelease)
	}()
	return got
}

// assertHeld checks that nobody else can take id for a short while.
func assertHeld(t testing.TB, l *redislock.Locker, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	k := newLock(t, l, id)
	if err := k.Lock(ctx, noRelease); !errors.Is(err, handler.ErrLockTimeout) {
		if err == nil {
			_ = k.Unlock()
		}
		t.Fatalf("Lock of a held lock: %v, want ErrLockTimeout", err)
	}
}

func TestSecondInstanceWaitsForUnlock(t *testing.T) {
	srv := testsrv.Redis(t)
	a := newLocker(t, srv.Addr(), redislock.Options{})
	b := newLocker(t, srv.Addr(), redislock.Options{})

	first := newLock(t, a, "upload")
	release, asked := released()
	lockNow(t, first, release)

	second := newLock(t, b, "upload")
	got := lockAsync(second, wait, noRelease)
	within(t, asked, wait, "release request")
	select {
	case err := <-got:
		t.Fatalf("second Lock returned (%v) while the first held the lock", err)
	default:
	}

	unlocked := time.Now()
	unlock(t, first)
	if err := within(t, got, wait, "second Lock"); err != nil {
		t.Fatalf("second Lock: %v", err)
	}
	if d := time.Since(unlocked); d > prompt {
		t.Errorf("second Lock took %v after Unlock, want well under %v", d, prompt)
	} else {
		t.Logf("second Lock acquired %v after the first unlocked", d)
	}
	assertHeld(t, a, "upload")
	unlock(t, second)
}

func TestManyGoroutinesNeverInterleave(t *testing.T) {
	srv := testsrv.Redis(t)
	lockers := []*redislock.Locker{
		newLocker(t, srv.Addr(), redislock.Options{}),
		newLocker(t, srv.Addr(), redislock.Options{}),
	}
	const goroutines, rounds = 8, 25
	var (
		counter int // not atomic: the lock is what protects it
		inside  atomic.Int32
		wg      sync.WaitGroup
		errs    = make(chan error, goroutines)
	)
	for g := range goroutines {
		wg.Go(func() {
			l := lockers[g%len(lockers)]
			for range rounds {
				k, _ := l.NewLock("counted")
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				err := k.Lock(ctx, noRelease)
				cancel()
				if err != nil {
					errs <- err
					return
				}
				if n := inside.Add(1); n != 1 {
					t.Errorf("%d holders at once", n)
				}
				c := counter
				runtime.Gosched()
				counter = c + 1
				inside.Add(-1)
				if err := k.Unlock(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if counter != goroutines*rounds {
		t.Errorf("counter = %d, want %d", counter, goroutines*rounds)
	}
}

func TestReleaseRequestReachesHolder(t *testing.T) {
	srv := testsrv.Redis(t)
	a := newLocker(t, srv.Addr(), redislock.Options{})
	b := newLocker(t, srv.Addr(), redislock.Options{})
	// B's subscription is up already, as on a running instance.
	warm := newLock(t, b, "other")
	lockNow(t, warm, noRelease)
	unlock(t, warm)

	holder := newLock(t, a, "upload")
	release, asked := released()
	lockNow(t, holder, release)

	waiter := newLock(t, b, "upload")
	start := time.Now()
	got := lockAsync(waiter, wait, noRelease)
	within(t, asked, wait, "release request")
	if d := time.Since(start); d > prompt {
		t.Errorf("release request took %v, want well under %v", d, prompt)
	} else {
		t.Logf("release request reached the holder in %v", d)
	}

	unlocked := time.Now()
	unlock(t, holder)
	if err := within(t, got, wait, "waiter's Lock"); err != nil {
		t.Fatalf("waiter's Lock: %v", err)
	}
	if d := time.Since(unlocked); d > prompt {
		t.Errorf("waiter acquired %v after Unlock, want well under %v", d, prompt)
	} else {
		t.Logf("waiter acquired %v after Unlock", d)
	}
	assertHeld(t, a, "upload")
	unlock(t, waiter)
}

// A release request whose message was lost (the holder's subscription was
// reconnecting) still reaches the holder, through the marker in the key.
func TestReleaseRequestWithoutMessage(t *testing.T) {
	srv := testsrv.Redis(t)
	raw := rawClient(t, srv)
	a := newLocker(t, srv.Addr(), redislock.Options{TTL: ttl})
	holder := newLock(t, a, "upload")
	release, asked := released()
	lockNow(t, holder, release)

	key := redislock.DefaultPrefix + "lock:upload"
	ctx := context.Background()
	token, err := raw.Get(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Set(ctx, key, token+"+", redis.KeepTTL).Err(); err != nil {
		t.Fatal(err)
	}
	within(t, asked, wait, "requestRelease from the marker")
	unlock(t, holder)
	if n, err := raw.Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Errorf("after Unlock EXISTS = %d, %v; want 0", n, err)
	}
}

// A holder that died without unlocking blocks the upload for at most a TTL.
func TestCrashedHolderExpires(t *testing.T) {
	srv := testsrv.Redis(t)
	raw := rawClient(t, srv)
	l := newLocker(t, srv.Addr(), redislock.Options{TTL: ttl})
	key := redislock.DefaultPrefix + "lock:upload"
	if err := raw.Set(context.Background(), key, "crashed-holder", ttl).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	k := newLock(t, l, "upload")
	lockNow(t, k, noRelease)
	if d := time.Since(start); d > ttl+prompt {
		t.Errorf("Lock took %v, want about the %v left of the dead lease", d, ttl)
	}
	unlock(t, k)
}

func TestTimeoutWhenHolderNeverReleases(t *testing.T) {
	srv := testsrv.Redis(t)
	a := newLocker(t, srv.Addr(), redislock.Options{})
	b := newLocker(t, srv.Addr(), redislock.Options{})
	holder := newLock(t, a, "upload")
	lockNow(t, holder, noRelease)
	defer unlock(t, holder)

	const timeout = 300 * time.Millisecond
	start := time.Now()
	err := within(t, lockAsync(newLock(t, b, "upload"), timeout, noRelease), wait, "Lock")
	if !errors.Is(err, handler.ErrLockTimeout) {
		t.Fatalf("Lock = %v, want ErrLockTimeout", err)
	}
	if d := time.Since(start); d < timeout || d > timeout+prompt {
		t.Errorf("Lock gave up after %v, want about %v", d, timeout)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := newLock(t, b, "upload").Lock(ctx, noRelease); !errors.Is(err, handler.ErrLockTimeout) {
		t.Errorf("Lock with a done context = %v, want ErrLockTimeout", err)
	}
}

func TestRenewalKeepsLockPastTTL(t *testing.T) {
	srv := testsrv.Redis(t)
	raw := rawClient(t, srv)
	a := newLocker(t, srv.Addr(), redislock.Options{TTL: ttl})
	b := newLocker(t, srv.Addr(), redislock.Options{TTL: ttl})
	holder := newLock(t, a, "upload")
	release, asked := released()
	lockNow(t, holder, release)

	// Watch the lease for four TTLs: it must never lapse, and nobody asks.
	ctx := context.Background()
	for end := time.Now().Add(4 * ttl); time.Now().Before(end); {
		if n, err := raw.Exists(ctx, redislock.DefaultPrefix+"lock:upload").Result(); err != nil || n != 1 {
			t.Fatalf("lease lapsed: EXISTS = %d, %v", n, err)
		}
		select {
		case <-asked:
			t.Fatal("requestRelease called with nobody asking")
		case <-time.After(50 * time.Millisecond):
		}
	}
	assertHeld(t, b, "upload")
	within(t, asked, wait, "release request")
	unlock(t, holder)
}

func TestLostLeaseRequestsRelease(t *testing.T) {
	tests := map[string]func(t *testing.T, srv *testsrv.RedisServer, raw *redis.Client){
		"FLUSHALL": func(t *testing.T, _ *testsrv.RedisServer, raw *redis.Client) {
			if err := raw.FlushAll(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
		},
		"redis restarted empty": func(t *testing.T, srv *testsrv.RedisServer, _ *redis.Client) {
			srv.Stop()
			srv.Start()
		},
	}
	for name, lose := range tests {
		t.Run(name, func(t *testing.T) {
			srv := testsrv.Redis(t)
			raw := rawClient(t, srv)
			a := newLocker(t, srv.Addr(), redislock.Options{TTL: ttl})
			b := newLocker(t, srv.Addr(), redislock.Options{TTL: ttl})
			holder := newLock(t, a, "upload")
			release, asked := released()
			lockNow(t, holder, release)

			lost := time.Now()
			lose(t, srv, raw)
			within(t, asked, wait, "requestRelease after the key vanished")
			t.Logf("holder asked to release %v after the key vanished (renewal every %v)", time.Since(lost), ttl/3)

			// Another instance takes the lock, as soon as Redis answers again.
			next := newLock(t, b, "upload")
			for deadline := time.Now().Add(wait); ; {
				ctx, cancel := context.WithTimeout(context.Background(), prompt)
				err := next.Lock(ctx, noRelease)
				cancel()
				if err == nil {
					break
				}
				if !errors.Is(err, redislock.ErrUnavailable) || time.Now().After(deadline) {
					t.Fatalf("Lock after the lease was lost: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			// The old holder's Unlock finds nothing of its own to delete.
			unlock(t, holder)
			assertHeld(t, a, "upload")
			unlock(t, next)
		})
	}
}

func TestUnlockNeverDeletesAnotherToken(t *testing.T) {
	for _, other := range []string{"another-holder", "another-holder+"} {
		t.Run(other, func(t *testing.T) {
			srv := testsrv.Redis(t)
			raw := rawClient(t, srv)
			a := newLocker(t, srv.Addr(), redislock.Options{TTL: ttl})
			holder := newLock(t, a, "upload")
			release, asked := released()
			lockNow(t, holder, release)

			// The lease expired while the holder stalled, and another took it.
			key := redislock.DefaultPrefix + "lock:upload"
			ctx := context.Background()
			if err := raw.Set(ctx, key, other, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			within(t, asked, wait, "requestRelease after the key changed hands")
			unlock(t, holder)
			if v, err := raw.Get(ctx, key).Result(); err != nil || v != other {
				t.Errorf("after Unlock the key is %q, %v; want %q untouched", v, err, other)
			}
		})
	}
}

func TestRedisStoppedFailsClosed(t *testing.T) {
	tests := map[string]bool{"never connected": false, "was connected": true}
	for name, connected := range tests {
		t.Run(name, func(t *testing.T) {
			srv := testsrv.Redis(t)
			l := newLocker(t, srv.Addr(), redislock.Options{})
			if connected {
				k := newLock(t, l, "upload")
				lockNow(t, k, noRelease)
				unlock(t, k)
			}
			srv.Stop()

			start := time.Now()
			err := within(t, lockAsync(newLock(t, l, "upload"), 20*time.Second, noRelease), wait, "Lock")
			assertUnavailable(t, err, srv.Addr())
			if d := time.Since(start); d > redislock.DefaultTimeout+prompt {
				t.Errorf("Lock failed after %v, want within about %v", d, redislock.DefaultTimeout)
			} else {
				t.Logf("Lock failed after %v", d)
			}

			srv.Start()
			k := newLock(t, l, "upload")
			for deadline := time.Now().Add(wait); ; {
				ctx, cancel := context.WithTimeout(context.Background(), prompt)
				err := k.Lock(ctx, noRelease)
				cancel()
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("Lock after Redis came back: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			unlock(t, k)
		})
	}
}

// A Redis that accepts connections and never answers: the Lock must still
// fail within the client's timeouts, not the caller's.
func TestRedisSilentFailsClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		conns.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(wait))
				buf := make([]byte, 1<<16)
				for { // read and never answer, until the client gives up
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			})
		}
	}()

	l := newLocker(t, ln.Addr().String(), redislock.Options{Timeout: 300 * time.Millisecond})
	start := time.Now()
	err = within(t, lockAsync(newLock(t, l, "upload"), 20*time.Second, noRelease), wait, "Lock")
	assertUnavailable(t, err, ln.Addr().String())
	if d := time.Since(start); d > redislock.DefaultTimeout+prompt {
		t.Errorf("Lock failed after %v, want within about %v", d, redislock.DefaultTimeout)
	} else {
		t.Logf("Lock failed after %v", d)
	}
}

func assertUnavailable(t *testing.T, err error, addr string) {
	t.Helper()
	var herr handler.Error
	if !errors.As(err, &herr) {
		t.Fatalf("Lock = %v, want a handler.Error", err)
	}
	if herr.HTTPResponse.StatusCode != http.StatusServiceUnavailable || herr.ErrorCode != "ERR_LOCK_UNAVAILABLE" {
		t.Errorf("Lock = %d %s, want 503 ERR_LOCK_UNAVAILABLE", herr.HTTPResponse.StatusCode, herr.ErrorCode)
	}
	if !errors.Is(err, redislock.ErrUnavailable) {
		t.Errorf("errors.Is(%v, ErrUnavailable) = false", err)
	}
	_, port, _ := net.SplitHostPort(addr)
	if body := herr.HTTPResponse.Body; strings.Contains(body, "127.0.0.1") || strings.Contains(body, port) {
		t.Errorf("response body names the address: %q", body)
	}
}

func TestLockAfterClose(t *testing.T) {
	srv := testsrv.Redis(t)
	l := newLocker(t, srv.Addr(), redislock.Options{})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	err := newLock(t, l, "upload").Lock(context.Background(), noRelease)
	if !errors.Is(err, redislock.ErrUnavailable) {
		t.Fatalf("Lock after Close = %v, want ErrUnavailable", err)
	}
}

// BenchmarkLockUnlock is one uncontended Lock and Unlock, on one instance,
// against a redis-server on loopback: two round trips.
func BenchmarkLockUnlock(b *testing.B) {
	srv := testsrv.Redis(b)
	l := newLocker(b, srv.Addr(), redislock.Options{})
	ctx := context.Background()
	pair := func() {
		k, _ := l.NewLock("bench")
		if err := k.Lock(ctx, noRelease); err != nil {
			b.Fatal(err)
		}
		if err := k.Unlock(); err != nil {
			b.Fatal(err)
		}
	}
	pair() // subscribes
	var took []time.Duration
	for b.Loop() {
		start := time.Now()
		pair()
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns")
}
