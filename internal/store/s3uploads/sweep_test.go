//go:build linux

package s3uploads

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/internal/uploads"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestSweep(t *testing.T) {
	t.Parallel()
	for _, locker := range []bool{true, false} {
		t.Run("locker="+strconv.FormatBool(locker), func(t *testing.T) {
			t.Parallel()
			testSweep(t, locker)
		})
	}
}

// testSweep sweeps uploads in every state and the leftovers of crashes, with the
// store told of tusd's Locker or not.
func testSweep(t *testing.T, withLocker bool) {
	b := newBucket(t)
	c := &clock{t: time.Now()}
	in := b.instance(t, config{opts: func(o *Options) {
		o.Expire, o.now = time.Hour, c.now
		if !withLocker {
			o.Locker = nil
		}
	}})
	s := in.store
	ctx := t.Context()
	data := randomBytes(chunk+100, 10)

	partial := in.create(t, len(data))
	in.mustPatch(t, partial, 0, data[:chunk])
	unplaced := in.upload(t, data, chunk)
	placed := in.upload(t, data, chunk)
	if err := s.MarkPlaced(placed, "photo.jpg", nil); err != nil {
		t.Fatal(err)
	}
	rejected := in.upload(t, data[:10], chunk)
	if err := s.Reject(rejected, "not a JPEG"); err != nil {
		t.Fatal(err)
	}
	// What crashes inside a creation leave: s3store's upload without a record, and
	// a multipart upload without even an .info.
	orphan := uploads.NewID()
	if _, err := s.s3.NewUpload(ctx, handler.FileInfo{ID: orphan, Size: 10}); err != nil {
		t.Fatal(err)
	}
	bare := uploads.NewID()
	if _, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(b.name), Key: aws.String(b.prefix + bare)}); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(s.tempDir, spoolPattern+"123")
	fresh := filepath.Join(s.tempDir, spoolPattern+"456")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if rec, err := s.Record(unplaced); err != nil || !rec.Unplaced() {
		t.Fatalf("complete upload: %+v, %v", rec, err)
	}
	before := b.keys(t)

	if n, err := s.Sweep(); n != 0 || err != nil {
		t.Fatalf("Sweep before anything expired: %d, %v", n, err)
	}
	if got := b.keys(t); !slices.Equal(got, before) {
		t.Errorf("Sweep before anything expired removed %q", diff(before, got))
	}

	c.advance(90 * time.Minute)
	young := in.create(t, len(data))
	in.mustPatch(t, young, 0, data[:chunk])
	if resp := tusDo(t, http.MethodHead, in.url+partial, nil, nil); resp.status != http.StatusGone {
		t.Errorf("HEAD of an expired upload before the sweep: %d", resp.status)
	}
	if resp := in.patch(t, partial, chunk, data[chunk:], nil); resp.status != http.StatusGone || !strings.Contains(resp.body, "ERR_UPLOAD_EXPIRED") {
		t.Errorf("PATCH of an expired upload: %d %s", resp.status, resp.body)
	}
	n, err := s.Sweep()
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("Sweep removed %d uploads, want 4", n)
	}
	b.wantKeys(t, young+".info", young+".part", young+".record")
	if n := b.multipartUploads(t); n != 1 {
		t.Errorf("%d multipart uploads, want the young one's", n)
	}
	if got := in.eventsSoFar(); !slices.Equal(got[len(got)-2:], []string{uploads.Expired, uploads.Expired}) {
		t.Errorf("events %v, want the two unfinished uploads' expiry last", got)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temp file: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temp file: %v", err)
	}

	c.advance(90 * time.Minute)
	if !withLocker {
		if n, err := s.Sweep(); n != 1 || err != nil {
			t.Errorf("Sweep: %d, %v", n, err)
		}
		b.wantKeys(t)
		return
	}
	// An upload whose lock is held: its holder is asked to let go (tusd stops its
	// request), and the sweep goes on once it has.
	lock, err := in.locker.NewLock(young)
	if err != nil {
		t.Fatal(err)
	}
	asked := make(chan struct{})
	if err := lock.Lock(context.Background(), func() { close(asked); lock.Unlock() }); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Sweep(); n != 1 || err != nil {
		t.Errorf("Sweep: %d, %v", n, err)
	}
	select {
	case <-asked:
	default:
		t.Error("the lock's holder was not asked to release it")
	}
	b.wantKeys(t)
	if n := b.multipartUploads(t); n != 0 {
		t.Errorf("%d multipart uploads left", n)
	}
}

func diff(a, b []string) []string {
	var d []string
	for _, k := range a {
		if !slices.Contains(b, k) {
			d = append(d, k)
		}
	}
	return d
}

func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
