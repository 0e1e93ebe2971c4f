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

// s3Config is the config of the S3 cases: the same set, with data_dir and the
// default destination in the bench bucket, and a redis block when redisURL is
// set (without one, locks are in the process: tusd's memorylocker, behind the
// same hand-off wrapper the Redis locker has).
func s3Config(endpoint, bucket, redisURL string) string {
	cfg := `listen = "127.0.0.1:0"
data_dir = "s3://` + bucket + `/partial/"
uploads_default_dest = "s3://` + bucket + `/files/"
max_size = "8GiB"
s3 {
  endpoint   = "` + endpoint + `"
  region     = "` + s3Region + `"
  path_style = true
}
`
	if redisURL != "" {
		cfg += "redis {\n  url = \"" + redisURL + "\"\n}\n"
	}
	// The set block stays last: features.config appends to it.
	return cfg + `set "bench" {
  extensions = all
  max_size   = "8GiB"
}
`
}

var (
	uploadsetsReady = regexp.MustCompile(`Serving: .*url=(http://\S+)`)
	tusdReady       = regexp.MustCompile(`You can now upload files to: (http://\S+)`)
)

// A server is one running process, fresh for each case of each run, in its own
// temp directory that stop removes.
type server struct {
	flavor string
	s3     *s3Side // the versitygw it stores in, nil on local disk
	bucket string  // its bucket there
	// usesRedis: uploadsets with a redis block (on s3's redis-server).
	usesRedis bool
	cmd       *exec.Cmd
	pid       int
	dir       string
	endpoint  string // where a creation POST goes
	logPath   string
	done      chan struct{}
	waitErr   error
}

func startServer(ctx context.Context, fl flavor, tmpRoot string, feat features) (*server, error) {
	dir, err := os.MkdirTemp(tmpRoot, fl.name+"-")
	if err != nil {
		return nil, err
	}
	s := &server{flavor: fl.name, s3: feat.s3, bucket: feat.s3Bucket, dir: dir, logPath: filepath.Join(dir, "server.log"), done: make(chan struct{})}
	s.usesRedis = fl.name == uploadsetsName && feat.s3 != nil && feat.s3.redis != nil && !feat.noRedis
	var args []string
	var env []string
	if feat.s3 != nil {
		// Both keep parts on their way to S3 in temp files (s3store's), here in
		// the case's dir rather than in the machine's /tmp.
		tmp := filepath.Join(dir, "tmp")
		if err := os.Mkdir(tmp, 0o700); err != nil {
			return nil, err
		}
		env = append(append(os.Environ(), s3Env()...), "TMPDIR="+tmp)
	}
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
		if feat.s3 != nil {
			// Its s3store (and memorylocker) with the defaults of its flags; a
			// -s3-endpoint makes it address the bucket path-style
			// (cmd/tusd/cli/composer.go). Credentials and region from s3Env.
			args = []string{"-host", "127.0.0.1", "-port", "0",
				"-s3-bucket", feat.s3Bucket, "-s3-endpoint", feat.s3.endpoint, "-s3-object-prefix", tusdS3Prefix}
		}
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
	s.cmd.Env = env // nil: the bench's own
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
// its final name, tusd leaves it where it was written. On S3 it is the object's
// file in versitygw's posix backend: uploadsets' placed object
// files/bench/<name> (a set without destination is under
// <uploads_default_dest><set>/), or the object tusd's s3store assembled,
// <prefix><object id> (tusd's upload ID is <object id>+<multipart upload ID>).
func (s *server) finalPath(id, name string) string {
	if s.flavor == uploadsetsName {
		if n, err := url.PathUnescape(name); err == nil {
			name = n
		}
		if s.s3 != nil {
			return s.s3.object(s.bucket, "files/bench/"+filepath.Base(name))
		}
		return filepath.Join(s.dir, "uploads", "bench", filepath.Base(name))
	}
	if s.s3 != nil {
		obj, _, _ := strings.Cut(id, "+")
		return s.s3.object(s.bucket, tusdS3Prefix+obj)
	}
	return s.dataPath(id)
}

// tusdS3Prefix is tusd's -s3-object-prefix in the S3 cases.
const tusdS3Prefix = "tusd/"

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
	return removeLarge(s.dir)
}

// removeLarge removes the files over 1 MiB under dir (see server.stop).
func removeLarge(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
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
func (s *server) cpu() (time.Duration, error) { return procCPU(s.pid) }

// procCPU is a process's user+system CPU time so far, all its threads.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
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

// switches is the number of context switches of the server's threads so far
// (voluntary and not, from /proc/PID/task/*/status): each blocking syscall costs a few,
// and on a VM they are a large part of a small upload's CPU.
func (s *server) switches() int64 { return taskSwitches(fmt.Sprintf("/proc/%d/task/*/status", s.pid)) }

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
