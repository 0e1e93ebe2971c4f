//go:build linux

// Linux only: the server is tied to the test process with Pdeathsig, so a test binary
// killed by -timeout leaves no gateway behind; CI and the project's machines are Linux.

package testsrv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// VersitygwVersion is the release .ci/versitygw pins; the cached binary's name carries
// it, so a bump there builds a new binary instead of reusing the old one.
const VersitygwVersion = "v1.8.0"

// S3Server is a versitygw gateway on loopback with the posix backend, serving
// path-style requests signed with AccessKey and SecretKey.
type S3Server struct {
	AccessKey string
	SecretKey string
	Region    string
	endpoint  string
}

// Test credentials: the gateway runs in single-account mode, so these are its root.
const (
	s3AccessKey = "uploadsets-test"
	s3SecretKey = "uploadsets-test-secret"
)

// S3 starts a versitygw of its own for t on a free 127.0.0.1 port, storing into a
// t.TempDir, and kills it when t ends. The binary is $UPLOADSETS_VERSITYGW, else the
// one .ci/versitygw/build caches, which S3 builds first if it is missing. It never
// skips: a machine without the binary fails the test, so CI cannot pass vacuously.
func S3(t testing.TB) *S3Server {
	t.Helper()
	bin := versitygwBinary(t)
	data := t.TempDir()
	logs := t.TempDir()
	// A port picked from a closed listener can be taken by someone else before the
	// gateway binds it; another port is then tried, a few times at most.
	var lastErr error
	for attempt := range 3 {
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		s, err := startVersitygw(t, bin, data, addr, filepath.Join(logs, fmt.Sprintf("versitygw-%d.log", attempt)))
		if err == nil {
			return s
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("versitygw (%s) did not start: %v", bin, lastErr)
	return nil
}

// startVersitygw starts the gateway on addr and waits until it answers. On success
// it is killed when t ends; on failure it is already gone.
func startVersitygw(t testing.TB, bin, data, addr, logPath string) (*S3Server, error) {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor

	// Cancelling ctx kills the gateway (by its PID) rather than stopping it: its
	// graceful shutdown at times waits seconds on a client's idle keep-alive
	// connection, and a test keeps nothing the gateway wrote.
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin,
		"--access", s3AccessKey, "--secret", s3SecretKey, "--region", "us-east-1",
		"--port", addr, "--health", "/health",
		// Without it every response closes its connection; tests make many small requests.
		"--keep-alive",
		"posix", data)
	// Whatever it writes relative to its working directory lands beside its log.
	cmd.Dir = filepath.Dir(logPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	var waitErr error
	exited := make(chan struct{})
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		cancel()
		<-exited
	}

	s := &S3Server{AccessKey: s3AccessKey, SecretKey: s3SecretKey, Region: "us-east-1", endpoint: "http://" + addr}
	if err := s.waitReady(exited, &waitErr); err != nil {
		stop()
		log := logTail(logPath)
		if strings.Contains(log, "address already in use") {
			return nil, fmt.Errorf("%w: %s", errPortTaken, addr)
		}
		return nil, fmt.Errorf("%w; its output:\n%s", err, log)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("versitygw at %s, the end of its output:\n%s", s.endpoint, logTail(logPath))
		}
	})
	return s, nil
}

// waitReady polls the health path, which answers without a signature once the
// gateway listens, for as long as a slow machine could need.
func (s *S3Server) waitReady(exited <-chan struct{}, waitErr *error) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("it exited: %v", *waitErr)
		default:
		}
		resp, err := client.Get(s.endpoint + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("no answer on /health within 15s")
}

func freeAddr() (string, error) {
	port, err := freePort()
	return fmt.Sprintf("127.0.0.1:%d", port), err
}

func logTail(path string) string {
	b, _ := os.ReadFile(path)
	const keep = 4 << 10
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return string(b)
}

// Endpoint is the gateway's base URL, "http://127.0.0.1:PORT".
func (s *S3Server) Endpoint() string { return s.endpoint }

// Client is an S3 client of the gateway: path-style (the gateway has no virtual-host
// domain), static credentials, nothing read from the environment or ~/.aws.
func (s *S3Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// Bucket creates the bucket name and returns it.
func (s *S3Server) Bucket(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("creating bucket %q: %v", name, err)
	}
	return name
}

// Env is what a child process needs, appended to os.Environ(), for the SDK's default
// chain to sign for this gateway. The empty AWS_SESSION_TOKEN and AWS_PROFILE override
// a developer's own: a token would be sent with the test keys (versitygw answers 400
// BadRequest), and a profile missing from the child's view of ~/.aws makes the
// default config fail to load. The endpoint is not among them: the child is told it
// the way the server is configured.
func (s *S3Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + s.Region,
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
	}
}

// versitygwBinary finds the gateway, building it (once per machine) when missing.
func versitygwBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("UPLOADSETS_VERSITYGW"); p != "" {
		if err := isExecutable(p); err != nil {
			t.Fatalf("UPLOADSETS_VERSITYGW=%s: %v (build one with .ci/versitygw/build %s)", p, err, p)
		}
		return p
	}
	cached, err := versitygwCachePath()
	if err != nil {
		t.Fatal(err)
	}
	if isExecutable(cached) == nil {
		return cached
	}
	script, err := findUp(filepath.Join(".ci", "versitygw", "build"))
	if err != nil {
		t.Fatalf("versitygw is not at %s and its build script was not found: %v", cached, err)
	}
	t.Logf("versitygw %s is not at %s: building it once with %s (a minute or two)", VersitygwVersion, cached, script)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, script, cached)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("building versitygw with %s: %v\n%s", script, err, stderr.String())
	}
	if err := isExecutable(cached); err != nil {
		t.Fatalf("%s ran but left no binary at %s: %v\n%s%s", script, cached, err, stdout.String(), stderr.String())
	}
	return cached
}

// versitygwCachePath is where .ci/versitygw/build puts the binary by default, outside
// any work tree so that every clone on the machine shares one build.
func versitygwCachePath() (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home := os.Getenv("HOME")
		if home == "" {
			return "", errors.New("neither XDG_CACHE_HOME nor HOME is set: set UPLOADSETS_VERSITYGW to a versitygw binary")
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "uploadsets", "versitygw-"+VersitygwVersion), nil
}

func isExecutable(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return err
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// findUp looks for rel in the working directory and its parents, up to the
// repository's root (the directory holding .git).
func findUp(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
			return "", fmt.Errorf("no %s in the repository at %s", rel, dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s above the working directory", rel)
		}
		dir = parent
	}
}
