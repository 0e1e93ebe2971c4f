//go:build linux

package s3uploads

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"
)

// What a crash between two steps leaves is recovered from, as the package doc says.
func TestCrashWindows(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	c := &clock{t: time.Now()}
	in := b.instance(t, config{opts: func(o *Options) { o.Expire, o.now = time.Hour, c.now }})
	s := in.store
	ctx := t.Context()
	data := randomBytes(chunk+300, 11)

	t.Run("every byte in, multipart upload not completed", func(t *testing.T) {
		// The last PATCH wrote the last part, and the process died before
		// tusd's FinishUpload.
		id := in.create(t, len(data))
		in.mustPatch(t, id, 0, data[:chunk])
		v, err := s.getRecord(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		up, err := s.s3.GetUpload(ctx, v.obj.Upload)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.GetInfo(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := up.WriteChunk(ctx, chunk, bytes.NewReader(data[chunk:])); err != nil || n != int64(len(data)-chunk) {
			t.Fatalf("s3store's WriteChunk: %d, %v", n, err)
		}
		if _, _, _, err := s.Object(id); !errors.Is(err, handler.ErrNotFound) {
			t.Fatalf("an object before completion: %v", err)
		}
		// The client is told to send the last byte again, and that completes it.
		resumeLastByte(t, in, id, data)
	})

	t.Run("completed, not recorded", func(t *testing.T) {
		id := in.upload(t, data, chunk)
		if _, err := s.update(ctx, id, nil, false, func(o *object) bool { o.Assembled = false; return true }); err != nil {
			t.Fatal(err)
		}
		rec, err := s.Record(id)
		if err != nil || !rec.Unplaced() || rec.Offset != int64(len(data)) {
			t.Fatalf("record: %+v, %v", rec, err)
		}
		resumeLastByte(t, in, id, data)
	})

	t.Run("record without data", func(t *testing.T) {
		// Terminate removed the data and died before the record.
		id := in.create(t, len(data))
		in.mustPatch(t, id, 0, data[:chunk])
		v, err := s.getRecord(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.terminate(ctx, v.obj); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Record(id); !errors.Is(err, handler.ErrNotFound) {
			t.Errorf("Record: %v, want not found", err)
		}
		if resp := tusDo(t, http.MethodHead, in.url+id, nil, nil); resp.status != http.StatusNotFound {
			t.Errorf("HEAD: %d", resp.status)
		}
		b.wantKeysOf(t, id, id+".record")
		c.advance(2 * time.Hour)
		if n, err := s.Sweep(); err != nil || n < 1 {
			t.Errorf("Sweep: %d, %v", n, err)
		}
		b.wantKeys(t)
	})

	t.Run("placed, data not removed", func(t *testing.T) {
		id := in.upload(t, data, chunk)
		if _, err := s.changeState(ctx, id, stateChange{State: Placed, Name: "photo.jpg"}); err != nil {
			t.Fatal(err)
		}
		if rec, err := s.Record(id); err != nil || rec.State != Placed {
			t.Fatalf("record: %+v, %v", rec, err)
		}
		if n, err := s.Sweep(); err != nil || n != 0 {
			t.Errorf("Sweep before expiry: %d, %v", n, err)
		}
		c.advance(2 * time.Hour)
		if n, err := s.Sweep(); err != nil || n != 1 {
			t.Errorf("Sweep: %d, %v", n, err)
		}
		b.wantKeys(t)
	})
}

// resumeLastByte is a client's resumption of an upload whose every byte is in: HEAD
// holds the last one back, and its PATCH completes the upload.
func resumeLastByte(t *testing.T, in *instance, id string, data []byte) {
	t.Helper()
	if got := in.offset(t, id); got != len(data)-1 {
		t.Fatalf("HEAD: %d, want %d", got, len(data)-1)
	}
	before := in.finished()
	resp := in.patch(t, id, len(data)-1, data[len(data)-1:], nil)
	if resp.status != http.StatusNoContent || resp.header.Get("Upload-Offset") != strconv.Itoa(len(data)) {
		t.Fatalf("PATCH of the last byte: %d %q %s", resp.status, resp.header.Get("Upload-Offset"), resp.body)
	}
	if in.finished() != before+1 {
		t.Error("the finish hook did not run")
	}
	// The hooks' first change of the record, as placement makes it, says the
	// object is assembled as well.
	if err := in.store.Intend(id, "photo.jpg"); err != nil {
		t.Fatal(err)
	}
	if v, _ := in.store.getRecord(t.Context(), id); !v.obj.Assembled {
		t.Error("the record does not say the object is assembled")
	}
	_, key, size, err := in.store.Object(id)
	if err != nil || size != int64(len(data)) {
		t.Fatalf("Object: %d, %v", size, err)
	}
	if rec, _ := in.store.Record(id); !rec.Unplaced() {
		t.Errorf("record: %+v", rec)
	}
	if got := readObject(t, in.store, key); !bytes.Equal(got, data) {
		t.Error("the final object differs from the bytes sent")
	}
}
