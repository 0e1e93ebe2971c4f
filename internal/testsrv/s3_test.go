//go:build linux

package testsrv

// These tests pin down the behaviour of versitygw that uploadsets' S3 design relies on,
// so that an upgrade which changes it fails here rather than in the store's own tests.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestS3Server(t *testing.T) {
	t.Parallel()
	srv := S3(t)
	if !strings.HasPrefix(srv.Endpoint(), "http://127.0.0.1:") {
		t.Errorf("Endpoint() = %q, want http://127.0.0.1:PORT", srv.Endpoint())
	}
	client := srv.Client()
	bucket := srv.Bucket(t, "uploads")
	put(t, client, bucket, "a/b.txt", []byte("hello"))
	if got := get(t, client, bucket, "a/b.txt"); string(got) != "hello" {
		t.Errorf("read back %q, want hello", got)
	}
	out, err := client.ListBuckets(t.Context(), &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Buckets) != 1 || aws.ToString(out.Buckets[0].Name) != bucket {
		t.Errorf("buckets = %v, want [%s]", bucketNames(out.Buckets), bucket)
	}
}

func bucketNames(bs []types.Bucket) (names []string) {
	for _, b := range bs {
		names = append(names, aws.ToString(b.Name))
	}
	return names
}

// The server will get its credentials from the SDK's default chain; a child process
// given Env() must reach the gateway even when the parent's environment names a
// profile that does not exist and carries a session token of another account.
func TestS3Env(t *testing.T) {
	t.Parallel()
	srv := S3(t)
	bucket := srv.Bucket(t, "from-env")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestS3EnvChild$", "-test.v")
	cmd.Env = append(os.Environ(), "AWS_PROFILE=uploadsets-no-such-profile", "AWS_SESSION_TOKEN=not-ours", "AWS_REGION=eu-west-3")
	cmd.Env = append(cmd.Env, srv.Env()...)
	cmd.Env = append(cmd.Env, "UPLOADSETS_TESTSRV_CHILD_ENDPOINT="+srv.Endpoint(), "UPLOADSETS_TESTSRV_CHILD_BUCKET="+bucket)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("child reached "+bucket)) {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// A start that fails says why, with the gateway's own words, and a port taken
// between choosing and binding it is told apart so that S3 tries another.
func TestS3StartFailures(t *testing.T) {
	t.Parallel()
	bin := versitygwBinary(t)
	t.Run("port taken", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		_, err = startVersitygw(t, bin, t.TempDir(), l.Addr().String(), filepath.Join(t.TempDir(), "log"))
		if !errors.Is(err, errPortTaken) {
			t.Errorf("error %v, want errPortTaken", err)
		}
	})
	t.Run("no data directory", func(t *testing.T) {
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		missing := filepath.Join(t.TempDir(), "missing")
		_, err = startVersitygw(t, bin, missing, addr, filepath.Join(t.TempDir(), "log"))
		if err == nil || !strings.Contains(err.Error(), "it exited") || !strings.Contains(err.Error(), missing) {
			t.Errorf("error %v, want its exit and its output naming %s", err, missing)
		}
	})
}

// TestS3EnvChild is the child of TestS3Env; run alone, it has nothing to do.
func TestS3EnvChild(t *testing.T) {
	endpoint := os.Getenv("UPLOADSETS_TESTSRV_CHILD_ENDPOINT")
	if endpoint == "" {
		return
	}
	cfg, err := config.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "us-east-1" {
		t.Errorf("region from the environment = %q, want us-east-1", cfg.Region)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})
	bucket := os.Getenv("UPLOADSETS_TESTSRV_CHILD_BUCKET")
	if _, err := client.HeadBucket(t.Context(), &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	fmt.Println("child reached", bucket)
}

// The cached binary is named after VersitygwVersion; the module and the script must
// build that version, or a stale binary would be used under a new name.
func TestVersitygwPinned(t *testing.T) {
	t.Parallel()
	gomod, err := findUp(".ci/versitygw/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	script, err := findUp(".ci/versitygw/build")
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		gomod:  "\nrequire github.com/versity/versitygw " + VersitygwVersion + "\n",
		script: "\nversion=" + VersitygwVersion + "\n",
	} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s lacks %q", path, strings.TrimSpace(want))
		}
	}
}

func put(t *testing.T, client *s3.Client, bucket, key string, body []byte) (etag string) {
	t.Helper()
	out, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return aws.ToString(out.ETag)
}

func get(t *testing.T, client *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return b
}
