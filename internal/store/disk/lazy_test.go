package disk

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/internal/durable"
	"github.com/uploadsets/uploadsets/internal/durable/powercut"
	"github.com/uploadsets/uploadsets/internal/uploads"
)

// A creation makes the record alone: the data file comes with the first byte, and
// until then the upload reads as one with no byte (offset 0, nothing to serve).
func TestDataFileComesWithTheFirstByte(t *testing.T) {
	s := newStore(t)
	id := create(t, s, 10)
	if _, err := os.Stat(s.binPath(id)); !os.IsNotExist(err) {
		t.Fatalf("data file after creation: %v, want none", err)
	}
	if off, err := s.Offset(id); err != nil || off != 0 {
		t.Fatalf("Offset = %d, %v; want 0", off, err)
	}
	rec, data, err := s.Open(id)
	if err != nil || rec.Offset != 0 {
		t.Fatalf("Open = %+v, %v", rec, err)
	}
	if n, err := data.ReadAt(make([]byte, 1), 0); n != 0 || err != io.EOF {
		t.Errorf("ReadAt of an upload with no byte = %d, %v; want 0, EOF", n, err)
	}
	if head, err := s.Head(id, 16); err != nil || len(head) != 0 {
		t.Errorf("Head = %q, %v; want nothing", head, err)
	}
	write(t, s, id, 0, []byte("abc"))
	if off, _ := s.Offset(id); off != 3 {
		t.Errorf("Offset after a write = %d, want 3", off)
	}
}

// A zero-byte upload never writes, but placement links its data file: finishing it
// makes an empty one.
func TestZeroByteUploadGetsAFileToPlace(t *testing.T) {
	s := newStore(t)
	id := create(t, s, 0)
	up, _ := s.GetUpload(context.Background(), id)
	if err := up.FinishUpload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(s.Source(id).Path); err != nil || fi.Size() != 0 {
		t.Errorf("data file of a finished zero-byte upload: %v, %v", fi, err)
	}
}

// The first write syncs the data directory, whether the upload goes on or is
// complete: after a power cut the data file of each is there, whole. For a complete
// one this matters when placement has linked the file into a synced destination but
// the record does not say so yet: without its data file the restart would see an
// upload with no byte (the client sends it again, it is placed a second time) and a
// file in the destination that nothing names.
func TestDataFileNamesSurviveAPowerCut(t *testing.T) {
	root := t.TempDir()
	dir, dest := filepath.Join(root, "data"), filepath.Join(root, "dest")
	if err := os.Mkdir(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir, testRecords(t))
	sim := powercut.Start(t, root)

	partial := create(t, s, 10)
	write(t, s, partial, 0, []byte("abc"))
	complete := create(t, s, 3)
	write(t, s, complete, 0, []byte("xyz"))
	// What placement does before it records the outcome.
	if err := os.Link(s.Source(complete).Path, filepath.Join(dest, "a.txt")); err != nil {
		t.Fatal(err)
	}
	if err := durable.SyncDir(dest); err != nil {
		t.Fatal(err)
	}
	img := sim.Cut(t, nil)
	for id, want := range map[string]string{partial: "abc", complete: "xyz"} {
		if got, err := os.ReadFile(filepath.Join(img, "data", id)); err != nil || !bytes.Equal(got, []byte(want)) {
			t.Errorf("after the cut, %s holds %q (%v); want %q", id, got, err, want)
		}
	}
}

// A creation-with-upload commits its record beside writing the body, and the write
// does not return (the client hears nothing) before the record is on disk.
func TestCreationWithUploadWaitsForItsRecord(t *testing.T) {
	s := newStore(t)
	tx, err := s.records.db.Begin(true) // holds the log's writer: no commit can finish
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() // again, harmlessly, unless the test failed before
	ctx := uploads.WithBodyToWrite(context.Background())
	up, err := s.NewUpload(ctx, handler.FileInfo{Size: 3, MetaData: handler.MetaData{"filename": "a.txt"}})
	if err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := up.WriteChunk(ctx, 0, bytes.NewReader([]byte("abc")))
		wrote <- err
	}()
	select {
	case err := <-wrote:
		t.Fatalf("the write returned (%v) before its record could be committed", err)
	case <-time.After(200 * time.Millisecond):
	}
	tx.Rollback()
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	info, _ := up.GetInfo(ctx)
	if rec, err := s.records.read(s.set, info.ID); err != nil || rec.ID != info.ID {
		t.Errorf("record in the log after the write: %+v, %v", rec, err)
	}
}
