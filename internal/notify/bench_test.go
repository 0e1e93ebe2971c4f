package notify

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// cpuTime is the CPU this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func lastTx(o *Outbox) (id int) {
	boltDB(o).View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
	return id
}

// benchPublish runs publishers goroutines that each publish once, all at the same time,
// per iteration, and reports what one call costs: latency percentiles, CPU, and how
// many fsynced commits the calls shared.
func benchPublish(b *testing.B, publishers int) {
	o := open(b, filepath.Join(b.TempDir(), "notify.db"), nil, Target{Name: "app", URL: "http://127.0.0.1:1/", Key: specKey(b)})
	var lat []time.Duration
	var mu sync.Mutex
	tx0, cpu0, n := lastTx(o), cpuTime(b), 0
	for b.Loop() {
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range publishers {
			ev := placed("photos", fmt.Sprint("u", n, "-", i))
			wg.Go(func() {
				<-start
				t0 := time.Now()
				if err := o.Publish(ev); err != nil {
					b.Error(err)
				}
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		n++
	}
	cpu, commits := cpuTime(b)-cpu0, lastTx(o)-tx0
	slices.Sort(lat)
	calls := len(lat)
	b.ReportMetric(float64(lat[calls/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[calls*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(cpu.Microseconds())/float64(calls), "cpu-µs/publish")
	b.ReportMetric(float64(calls)/float64(commits), "publishes/commit")
}

func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprint(n, "-concurrent"), func(b *testing.B) { benchPublish(b, n) })
	}
}
