package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The S3 cases run each server on a versitygw of its own (posix backend, in the
// case's temp dir), and uploadsets with a redis block on a redis-server of its own
// (or without one, for the lock comparison). Both are started by the bench for one
// case of one run on one server and stopped by PID afterwards, like the servers.

const (
	s3Bucket    = "bench"
	s3AccessKey = "uploadbench"
	s3SecretKey = "uploadbench-secret"
	s3Region    = "us-east-1"
)

// s3Env is the environment a server needs to reach the bench's versitygw: the
// SDK's default chain reads it (both uploadsets and tusd use the chain). The empty
// session token and profile override a developer's own, as internal/testsrv does.
func s3Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s3AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s3SecretKey,
		"AWS_REGION=" + s3Region,
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
	}
}

// s3Tools are the binaries the S3 cases need, found once per bench run. When one
// is missing, err says which and how to get it, and every S3 case fails with it
// (the other cases run).
type s3Tools struct {
	versitygw string
	redis     string
	err       error
}

// findS3Tools locates redis-server on PATH and versitygw through the repository's
// .ci/versitygw/build, which prints the cached binary's path (building it first,
// once per machine, when it is missing: a minute or two).
func findS3Tools(ctx context.Context, repo, gwBin string, stderr io.Writer) s3Tools {
	var t s3Tools
	var missing []string
	if p, err := exec.LookPath("redis-server"); err != nil {
		missing = append(missing, "redis-server is not installed (apt-get install redis-server)")
	} else {
		t.redis = p
	}
	switch {
	case gwBin != "":
		if err := isExecutable(gwBin); err != nil {
			missing = append(missing, fmt.Sprintf("-versitygw-bin: %v", err))
		}
		t.versitygw = gwBin
	case repo == "":
		missing = append(missing, "versitygw: no uploadsets repository to run .ci/versitygw/build from (pass -repo or -versitygw-bin)")
	default:
		p, err := buildVersitygw(ctx, repo, stderr)
		if err != nil {
			missing = append(missing, err.Error())
		}
		t.versitygw = p
	}
	if len(missing) > 0 {
		t.err = errors.New("the S3 cases cannot run: " + strings.Join(missing, "; "))
	}
	return t
}

func buildVersitygw(ctx context.Context, repo string, stderr io.Writer) (string, error) {
	script := filepath.Join(repo, ".ci", "versitygw", "build")
	if err := isExecutable(script); err != nil {
		return "", fmt.Errorf("versitygw: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, script)
	cmd.Dir = repo
	cmd.Stdout = &out
	cmd.Stderr = stderr // "building versitygw ..." when it is not cached
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("versitygw: %s: %w", script, err)
	}
	lines := strings.Fields(strings.TrimSpace(out.String()))
	if len(lines) == 0 {
		return "", fmt.Errorf("versitygw: %s printed no path", script)
	}
	p := lines[len(lines)-1]
	if err := isExecutable(p); err != nil {
		return "", fmt.Errorf("versitygw: %s printed %q: %w", script, p, err)
	}
	return p, nil
}

func isExecutable(p string) error {
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		return err
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// s3Side is the versitygw (and maybe the redis-server) of one case on one server.
type s3Side struct {
	dir       string // removed (its large files) by stop; the rest when the bench exits
	root      string // versitygw's posix root: <root>/<bucket>/<key> is an object's bytes
	endpoint  string // http://127.0.0.1:N
	gw        *proc
	redis     *proc  // nil without Redis
	redisAddr string // 127.0.0.1:M
	redisURL  string // redis://127.0.0.1:M/0, "" without Redis
}

// proc is a helper process of the bench (versitygw, redis-server).
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
}

func startProc(name, bin, dir, logPath string, args ...string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	p := &proc{name: name, logPath: logPath, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// A bench killed by a signal it cannot handle leaves no helper behind.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig to the process (by its PID), waits up to 5 s, then kills it.
func (p *proc) stop(sig os.Signal) {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	return tail(b, 1500)
}

// startS3 starts a versitygw in a new temp dir under tmpRoot with the buckets
// created, and a redis-server when withRedis.
func startS3(ctx context.Context, tools s3Tools, tmpRoot string, withRedis bool, buckets ...string) (*s3Side, error) {
	if tools.err != nil {
		return nil, tools.err
	}
	dir, err := os.MkdirTemp(tmpRoot, "s3-")
	if err != nil {
		return nil, err
	}
	side := &s3Side{dir: dir, root: filepath.Join(dir, "posix")}
	if err := os.Mkdir(side.root, 0o755); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			side.stop()
		}
	}()
	if err := side.startGateway(ctx, tools.versitygw); err != nil {
		return nil, err
	}
	if err := side.createBuckets(ctx, buckets); err != nil {
		return nil, err
	}
	if withRedis {
		if err := side.startRedis(ctx, tools.redis); err != nil {
			return nil, err
		}
	}
	ok = true
	return side, nil
}

// startGateway starts versitygw as internal/testsrv does, on a free port (another
// one, at most three times, when the port was taken in between), and waits for
// its health path.
func (side *s3Side) startGateway(ctx context.Context, bin string) error {
	var last error
	for attempt := range 3 {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		logPath := filepath.Join(side.dir, fmt.Sprintf("versitygw-%d.log", attempt))
		p, err := startProc("versitygw", bin, side.dir, logPath,
			"--access", s3AccessKey, "--secret", s3SecretKey, "--region", s3Region,
			"--port", addr, "--health", "/health",
			// Without it every response closes its connection.
			"--keep-alive",
			"posix", side.root)
		if err != nil {
			return err
		}
		endpoint := "http://" + addr
		if err = waitHealth(ctx, p, endpoint+"/health"); err == nil {
			side.gw, side.endpoint = p, endpoint
			return nil
		}
		p.stop(syscall.SIGKILL)
		last = fmt.Errorf("versitygw (%s) did not start: %w: %s", bin, err, p.logTail())
		if !strings.Contains(p.logTail(), "address already in use") {
			break
		}
	}
	return last
}

func waitHealth(ctx context.Context, p *proc, healthURL string) error {
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("it exited (%v)", p.waitErr)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, healthURL, nil)
		if err != nil {
			return err
		}
		if res, err := hc.Do(req); err == nil {
			drain(res)
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return errors.New("no answer on /health within 15s")
}

// createBuckets creates the buckets with the AWS SDK, path-style, with the
// gateway's root credentials.
func (side *s3Side) createBuckets(ctx context.Context, buckets []string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	client := s3.New(s3.Options{
		Region:       s3Region,
		BaseEndpoint: aws.String(side.endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s3AccessKey, s3SecretKey, ""),
		HTTPClient:   hc,
	})
	for _, b := range buckets {
		if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			return fmt.Errorf("creating bucket %q on versitygw: %w", b, err)
		}
	}
	return nil
}

// startRedis starts redis-server on a free port of 127.0.0.1 without persistence
// (--save "" --appendonly no) in the side's dir, and waits until it answers PING.
func (side *s3Side) startRedis(ctx context.Context, bin string) error {
	var last error
	for attempt := range 3 {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		_, port, _ := net.SplitHostPort(addr)
		logPath := filepath.Join(side.dir, fmt.Sprintf("redis-%d.log", attempt))
		p, err := startProc("redis-server", bin, side.dir, logPath,
			"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		if err != nil {
			return err
		}
		if err = waitPing(ctx, p, addr); err == nil {
			side.redis, side.redisAddr, side.redisURL = p, addr, "redis://"+addr+"/0"
			return nil
		}
		p.stop(syscall.SIGKILL)
		last = fmt.Errorf("redis-server did not start: %w: %s", err, p.logTail())
		if !strings.Contains(p.logTail(), "Address already in use") {
			break
		}
	}
	return last
}

func waitPing(ctx context.Context, p *proc, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("it exited (%v)", p.waitErr)
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, err = c.Write([]byte("PING\r\n"))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil && rerr == nil && strings.HasPrefix(line, "+PONG") {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return errors.New("no PONG within 10s")
}

// cpu is the CPU time so far of versitygw and of redis-server (0 without it).
// versitygw's is read from /proc, in ticks of 10 ms, like the servers'; Redis
// reports its own in microseconds (INFO cpu: getrusage of the whole process), which
// its small figures need. The one INFO request per reading is a few µs of its CPU.
func (side *s3Side) cpu() (gw, redis time.Duration) {
	gw, _ = procCPU(side.gw.pid())
	if side.redis != nil {
		info, err := redisInfo(side.redisAddr, "cpu")
		sys, err1 := strconv.ParseFloat(info["used_cpu_sys"], 64)
		user, err2 := strconv.ParseFloat(info["used_cpu_user"], 64)
		if errors.Join(err, err1, err2) == nil {
			redis = time.Duration((sys + user) * float64(time.Second))
		} else {
			redis, _ = procCPU(side.redis.pid())
		}
	}
	return gw, redis
}

// redisCommands is how many commands redis-server has processed so far, not
// counting the INFO that asks.
func (side *s3Side) redisCommands() int {
	if side.redis == nil {
		return 0
	}
	info, err := redisInfo(side.redisAddr, "stats")
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(info["total_commands_processed"])
	return n
}

// redisInfo is one section of INFO, as key → value.
func redisInfo(addr, section string) (map[string]string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("INFO " + section + "\r\n")); err != nil {
		return nil, err
	}
	br := bufio.NewReader(c)
	head, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if err != nil || !strings.HasPrefix(head, "$") {
		return nil, fmt.Errorf("INFO %s: unexpected reply %q", section, head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, err
	}
	info := map[string]string{}
	for line := range strings.SplitSeq(string(body), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			info[k] = v
		}
	}
	return info, nil
}

// requests is how many S3 requests versitygw has logged so far: it writes one line
// per request ("hh:mm:ss | vgw | status | ...") to its stdout, the log file.
func (side *s3Side) requests() int {
	b, _ := os.ReadFile(side.gw.logPath)
	return bytes.Count(b, []byte(" | vgw | "))
}

// alive reports a helper that died during the case.
func (side *s3Side) alive() error {
	if side.gw != nil && side.gw.exited() {
		return fmt.Errorf("versitygw exited: %s", side.gw.logTail())
	}
	if side.redis != nil && side.redis.exited() {
		return fmt.Errorf("redis-server exited: %s", side.redis.logTail())
	}
	return nil
}

// stop stops redis-server (SIGTERM: without persistence it exits at once) and
// kills versitygw (its graceful shutdown can wait seconds on an idle keep-alive
// connection, and nothing it holds is kept), both by PID; then removes the files
// over 1 MiB, as server.stop does.
func (side *s3Side) stop() {
	if side.redis != nil {
		side.redis.stop(syscall.SIGTERM)
	}
	if side.gw != nil {
		side.gw.stop(syscall.SIGKILL)
	}
	_ = removeLarge(side.dir)
}

// object is the path of an object's bytes in versitygw's posix backend.
func (side *s3Side) object(bucket, key string) string {
	return filepath.Join(side.root, bucket, filepath.FromSlash(key))
}

// freeAddr is a 127.0.0.1 address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}
