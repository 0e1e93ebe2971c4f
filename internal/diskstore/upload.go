package diskstore

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"syscall"

	"github.com/tus/tusd/v2/pkg/handler"
	"golang.org/x/sys/unix"
)

// upload is one upload as tusd sees it, loaded under tusd's lock for one request.
type upload struct {
	store    *Store
	rec      Record
	withheld bool // GetUpload reported one byte less than the file holds
}

func (u *upload) GetInfo(ctx context.Context) (handler.FileInfo, error) {
	return u.rec.FileInfo, nil
}

// WriteChunk appends the body to the data file and syncs it before returning, so an
// offset the client is told has reached the disk.
func (u *upload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	if u.rec.State != Receiving {
		return 0, handler.ErrModifyFinal
	}
	f, done, err := u.store.openForWrite(u.rec.ID)
	if errors.Is(err, os.ErrNotExist) {
		return 0, handler.ErrNotFound
	}
	if err != nil {
		return 0, u.store.internal("WriteChunk", u.rec.ID, err)
	}
	defer done()
	// The last byte of an unplaced upload was withheld from the offset (see
	// GetUpload): drop it, and the client's copy of it completes the upload anew.
	if u.withheld {
		if err := f.Truncate(offset); err != nil {
			f.Close()
			return 0, u.store.internal("WriteChunk", u.rec.ID, err)
		}
	}
	wb := newWriteBehind(f, offset)
	n, err := copyBody(wb, src)
	if err == nil {
		err = wb.sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	u.rec.Offset += n
	if err != nil {
		return n, u.store.internal("WriteChunk", u.rec.ID, err)
	}
	return n, nil
}

func (u *upload) GetReader(ctx context.Context) (io.ReadCloser, error) {
	if u.rec.State == Placed {
		return nil, handler.ErrNotFound
	}
	f, err := os.Open(u.store.binPath(u.rec.ID))
	if err != nil {
		return nil, u.store.internal("GetReader", u.rec.ID, err)
	}
	return f, nil
}

// FinishUpload has nothing left to do: every chunk was synced as it was written, and
// placement belongs to the set's finish hook.
func (u *upload) FinishUpload(ctx context.Context) error { return nil }

// Terminate removes a partial upload. A placed file is the set's now, not the
// uploader's: it is not deleted through the upload URL.
func (u *upload) Terminate(ctx context.Context) error {
	if u.rec.State == Placed {
		return ErrPlacedFile
	}
	for _, p := range []string{u.store.binPath(u.rec.ID), u.store.infoPath(u.rec.ID)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return u.store.internal("Terminate", u.rec.ID, err)
		}
	}
	return nil
}

// ServeContent answers GET on the upload URL: the placed file's URL once placed (a
// client that lost the final response can follow it), else the bytes received so far.
func (u *upload) ServeContent(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	if u.rec.State == Placed && u.rec.URL != "" {
		http.Redirect(w, r, u.rec.URL, http.StatusSeeOther)
		return nil
	}
	f, err := os.Open(u.store.binPath(u.rec.ID))
	if err != nil {
		return handler.ErrNotFound
	}
	defer f.Close()
	http.ServeContent(w, r, "", u.rec.Created, f)
	return nil
}

// Buffers grow with the sender: two reads in a row that fill one move the copy to the
// next size (one full read is just a burst: a client sending a little and going
// quiet would pin the larger buffer while it waits). A slow sender (a phone on a train) never fills 4 KiB and pins no more than
// that for the minutes it is held; a fast one reaches 1 MiB reads within two reads,
// where io.Copy into a file would stay at 32 KiB (fewer syscalls per byte).
var bufSizes = [...]int{4 << 10, 64 << 10, 1 << 20}

var bufPools [len(bufSizes)]sync.Pool

func init() {
	for i, n := range bufSizes {
		bufPools[i].New = func() any { b := make([]byte, n); return &b }
	}
}

// copyBody copies src to f, growing its buffer as reads fill it.
func copyBody(f io.Writer, src io.Reader) (int64, error) {
	stage := 0
	bp := bufPools[0].Get().(*[]byte)
	defer func() { bufPools[stage].Put(bp) }()

	var written int64
	full := 0 // consecutive reads that filled the buffer
	for {
		buf := *bp
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := f.Write(buf[:nr])
			written += int64(nw)
			if werr != nil {
				return written, werr
			}
			if nr < len(buf) {
				full = 0
			} else if full++; full == 2 && stage < len(bufSizes)-1 {
				bufPools[stage].Put(bp)
				stage++
				bp = bufPools[stage].Get().(*[]byte)
				full = 0
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}

// writeBehind starts writeback of every few MiB as it is written, so the fsync that
// ends a PATCH finds little left to write instead of the whole body at once.
type writeBehind struct {
	f       *os.File
	fd      int
	synced  int64 // offset up to which writeback was started
	written int64
}

const writeBehindStep = 8 << 20

func newWriteBehind(f *os.File, offset int64) *writeBehind {
	return &writeBehind{f: f, fd: int(f.Fd()), synced: offset, written: offset}
}

func (w *writeBehind) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.written += int64(n)
	if w.written-w.synced >= writeBehindStep {
		// Advisory: a failure here only means the final fsync does all the work.
		unix.SyncFileRange(w.fd, w.synced, w.written-w.synced, unix.SYNC_FILE_RANGE_WRITE)
		w.synced = w.written
	}
	return n, err
}

// sync makes the data durable; the file's size is in its metadata, which fdatasync
// covers since it changed.
func (w *writeBehind) sync() error { return unix.Fdatasync(w.fd) }

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
