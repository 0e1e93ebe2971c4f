package durable

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Concurrent callers share fsyncs, never run two at once on one directory, and none
// returns before an fsync that started after its call has ended.
func TestSyncDirSharesFsyncs(t *testing.T) {
	dir := t.TempDir()
	var fsyncs, inFlight, overlaps atomic.Int32
	var last atomic.Int64 // when the latest fsync started
	fsync = func(d string) error {
		if inFlight.Add(1) > 1 {
			overlaps.Add(1)
		}
		fsyncs.Add(1)
		last.Store(time.Now().UnixNano())
		time.Sleep(2 * time.Millisecond) // a disk's time
		err := fsyncDir(d)
		inFlight.Add(-1)
		return err
	}
	t.Cleanup(func() { fsync = fsyncDir })

	const callers = 200
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			called := time.Now().UnixNano()
			if err := SyncDir(dir); err != nil {
				t.Error(err)
			}
			if last.Load() < called {
				t.Error("SyncDir returned without an fsync that started after the call")
			}
		})
	}
	wg.Wait()
	if n := overlaps.Load(); n > 0 {
		t.Errorf("%d fsyncs of one directory ran at once", n)
	}
	if n := fsyncs.Load(); n == 0 || n > callers/4 {
		t.Errorf("%d fsyncs for %d concurrent callers: they were not shared", n, callers)
	}
	t.Logf("%d callers, %d fsyncs", callers, fsyncs.Load())

	if err := SyncDir(dir + "/missing"); err == nil {
		t.Error("SyncDir of a missing directory succeeded")
	}
}
