package s3uploads

import (
	"bytes"
	"context"
	"errors"
	"hash"
	"io"
	"os"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/internal/uploads"
)

// upload is one upload as tusd sees it, loaded under tusd's lock for one request. It
// wraps s3store's upload, which holds the bytes, and keeps the record beside it.
type upload struct {
	store     *Store
	v         versioned // the record object as last read or written
	rec       Record    // as tusd sees it: the store's ID, the reported offset
	s3        handler.Upload
	assembled bool // s3store's final object holds every byte
	withheld  bool // GetUpload reported one byte less than the bucket holds (see ReportedOffset)
}

func (u *upload) GetInfo(ctx context.Context) (handler.FileInfo, error) {
	return u.rec.FileInfo, nil
}

// WriteChunk hands the body to s3store. A body with an expected checksum is spooled
// to a local file and verified first: s3store cannot take back a byte it stored.
func (u *upload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	s := u.store
	if u.rec.State != Receiving && u.rec.State != Failed {
		return 0, handler.ErrModifyFinal
	}
	var sum hash.Hash
	var want []byte
	verify := false
	if s.checksum != nil {
		sum, want, verify = s.checksum(ctx)
	}
	if verify {
		src = io.TeeReader(src, sum)
	}
	if u.withheld {
		// Every byte is in the bucket already, and the final object may be in
		// the destination's hands: it is never written again. The client's copy
		// of the withheld byte only makes tusd see the upload complete and run
		// placement once more.
		n, err := io.ReadFull(src, make([]byte, 1))
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = nil
		}
		if verify && !bytes.Equal(sum.Sum(nil), want) {
			return 0, s.checksumMismatch()
		}
		return int64(n), err
	}
	done := s.startWrite(u.rec.ID)
	defer done()
	var capped *capReader
	if u.rec.SizeIsDeferred && u.rec.Limit > 0 {
		capped = &capReader{r: src, left: u.rec.Limit - offset}
		src = capped
	}
	var n int64
	var err error
	if verify {
		n, err = u.writeVerified(ctx, offset, src, capped, func() bool { return bytes.Equal(sum.Sum(nil), want) })
	} else {
		n, err = u.s3.WriteChunk(ctx, offset, src)
		if err == nil && capped != nil && capped.over {
			err = s.tooLarge(u.rec.Limit)
		}
	}
	u.rec.Offset += n
	if n > 0 {
		u.touch(ctx)
	}
	var he handler.Error
	if err != nil && !errors.As(err, &he) {
		err = s.internal("WriteChunk", u.rec.ID, err)
	}
	return n, err
}

// writeVerified spools the body to a temp file and hands it to s3store only once the
// body has ended within the limit and matches: otherwise nothing of it is stored.
func (u *upload) writeVerified(ctx context.Context, offset int64, src io.Reader, capped *capReader, matches func() bool) (int64, error) {
	s := u.store
	f, err := os.CreateTemp(s.tempDir, spoolPattern)
	if err != nil {
		return 0, err
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	if _, err := io.Copy(f, src); err != nil {
		return 0, err
	}
	switch {
	case capped != nil && capped.over:
		return 0, s.tooLarge(u.rec.Limit)
	case !matches():
		// A body that ended early cannot match either.
		return 0, s.checksumMismatch()
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	return u.s3.WriteChunk(ctx, offset, f)
}

// spoolPattern names the temp files of checksummed bodies (Sweep removes old ones).
const spoolPattern = "uploadsets-s3-spool-"

// touch records that bytes arrived, unless the record already says so within
// activityStep.
func (u *upload) touch(ctx context.Context) {
	s := u.store
	now := s.now().UTC()
	if now.Sub(u.v.obj.Active) < s.activityStep() {
		return
	}
	v, err := s.update(ctx, u.rec.ID, &u.v, false, func(o *object) bool {
		if !o.Active.Before(now) {
			return false
		}
		o.Active = now
		return true
	})
	if err != nil {
		// The bytes are stored all the same; the upload may expire up to this
		// request's length early (see the package doc).
		s.log.Warn("RecordActivityFailed", "id", u.rec.ID, "error", err)
		return
	}
	u.v = v
}

// GetReader reads the final object of a complete upload (tusd's GET) up to the
// reported offset; an upload still receiving cannot be read back from S3.
func (u *upload) GetReader(ctx context.Context) (io.ReadCloser, error) {
	switch {
	case u.rec.State == Placed:
		return nil, handler.ErrNotFound
	case !u.assembled:
		return nil, u.store.incomplete()
	}
	r, err := u.s3.GetReader(ctx)
	if err != nil {
		return nil, u.store.internal("GetReader", u.rec.ID, err)
	}
	// tusd announces the reported offset as the length: a withheld byte is not sent.
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(r, u.rec.Offset), r}, nil
}

// DeclareLength fixes the length of an upload created without one: in s3store's
// .info, which its writes go by, then in the record, which outlives .info.
func (u *upload) DeclareLength(ctx context.Context, length int64) error {
	s := u.store
	if u.rec.State != Receiving {
		return handler.ErrModifyFinal
	}
	if u.rec.Limit > 0 && length > u.rec.Limit {
		return s.tooLarge(u.rec.Limit)
	}
	if err := s.s3.AsLengthDeclarableUpload(u.s3).DeclareLength(ctx, length); err != nil {
		return s.internal("ChangeState", u.rec.ID, err)
	}
	v, err := s.update(ctx, u.rec.ID, &u.v, false, func(o *object) bool {
		if !o.SizeIsDeferred {
			return false
		}
		o.Size, o.SizeIsDeferred = length, false
		return true
	})
	if err != nil {
		return s.internal("ChangeState", u.rec.ID, err)
	}
	u.v = v
	u.rec.Size, u.rec.SizeIsDeferred = length, false
	return nil
}

// FinishUpload has s3store assemble the final object, once. Placement belongs to the
// set's finish hook, which runs next in the same request.
func (u *upload) FinishUpload(ctx context.Context) error {
	s := u.store
	if u.rec.State == Placed {
		return nil // its data is gone: nothing to assemble, nor to record
	}
	if !u.assembled {
		if err := u.s3.FinishUpload(ctx); err != nil {
			// A completion that went through but whose answer was lost leaves
			// no multipart upload to complete again: the object tells.
			if _, found, herr := s.head(ctx, u.rec.ID); herr != nil || !found {
				return s.internal("FinishUpload", u.rec.ID, err)
			}
		}
		u.assembled = true
	}
	if !u.v.obj.Assembled {
		// The record is not written now: the finish hook changes it next in this
		// request (the name it intends, placed, failed, rejected), and that write,
		// over the version read at the request's start, says the object is
		// assembled too: one write fewer per upload. Until then, or if that write
		// never comes (a crash), a load finds the object by a HEAD.
		o := &u.v.obj
		o.Assembled, o.Size, o.SizeIsDeferred, o.Active = true, u.rec.Size, false, s.now().UTC()
		s.remember(u.rec.ID, u.v)
	}
	s.keepAssembled(ctx, u.rec.ID, u.v)
	return nil
}

// Terminate removes a partial upload: its data through s3store, then its record. A
// placed file is the set's now, not the uploader's: it is not deleted through the
// upload URL.
func (u *upload) Terminate(ctx context.Context) error {
	s := u.store
	if u.rec.State == Placed {
		return uploads.ForSet(uploads.ErrPlacedFile, s.set)
	}
	if err := s.tell(uploads.Terminated, u.rec); err != nil {
		return err
	}
	// The data first: a crash in between leaves a record without data, which
	// reads as not found and which Sweep removes.
	if err := s.terminate(ctx, u.v.obj); err != nil {
		return s.internal("Terminate", u.rec.ID, err)
	}
	if err := s.deleteRecord(ctx, u.rec.ID); err != nil {
		return s.internal("Terminate", u.rec.ID, err)
	}
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
