package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clkTck is USER_HZ, the unit of utime and stime in /proc/PID/stat (100 on Linux).
const clkTck = 100

// A flavor is one of the two servers under test: how to start it, where its
// tus endpoint is and where it keeps an upload's bytes.
type flavor struct {
	name string
	bin  string
}

const (
	uploadsetsName = "uploadsets"
	tusdName       = "tusd"
	limitName      = "limit" // the machine limits measured in the bench process (limits.go)
)

// uploadsetsConfig is the config of every uploadsets run: one set taking any
// extension, with everything the server has switched on (content sniffing,
// metrics and logs are not optional in uploadsets).
const uploadsetsConfig = `listen = "127.0.0.1:0"
data_dir = "./data"
uploads_default_dest = "./uploads"
max_size = "8GiB"
set "bench" {
  extensions = all
  max_size   = "8GiB"
}
`

var (
	uploadsetsReady = regexp.MustCompile(`Serving: .*url=(http://\S+)`)
	tusdReady       = regexp.MustCompile(`You can now upload files to: (http://\S+)`)
)

// A server is one running process, fresh for each case of each run, in its own
// temp directory that stop removes.
type server struct {
	flavor   string
	cmd      *exec.Cmd
	pid      int
	dir      string
	endpoint string // where a creation POST goes
	logPath  string
	done     chan struct{}
	waitErr  error
}

func startServer(ctx context.Context, fl flavor, tmpRoot string, feat features) (*server, error) {
	dir, err := os.MkdirTemp(tmpRoot, fl.name+"-")
	if err != nil {
		return nil, err
	}
	s := &server{flavor: fl.name, dir: dir, logPath: filepath.Join(dir, "server.log"), done: make(chan struct{})}
	var args []string
	var ready *regexp.Regexp
	switch fl.name {
	case uploadsetsName:
		cfg := filepath.Join(dir, "config.hcl")
		text, err := feat.config(dir)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			return nil, err
		}
		args = []string{"serve", "-config", cfg}
		ready = uploadsetsReady
	case tusdName:
		// tusd v2.10.1 with its defaults; only where it listens and stores is set.
		args = []string{"-host", "127.0.0.1", "-port", "0", "-upload-dir", filepath.Join(dir, "files")}
		ready = tusdReady
	default:
		return nil, fmt.Errorf("unknown server %q", fl.name)
	}
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	s.cmd = exec.Command(fl.bin, args...)
	s.cmd.Dir = dir
	s.cmd.Stdout = logf
	s.cmd.Stderr = logf
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.pid = s.cmd.Process.Pid
	go func() { s.waitErr = s.cmd.Wait(); close(s.done) }()

	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(s.logPath)
		if m := ready.FindSubmatch(b); m != nil {
			base := strings.TrimRight(string(m[1]), "/")
			switch fl.name {
			case uploadsetsName:
				s.endpoint = base + "/uploads/bench/"
			case tusdName:
				s.endpoint = base + "/" // the printed URL already ends in /files/
			}
			if _, err := url.Parse(s.endpoint); err != nil {
				s.stop()
				return nil, err
			}
			return s, nil
		}
		select {
		case <-s.done:
			err := fmt.Errorf("%s exited before serving (%v): %s", fl.name, s.waitErr, tail(b, 2000))
			os.RemoveAll(dir)
			return nil, err
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s did not print its URL within 15s: %s", fl.name, tail(b, 2000))
		}
	}
}

// dataPath is where the server keeps the bytes of a partial upload.
func (s *server) dataPath(id string) string {
	if s.flavor == uploadsetsName {
		return filepath.Join(s.dir, "data", "bench", id)
	}
	return filepath.Join(s.dir, "files", id)
}

// finalPath is where a finished upload ends up: uploadsets places it under
// its final name, tusd leaves it where it was written.
func (s *server) finalPath(id, name string) string {
	if s.flavor == uploadsetsName {
		if n, err := url.PathUnescape(name); err == nil {
			name = n
		}
		return filepath.Join(s.dir, "uploads", "bench", filepath.Base(name))
	}
	return s.dataPath(id)
}

// stop sends SIGTERM, waits up to 10 s, then kills. It removes the files
// over 1 MiB at once (the disk must hold the next case) and leaves the rest,
// thousands of small files after the small cases, to the removal of the whole
// bench dir at exit: on an ext4 without a journal the inode allocator skips
// inodes deleted in the last 60-360 s (recently_deleted), so deleting them
// here would slow down the file creations of the next cases.
func (s *server) stop() error {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	return filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.Size() > 1<<20 {
			return os.Remove(p)
		}
		return nil
	})
}

func (s *server) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	return tail(b, 1500)
}

// cpu is the server's user+system CPU time so far (/proc/PID/stat fields 14, 15).
func (s *server) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.pid))
	if err != nil {
		return 0, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	// f[0] is field 3 (state), so field 14 (utime) is f[11] and 15 (stime) f[12].
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// rss is the server's resident set (VmRSS of /proc/PID/status) in bytes.
func (s *server) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
