package s3uploads

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// objectData reads an object as a store.Data. Reads that follow each other (as
// http.ServeContent's do, 32 KiB at a time) go on in one ranged GET to the end;
// any other read starts a new one.
type objectData struct {
	client      *s3.Client
	bucket, key string
	size        int64

	mu     sync.Mutex
	body   io.ReadCloser
	at     int64 // the offset body is at
	cancel context.CancelFunc
}

func (d *objectData) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= d.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), d.size-off)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.body == nil || d.at != off {
		if err := d.open(off); err != nil {
			return 0, err
		}
	}
	n, err := io.ReadFull(d.body, p[:want])
	d.at += int64(n)
	if err != nil {
		d.closeBody()
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = fmt.Errorf("%s ended at %d bytes of %d", d.key, off+int64(n), d.size)
		}
		return n, err
	}
	if want < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

func (d *objectData) open(off int64) error {
	d.closeBody()
	ctx, cancel := context.WithCancel(context.Background())
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(d.bucket), Key: aws.String(d.key),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, d.size-1)),
	})
	if err != nil {
		cancel()
		return err
	}
	d.body, d.at, d.cancel = out.Body, off, cancel
	return nil
}

func (d *objectData) closeBody() {
	if d.body != nil {
		d.body.Close()
		d.cancel()
		d.body, d.cancel = nil, nil
	}
}

func (d *objectData) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closeBody()
	return nil
}
