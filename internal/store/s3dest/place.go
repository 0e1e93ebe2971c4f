package s3dest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/uploadsets/uploadsets/internal/store"
)

// Object is an S3 object to place: a finished upload's data.
type Object struct {
	Bucket string
	Key    string
	// Size is the upload's size, as its record has it: an object of another size is
	// an error, not a truncated copy. Negative: whatever size the object has.
	Size int64
}

// Place puts req.Src into place and returns its name: an S3 object (an upload's
// assembled bytes) by a server-side copy (PlaceObject), a local file (an image step's
// output) by an upload (PlaceFile). The owner is the object's or file's base name:
// both are named after their upload (<prefix><id>, <id>.out.main.jpg), so it is the
// same on every attempt and no other upload's.
func (d *Dest) Place(req store.Request) (string, error) {
	if req.Src.Key != "" {
		return d.PlaceObject(req, path.Base(req.Src.Key), Object{Bucket: req.Src.Bucket, Key: req.Src.Key, Size: -1})
	}
	return d.PlaceFile(req, filepath.Base(req.Src.Path))
}

// PlaceFile uploads the local file req.Src.Path under the first free candidate name
// and returns that name. owner identifies the upload it is placed for, the same on
// every attempt: a name whose marker holds the same owner is taken up again, and a
// file there that is the owner's is returned as it is, so a retry after a crash
// never places a second copy.
func (d *Dest) PlaceFile(req store.Request, owner string) (string, error) {
	f, err := os.Open(req.Src.Path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("s3dest: %s is not a regular file", req.Src.Path)
	}
	size := st.Size()
	return d.place(req, owner, size, func(t target) (bool, error) {
		if size <= d.putPartSize {
			return d.putFile(t, io.NewSectionReader(f, 0, size), size)
		}
		return d.multipart(t, size, d.partSize(size), types.ChecksumAlgorithmCrc32, func(ctx context.Context, up *string, n int32, off, length int64) (types.CompletedPart, error) {
			out, err := d.client.UploadPart(ctx, &s3.UploadPartInput{
				Bucket: &d.bucket, Key: &t.key, UploadId: up, PartNumber: &n,
				Body: io.NewSectionReader(f, off, length), ContentLength: &length,
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
			})
			if err != nil {
				return types.CompletedPart{}, err
			}
			return types.CompletedPart{ETag: out.ETag, PartNumber: &n, ChecksumCRC32: out.ChecksumCRC32}, nil
		})
	})
}

// PlaceObject puts a copy of src under the first free candidate name and returns that
// name, as PlaceFile does. S3 copies it (UploadPartCopy): no byte passes through
// this process. src is left as it is.
func (d *Dest) PlaceObject(req store.Request, owner string, src Object) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	head, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &src.Bucket, Key: &src.Key})
	cancel()
	if err != nil {
		return "", fmt.Errorf("s3dest: reading the upload's object: %w", err)
	}
	switch size := aws.ToInt64(head.ContentLength); {
	case src.Size < 0:
		src.Size = size
	case size != src.Size:
		return "", fmt.Errorf("s3dest: the upload's object has %d bytes, not %d", size, src.Size)
	}
	// The copy is of the object as it was seen here, or fails.
	etag := head.ETag
	return d.place(req, owner, src.Size, func(t target) (bool, error) { return d.copyTo(t, src, etag) })
}

// copyTo has S3 copy src to t, in parts of copyPartSize copied partsAtOnce at a
// time: S3 copies each part on its own, so a large file is copied by several of its
// disks or cores at once rather than one.
func (d *Dest) copyTo(t target, src Object, etag *string) (bool, error) {
	if src.Size == 0 {
		return d.putFile(t, strings.NewReader(""), 0) // no range to copy
	}
	source := copySource(src)
	partSize := max(d.copyPartSize, (src.Size+maxParts-1)/maxParts, minPart)
	return d.multipart(t, src.Size, partSize, "", func(ctx context.Context, up *string, n int32, off, length int64) (types.CompletedPart, error) {
		out, err := d.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
			Bucket: &d.bucket, Key: &t.key, UploadId: up, PartNumber: &n,
			CopySource: &source, CopySourceIfMatch: etag,
			CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+length-1)),
		})
		if err != nil {
			return types.CompletedPart{}, err
		}
		if out.CopyPartResult == nil {
			return types.CompletedPart{}, errors.New("no part in the answer")
		}
		return types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: &n}, nil
	})
}

// copySource is an object as UploadPartCopy names it: bucket/key, URL-encoded.
func copySource(o Object) string {
	segs := strings.Split(o.Key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return o.Bucket + "/" + strings.Join(segs, "/")
}

// target is a name held by a placement, for its writer to put the bytes at.
type target struct {
	name, key   string
	contentType string
	meta        map[string]string
	intend      func() error // announces the name before the object may appear
}

// errTaken is a writer's answer when a file is at its key already.
var errTaken = errors.New("s3dest: name taken")

// place tries the candidates in order: it reserves one, and has write put the bytes at
// its key. write reports whether it sent the request that completes the object, and
// errTaken if a file is there (the marker then stays: the name is taken).
func (d *Dest) place(req store.Request, owner string, size int64, write func(target) (bool, error)) (string, error) {
	names, err := candidates(req)
	if err != nil {
		return "", err
	}
	ownerTag := tag(owner)
	for name := range names {
		key, err := d.key(name)
		if err != nil {
			return "", err
		}
		held, earlier, err := d.reserve(name, ownerTag)
		if err != nil {
			return "", err
		}
		if !held {
			continue
		}
		if earlier {
			// An earlier attempt of ours reserved the name: it may have finished.
			// (A name reserved just now needs no look: a file someone put at its
			// key outside uploadsets makes the conditional write below fail.)
			switch found, err := d.holder(key, ownerTag, size); {
			case err != nil:
				return "", fmt.Errorf("s3dest: looking at %q: %w", name, err)
			case found == ours:
				return name, nil // an earlier attempt's
			case found == someone:
				d.log.Warn("NameTakenOutside", "name", name)
				continue
			}
			d.abortAll(name, key) // what an earlier attempt left
		}
		t := target{
			name: name, key: key, contentType: contentType(name),
			meta:   map[string]string{ownerMeta: ownerTag},
			intend: func() error { return req.Intend(name) },
		}
		sent, err := write(t)
		if errors.Is(err, errTaken) {
			// Unless it is our own, completed by a request whose answer was lost
			// and retried.
			if found, herr := d.holder(key, ownerTag, size); herr == nil && found == ours {
				return name, nil
			}
			d.log.Warn("NameTakenOutside", "name", name)
			continue
		}
		if err != nil {
			if !sent {
				// Nothing of ours can be at the key: let the name go.
				if rerr := d.release(name); rerr != nil {
					d.log.Warn("ReservationKept", "name", name, "error", rerr)
				}
			}
			return "", fmt.Errorf("s3dest: placing %q: %w", name, err)
		}
		return name, nil
	}
	return "", ErrNoFreeName
}

// candidates are req's names with its folder, the intended one first: an earlier
// attempt may have placed it there.
func candidates(req store.Request) (iter.Seq[string], error) {
	if req.Folder != "" && !validName(req.Folder) {
		return nil, fmt.Errorf("s3dest: unsafe folder %q", req.Folder)
	}
	return func(yield func(string) bool) {
		if req.Intended != "" && !yield(req.Intended) {
			return
		}
		for n := range req.Names {
			if req.Folder != "" {
				if strings.Contains(n, "/") {
					return
				}
				n = req.Folder + "/" + n
			}
			if n != req.Intended && !yield(n) {
				return
			}
		}
	}, nil
}

// contentType is the type served for name, from its extension.
func contentType(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// Who holds a key.
const (
	nobody  = iota
	ours    // the owner's file, complete
	someone // any other file
)

// holder looks at what is at key.
func (d *Dest) holder(key, ownerTag string, size int64) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	head, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.bucket, Key: &key})
	switch {
	case status(err) == 404:
		return nobody, nil
	case err != nil:
		return 0, err
	case head.Metadata[ownerMeta] == ownerTag && aws.ToInt64(head.ContentLength) == size:
		return ours, nil
	}
	return someone, nil
}

// putFile puts a whole object in one request.
func (d *Dest) putFile(t target, body io.ReadSeeker, size int64) (bool, error) {
	if err := t.intend(); err != nil {
		return false, err
	}
	err := retryConflicts(func() error {
		if _, err := body.Seek(0, io.SeekStart); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), partTimeout)
		defer cancel()
		_, err := d.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &d.bucket, Key: &t.key, Body: body, ContentLength: &size,
			ContentType: &t.contentType, Metadata: t.meta, IfNoneMatch: aws.String("*"),
		})
		return err
	})
	return true, conditional(err)
}

// retryConflicts runs a conditional write again, a few times, while S3 answers 409
// ConditionalRequestConflict: another conditional write to the key is in flight, and
// its outcome decides ours.
func retryConflicts(write func() error) error {
	var err error
	for attempt := range conflictRetries {
		if err = write(); status(err) != 409 {
			return err
		}
		backoff(attempt)
	}
	return err
}

// partFunc puts part n (off, length) of multipart upload up.
type partFunc func(ctx context.Context, up *string, n int32, off, length int64) (types.CompletedPart, error)

// multipart makes the object at t.key from parts of partSize (the last one smaller),
// each put by part, and completes it only if the key is free. sum is the checksum
// the parts carry: CRC32 for the parts this process sends (S3 wants it named at
// creation when parts carry one), none for copies, whose bytes S3 checks itself.
func (d *Dest) multipart(t target, size, partSize int64, sum types.ChecksumAlgorithm, part partFunc) (sent bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	created, err := d.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &d.bucket, Key: &t.key, ContentType: &t.contentType, Metadata: t.meta,
		ChecksumAlgorithm: sum,
	})
	cancel()
	if err != nil {
		return false, err
	}
	up := created.UploadId
	defer func() {
		if err != nil {
			if aerr := d.abort(t.key, *up); aerr != nil && status(aerr) != 404 {
				d.log.Warn("MultipartAbortFailed", "name", t.name, "error", aerr)
			}
		}
	}()
	parts, err := d.putParts(up, size, partSize, part)
	if err != nil {
		return false, err
	}
	if err := t.intend(); err != nil {
		return false, err
	}
	err = retryConflicts(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), partTimeout)
		defer cancel()
		_, err := d.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: &d.bucket, Key: &t.key, UploadId: up, IfNoneMatch: aws.String("*"),
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		})
		return err
	})
	return true, conditional(err)
}

// putParts puts the parts of multipart upload up, partsAtOnce at a time, and returns
// them in order. The first part that fails stops the others.
func (d *Dest) putParts(up *string, size, partSize int64, part partFunc) ([]types.CompletedPart, error) {
	parts := make([]types.CompletedPart, (size+partSize-1)/partSize)
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(d.partsAtOnce)
	for i := range parts {
		g.Go(func() error {
			off := int64(i) * partSize
			n := int32(i + 1)
			ctx, cancel := context.WithTimeout(ctx, partTimeout)
			defer cancel()
			p, err := part(ctx, up, n, off, min(partSize, size-off))
			if err != nil {
				return fmt.Errorf("part %d: %w", n, err)
			}
			parts[i] = p
			return nil
		})
	}
	return parts, g.Wait()
}

// conditional turns the answer to a write with If-None-Match into errTaken when the
// key holds a file.
func conditional(err error) error {
	if status(err) == 412 {
		return errTaken
	}
	return err
}

// partSize is the part size for a local file of size bytes: putPartSize, or more if
// that would need more parts than S3 allows.
func (d *Dest) partSize(size int64) int64 {
	return max(d.putPartSize, (size+maxParts-1)/maxParts, minPart)
}

func (d *Dest) abort(key, uploadID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, err := d.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &d.bucket, Key: &key, UploadId: &uploadID})
	return err
}

// abortAll aborts the multipart uploads to key, as far as it can: the name's marker
// is ours, so they are an earlier attempt's.
func (d *Dest) abortAll(name, key string) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	pages := s3.NewListMultipartUploadsPaginator(d.client, &s3.ListMultipartUploadsInput{Bucket: &d.bucket, Prefix: &key})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			d.log.Warn("EarlierCopyKept", "name", name, "error", err)
			return
		}
		for _, u := range page.Uploads {
			if aws.ToString(u.Key) == key && u.UploadId != nil {
				if err := d.abort(key, *u.UploadId); err != nil && status(err) != 404 {
					d.log.Warn("EarlierCopyKept", "name", name, "error", err)
				}
			}
		}
	}
}
