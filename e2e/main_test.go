// Package e2e tests the built uploadsets binary: it is started on a free loopback port
// with a config of the test's own, and driven by real tus clients over real sockets.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the uploadsets binary under test, built once with the race detector.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "uploadsets-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "uploadsets")
	// crashpoints: tests can stop the server at a named step (internal/crashpoint).
	build := exec.Command("go", "build", "-race", "-tags", "crashpoints", "-o", binary, "../cmd/uploadsets")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building uploadsets:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is one running uploadsets process.
type server struct {
	URL     string // http://127.0.0.1:PORT
	Dir     string // holds config.hcl, data/ and uploads/
	Config  string
	cmd     *exec.Cmd
	stop    context.CancelFunc // SIGTERM, then SIGKILL after WaitDelay
	mu      sync.Mutex
	log     strings.Builder
	exited  chan struct{}
	exitErr error
	logDone chan struct{} // closed when all the server wrote has been read
}

// Uploads is the default destination of set name.
func (s *server) Uploads(set string) string { return filepath.Join(s.Dir, "uploads", set) }

// Log is everything the server wrote so far.
func (s *server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

const baseConfig = `
listen = "127.0.0.1:0"
data_dir = "./data"
uploads_default_dest = "./uploads"
`

// defaultSets is used by tests that do not need sets of their own.
const defaultSets = `
set "photos" {
  extensions = images
  max_size   = "2MiB"
}
set "files" {
  extensions = all
  max_size   = "64MiB"
}
set "docs" {
  extensions = documents
  naming     = "uuid"
}
`

// servingLine finds the address in the startup line, in text or JSON logs.
var servingLine = regexp.MustCompile(`url=(http://\S+)|"url":"(http://[^"]+)"`)

// startServer writes a config (baseConfig + sets) into a fresh directory and starts the
// binary on it, returning once it listens. The process is stopped at test end.
func startServer(t *testing.T, sets string) *server {
	t.Helper()
	return startServerIn(t, t.TempDir(), baseConfig+sets)
}

func startServerIn(t *testing.T, dir, config string) *server {
	t.Helper()
	return startServerEnv(t, dir, config)
}

// startServerEnv is startServerIn with environment variables (NAME=value) added, such
// as the crash points' UPLOADSETS_CRASH_AT.
func startServerEnv(t *testing.T, dir, config string, env ...string) *server {
	t.Helper()
	cfg := filepath.Join(dir, "config.hcl")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &server{Dir: dir, Config: cfg, exited: make(chan struct{}), logDone: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.cmd = exec.CommandContext(ctx, binary, "serve", "-config", cfg)
	s.cmd.Dir = dir
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Cancel = func() error { return s.cmd.Process.Signal(syscall.SIGTERM) }
	s.cmd.WaitDelay = 10 * time.Second
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout = io.Discard
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		defer close(s.logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.log.WriteString(line + "\n")
			s.mu.Unlock()
			if m := servingLine.FindStringSubmatch(line); m != nil && strings.Contains(line, "Serving") {
				select {
				case urls <- m[1] + m[2]:
				default:
				}
			}
		}
	}()
	go func() {
		// Wait closes the pipe: the log is read to its end first (os/exec's rule),
		// so that a test reading the log after Stop or Kill sees all of it.
		select {
		case <-s.logDone:
		case <-time.After(30 * time.Second):
		}
		s.exitErr = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.Stop(t)
		if t.Failed() {
			t.Logf("server log:\n%s", s.Log())
		}
		if strings.Contains(s.Log(), "WARNING: DATA RACE") {
			t.Errorf("the server reported a data race:\n%s", s.Log())
		}
	})
	select {
	case s.URL = <-urls:
	case <-s.exited:
		t.Fatalf("server exited before serving (%v):\n%s", s.exitErr, s.Log())
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start within 30s:\n%s", s.Log())
	}
	return s
}

// Stop sends SIGTERM and waits for the process to exit.
func (s *server) Stop(t *testing.T) {
	select {
	case <-s.exited:
		return
	default:
	}
	start := time.Now()
	s.stop()
	<-s.exited
	if d := time.Since(start); d >= s.cmd.WaitDelay {
		t.Errorf("server did not stop within %s of SIGTERM", d)
	}
}

// Kill stops the process at once, as a crash would.
func (s *server) Kill() {
	s.cmd.Process.Kill()
	<-s.exited
}

// runBinary runs uploadsets with args and returns its stdout, stderr and exit code.
func runBinary(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

var client = &http.Client{Timeout: 60 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
