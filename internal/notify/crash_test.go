package notify

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// crashEnv makes the test binary a publisher into a bbolt file that is killed
// mid-stream; crashS3Env one into a bucket, described by a crashS3 in JSON.
const (
	crashEnv   = "NOTIFY_TEST_CRASH_DB"
	crashS3Env = "NOTIFY_TEST_CRASH_S3"
)

// crashS3 is where the S3 publisher publishes.
type crashS3 struct {
	Endpoint, Region, AccessKey, SecretKey, Bucket, Prefix string
}

// crashTarget is the target of both publishers.
var crashTarget = Target{Name: "app", URL: "http://127.0.0.1:1/", Key: []byte("0123456789abcdef01234567")}

// TestMain lets TestKill9 and TestS3Kill9 run this binary as a process they can SIGKILL.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnv); path != "" {
		publishForever(Open(path, []Target{crashTarget}, nil))
		return
	}
	if env := os.Getenv(crashS3Env); env != "" {
		var c crashS3
		if err := json.Unmarshal([]byte(env), &c); err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		client := s3.New(s3.Options{
			Region: c.Region, BaseEndpoint: aws.String(c.Endpoint), UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, ""),
		})
		publishForever(OpenS3(client, c.Bucket, c.Prefix, []Target{crashTarget}, nil))
		return
	}
	os.Exit(m.Run())
}

// publishForever publishes events one after another and prints the number of each
// once Publish has returned for it, until it is killed. It stops at 1000, which the
// test's kill comes well before, so that the outbox left is small enough to deliver
// quickly on a busy machine.
func publishForever(o *Outbox, err error) {
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	for i := 0; ; i++ {
		if i == 1000 {
			select {}
		}
		if err := o.Publish(placed("photos", strconv.Itoa(i))); err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		fmt.Println(i)
	}
}

// killPublisher runs this binary as a publisher with env, kills it with SIGKILL once
// it has published more than atLeast events, and returns the number of the last one
// Publish returned for.
func killPublisher(t *testing.T, env string, atLeast int) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	published := -1
	lines := bufio.NewScanner(out)
	for published < atLeast && lines.Scan() {
		n, err := strconv.Atoi(lines.Text())
		if err != nil {
			t.Fatalf("publisher: %s", lines.Text())
		}
		published = n
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred close, no flush
		t.Fatal(err)
	}
	cmd.Wait()
	if published < atLeast {
		t.Fatalf("the publisher stopped after %d events", published+1)
	}
	return published
}

// Every event Publish returned for before a kill -9 is delivered after the restart.
func TestKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.db")
	published := killPublisher(t, crashEnv+"="+path, 200)

	rc := newReceiver(t, ok)
	o := open(t, path, nil, Target{Name: "app", URL: rc.URL, Key: crashTarget.Key})
	if got := o.Pending("app"); got <= published {
		t.Fatalf("%d events in the outbox after the kill, want at least %d", got, published+1)
	}
	defer run(o)()
	waitFor(t, "the deliveries", func() bool { return o.Pending("app") == 0 })
	seen := map[string]bool{}
	for _, r := range rc.requests() {
		var p payload
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		seen[p.Data.ID] = true
	}
	for i := 0; i <= published; i++ {
		if !seen[strconv.Itoa(i)] {
			t.Errorf("event %d was published before the kill and never delivered", i)
		}
	}
}
