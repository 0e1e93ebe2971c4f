package s3dest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/uploadsets/uploadsets/internal/store"
)

var _ store.Destination = (*Dest)(nil)

// Open opens a placed file for serving. A name that no placement could have made
// (an empty, "." or ".." component, or one beginning with a dot) is not found, so no
// name reaches outside the prefix or into the markers.
func (d *Dest) Open(name string) (store.File, error) {
	key, err := d.key(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	head, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.bucket, Key: &key})
	if status(err) == 404 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if err != nil {
		return nil, fmt.Errorf("s3dest: opening %q: %w", name, err)
	}
	return &file{
		d: d, key: key, etag: head.ETag,
		info: info{name: path.Base(name), size: aws.ToInt64(head.ContentLength), mod: aws.ToTime(head.LastModified)},
	}, nil
}

// file reads an object from its offset with one ranged GET, streamed until the next
// seek that moves it.
type file struct {
	d    *Dest
	key  string
	etag *string // of the object opened: a GET of another one fails
	info info

	off    int64
	body   io.ReadCloser // from off on; nil until a read needs it
	closed bool
}

func (f *file) Stat() (fs.FileInfo, error) { return f.info, nil }

func (f *file) Read(p []byte) (int, error) {
	if f.closed {
		return 0, fs.ErrClosed
	}
	if f.off >= f.info.size {
		return 0, io.EOF
	}
	if f.body == nil {
		// The body lives beyond this call, so its request has no deadline of
		// its own: reading stops when the caller stops reading and closes.
		out, err := f.d.client.GetObject(context.Background(), &s3.GetObjectInput{
			Bucket: &f.d.bucket, Key: &f.key, IfMatch: f.etag,
			Range: aws.String(fmt.Sprintf("bytes=%d-", f.off)),
		})
		if err != nil {
			return 0, fmt.Errorf("s3dest: reading %q: %w", f.info.name, err)
		}
		f.body = out.Body
	}
	n, err := f.body.Read(p)
	f.off += int64(n)
	if errors.Is(err, io.EOF) && f.off < f.info.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (f *file) Seek(offset int64, whence int) (int64, error) {
	if f.closed {
		return 0, fs.ErrClosed
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += f.info.size
	default:
		return 0, errors.New("s3dest: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("s3dest: negative position")
	}
	if offset != f.off {
		f.dropBody()
		f.off = offset
	}
	return offset, nil
}

func (f *file) Close() error {
	if f.closed {
		return fs.ErrClosed
	}
	f.closed = true
	f.dropBody()
	return nil
}

// dropBody stops reading the current GET; closing it early ends its connection
// rather than downloading the rest.
func (f *file) dropBody() {
	if f.body != nil {
		f.body.Close()
		f.body = nil
	}
}

// info is a placed file's fs.FileInfo.
type info struct {
	name string
	size int64
	mod  time.Time
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return i.size }
func (i info) Mode() fs.FileMode  { return 0o444 }
func (i info) ModTime() time.Time { return i.mod }
func (i info) IsDir() bool        { return false }
func (i info) Sys() any           { return nil }
