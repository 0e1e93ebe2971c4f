package disk

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/internal/durable"
	"github.com/uploadsets/uploadsets/internal/uploads"
)

// upload is one upload as tusd sees it, loaded under tusd's lock for one request.
type upload struct {
	store    *Store
	rec      Record
	withheld bool // GetUpload reported one byte less than the file holds (see ReportedOffset)
	// created, when set, is the outcome of the record's commit, which a
	// creation-with-upload runs beside writing the body (see NewUpload).
	created chan error
}

// waitCreated returns once the upload's record is durable, or why it is not.
func (u *upload) waitCreated() error {
	if u.created == nil {
		return nil
	}
	err := <-u.created
	u.created <- err // for a second write of the same request, however unlikely
	return err
}

func (u *upload) GetInfo(ctx context.Context) (handler.FileInfo, error) {
	return u.rec.FileInfo, nil
}

// WriteChunk appends the body to the data file and syncs it before returning, so an
// offset the client is told has reached the disk. The first write makes the file and
// syncs the data directory beside the data, so that the file's name survives a power
// cut even when the write completes the upload: the upload's offset is read from it,
// and a cut between placement's link and the record saying so leaves the complete
// upload for the restart to find where it went (placement is idempotent), rather than
// a file in the destination that nothing names and a client sending it again.
func (u *upload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	n, err := u.writeChunk(ctx, offset, src)
	// Nothing of this request is answered before the record is on disk; if it
	// cannot be, no byte counts (a data file without a record is swept).
	if cerr := u.waitCreated(); cerr != nil {
		return 0, cerr
	}
	return n, err
}

func (u *upload) writeChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	if u.rec.State != Receiving && u.rec.State != Failed {
		return 0, handler.ErrModifyFinal
	}
	sum, want, verify := uploads.ChecksumOf(ctx)
	if verify {
		src = io.TeeReader(src, sum)
	}
	if u.withheld {
		// Every byte is on disk already, synced, and the file may be a placed
		// file's inode too (placement links it before recording that): it is
		// never written again. The client's copy of the withheld byte only makes
		// tusd see the upload complete and run placement once more.
		n, err := io.ReadFull(src, make([]byte, 1))
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = nil
		}
		if verify && !bytes.Equal(sum.Sum(nil), want) {
			return 0, uploads.ChecksumMismatch(u.store.set)
		}
		return int64(n), err
	}
	first := offset == 0
	f, done, err := u.store.openForWrite(u.rec.ID, first)
	if errors.Is(err, os.ErrNotExist) {
		return 0, handler.ErrNotFound
	}
	if err != nil {
		return 0, u.store.internal("WriteChunk", u.rec.ID, err)
	}
	defer done()
	var capped *capReader
	if u.rec.SizeIsDeferred && u.rec.Limit > 0 {
		capped = &capReader{r: src, left: u.rec.Limit - offset}
		src = capped
	}
	most := int64(-1)
	if !u.rec.SizeIsDeferred {
		most = u.rec.Size - offset
	}
	w := newFileWriter(f, offset)
	n, err := copyBody(w, src, most)
	if capped != nil && capped.over {
		err = u.store.tooLarge(u.rec.Limit)
	}
	// A checksummed request is kept whole or not at all: bytes that do not match
	// (or a body that ended early, which cannot match) are cut off again before
	// anything is acknowledged.
	if verify && (err != nil || !bytes.Equal(sum.Sum(nil), want)) {
		if terr := f.Truncate(offset); terr == nil {
			n = 0
		}
		if err == nil {
			err = uploads.ChecksumMismatch(u.store.set)
		}
	}
	// Synced after a failed write too: the next HEAD reports the file's size, and
	// what it reports must be on disk. If the sync fails, this request's bytes
	// (none acknowledged) are cut off again.
	var dirSynced chan error
	if first {
		dirSynced = make(chan error, 1)
		go func() { dirSynced <- durable.SyncDir(u.store.dir) }()
	}
	serr := w.sync()
	if dirSynced != nil {
		if derr := <-dirSynced; serr == nil {
			serr = derr
		}
	}
	if serr != nil {
		if f.Truncate(offset) == nil {
			n = 0
			w.sync() // the best that can be done on a disk that fails syncs
		}
		if err == nil {
			err = serr
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	u.rec.Offset += n
	var he handler.Error
	if errors.As(err, &he) {
		return n, err
	}
	if err != nil {
		return n, u.store.internal("WriteChunk", u.rec.ID, err)
	}
	return n, nil
}

func (u *upload) GetReader(ctx context.Context) (io.ReadCloser, error) {
	if u.rec.State == Placed {
		return nil, handler.ErrNotFound
	}
	f, err := durable.OpenFile(u.store.binPath(u.rec.ID), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) && u.rec.Offset == 0 {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	if err != nil {
		return nil, u.store.internal("GetReader", u.rec.ID, err)
	}
	return f, nil
}

// DeclareLength fixes the length of an upload created without one, as the IETF draft's
// last request (or tus's Upload-Length on a PATCH) does.
func (u *upload) DeclareLength(ctx context.Context, length int64) error {
	if u.rec.Limit > 0 && length > u.rec.Limit {
		return u.store.tooLarge(u.rec.Limit)
	}
	if err := u.store.changeState(u.rec.ID, stateChange{Length: length}); err != nil {
		return err
	}
	u.rec.Size, u.rec.SizeIsDeferred = length, false
	return nil
}

// capReader passes on at most left bytes of an upload of unknown length, and notes
// when the body had more: those are never stored.
type capReader struct {
	r    io.Reader
	left int64
	over bool
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One byte more tells a body that ends at the limit from one that goes on.
		var b [1]byte
		if n, _ := c.r.Read(b[:]); n > 0 {
			c.over = true
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// FinishUpload makes the data file of an upload that never had a byte (a zero-byte
// upload: placement links a file); every other chunk was synced as it was written, and
// placement belongs to the set's finish hook.
func (u *upload) FinishUpload(ctx context.Context) error {
	if err := u.waitCreated(); err != nil {
		return err
	}
	if u.rec.Offset > 0 || u.withheld {
		return nil
	}
	f, done, err := u.store.openForWrite(u.rec.ID, true)
	if err != nil {
		return u.store.internal("WriteChunk", u.rec.ID, err)
	}
	defer done()
	err = fdatasync(f) // its inode, which the destination's directory will name
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return u.store.internal("WriteChunk", u.rec.ID, err)
	}
	return nil
}

// Terminate removes a partial upload. A placed file is the set's now, not the
// uploader's: it is not deleted through the upload URL.
func (u *upload) Terminate(ctx context.Context) error {
	if u.rec.State == Placed {
		return forSet(ErrPlacedFile, u.store.set)
	}
	if err := u.store.tell(Terminated, u.rec); err != nil {
		return err
	}
	// The record first: a crash in between leaves a data file without a record,
	// which the janitor removes (a record without its data would read as an upload
	// with no byte yet).
	if err := u.store.records.remove(u.store.set, u.rec.ID); err != nil {
		return u.store.internal("Terminate", u.rec.ID, err)
	}
	if err := os.Remove(u.store.binPath(u.rec.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		u.store.log.Warn("RemoveDataFailed", "id", u.rec.ID, "error", err)
	}
	return nil
}
