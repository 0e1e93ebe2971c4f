package main

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"slices"
	"time"
)

// The S3 cases: each server stores in a versitygw of its own (s3.go), uploadsets
// with its redis block. s3-large is caseLarge on S3 (it reads the helpers' CPU when
// the server has them); s3-small is caseS3Small on one server; s3-lock is
// caseS3Small on two uploadsets at once, with and without the redis block.

// s3Small is an S3 small-upload workload: n uploads of size bytes per server by
// workers concurrent clients, each a POST, a HEAD when head is set, and one PATCH
// with the body; then, when serial > 0, serial more per server, one at a time,
// each with serialHeads HEADs before its PATCH (a HEAD is a third of the time of
// a PATCH and takes the lock as well: more samples of the lock's cost for the
// time). Every HEAD and PATCH is timed in the client, from the request being
// sent to its response read.
type s3Small struct {
	n, workers, serial int
	size               int64
	head               bool
	serialHeads        int
}

// caseS3Small runs w on the servers, which take turns upload by upload: in the
// concurrent batch upload i goes to server i mod k, so that at any moment about as
// many are in flight on each; one at a time, each round of k uploads visits every
// server once, in an order that rotates from round to round. Per server (metric
// keys under its prefix): its CPU over the batch per upload, redis-server's when it
// has a Redis, and p50/p99 of the PATCHes (and HEADs) of the batch and of the
// serial uploads. versitygw's CPU per upload and uploads/s are of all the servers
// together (under the first prefix's case, see the callers). Every placed object
// must have the size.
func caseS3Small(ctx context.Context, servers []*server, w s3Small, prefixes []string) (metrics, error) {
	k := len(servers)
	clients := make([]*tusClient, k)
	for j, s := range servers {
		clients[j] = &tusClient{hc: &http.Client{Transport: newTransport(2 * w.workers)}, endpoint: s.endpoint}
		defer clients[j].hc.CloseIdleConnections()
	}
	// one uploads to server j with nHeads HEADs before the PATCH.
	one := func(j int, name string, nHeads int) (string, []time.Duration, time.Duration, error) {
		c, s := clients[j], servers[j]
		cr, err := c.create(ctx, w.size, name, nil, 0)
		if err != nil {
			return "", nil, 0, err
		}
		var heads []time.Duration
		for range nHeads {
			t0 := time.Now()
			off, err := c.head(ctx, cr.url)
			heads = append(heads, time.Since(t0))
			if err != nil {
				return "", nil, 0, err
			}
			if off != 0 {
				return "", nil, 0, fmt.Errorf("HEAD of a new upload: offset %d", off)
			}
		}
		t0 := time.Now()
		off, fname, _, err := c.patch(ctx, cr.url, 0, &gen{0, w.size}, w.size)
		patch := time.Since(t0)
		if err != nil {
			return "", nil, 0, err
		}
		if off != w.size {
			return "", nil, 0, fmt.Errorf("PATCH: offset %d, want %d", off, w.size)
		}
		return s.finalPath(cr.id, fname), heads, patch, nil
	}
	nHeads := 0
	if w.head {
		nHeads = 1
	}
	// Warm-up: one upload per worker on each server, which also opens the
	// keep-alive connections (and, with Redis, the locker's connections and
	// subscription).
	if err := runWorkers(ctx, w.workers*k, w.workers, func(i int) (string, error) {
		p, _, _, err := one(i%k, fmt.Sprintf("w-%d.bin", i), nHeads)
		return p, err
	}); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}

	total := w.n * k
	paths := make([]string, total)
	heads := make([]time.Duration, total) // 0 without HEADs
	patches := make([]time.Duration, total)
	cpu0 := make([]time.Duration, k)
	for j, s := range servers {
		cpu0[j], _ = s.cpu()
	}
	side := servers[0].s3 // all on one versitygw
	gw0, rd0 := side.cpu()
	req0, cmd0 := side.requests(), side.redisCommands()
	t0 := time.Now()
	err := runWorkers(ctx, total, w.workers, func(i int) (string, error) {
		p, h, pt, err := one(i%k, fmt.Sprintf("f-%d.bin", i), nHeads)
		paths[i], patches[i] = p, pt
		if len(h) > 0 {
			heads[i] = h[0]
		}
		return p, err
	})
	wall := time.Since(t0)
	cpu1 := make([]time.Duration, k)
	for j, s := range servers {
		cpu1[j], _ = s.cpu()
	}
	gw1, rd1 := side.cpu()
	req1 := side.requests()          // a line or two short at most: versitygw logs after answering
	cmd1 := side.redisCommands() - 1 // not the INFO of cmd0
	if err != nil {
		return nil, err
	}
	per := func(d time.Duration, n int) float64 { return float64(d.Microseconds()) / 1000 / float64(n) }
	of := func(ds []time.Duration, j int) []time.Duration { // server j's share
		var out []time.Duration
		for i := j; i < len(ds); i += k {
			out = append(out, ds[i])
		}
		return out
	}
	m := metrics{
		prefixes[0] + ".gw_cpu_ms": per(gw1-gw0, total),
		prefixes[0] + ".ups":       float64(total) / wall.Seconds(),
		prefixes[0] + ".s3_req":    float64(req1-req0) / float64(total),
	}
	for j, p := range prefixes {
		m[p+".cpu_ms"] = per(cpu1[j]-cpu0[j], w.n)
		if side.redis != nil && servers[j].usesRedis {
			m[p+".redis_cpu_ms"] = per(rd1-rd0, w.n)
			m[p+".redis_cmds"] = float64(cmd1-cmd0) / float64(w.n)
		}
		m[p+".patch_p50_ms"] = ms(percentile(of(patches, j), 50))
		m[p+".patch_p99_ms"] = ms(percentile(of(patches, j), 99))
		if w.head {
			m[p+".head_p50_ms"] = ms(percentile(of(heads, j), 50))
			m[p+".head_p99_ms"] = ms(percentile(of(heads, j), 99))
		}
	}

	if w.serial > 0 {
		sHeads := make([][]time.Duration, k)
		sPatches := make([][]time.Duration, k)
		for i := range w.serial * k {
			if ctx.Err() != nil {
				return m, ctx.Err()
			}
			j := (i%k + i/k) % k
			pth, h, pt, err := one(j, fmt.Sprintf("s-%d.bin", i), w.serialHeads)
			if err != nil {
				return m, fmt.Errorf("serial upload %d: %w", i, err)
			}
			paths = append(paths, pth)
			sHeads[j], sPatches[j] = append(sHeads[j], h...), append(sPatches[j], pt)
		}
		for j, p := range prefixes {
			m[p+".serial_patch_p50_ms"] = ms(percentile(sPatches[j], 50))
			m[p+".serial_patch_p99_ms"] = ms(percentile(sPatches[j], 99))
			if w.serialHeads > 0 {
				m[p+".serial_head_p50_ms"] = ms(percentile(sHeads[j], 50))
				m[p+".serial_head_p99_ms"] = ms(percentile(sHeads[j], 99))
			}
		}
	}

	for _, pth := range paths {
		fi, err := os.Stat(pth)
		if err != nil || fi.Size() != w.size {
			return m, fmt.Errorf("stored object %s: %v (size %d)", pth, err, sizeOf(fi))
		}
	}
	return m, nil
}

// caseS3Lock: the lock's cost. Two fresh uploadsets on one fresh versitygw, each
// with a bucket of its own, one with the redis block (on a fresh redis-server)
// and one without it (locks in the process: tusd's memorylocker behind the same
// hand-off wrapper), take turns request by request through the s3-small workload
// with a HEAD before each PATCH, then one upload at a time with three HEADs. Taking turns exposes
// both to the same moment of the machine, versitygw and disk: run one after the
// other, the second of two identical servers was up to 5 ms slower per PATCH,
// which buries a lock's fraction of a millisecond.
func caseS3Lock(ctx context.Context, fl flavor, tmp string, sz sizes, tools s3Tools, run int) (metrics, error) {
	buckets := map[string]string{"redis": "lock-redis", "mem": "lock-mem"}
	side, err := startS3(ctx, tools, tmp, true, buckets["redis"], buckets["mem"])
	if err != nil {
		return nil, err
	}
	defer side.stop() // after the servers' stops, deferred below
	variants := []string{"redis", "mem"}
	if run%2 == 1 { // alternate which goes first
		variants = []string{"mem", "redis"}
	}
	var servers []*server
	var prefixes []string
	for _, v := range variants {
		s, err := startServer(ctx, fl, tmp, features{s3: side, s3Bucket: buckets[v], noRedis: v == "mem"})
		if err != nil {
			return nil, err
		}
		defer s.stop()
		servers = append(servers, s)
		prefixes = append(prefixes, "s3lock."+v)
	}
	m, err := caseS3Small(ctx, servers, s3Small{n: sz.s3LockN, workers: sz.s3Workers, serial: sz.s3Serial, size: sz.smallSize,
		head: true, serialHeads: 3}, prefixes)
	if m != nil {
		// Shared by both servers: under the case's own keys.
		for _, k := range []string{"gw_cpu_ms", "ups", "s3_req"} {
			m["s3lock."+k] = m[prefixes[0]+"."+k]
			delete(m, prefixes[0]+"."+k)
		}
		maps.Copy(m, lockDiff(m))
	}
	for _, s := range servers {
		if err == nil && !s.alive() {
			err = fmt.Errorf("server exited: %s", s.logTail())
		}
	}
	if err == nil {
		err = side.alive()
	}
	return m, err
}

// percentile is the nearest-rank p-th percentile of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// lockDiffKeys are the s3-lock figures whose difference (with the redis block −
// without, in the same run) the table shows.
var lockDiffKeys = []string{
	"patch_p50_ms", "patch_p99_ms", "head_p50_ms", "head_p99_ms",
	"serial_patch_p50_ms", "serial_patch_p99_ms", "serial_head_p50_ms", "serial_head_p99_ms",
	"cpu_ms",
}

// lockDiff is s3lock.diff.<key> = s3lock.redis.<key> − s3lock.mem.<key>.
func lockDiff(m metrics) metrics {
	d := metrics{}
	for _, k := range lockDiffKeys {
		a, okA := m["s3lock.redis."+k]
		b, okB := m["s3lock.mem."+k]
		if okA && okB {
			d["s3lock.diff."+k] = a - b
		}
	}
	return d
}
