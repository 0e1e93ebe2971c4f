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
)

// crashEnv makes the test binary a publisher that is killed mid-stream.
const crashEnv = "NOTIFY_TEST_CRASH_DB"

// TestMain lets TestKill9 run this binary as a process it can SIGKILL.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnv); path != "" {
		publishForever(path)
		return
	}
	os.Exit(m.Run())
}

// publishForever publishes events one after another and prints the number of each
// once Publish has returned for it, until it is killed. It stops at 1000, which the
// test's kill comes well before, so that the outbox left is small enough to deliver
// quickly on a busy machine.
func publishForever(path string) {
	o, err := Open(path, []Target{{Name: "app", URL: "http://127.0.0.1:1/", Key: []byte("0123456789abcdef01234567")}}, nil)
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

// Every event Publish returned for before a kill -9 is delivered after the restart.
func TestKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	published := -1
	lines := bufio.NewScanner(out)
	for published < 200 && lines.Scan() {
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
	if published < 200 {
		t.Fatalf("the publisher stopped after %d events", published+1)
	}

	rc := newReceiver(t, ok)
	o := open(t, path, nil, Target{Name: "app", URL: rc.URL, Key: []byte("0123456789abcdef01234567")})
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
