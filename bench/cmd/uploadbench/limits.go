package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// The machine's limits for one large body, measured in the bench process with no
// upload server: what the "large" figures can be held against. They run with the
// large case, once per run, each into a fresh file in the bench's temp dir.
//
//   - put: a plain net/http PUT handler copying the body into a file through a 1 MiB
//     buffer, as the performance issue measured its limit (page cache, no fsync).
//   - put-sync: the same, then fdatasync before the response: what acknowledging the
//     bytes durably costs on this disk.
//   - disk: the disk alone, 1 MiB O_DIRECT writes and fdatasync, no network.
var limitKeys = []struct{ key, label string }{
	{"limit.put", "plain net/http PUT, 1 MiB buffer, page cache"},
	{"limit.put_sync", "the same + fdatasync before the response"},
	{"limit.disk", "disk alone: 1 MiB O_DIRECT writes + fdatasync"},
}

func measureLimits(ctx context.Context, dir string, size int64) (metrics, error) {
	m := metrics{}
	for _, sync := range []bool{false, true} {
		v, err := plainPut(ctx, dir, size, sync)
		if err != nil {
			return m, err
		}
		if sync {
			m["limit.put_sync"] = v
		} else {
			m["limit.put"] = v
		}
	}
	v, err := directWrite(dir, size)
	if err != nil {
		return m, err
	}
	m["limit.disk"] = v
	return m, nil
}

// plainPut returns the MiB/s of one PUT of size bytes to a minimal server in this
// process, from sending the request to its response.
func plainPut(ctx context.Context, dir string, size int64, sync bool) (float64, error) {
	path := filepath.Join(dir, "limit.bin")
	defer os.Remove(path)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Create(path)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		buf := make([]byte, 1<<20)
		// Hiding f's ReadFrom makes CopyBuffer use buf: *os.File.ReadFrom would
		// fall back to its own 32 KiB copy for a request body.
		if _, err := io.CopyBuffer(struct{ io.Writer }{f}, r.Body, buf); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if sync {
			if err := unix.Fdatasync(int(f.Fd())); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	prefault(size + 256*mib)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+ln.Addr().String()+"/", &gen{0, size})
	if err != nil {
		return 0, err
	}
	req.ContentLength = size
	hc := &http.Client{Transport: newTransport(1)}
	defer hc.CloseIdleConnections()
	t0 := time.Now()
	res, err := hc.Do(req)
	wall := time.Since(t0)
	if err != nil {
		return 0, err
	}
	drain(res)
	if res.StatusCode != http.StatusNoContent {
		return 0, fmt.Errorf("plain PUT: %s", res.Status)
	}
	return float64(size) / mib / wall.Seconds(), nil
}

// directWrite returns the MiB/s of writing size bytes with O_DIRECT in 1 MiB writes,
// then fdatasync; 0 where the filesystem does not do direct I/O (tmpfs).
func directWrite(dir string, size int64) (float64, error) {
	path := filepath.Join(dir, "limit-direct.bin")
	defer os.Remove(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|unix.O_DIRECT, 0o600)
	if err != nil {
		return 0, nil
	}
	defer f.Close()
	buf := make([]byte, 1<<20) // large allocations are page-aligned
	copy(buf, block)
	t0 := time.Now()
	for off := int64(0); off < size; off += int64(len(buf)) {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return 0, err
	}
	return float64(size) / mib / time.Since(t0).Seconds(), nil
}
