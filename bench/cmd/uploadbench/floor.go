package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The floor of the small case, measured in the bench process with no upload server
// and no HTTP: the file-system work of storing n files of size bytes, workers at a
// time, and placing each under its own name in a destination directory. Run twice in
// the same temp dir as the servers:
//
//   - page: create, write, close, link into the destination, unlink: what a server
//     that syncs nothing (tusd) cannot do with less.
//   - durable: the same with what makes a placed file survive a power cut and no
//     more: fdatasync of the file before the link, an fsync of the destination
//     after it, and one record appended to a log and fdatasynced, both shared by
//     every file that waits while one is running (group commit).
//
// The difference is what durability alone costs on this machine's file system and
// under this kernel and runtime, in CPU and context switches per file: the least a
// durable server pays on top of a non-durable one. It is the measure the issue's
// goal (≤ 1.0× tusd's CPU) can be held against.
var floorKeys = []struct{ key, label string }{
	{"floor.page_cpu_ms", "page cache only: CPU-ms per file"},
	{"floor.durable_cpu_ms", "durable (data, directory and a log record synced): CPU-ms per file"},
	{"floor.page_fps", "page cache only: files/s"},
	{"floor.durable_fps", "durable: files/s"},
	{"floor.page_cs", "page cache only: context switches per file"},
	{"floor.durable_cs", "durable: context switches per file"},
}

func measureFloor(dir string, n, workers int, size int64) (metrics, error) {
	m := metrics{}
	for _, durable := range []bool{false, true} {
		cpu, fps, cs, err := floorRun(dir, n, workers, size, durable)
		if err != nil {
			return m, err
		}
		kind := "page"
		if durable {
			kind = "durable"
		}
		m["floor."+kind+"_cpu_ms"], m["floor."+kind+"_fps"], m["floor."+kind+"_cs"] = cpu, fps, cs
	}
	return m, nil
}

func floorRun(parent string, n, workers int, size int64, durable bool) (cpuMS, fps, cs float64, err error) {
	root, err := os.MkdirTemp(parent, "floor-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(root)
	data, dest := filepath.Join(root, "data"), filepath.Join(root, "dest")
	for _, d := range []string{data, dest} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return 0, 0, 0, err
		}
	}
	log, err := os.OpenFile(filepath.Join(root, "records.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, 0, 0, err
	}
	defer log.Close()
	body := make([]byte, size)
	copy(body, block)
	destSync := &groupSync{do: func() error { return syncDir(dest) }}
	var logMu sync.Mutex
	logSync := &groupSync{do: func() error { return unix.Fdatasync(int(log.Fd())) }}

	work := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	cs0, cpu0, t0 := selfSwitches(), selfCPU(), time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := floorFile(data, dest, strconv.Itoa(i), body, durable, destSync, func() error {
					logMu.Lock()
					_, err := fmt.Fprintf(log, `{"id":%d,"state":"placed","name":"f-%d.bin"}`+"\n", i, i)
					logMu.Unlock()
					if err != nil {
						return err
					}
					return logSync.sync()
				}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case work <- i:
		case err := <-errs:
			close(work)
			wg.Wait()
			return 0, 0, 0, err
		}
	}
	close(work)
	wg.Wait()
	wall, cpu, switches := time.Since(t0), selfCPU()-cpu0, selfSwitches()-cs0
	select {
	case err := <-errs:
		return 0, 0, 0, err
	default:
	}
	return float64(cpu.Microseconds()) / 1000 / float64(n), float64(n) / wall.Seconds(), float64(switches) / float64(n), nil
}

func floorFile(data, dest, name string, body []byte, durable bool, destSync *groupSync, record func() error) error {
	src := filepath.Join(data, name)
	fd, err := unix.Open(src, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	_, err = unix.Write(fd, body)
	if err == nil && durable {
		err = unix.Fdatasync(fd)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := unix.Link(src, filepath.Join(dest, name)); err != nil {
		return err
	}
	if durable {
		if err := destSync.sync(); err != nil {
			return err
		}
		if err := record(); err != nil {
			return err
		}
	}
	return unix.Unlink(src)
}

// groupSync runs do for every caller that arrived while the previous run was going
// on, once: what a server's group commit does.
type groupSync struct {
	do      func() error
	mu      sync.Mutex
	running bool
	waiting []chan error
}

func (g *groupSync) sync() error {
	done := make(chan error, 1)
	g.mu.Lock()
	g.waiting = append(g.waiting, done)
	if !g.running {
		g.running = true
		go g.loop()
	}
	g.mu.Unlock()
	return <-done
}

func (g *groupSync) loop() {
	for {
		g.mu.Lock()
		batch := g.waiting
		g.waiting = nil
		if len(batch) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		err := g.do()
		for _, c := range batch {
			c <- err
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// selfSwitches counts the bench process's context switches, as server.switches does
// a server's.
func selfSwitches() int64 { return taskSwitches("/proc/self/task/*/status") }

func taskSwitches(glob string) int64 {
	tasks, _ := filepath.Glob(glob)
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "voluntary_ctxt_switches") {
				c, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += c
			}
		}
	}
	return n
}
