package s3dest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// marker is what a reservation holds.
type marker struct {
	Owner string `json:"owner"` // the owner's tag
	Name  string `json:"name"`  // as placed, before folding
}

// ownerMeta is the metadata key (x-amz-meta-uploadsets-upload) of a placed file's
// owner tag.
const ownerMeta = "uploadsets-upload"

// tag is what markers and placed files keep of an owner: a hash, since anyone who may
// read a placed file reads its metadata, and an upload's ID grants PATCH and DELETE
// on it.
func tag(owner string) string {
	sum := sha256.Sum256([]byte("uploadsets/s3dest/owner/" + owner))
	return hex.EncodeToString(sum[:16])
}

func (d *Dest) markerKey(name string) string { return d.res.Prefix + fold(name) }

// conflictRetries bounds the attempts at a conditional write that S3 answers with 409
// ConditionalRequestConflict, and at reading a marker that was removed between our
// write and our read.
const conflictRetries = 5

// reserve writes name's marker unless there is one. It reports whether the name is
// owner's, and whether the marker was there already (an earlier attempt's, when the
// name is ours).
func (d *Dest) reserve(name, owner string) (held, earlier bool, err error) {
	key := d.markerKey(name)
	body, err := json.Marshal(marker{Owner: owner, Name: name})
	if err != nil {
		return false, false, err
	}
	for attempt := range conflictRetries {
		err := d.putMarker(key, body)
		switch {
		case err == nil:
			return true, false, nil
		case status(err) == 409:
			backoff(attempt)
			continue
		case status(err) != 412:
			return false, false, fmt.Errorf("s3dest: reserving %q: %w", name, err)
		}
		m, err := d.readMarker(key)
		if errors.Is(err, fs.ErrNotExist) {
			continue // freed since: try again
		}
		if err != nil {
			return false, false, fmt.Errorf("s3dest: reading the reservation of %q: %w", name, err)
		}
		return m.Owner == owner, true, nil
	}
	return false, false, fmt.Errorf("s3dest: reserving %q: the reservation kept changing", name)
}

func (d *Dest) putMarker(key string, body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, err := d.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &d.res.Bucket, Key: &key, Body: bytes.NewReader(body),
		ContentType: aws.String("application/json"), IfNoneMatch: aws.String("*"),
	})
	return err
}

// readMarker reads a marker; one that is not a marker (written by someone else) has
// no owner, so it is no one's.
func (d *Dest) readMarker(key string) (marker, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &d.res.Bucket, Key: &key})
	if status(err) == 404 {
		return marker{}, fs.ErrNotExist
	}
	if err != nil {
		return marker{}, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, 64<<10))
	if err != nil {
		return marker{}, err
	}
	var m marker
	if err := json.Unmarshal(b, &m); err != nil {
		d.log.Warn("ReservationUnreadable", "key", key, "error", err)
		return marker{}, nil
	}
	return m, nil
}

// release removes name's marker.
func (d *Dest) release(name string) error {
	key := d.markerKey(name)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, err := d.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &d.res.Bucket, Key: &key})
	if status(err) == 404 {
		return nil
	}
	return err
}

// backoff waits a little longer after each conflict; a conflict lasts as long as the
// other request does.
func backoff(attempt int) { time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond) }
