//go:build linux

package s3uploads

import (
	"testing"
	"time"
)

// BenchmarkSmallUpload is one small upload from creation to placement, against
// versitygw on loopback: POST, one PATCH of 64 KiB that completes it, the hooks'
// Record and MarkPlaced. It reports the S3 requests each step makes.
func BenchmarkSmallUpload(b *testing.B) {
	bk := newBucket(b)
	in := bk.instance(b, config{})
	data := randomBytes(64<<10, 13)
	steps := map[string]int64{}
	count := func(step string, f func()) {
		before := in.requests.Load()
		f()
		steps[step] += in.requests.Load() - before
	}
	b.SetBytes(int64(len(data)))
	start := time.Now()
	for b.Loop() {
		var id string
		count("POST", func() { id = in.create(b, len(data)) })
		count("HEAD", func() { in.offset(b, id) })
		count("PATCH", func() { in.mustPatch(b, id, 0, data) })
		count("Record", func() {
			if _, err := in.store.Record(id); err != nil {
				b.Fatal(err)
			}
		})
		count("MarkPlaced", func() {
			if err := in.store.MarkPlaced(id, "photo.jpg", nil); err != nil {
				b.Fatal(err)
			}
		})
	}
	n := float64(b.N)
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/n, "ms/upload")
	var total int64
	for step, r := range steps {
		b.ReportMetric(float64(r)/n, "req-"+step)
		total += r
	}
	b.ReportMetric(float64(total)/n, "req/upload")
}
