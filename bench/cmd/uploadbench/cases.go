package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

// metrics of one case on one server in one run, by metric key (see rows in report.go).
type metrics map[string]float64

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// warmUp makes one small upload so that lazily initialised state (handlers,
// pools, the first file and directory) is not counted in a case.
func warmUp(ctx context.Context, c *tusClient, s *server) error {
	_, err := upload(ctx, c, s, 64*kib, "warmup.bin", false)
	return err
}

// rssSampler records the peak RSS of the server every 10 ms until stopped.
type rssSampler struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func sampleRSS(s *server) *rssSampler {
	r := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := s.rss(); err == nil && v > r.peak.Load() {
				r.peak.Store(v)
			}
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
		}
	}()
	return r
}

func (r *rssSampler) end() int64 { close(r.stop); <-r.done; return r.peak.Load() }

// caseLarge: one upload of size bytes as a single PATCH. Wall time from the
// PATCH being sent to its response; server CPU over the same span; peak RSS
// during it minus the RSS just before; stored file's SHA-256 checked after.
//
// On S3 (s3-large) it also gives versitygw's and redis-server's CPU over the span.
//
// As "large-sha256" the PATCH carries Upload-Checksum, which uploadsets verifies
// before it acknowledges a byte (tusd ignores the header).
func caseLarge(ctx context.Context, s *server, size int64, prefix string) (metrics, error) {
	c := &tusClient{hc: &http.Client{Transport: newTransport(2)}, endpoint: s.endpoint}
	defer c.hc.CloseIdleConnections()
	want := contentSHA(size) // before anything is measured
	if err := warmUp(ctx, c, s); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	if prefix == "sum" {
		c.checksum = checksumHeader(size)
	}
	cr, err := c.create(ctx, size, prefix+".bin", nil, 0)
	if err != nil {
		return nil, err
	}
	if s.s3 != nil {
		// On S3 the bytes are written several times: the server's part files,
		// versitygw's parts, the object it assembles (and, for uploadsets, the
		// placed copy).
		prefault(4*size + 256*mib)
	} else {
		prefault(size + 256*mib)
	}
	idle, err := s.rss()
	if err != nil {
		return nil, err
	}
	sampler := sampleRSS(s)
	cpu0, _ := s.cpu()
	var gw0, rd0 time.Duration
	var req0 int
	if s.s3 != nil {
		gw0, rd0 = s.s3.cpu()
		req0 = s.s3.requests()
	}
	t0 := time.Now()
	off, name, _, err := c.patch(ctx, cr.url, 0, &gen{0, size}, size)
	wall := time.Since(t0)
	cpu1, _ := s.cpu()
	var gw1, rd1 time.Duration
	if s.s3 != nil {
		gw1, rd1 = s.s3.cpu()
	}
	peak := sampler.end()
	if err != nil {
		return nil, err
	}
	if off != size {
		return nil, fmt.Errorf("offset %d after PATCH, want %d", off, size)
	}
	got, n, err := fileSHA(s.finalPath(cr.id, name))
	if err != nil {
		return nil, fmt.Errorf("stored file: %w", err)
	}
	m := metrics{
		prefix + ".mibps":      float64(size) / mib / wall.Seconds(),
		prefix + ".cpu_s_gib":  (cpu1 - cpu0).Seconds() / (float64(size) / gib),
		prefix + ".rss_growth": float64(peak-idle) / mib,
		prefix + ".sha_ok":     boolf(got == want && n == size),
	}
	if s.s3 != nil {
		time.Sleep(100 * time.Millisecond) // versitygw logs a request after answering it
		m[prefix+".s3_requests"] = float64(s.s3.requests() - req0)
		m[prefix+".gw_cpu_s_gib"] = (gw1 - gw0).Seconds() / (float64(size) / gib)
		if s.s3.redis != nil {
			m[prefix+".redis_cpu_s_gib"] = (rd1 - rd0).Seconds() / (float64(size) / gib)
		}
	}
	if got != want || n != size {
		return m, fmt.Errorf("stored file: %d bytes, sha256 %s, want %d bytes, %s", n, got, size, want)
	}
	return m, nil
}

// caseSmall: n uploads of size bytes by `workers` concurrent clients on
// keep-alive connections, POST + PATCH (or one POST with the body when cwu).
// Server CPU over the whole batch divided by n; uploads per second of wall time.
func caseSmall(ctx context.Context, s *server, n, workers int, size int64, cwu bool, prefix string) (metrics, error) {
	c := &tusClient{hc: &http.Client{Transport: newTransport(2 * workers)}, endpoint: s.endpoint}
	defer c.hc.CloseIdleConnections()
	return caseSmallWith(ctx, s, c, n, workers, size, cwu, prefix)
}

// serialUploads is how many uploads a small case makes one at a time after its
// concurrent batch.
const serialUploads = 100

func caseSmallWith(ctx context.Context, s *server, c *tusClient, n, workers int, size int64, cwu bool, prefix string) (metrics, error) {
	// Warm-up: one upload per worker, which also opens the keep-alive connections.
	if err := runWorkers(ctx, workers, workers, func(i int) (string, error) {
		return upload(ctx, c, s, size, fmt.Sprintf("w-%d.bin", i), cwu)
	}); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	paths := make([]string, n)
	cs0 := s.switches()
	cpu0, _ := s.cpu()
	t0 := time.Now()
	err := runWorkers(ctx, n, workers, func(i int) (string, error) {
		p, err := upload(ctx, c, s, size, fmt.Sprintf("f-%d.bin", i), cwu)
		paths[i] = p
		return p, err
	})
	wall := time.Since(t0)
	cpu1, _ := s.cpu()
	cs1 := s.switches()
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil || fi.Size() != size {
			return nil, fmt.Errorf("stored file %s: %v (size %d)", p, err, sizeOf(fi))
		}
	}
	// One at a time: what a lone client waits for an upload, the chain of syncs
	// a durable server makes it wait through, which the concurrent run (where the
	// two cores are the limit) hides.
	lone := make([]time.Duration, serialUploads)
	for i := range lone {
		t := time.Now()
		if _, err := upload(ctx, c, s, size, fmt.Sprintf("s-%d.bin", i), cwu); err != nil {
			return nil, fmt.Errorf("one at a time: %w", err)
		}
		lone[i] = time.Since(t)
	}
	return metrics{
		prefix + ".cpu_ms":      float64((cpu1 - cpu0).Microseconds()) / 1000 / float64(n),
		prefix + ".ups":         float64(n) / wall.Seconds(),
		prefix + ".cs":          float64(cs1-cs0) / float64(n),
		prefix + ".lone_p50_ms": float64(percentile(lone, 0.5).Microseconds()) / 1000,
	}, nil
}

func sizeOf(fi os.FileInfo) int64 {
	if fi == nil {
		return -1
	}
	return fi.Size()
}

// runWorkers runs job(0..n-1) on `workers` goroutines and returns the first error.
func runWorkers(ctx context.Context, n, workers int, job func(i int) (string, error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := atomic.Int64{}
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if _, err := job(i); err != nil {
					once.Do(func() { first = fmt.Errorf("upload %d: %w", i, err); cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// rawPatch opens a connection and writes a PATCH's header for the rest of an
// upload of total bytes from offset, without any of the body.
func rawPatch(ctx context.Context, uploadURL string, offset, total int64) (*net.TCPConn, *bufio.Reader, error) {
	u, err := url.Parse(uploadURL)
	if err != nil {
		return nil, nil, err
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, nil, err
	}
	tc := conn.(*net.TCPConn)
	hdr := "PATCH " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: " +
		strconv.FormatInt(offset, 10) + "\r\nContent-Length: " + strconv.FormatInt(total-offset, 10) + "\r\n\r\n"
	if _, err := tc.Write([]byte(hdr)); err != nil {
		tc.Close()
		return nil, nil, err
	}
	return tc, bufio.NewReader(tc), nil
}

// caseHold: n uploads, each declared `declared` bytes, get a PATCH whose
// header and first `sent` bytes are written on its own connection, which is
// then held open, as a slow client would. (held RSS − RSS before) / n is the
// memory cost of one held upload. Then every connection is closed and the
// server must still serve a full upload. As "hold" a few KiB are sent (a phone
// whose network died); as "burst" megabytes, fast, then nothing (a sender that
// stalls after a burst, which a server may meet with its largest buffers).
func caseHold(ctx context.Context, s *server, n int, declared, sent int64, hold time.Duration, prefix string) (metrics, error) {
	c := &tusClient{hc: &http.Client{Transport: newTransport(64)}, endpoint: s.endpoint}
	defer c.hc.CloseIdleConnections()
	if err := warmUp(ctx, c, s); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	c.hc.CloseIdleConnections()
	time.Sleep(300 * time.Millisecond)
	before, err := s.rss()
	if err != nil {
		return nil, err
	}
	urls := make([]string, n)
	if err := runWorkers(ctx, n, 32, func(i int) (string, error) {
		cr, err := c.create(ctx, declared, fmt.Sprintf("h-%d.bin", i), nil, 0)
		urls[i] = cr.url
		return "", err
	}); err != nil {
		return nil, err
	}
	c.hc.CloseIdleConnections() // only the held connections stay open
	conns := make([]*net.TCPConn, 0, n)
	defer func() {
		for _, tc := range conns {
			tc.Close()
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for _, u := range urls {
		if time.Now().After(deadline) {
			return nil, errors.New("opening held uploads took over 30s")
		}
		tc, _, err := rawPatch(ctx, u, 0, declared)
		if err != nil {
			return nil, fmt.Errorf("held PATCH %d: %w", len(conns), err)
		}
		conns = append(conns, tc)
		for left := sent; left > 0; left -= int64(len(block)) {
			if _, err := tc.Write(block[:min(left, int64(len(block)))]); err != nil {
				return nil, fmt.Errorf("held PATCH %d body: %w", len(conns), err)
			}
		}
	}
	// Let the server read what was sent, then take the RSS with all held.
	time.Sleep(hold)
	var held int64
	for range 5 {
		v, err := s.rss()
		if err != nil {
			return nil, err
		}
		held = max(held, v)
		time.Sleep(100 * time.Millisecond)
	}
	// A held upload answers no other request, so nothing is asked of it
	// while held: release all (as a client whose network died would, FIN).
	for _, tc := range conns {
		tc.Close()
	}
	conns = nil
	time.Sleep(200 * time.Millisecond)
	ok := s.alive() && c.options(ctx) == nil
	var okErr error
	if ok {
		p, err := upload(ctx, c, s, 64*kib, "after-hold.bin", false)
		if err == nil {
			_, err = os.Stat(p)
		}
		if err != nil {
			ok, okErr = false, fmt.Errorf("upload after release: %w", err)
		}
		// The bytes of a held upload were kept: its offset is what was sent.
		if off, err := c.head(ctx, urls[0]); err != nil || off != sent {
			ok, okErr = false, fmt.Errorf("held upload after release: offset %d, %v (want %d)", off, err, sent)
		}
	} else {
		okErr = fmt.Errorf("server not answering after release: %s", s.logTail())
	}
	m := metrics{
		prefix + ".kib_per_upload": float64(held-before) / kib / float64(n),
		prefix + ".ok":             boolf(ok),
	}
	return m, okErr
}

// caseResume: one upload of size bytes, whose PATCH connection is reset
// (RST: SO_LINGER 0 and close) `cuts` times, at size·k/(cuts+1) bytes of the
// body. After each cut a new connection is dialled; the stall is the time
// from the dial to the server having accepted the first byte after the
// offset HEAD reported, observed as the data file growing past that offset
// (stat polled every 200 µs). The recovered PATCH is sent on the same
// connection as the HEAD, as tus clients do. The stored file must match.
func caseResume(ctx context.Context, s *server, size int64, cuts int) (metrics, error) {
	c := &tusClient{hc: &http.Client{Transport: newTransport(2)}, endpoint: s.endpoint}
	defer c.hc.CloseIdleConnections()
	want := contentSHA(size)
	if err := warmUp(ctx, c, s); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	cr, err := c.create(ctx, size, "resume.bin", nil, 0)
	if err != nil {
		return nil, err
	}
	data := s.dataPath(cr.id)
	cutAt := func(k int) int64 { return size * int64(k) / int64(cuts+1) }

	// First PATCH, cut at the first cut point.
	tc, _, err := rawPatch(ctx, cr.url, 0, size)
	if err != nil {
		return nil, err
	}
	if _, err := (&gen{0, cutAt(1)}).WriteTo(tc); err != nil {
		return nil, err
	}
	reset(tc)

	var stalls, heads []time.Duration
	recovered := 0
	var finalName string
	for k := 1; k <= cuts; k++ {
		end := size
		if k < cuts {
			end = cutAt(k + 1)
		}
		st, hd, name, err := resumeOnce(ctx, cr.url, data, size, end)
		if err != nil {
			return nil, fmt.Errorf("resume after cut %d: %w", k, err)
		}
		stalls = append(stalls, st)
		heads = append(heads, hd)
		recovered++
		finalName = name
	}
	got, n, err := fileSHA(s.finalPath(cr.id, finalName))
	m := metrics{
		"resume.p50_ms":      ms(median(stalls)),
		"resume.max_ms":      ms(slices.Max(stalls)),
		"resume.head_p50_ms": ms(median(heads)),
		"resume.recovered":   float64(recovered),
		"resume.cuts":        float64(cuts),
		"resume.sha_ok":      boolf(err == nil && got == want && n == size),
	}
	if err != nil || got != want || n != size {
		return m, fmt.Errorf("stored file: %v: %d bytes, sha256 %s, want %d bytes %s", err, n, got, size, want)
	}
	return m, nil
}

// resumeOnce dials, HEADs, PATCHes from the reported offset and either cuts
// the connection once `end` bytes are sent (end < size) or reads the final
// response. It returns the stall (dial → first new byte in the data file), the
// HEAD round trip, and the final name on completion.
func resumeOnce(ctx context.Context, uploadURL, dataPath string, size, end int64) (time.Duration, time.Duration, string, error) {
	u, _ := url.Parse(uploadURL)
	deadline := time.Now().Add(20 * time.Second)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		t0 := time.Now()
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return 0, 0, "", err
		}
		tc := conn.(*net.TCPConn)
		br := bufio.NewReader(tc)
		_ = tc.SetDeadline(time.Now().Add(15 * time.Second))
		_, err = tc.Write([]byte("HEAD " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nTus-Resumable: 1.0.0\r\n\r\n"))
		if err != nil {
			tc.Close()
			return 0, 0, "", err
		}
		res, err := http.ReadResponse(br, &http.Request{Method: http.MethodHead})
		if err != nil {
			tc.Close()
			return 0, 0, "", fmt.Errorf("HEAD: %w", err)
		}
		res.Body.Close()
		headRTT := time.Since(t0)
		if res.StatusCode != http.StatusOK {
			tc.Close()
			return 0, 0, "", fmt.Errorf("HEAD: %s", res.Status)
		}
		off, err := strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
		if err != nil || off >= end {
			tc.Close()
			return 0, 0, "", fmt.Errorf("HEAD: offset %q (segment ends at %d)", res.Header.Get("Upload-Offset"), end)
		}

		// Watch the data file for the first byte past off.
		seen := make(chan time.Time, 1)
		stopWatch := make(chan struct{})
		go func() {
			for {
				if fi, err := os.Stat(dataPath); err == nil && fi.Size() > off {
					seen <- time.Now()
					return
				}
				select {
				case <-stopWatch:
					return
				case <-time.After(200 * time.Microsecond):
				}
			}
		}()
		hdr := "PATCH " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
			"\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: " +
			strconv.FormatInt(off, 10) + "\r\nContent-Length: " + strconv.FormatInt(size-off, 10) + "\r\n\r\n"
		if _, err := tc.Write([]byte(hdr)); err != nil {
			close(stopWatch)
			tc.Close()
			return 0, 0, "", err
		}
		_, werr := (&gen{off, end}).WriteTo(tc)

		if end < size {
			// Before cutting, make sure the server took the bytes (the stall
			// was observed) and did not refuse the PATCH early (e.g. 409, 423).
			var at time.Time
			select {
			case at = <-seen:
			case <-time.After(10 * time.Second):
			}
			close(stopWatch)
			_ = tc.SetReadDeadline(time.Now().Add(time.Millisecond))
			early, rerr := http.ReadResponse(br, nil)
			if rerr == nil {
				early.Body.Close()
				reset(tc)
				if early.StatusCode == http.StatusConflict || early.StatusCode == http.StatusLocked {
					continue // measured again from a new dial
				}
				return 0, 0, "", fmt.Errorf("PATCH answered early: %s", early.Status)
			}
			reset(tc)
			if at.IsZero() {
				return 0, 0, "", fmt.Errorf("no byte past offset %d accepted within 10s (write: %v)", off, werr)
			}
			return at.Sub(t0), headRTT, "", nil
		}

		// Last segment: read the response.
		if werr != nil {
			close(stopWatch)
			tc.Close()
			return 0, 0, "", werr
		}
		res, err = http.ReadResponse(br, &http.Request{Method: http.MethodPatch})
		respAt := time.Now()
		close(stopWatch)
		tc.Close()
		if err != nil {
			return 0, 0, "", fmt.Errorf("final PATCH: %w", err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusConflict || res.StatusCode == http.StatusLocked {
			continue
		}
		if res.StatusCode != http.StatusNoContent {
			return 0, 0, "", fmt.Errorf("final PATCH: %s", res.Status)
		}
		at := respAt // upper bound if the data file was placed before a poll saw it grow
		select {
		case a := <-seen:
			at = a
		default:
		}
		return at.Sub(t0), headRTT, res.Header.Get("Upload-File-Name"), nil
	}
	return 0, 0, "", errors.New("no successful resume within 20s")
}

// reset drops a connection with a TCP RST, as a dying network path or a
// killed client does, rather than an orderly FIN.
func reset(tc *net.TCPConn) {
	_ = tc.SetLinger(0)
	tc.Close()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// prefault touches n bytes of fresh anonymous memory and frees it just before
// a large write. On a VM whose balloon reports free pages to the host (this
// one: virtio-balloon with free page reporting), the first touch of a page
// the host took back costs a host fault, which the guest sees as the
// process's own CPU time; page cache built from such pages made whichever
// server ran first in a case look up to 3x costlier per GiB. Pages freed here
// are reused first by the kernel, so both servers write into warm memory.
func prefault(n int64) {
	b, err := syscall.Mmap(-1, 0, int(n), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return
	}
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	_ = syscall.Munmap(b)
}
