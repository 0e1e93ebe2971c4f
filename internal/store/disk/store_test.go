package disk

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/uploadsets/uploadsets/internal/durable"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	return openStore(t, t.TempDir(), testRecords(t))
}

// testRecords opens a record log for the test, closed at its end.
func testRecords(t *testing.T) *Records {
	t.Helper()
	r, err := OpenRecords(filepath.Join(t.TempDir(), "uploads.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func openStore(t *testing.T, dir string, r *Records) *Store {
	t.Helper()
	s, err := New(Options{Dir: dir, Records: r, Set: "docs", Expire: time.Hour, FileMode: 0o644, MaxSize: 1 << 30, Log: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func create(t *testing.T, s *Store, size int64) string {
	t.Helper()
	up, err := s.NewUpload(context.Background(), handler.FileInfo{Size: size, MetaData: handler.MetaData{"filename": "a.txt"}})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := up.GetInfo(context.Background())
	return info.ID
}

func write(t *testing.T, s *Store, id string, offset int64, data []byte) int64 {
	t.Helper()
	up, err := s.GetUpload(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	n, err := up.WriteChunk(context.Background(), offset, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestIDsAreRandom128Bit(t *testing.T) {
	s := newStore(t)
	a, b := create(t, s, 1), create(t, s, 1)
	if !ValidID(a) || !ValidID(b) || a == b {
		t.Errorf("ids %q, %q: want two distinct 32-hex-digit IDs", a, b)
	}
}

func TestOffsetComesFromTheDisk(t *testing.T) {
	s := newStore(t)
	id := create(t, s, 10)
	write(t, s, id, 0, []byte("hello"))
	// A fresh Store (as after a restart) sees every byte that was written.
	s2 := openStore(t, s.dir, s.records)
	rec, err := s2.Record(id)
	if err != nil || rec.Offset != 5 || rec.Complete() {
		t.Fatalf("Record = %+v, %v; want offset 5, incomplete", rec, err)
	}
	write(t, s2, id, 5, []byte("world"))
	rec, _ = s2.Record(id)
	if !rec.Complete() {
		t.Errorf("offset %d of %d: want complete", rec.Offset, rec.Size)
	}
	got, _ := os.ReadFile(s.binPath(id))
	if string(got) != "helloworld" {
		t.Errorf("data = %q", got)
	}
}

func TestLargeWriteThroughTheStore(t *testing.T) {
	s := newStore(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // 4.8 MB
	id := create(t, s, int64(len(data)))
	// A reader that fills whatever it is given, like a fast socket.
	if n := write(t, s, id, 0, data); n != int64(len(data)) {
		t.Fatalf("wrote %d of %d", n, len(data))
	}
	got, _ := os.ReadFile(s.binPath(id))
	if !bytes.Equal(got, data) {
		t.Error("data differs")
	}
}

func TestPlacedUploadStaysComplete(t *testing.T) {
	s := newStore(t)
	id := create(t, s, 3)
	write(t, s, id, 0, []byte("abc"))
	if err := s.MarkPlaced(id, "a.txt", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.binPath(id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data file still there after placement: %v", err)
	}
	up, err := s.GetUpload(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := up.GetInfo(context.Background())
	if info.Offset != info.Size {
		t.Errorf("offset %d, size %d: a placed upload must still read as complete", info.Offset, info.Size)
	}
	err = s.AsTerminatableUpload(up).Terminate(context.Background())
	if !errors.Is(err, ErrPlacedFile) || !strings.Contains(err.Error(), `set "docs"`) {
		t.Errorf("Terminate of placed upload = %v, want ErrPlacedFile naming set \"docs\"", err)
	}
}

func TestRejectedUploadIsGone(t *testing.T) {
	s := newStore(t)
	id := create(t, s, 3)
	write(t, s, id, 0, []byte("abc"))
	if err := s.Reject(id, `set "photos" rejected it`); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetUpload(context.Background(), id)
	var he handler.Error
	if !errors.As(err, &he) || he.HTTPResponse.StatusCode != 410 || !strings.Contains(he.Message, "photos") {
		t.Errorf("GetUpload of rejected = %v; want 410 with the reason", err)
	}
	rec, _ := s.Record(id)
	if rec.State != Rejected || rec.Reason == "" {
		t.Errorf("record = %+v", rec)
	}
	if _, err := os.Stat(s.binPath(id)); !errors.Is(err, os.ErrNotExist) {
		t.Error("rejected data not removed")
	}
}

func TestTerminateRemovesPartialData(t *testing.T) {
	s := newStore(t)
	id := create(t, s, 10)
	write(t, s, id, 0, []byte("abc"))
	up, _ := s.GetUpload(context.Background(), id)
	if err := s.AsTerminatableUpload(up).Terminate(context.Background()); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(s.dir)
	if len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
	if _, err := s.Record(id); !errors.Is(err, handler.ErrNotFound) {
		t.Errorf("Record after Terminate = %v, want ErrNotFound", err)
	}
}

// Records outlive the process: a log reopened (as after a restart) has every state
// change made before.
func TestRecordsSurviveReopening(t *testing.T) {
	path := filepath.Join(t.TempDir(), "uploads.db")
	r, err := OpenRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := openStore(t, dir, r)
	id := create(t, s, 3)
	write(t, s, id, 0, []byte("abc"))
	if err := s.MarkPlaced(id, "a.txt", map[string]string{"small": "thumbs/small/a.jpg"}); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if r, err = OpenRecords(path); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := openStore(t, dir, r).Record(id)
	if err != nil || rec.State != Placed || rec.Name != "a.txt" || !rec.Complete() || rec.Thumbs["small"] != "thumbs/small/a.jpg" {
		t.Errorf("Record after reopening = %+v, %v", rec, err)
	}
}

// The per-upload record files of an earlier version are adopted when a store opens,
// a change torn by a crash (never synced, never reported) ignored, and the files
// removed.
func TestLegacyRecordsAreAdopted(t *testing.T) {
	dir := t.TempDir()
	const placed, receiving, torn = "00112233445566778899aabbccddeeff", "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	legacy := map[string]string{
		placed:    `{"ID":"` + placed + `","Size":3,"MetaData":{"filename":"a.txt"},"Created":"2026-01-01T00:00:00Z"}` + "\n" + `{"State":"placed","Name":"a.txt"}`,
		receiving: `{"ID":"` + receiving + `","Size":5,"Created":"2026-01-01T00:00:00Z"}` + "\n" + `{"State":"placed","Na`,
		torn:      `{"ID":"` + torn,
	}
	for id, content := range legacy {
		os.WriteFile(filepath.Join(dir, id+".info"), []byte(content), 0o640)
	}
	os.WriteFile(filepath.Join(dir, receiving), []byte("he"), 0o640)
	s := openStore(t, dir, testRecords(t))

	if rec, err := s.Record(placed); err != nil || rec.State != Placed || rec.Name != "a.txt" || rec.Offset != 3 {
		t.Errorf("placed upload: %+v, %v", rec, err)
	}
	if rec, err := s.Record(receiving); err != nil || rec.State != Receiving || rec.Offset != 2 || rec.Size != 5 {
		t.Errorf("upload in progress with a torn change: %+v, %v; want receiving at offset 2", rec, err)
	}
	if _, err := s.Record(torn); !errors.Is(err, handler.ErrNotFound) {
		t.Errorf("torn record: %v, want not found", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.info")); len(left) != 0 {
		t.Errorf("legacy files left: %v", left)
	}
}

func TestForeignIDsNeverTouchTheDisk(t *testing.T) {
	s := newStore(t)
	for _, id := range []string{"../../etc/passwd", "", "ABCDEF0123456789ABCDEF0123456789", strings.Repeat("a", 33)} {
		if _, err := s.GetUpload(context.Background(), id); !errors.Is(err, handler.ErrNotFound) {
			t.Errorf("GetUpload(%q) = %v, want ErrNotFound", id, err)
		}
	}
	if _, err := s.NewUpload(context.Background(), handler.FileInfo{ID: "../x"}); err == nil {
		t.Error("NewUpload accepted a path as ID")
	}
}

func TestGetReaderServesReceivedBytes(t *testing.T) {
	s := newStore(t)
	id := create(t, s, 10)
	write(t, s, id, 0, []byte("abc"))
	up, _ := s.GetUpload(context.Background(), id)
	r, err := up.GetReader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	if string(b) != "abc" {
		t.Errorf("read %q", b)
	}
}

func TestUnplacedCompleteUploadWithholdsItsLastByte(t *testing.T) {
	s := newStore(t)
	id := create(t, s, 4)
	write(t, s, id, 0, []byte("abcd"))
	// Placement failed: the record is still Receiving with every byte in.
	up, err := s.GetUpload(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := up.GetInfo(context.Background())
	if info.Offset != 3 {
		t.Fatalf("offset %d: an unplaced complete upload must report one byte short, so the client retries", info.Offset)
	}
	// The client re-sends that byte; the upload is complete again, not longer.
	if n, err := up.WriteChunk(context.Background(), 3, strings.NewReader("d")); n != 1 || err != nil {
		t.Fatalf("WriteChunk = %d, %v", n, err)
	}
	got, _ := os.ReadFile(s.binPath(id))
	if string(got) != "abcd" {
		t.Errorf("data = %q, want abcd", got)
	}
	if rec, _ := s.Record(id); !rec.Complete() {
		t.Errorf("record %+v not complete", rec)
	}
}

// Placement links the data file into the destination before it records the result: if
// that record then fails, the client's retry of the last byte must not write to the
// file, which is the placed file too.
func TestWithheldRetryNeverWritesThePlacedFile(t *testing.T) {
	s := newStore(t)
	id := create(t, s, 4)
	write(t, s, id, 0, []byte("abcd"))
	placed := filepath.Join(t.TempDir(), "a.txt")
	if err := os.Link(s.binPath(id), placed); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Minute).Truncate(time.Second) // not so far that it expires
	os.Chtimes(placed, past, past)
	if err := s.MarkFailed(id); err != nil {
		t.Fatal(err)
	}
	up, err := s.GetUpload(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := up.GetInfo(context.Background()); info.Offset != 3 {
		t.Fatalf("offset %d after a failed placement, want 3", info.Offset)
	}
	// Even a different last byte changes nothing: every byte is already synced.
	if n, err := up.WriteChunk(context.Background(), 3, strings.NewReader("X")); n != 1 || err != nil {
		t.Fatalf("WriteChunk = %d, %v", n, err)
	}
	st, _ := os.Stat(placed)
	if got, _ := os.ReadFile(placed); string(got) != "abcd" || !st.ModTime().Equal(past) {
		t.Errorf("the placed file holds %q, modified %v: it was written to", got, st.ModTime())
	}
}

func TestFailedAndIntendedAreRecorded(t *testing.T) {
	s := newStore(t)
	id := create(t, s, 4)
	write(t, s, id, 0, []byte("abcd"))
	var before int
	for i := range 2 {
		if i == 1 {
			before = s.records.commits()
		}
		if err := s.Intend(id, "a.txt"); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkFailed(id); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := s.Record(id)
	if err != nil || rec.State != Failed || rec.Intended != "a.txt" || !rec.Unplaced() || rec.ReportedOffset() != 3 {
		t.Fatalf("record %+v (%v); want failed, intended a.txt, reported offset 3", rec, err)
	}
	if n := s.records.commits() - before; n != 0 {
		t.Errorf("%d commits for retries that change nothing, want 0", n)
	}
	if err := s.MarkPlaced(id, "a.txt", nil); err != nil {
		t.Fatal(err)
	}
	if rec, _ := s.Record(id); rec.State != Placed || rec.ReportedOffset() != 4 {
		t.Errorf("after placement: %+v", rec)
	}
}

// What a HEAD after a failed write reports is on disk: the bytes written before the
// error are synced, and if even that sync fails, they are cut off again (none was
// acknowledged).
func TestWriteErrorsSyncWhatIsReported(t *testing.T) {
	var syncs int
	failSync := false
	fdatasync = func(f *os.File) error {
		syncs++
		if failSync {
			return syscall.EIO
		}
		return durable.SyncData(f)
	}
	t.Cleanup(func() { fdatasync = durable.SyncData })

	s := newStore(t)
	id := create(t, s, 10)
	up, _ := s.GetUpload(context.Background(), id)
	n, err := up.WriteChunk(context.Background(), 0, io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(syscall.EIO)))
	if n != 3 || err == nil || syncs != 1 {
		t.Fatalf("WriteChunk = %d, %v after %d syncs; want 3 bytes, the error, and a sync", n, err, syncs)
	}
	if off, _ := s.Offset(id); off != 3 {
		t.Errorf("offset %d, want the 3 synced bytes", off)
	}

	failSync = true
	up, _ = s.GetUpload(context.Background(), id)
	n, err = up.WriteChunk(context.Background(), 3, strings.NewReader("def"))
	if n != 0 || err == nil {
		t.Fatalf("WriteChunk with a failing sync = %d, %v; want 0 and an error", n, err)
	}
	if off, _ := s.Offset(id); off != 3 {
		t.Errorf("offset %d after a failed sync, want 3: unsynced bytes must not be reported", off)
	}
}

func TestInternalErrorsNameTheSetAndStep(t *testing.T) {
	s := newStore(t)
	err := s.internal("WriteChunk", "x", &os.PathError{Op: "open", Path: "/srv/secret/x", Err: syscall.EACCES})
	want := `set "docs": could not store the upload's bytes: permission denied on the data directory`
	var he handler.Error
	if !errors.As(err, &he) || he.Message != want || he.HTTPResponse.StatusCode != 500 {
		t.Errorf("got %v, want 500 %q", err, want)
	}
}

// fullDisk accepts room bytes, then fails as a full disk does: a short write and
// ENOSPC. The e2e tests fill a real tmpfs when they run as root; this covers the same
// path anywhere.
type fullDisk struct {
	bytes.Buffer
	room int
}

func (d *fullDisk) Write(p []byte) (int, error) {
	if d.Len()+len(p) <= d.room {
		return d.Buffer.Write(p)
	}
	n, _ := d.Buffer.Write(p[:d.room-d.Len()])
	return n, &os.PathError{Op: "write", Path: "/data/secret/x", Err: syscall.ENOSPC}
}

func TestFullDiskKeepsWhatWasWritten(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 100_000)
	disk := &fullDisk{room: 70_000}
	n, err := copyBody(disk, bytes.NewReader(data), -1)
	if n != 70_000 || disk.Len() != 70_000 {
		t.Errorf("copied %d, disk holds %d; want both 70000", n, disk.Len())
	}
	s := newStore(t)
	got := s.internal("WriteChunk", "x", err)
	var he handler.Error
	if !errors.Is(got, ErrStorageFull) || !errors.As(got, &he) {
		t.Fatalf("ENOSPC answers %v, want ErrStorageFull (a 5xx clients retry)", got)
	}
	if he.HTTPResponse.StatusCode != 503 || strings.Contains(he.Message, "/data") || !strings.Contains(he.Message, `set "docs"`) {
		t.Errorf("ENOSPC answers %d %q; want 503 naming the set and no path", he.HTTPResponse.StatusCode, he.Message)
	}
}

// The record cache never shows what the log does not hold: a change is seen at once,
// a read that raced with a commit does not put back what the commit replaced, and a
// caller changing the record it got changes nothing.
func TestRecordCacheStaysExact(t *testing.T) {
	r := testRecords(t)
	s := openStore(t, t.TempDir(), r)
	id := create(t, s, 3)
	write(t, s, id, 0, []byte("abc"))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := s.Record(id); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	if err := s.MarkPlaced(id, "a.txt", map[string]string{"small": "thumbs/small/a.txt"}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	rec, err := s.Record(id)
	if err != nil || rec.State != Placed || rec.Name != "a.txt" {
		t.Fatalf("after MarkPlaced: %+v, %v", rec, err)
	}
	rec.MetaData["filename"] = "changed"
	rec.Thumbs["small"] = "changed"
	again, _ := s.Record(id)
	if again.MetaData["filename"] != "a.txt" || again.Thumbs["small"] != "thumbs/small/a.txt" {
		t.Errorf("a caller's change reached the cache: %+v", again)
	}
	// What the log holds on disk, read past the cache, is the same.
	e, err := r.read("docs", id)
	if err != nil || e.State != Placed || e.Name != "a.txt" {
		t.Errorf("on disk: %+v, %v", e, err)
	}
	u, _ := s.GetUpload(context.Background(), id)
	if u == nil {
		t.Fatal("GetUpload of a placed upload")
	}
}
