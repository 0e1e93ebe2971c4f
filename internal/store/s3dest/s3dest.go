// Package s3dest is a set's destination in S3 (a store.Destination): it puts finished
// uploads under a key prefix, each under a name no other file has, without ever
// replacing an object, and opens them for serving. Several instances may place into
// one destination at once.
//
// # What lives where
//
// A placed file is the object <prefix><name>, name being "/"-separated relative to the
// destination ("cat.png", "2026/cat.png"). Its metadata uploadsets-upload holds its
// owner's tag (a hash of the upload it was placed for, never the upload's ID, which
// grants PATCH and DELETE on the upload and would be readable by anyone who may read
// the object); its Content-Type comes from the name's extension.
//
// A name is reserved by a marker, the object <reservations prefix><fold(name)>, a
// small JSON document with the owner's tag and the name. By default the markers live
// in the destination's own bucket under <prefix>.uploadsets/names/, which no placed
// name can reach (no name begins with a dot) and Open refuses to serve.
//
// # Why markers
//
// S3 has no link(2) and no O_EXCL across keys: the one atomic step it offers is a write
// that fails when its key exists (If-None-Match: *). Names must collide
// case-insensitively (CAT.PNG and cat.png are one file once the destination is copied
// to macOS or Windows), and S3 keys are case-sensitive, so the conditional write goes
// to a key made of the folded name: whoever writes the marker first holds the name,
// on every instance at once, with nothing checked before it is written (a check then
// a write would let two instances take one name). The file itself is then completed
// with If-None-Match as well, so that a file put there behind uploadsets' back is
// never replaced either.
//
// # Crashes
//
// An attempt goes marker → Intend → object. A crash
//   - before the marker was written leaves nothing;
//   - after it, before Intend returned, leaves a marker with our tag and at most an
//     unfinished multipart upload: the next attempt (the candidates are the same,
//     and so is the owner) finds the marker its own, aborts that multipart upload and
//     goes on with the name;
//   - after Intend, before the object was complete, leaves the same, and the record
//     names the name: the next attempt tries it first, and goes on as above;
//   - after the object was complete, before the record said so, leaves the object
//     with our tag: the next attempt finds it under its intended name and returns that
//     name without a second copy.
//
// A failure (not a crash) before the object could have been completed removes the
// marker again, so a name is not held by an attempt that gave up. What is left of an
// interrupted copy costs storage only; RemoveTemps aborts multipart uploads older
// than an hour, and a bucket lifecycle rule (AbortIncompleteMultipartUpload) is the
// backstop for what no instance restarts to remove.
//
// # What it does not do
//
//   - It sees no case-insensitive conflict with files put into the prefix outside
//     uploadsets: those are never replaced (the write is conditional on their exact
//     key), but "CAT.PNG" put by hand does not stop uploadsets from placing "cat.png".
//   - A marker left by an attempt that crashed and is never retried (its upload
//     expired first) holds its name for good: a gap in the _1, _2... numbering, not a
//     conflict.
//   - Unplace removes a name's object and marker whoever placed them; it is for the
//     names Place returned.
package s3dest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/text/cases"
)

// ErrNoFreeName is returned when every candidate name is taken.
var ErrNoFreeName = errors.New("s3dest: no free name")

// Location is a key prefix in a bucket: "" or ending in "/".
type Location struct {
	Bucket string
	Prefix string
}

// Options are a destination's settings besides its bucket and prefix.
type Options struct {
	Logger hclog.Logger // nil: no logs
	// Reservations is where the name markers are written. The zero value is the
	// destination's bucket under <prefix>.uploadsets/names/. Elsewhere, it must not
	// overlap the destination's keys.
	Reservations Location
}

// Dest places files under one prefix of a bucket.
type Dest struct {
	client *s3.Client
	bucket string
	prefix string
	res    Location
	log    hclog.Logger

	// Variables rather than constants so that tests reach the multipart paths with
	// files of a few MiB.
	putPartSize  int64         // a local file larger than this goes up in parts this large
	copyPartSize int64         // what one UploadPartCopy copies, unless a file needs more than maxParts
	partsAtOnce  int           // parts sent or copied at the same time
	staleAfter   time.Duration // RemoveTemps leaves younger multipart uploads alone
	now          func() time.Time
}

// S3's limits: a part other than the last is 5 MiB to 5 GiB, an upload 10,000 parts.
const (
	minPart  = 5 << 20
	maxPart  = 5 << 30
	maxParts = 10000
)

// How a copy is cut up. AWS advises copying a large object in parts of a few tens of
// MiB, several at once: each part is copied on its own, so the copy goes as fast as
// several of the store's disks or cores rather than one. (versitygw's posix backend
// copies a part on one core, hashing it: 256 MiB in one part took 640 ms, in four
// parts of 64 MiB copied at once 350 ms, on two cores.)
const (
	copyPartSize = 64 << 20
	partsAtOnce  = 4
)

// How long a request may take: one that moves no more than a marker, and one that
// copies or sends a part (up to 5 GiB, which S3 copies at a few hundred MiB/s).
const (
	opTimeout   = time.Minute
	partTimeout = 30 * time.Minute
)

// reservationsFolder holds the markers by default. Its leading dot keeps it apart
// from every placed name.
const reservationsFolder = ".uploadsets/names/"

// Open returns the destination at prefix in bucket; it makes no request.
func Open(client *s3.Client, bucket, prefix string, opts Options) (*Dest, error) {
	if err := checkLocation(Location{bucket, prefix}); err != nil {
		return nil, fmt.Errorf("s3dest: destination: %w", err)
	}
	res := opts.Reservations
	if res == (Location{}) {
		res = Location{Bucket: bucket, Prefix: prefix + reservationsFolder}
	}
	if err := checkLocation(res); err != nil {
		return nil, fmt.Errorf("s3dest: reservations: %w", err)
	}
	if res.Bucket == bucket {
		// A marker key must never be a placed file's key, nor the other way round.
		inside, hidden := strings.CutPrefix(res.Prefix, prefix)
		if hidden && !strings.HasPrefix(inside, ".") || strings.HasPrefix(prefix, res.Prefix) {
			return nil, fmt.Errorf("s3dest: reservations s3://%s/%s overlap the destination s3://%s/%s", res.Bucket, res.Prefix, bucket, prefix)
		}
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Dest{
		client: client, bucket: bucket, prefix: prefix, res: res, log: log,
		putPartSize: 64 << 20, copyPartSize: copyPartSize, partsAtOnce: partsAtOnce, staleAfter: time.Hour, now: time.Now,
	}, nil
}

func checkLocation(l Location) error {
	if l.Bucket == "" {
		return errors.New("no bucket")
	}
	if l.Prefix == "" {
		return nil
	}
	if !strings.HasSuffix(l.Prefix, "/") {
		return fmt.Errorf("prefix %q does not end in /", l.Prefix)
	}
	for _, seg := range strings.Split(strings.TrimSuffix(l.Prefix, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("prefix %q has an empty, . or .. segment", l.Prefix)
		}
	}
	return nil
}

// Close releases nothing: the client is the caller's.
func (d *Dest) Close() error { return nil }

// RemoveTemps aborts the multipart uploads that copies interrupted by a crash left
// in the destination. Those younger than an hour are left alone: another instance may
// be copying still.
func (d *Dest) RemoveTemps() error {
	pages := s3.NewListMultipartUploadsPaginator(d.client, &s3.ListMultipartUploadsInput{
		Bucket: &d.bucket, Prefix: &d.prefix,
	})
	cutoff := d.now().Add(-d.staleAfter)
	var errs []error
	for pages.HasMorePages() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		page, err := pages.NextPage(ctx)
		cancel()
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("s3dest: listing multipart uploads: %w", err))...)
		}
		for _, u := range page.Uploads {
			if u.Key == nil || u.UploadId == nil || u.Initiated == nil || u.Initiated.After(cutoff) {
				continue
			}
			name, ok := strings.CutPrefix(*u.Key, d.prefix)
			if !ok || !validName(name) {
				continue // not a placement's
			}
			if err := d.abort(*u.Key, *u.UploadId); err != nil {
				errs = append(errs, fmt.Errorf("s3dest: aborting an interrupted copy to %q: %w", name, err))
				continue
			}
			d.log.Info("InterruptedCopyRemoved", "name", name, "initiated", *u.Initiated)
		}
	}
	return errors.Join(errs...)
}

// Unplace removes a placed file and then its marker, so that the name is free again.
// A crash in between leaves the marker: the name stays taken, by no file.
func (d *Dest) Unplace(name string) error {
	key, err := d.key(name)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := d.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &d.bucket, Key: &key}); err != nil && status(err) != 404 {
		return fmt.Errorf("s3dest: removing %q: %w", name, err)
	}
	if err := d.release(name); err != nil {
		return fmt.Errorf("s3dest: freeing the name %q: %w", name, err)
	}
	return nil
}

// key checks a placed name and returns its key.
func (d *Dest) key(name string) (string, error) {
	if !validName(name) {
		return "", fmt.Errorf("s3dest: unsafe name %q", name)
	}
	return d.prefix + name, nil
}

// validName accepts what placement does: safe components joined by "/". No
// component is empty, "." or "..", so no name leaves the prefix or reaches the
// markers.
func validName(name string) bool {
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || strings.HasPrefix(seg, ".") || strings.ContainsAny(seg, "\\\x00") {
			return false
		}
	}
	return true
}

// fold is the form two names have in common when only their case differs, as
// placement folds them. A Caser keeps state, so each call has its own.
func fold(name string) string { return cases.Fold().String(name) }

// status is the HTTP status of a failed request, or 0.
func status(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
