package testsrv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bounds of starting a server: a port found free can be taken before the
// server binds it, and a server that does not answer in time is broken.
const (
	portTries  = 5
	rebindTime = 2 * time.Second // Start's wait for its own port
	readyTime  = 10 * time.Second
	stopTime   = 10 * time.Second
)

// RedisServer is a redis-server child process on 127.0.0.1 that keeps nothing
// on disk, so that every start is empty.
type RedisServer struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

var errPortTaken = errors.New("port taken")

// Redis starts a redis-server for the test and stops it when the test ends. It
// fails the test if redis-server is not installed. Like the methods, it must be
// called from the test's goroutine.
func Redis(t testing.TB) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server not found: apt-get install -y redis-server (make deps does)")
	}
	s := &RedisServer{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.Stop)
	for range portTries {
		if s.port, err = freePort(); err != nil {
			t.Fatalf("testsrv: finding a free port: %v", err)
		}
		err = s.start()
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	if err != nil {
		t.Fatalf("testsrv: starting redis-server: %v", err)
	}
	return s
}

// Addr is the server's host:port.
func (s *RedisServer) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// URL is the server's redis:// URL, database 0.
func (s *RedisServer) URL() string {
	return "redis://" + s.Addr() + "/0"
}

// Stop kills the server (as a crash would: it saves nothing) and waits for it
// to exit. Stopping a stopped server does nothing.
func (s *RedisServer) Stop() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.exited:
	case <-time.After(stopTime):
		s.t.Errorf("testsrv: redis-server (pid %d) did not exit within %v of SIGKILL", s.cmd.Process.Pid, stopTime)
	}
	s.cmd = nil
}

// Start starts a stopped server again on the same port, empty.
func (s *RedisServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		s.t.Fatal("testsrv: Start of a running redis-server")
	}
	// The port was ours a moment ago; wait a little for the kernel, but not
	// for another process that has taken it.
	deadline := time.Now().Add(rebindTime)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if !errors.Is(err, errPortTaken) || time.Now().After(deadline) {
			s.t.Fatalf("testsrv: restarting redis-server on port %d: %v", s.port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// start runs the server on s.port and waits until it answers PING.
func (s *RedisServer) start() error {
	log := &syncBuffer{}
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
	)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()

	deadline := time.Now().Add(readyTime)
	for {
		select {
		case <-exited:
			if strings.Contains(log.String(), "Address already in use") {
				return errPortTaken
			}
			return fmt.Errorf("redis-server exited: %s", log.String())
		default:
		}
		if ping(s.Addr()) == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server did not answer PING within %v: %s", readyTime, log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	return nil
}

// ping sends an inline PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// freePort returns a port of 127.0.0.1 that nothing listened on a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer is the server's output, written by exec's copier while start
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
