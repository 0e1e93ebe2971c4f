package s3uploads

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/tus/tusd/v2/pkg/handler"
)

// object is an upload's record as stored in <prefix><id>.record: the Record (the
// FileInfo as s3store created it, but with the store's ID, and the hints and
// outcome) and what the store needs to find and judge its data.
type object struct {
	Record
	// Upload is s3store's ID of the upload, <id>+<multipart upload ID>.
	Upload string
	// Assembled says s3store completed the multipart upload: the final object
	// <prefix><id> holds every byte.
	Assembled bool `json:",omitempty"`
	// Active is when the upload's bytes last changed as far as the record knows:
	// written at creation, at completion, and after a write when the last one
	// recorded is older than activityStep (see expired).
	Active time.Time
	// Changed is when the state last changed (placed, rejected, failed).
	Changed time.Time `json:",omitempty"`
}

// versioned is a record object with the ETag of the version it was read as (or
// written as): the condition of its next write.
type versioned struct {
	obj  object
	etag string
}

// maxRecord bounds what is read of a record: a few KiB in practice (its metadata are
// bounded by the creation hook).
const maxRecord = 1 << 20

func (s *Store) getRecord(ctx context.Context, id string) (versioned, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.recordKey(id))})
	if isNotFound(err) {
		return versioned{}, handler.ErrNotFound
	}
	if err != nil {
		return versioned{}, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, maxRecord))
	if err != nil {
		return versioned{}, err
	}
	var obj object
	if err := json.Unmarshal(b, &obj); err != nil {
		return versioned{}, fmt.Errorf("record %s: %w", s.recordKey(id), err)
	}
	v := versioned{obj, aws.ToString(out.ETag)}
	s.remember(id, v)
	return v, nil
}

// knownSize bounds the versions remembered: of uploads in progress and just finished.
const knownSize = 4096

// remember keeps the latest version of a record this instance read or wrote, which
// the next change of it writes over without reading it first, with what this
// instance learnt of the upload since (that its object is assembled: see
// FinishUpload). Another instance may have changed it since: the write's If-Match
// then fails and the change reads it.
func (s *Store) remember(id string, v versioned) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	if _, ok := s.known[id]; !ok && len(s.known) >= knownSize {
		for old := range s.known {
			delete(s.known, old)
			break
		}
	}
	s.known[id] = v
}

func (s *Store) recall(id string) (versioned, bool) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	v, ok := s.known[id]
	return v, ok
}

func (s *Store) forgetVersion(id string) {
	s.kmu.Lock()
	delete(s.known, id)
	s.kmu.Unlock()
}

// putRecord writes obj over the version etag, or creates it when etag is empty; S3
// refuses either with 412 when the record is not as expected.
func (s *Store) putRecord(ctx context.Context, obj object, etag string) (string, error) {
	obj.Offset = 0 // the bytes in the bucket say what it is
	body, err := json.Marshal(obj)
	if err != nil {
		return "", err
	}
	in := &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.recordKey(obj.ID)),
		Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
		ContentType: aws.String("application/json"),
	}
	if etag == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(etag)
	}
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		return "", err
	}
	etag = aws.ToString(out.ETag)
	s.remember(obj.ID, versioned{obj, etag})
	return etag, nil
}

// updateAttempts bounds the re-reads of a record that keeps changing under a write.
// State changes happen under the upload's lock, so a second attempt is already rare.
const updateAttempts = 8

// update applies fn to the record and writes it back if fn changed it, over the
// version it read: a record changed meanwhile (another instance, a request without
// the lock) is read again and fn applied to that. have, when set, is a version
// already read, tried first.
//
// maybeStale says have may be older than the bucket's (a version remembered from an
// earlier request): a write over it is refused if so, and a change it says is not
// needed is judged again on a fresh read.
func (s *Store) update(ctx context.Context, id string, have *versioned, maybeStale bool, fn func(*object) bool) (versioned, error) {
	for range updateAttempts {
		var v versioned
		fromHave := have != nil
		if have != nil {
			v, have = *have, nil
		} else {
			var err error
			if v, err = s.getRecord(ctx, id); err != nil {
				return versioned{}, err
			}
		}
		next := v.obj
		if !fn(&next) {
			if fromHave && maybeStale {
				continue // read it, then judge
			}
			return v, nil
		}
		if v.etag == "" {
			return versioned{}, errors.New("the bucket gave the record no ETag")
		}
		etag, err := s.putRecord(ctx, next, v.etag)
		if err == nil {
			return versioned{next, etag}, nil
		}
		if !isConflict(err) {
			return versioned{}, err
		}
	}
	return versioned{}, fmt.Errorf("record %s kept changing under %d attempts to update it", s.recordKey(id), updateAttempts)
}

func (s *Store) deleteRecord(ctx context.Context, id string) error {
	s.forgetVersion(id)
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.recordKey(id))})
	if err != nil {
		s.log.Warn("RemoveRecordFailed", "id", id, "error", err)
	}
	return err
}

// head reports the size of the upload's final object, if there is one.
func (s *Store) head(ctx context.Context, id string) (size int64, found bool, err error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.dataKey(id))})
	if isNotFound(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return aws.ToInt64(out.ContentLength), true, nil
}

// list calls fn with every key under the prefix (the prefix cut off) and its time.
func (s *Store) list(ctx context.Context, fn func(name string, modified time.Time)) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			if name, ok := strings.CutPrefix(aws.ToString(o.Key), s.prefix); ok {
				fn(name, aws.ToTime(o.LastModified))
			}
		}
	}
	return nil
}

func statusOf(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	return errors.As(err, &nsk) || errors.As(err, &nf) || statusOf(err) == http.StatusNotFound
}

// isConflict reports a conditional write refused because the object is not the
// version named (412), or because another conditional write to it is in flight (AWS
// answers that with 409 ConditionalRequestConflict, to be retried).
func isConflict(err error) bool {
	switch statusOf(err) {
	case http.StatusPreconditionFailed, http.StatusConflict:
		return true
	}
	return false
}
