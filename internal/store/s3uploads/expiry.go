package s3uploads

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/internal/uploads"
)

// activityStep is how stale the activity a record holds may get before a write
// records it again: one record write per step, not per PATCH. expired allows for
// it, so an upload never expires early, and late by at most one step.
func (s *Store) activityStep() time.Duration {
	if e := s.t().expire; e > 0 {
		return min(e/16, 15*time.Minute)
	}
	// No expiry today; a reload may bring one, and then activity must be known.
	return 15 * time.Minute
}

// expired reports whether an unfinished upload has gone too long without a byte, or a
// finished one's record has been kept long enough. A client that lost the completing
// response learns the result from the record until then.
func (s *Store) expired(rec Record) bool {
	e := s.t().expire
	return e > 0 && !rec.Activity.IsZero() && s.now().Sub(rec.Activity) > e+s.activityStep()
}

// expiredError tells the client which rule ended its upload.
func (s *Store) expiredError() error {
	return uploads.ForSet(handler.NewError(uploads.ErrExpired.ErrorCode, fmt.Sprintf(
		"this upload expired: no byte arrived for %s (the set's expire_after); start a new upload", s.t().expire), http.StatusGone), s.set)
}

// startWrite registers a write to id, which this instance's Sweep leaves alone until
// done is called.
func (s *Store) startWrite(id string) (done func()) {
	s.mu.Lock()
	s.writing[id]++
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		if s.writing[id]--; s.writing[id] == 0 {
			delete(s.writing, id)
		}
		s.mu.Unlock()
	}
}

// leftoverAge is how old objects without a record (a crash inside NewUpload) and
// temp files must be before Sweep removes them: well past any request in progress.
func (s *Store) leftoverAge() time.Duration { return max(s.t().expire, time.Hour) }

// sweepTimeout bounds one Sweep.
const sweepTimeout = 10 * time.Minute

// sweepLockWait is how long Sweep waits for an upload's lock; tusd asks its holder to
// let go at once.
const sweepLockWait = 10 * time.Second

// keys is what a listing shows of one upload ID: the times of the objects there are.
type keys struct {
	record, info, part, data time.Time
}

func (k keys) hasData() bool { return !k.info.IsZero() || !k.part.IsZero() || !k.data.IsZero() }

func (k keys) newest() time.Time {
	t := k.record
	for _, u := range []time.Time{k.info, k.part, k.data} {
		if u.After(t) {
			t = u
		}
	}
	return t
}

// Sweep removes what has expired: unfinished uploads with no activity for the expiry
// time (through s3store, then their records), records of finished uploads kept that
// long, and leftovers of crashes (objects of an ID without a record, multipart
// uploads without either, old temp files). Placed files live in the destination and
// are never touched. It returns how many uploads it removed.
func (s *Store) Sweep() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), sweepTimeout)
	defer cancel()
	byID := map[string]*keys{}
	err := s.list(ctx, func(name string, modified time.Time) {
		if len(name) < 32 || !uploads.ValidID(name[:32]) {
			return // not the store's: left alone
		}
		k := byID[name[:32]]
		if k == nil {
			k = &keys{}
			byID[name[:32]] = k
		}
		switch name[32:] {
		case recordSuffix:
			k.record = modified
		case ".info":
			k.info = modified
		case ".part":
			k.part = modified
		case "":
			k.data = modified
		}
	})
	if err != nil {
		return 0, err
	}
	removed := 0
	for id, k := range byID {
		switch {
		case !k.record.IsZero():
			if s.sweepUpload(ctx, id, *k) {
				removed++
			}
		case s.now().Sub(k.newest()) > s.leftoverAge():
			s.removeLeftover(ctx, id, *k)
		}
	}
	if err := s.sweepMultipart(ctx, byID); err != nil {
		s.log.Warn("SweepMultipartFailed", "error", err)
	}
	s.sweepTemp()
	return removed, nil
}

func (s *Store) sweepUpload(ctx context.Context, id string, k keys) bool {
	// Every write to the record comes with activity or a state change within
	// moments, so a record written less than the expiry time ago is not worth
	// reading: this skips all but the old ones, and delays none by more than that.
	if e := s.t().expire; e <= 0 || s.now().Sub(k.record) <= e {
		return false
	}
	if s.locker != nil {
		// Under the upload's lock no request of any instance is writing to it,
		// nor starts to until the sweep is done.
		unlock, ok := s.lock(ctx, id)
		if !ok {
			return false
		}
		defer unlock()
	} else {
		// Without a Locker only this instance's writes are known. mu is held
		// while the upload is judged and removed, as disk does: a write
		// starting meanwhile waits, and then finds the upload gone.
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.writing[id] > 0 {
			return false
		}
	}
	l, err := s.load(ctx, id)
	gone := errors.Is(err, handler.ErrNotFound) && l != nil
	if err != nil && !gone {
		return false // removed meanwhile, or unreadable: judged next time
	}
	rec := l.rec
	if gone {
		// A record whose data is gone (a crash in the middle of Terminate):
		// judged by the record's own age.
		rec.Activity = l.v.obj.Active
		if l.v.obj.Changed.After(rec.Activity) {
			rec.Activity = l.v.obj.Changed
		}
	}
	if !s.expired(rec) {
		return false
	}
	finished := rec.State == Placed || rec.State == Rejected
	// A finished upload's record only ends its stay; an unfinished one is gone.
	if !finished && !gone && s.tell(uploads.Expired, rec) != nil {
		return false // told next sweep
	}
	if !finished || k.hasData() {
		if err := s.terminate(ctx, l.v.obj); err != nil {
			s.log.Warn("RemoveDataFailed", "id", id, "error", err)
			return false
		}
	}
	if s.deleteRecord(ctx, id) != nil {
		return false
	}
	s.log.Info("UploadExpired", "id", id, "state", string(rec.State), "offset", rec.Offset, "size", rec.Size)
	return true
}

// lock takes the upload's lock in the Locker tusd uses.
func (s *Store) lock(ctx context.Context, id string) (unlock func(), ok bool) {
	l, err := s.locker.NewLock(id)
	if err != nil {
		return nil, false
	}
	lctx, cancel := context.WithTimeout(ctx, sweepLockWait)
	defer cancel()
	if err := l.Lock(lctx, func() {}); err != nil {
		return nil, false
	}
	return func() {
		if err := l.Unlock(); err != nil {
			s.log.Warn("UnlockFailed", "id", id, "error", err)
		}
	}, true
}

// removeLeftover removes the objects of an ID without a record: s3store's upload of
// a creation that crashed before its record was written. Its .info names the
// multipart upload, and s3store terminates it; without .info, the objects go one by
// one (the multipart upload, if any, goes in sweepMultipart).
func (s *Store) removeLeftover(ctx context.Context, id string, k keys) {
	err := s.removeLeftoverObjects(ctx, id, k)
	if err != nil {
		s.log.Warn("RemoveLeftoverFailed", "id", id, "error", err)
		return
	}
	s.log.Info("LeftoverRemoved", "id", id)
}

func (s *Store) removeLeftoverObjects(ctx context.Context, id string, k keys) error {
	if !k.info.IsZero() {
		info, err := s.leftoverInfo(ctx, id)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(info.ID, id+"+") {
			return fmt.Errorf("%s.info names upload %q", id, info.ID)
		}
		up, err := s.s3.GetUpload(ctx, info.ID)
		if err != nil {
			return err
		}
		return s.s3.AsTerminatableUpload(up).Terminate(ctx)
	}
	for _, key := range []string{s.dataKey(id), s.dataKey(id) + ".part"} {
		if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}); err != nil {
			return err
		}
	}
	return nil
}

// leftoverInfo reads s3store's .info of an upload that has no record: the FileInfo
// as JSON, its ID <id>+<multipart upload ID>.
func (s *Store) leftoverInfo(ctx context.Context, id string) (handler.FileInfo, error) {
	var info handler.FileInfo
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.dataKey(id) + ".info")})
	if err != nil {
		return info, err
	}
	defer out.Body.Close()
	err = json.NewDecoder(io.LimitReader(out.Body, maxRecord)).Decode(&info)
	return info, err
}

// sweepMultipart aborts the multipart uploads of IDs that have neither a record nor
// an .info: s3store's creation crashed between creating one and writing .info, and
// nothing else will ever name it.
func (s *Store) sweepMultipart(ctx context.Context, byID map[string]*keys) error {
	p := s3.NewListMultipartUploadsPaginator(s.client, &s3.ListMultipartUploadsInput{Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, mpu := range page.Uploads {
			id, ok := strings.CutPrefix(aws.ToString(mpu.Key), s.prefix)
			if !ok || !uploads.ValidID(id) {
				continue
			}
			if k := byID[id]; k != nil && (!k.record.IsZero() || !k.info.IsZero()) {
				continue
			}
			if s.now().Sub(aws.ToTime(mpu.Initiated)) <= s.leftoverAge() {
				continue
			}
			if _, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(s.bucket), Key: mpu.Key, UploadId: mpu.UploadId,
			}); err != nil {
				s.log.Warn("RemoveLeftoverFailed", "id", id, "error", err)
				continue
			}
			s.log.Info("LeftoverRemoved", "id", id, "multipart", aws.ToString(mpu.UploadId))
		}
	}
	return nil
}

// sweepTemp removes old spool files and s3store part files from Options.TempDir:
// what a crash in the middle of a PATCH leaves there. A file in use is written to
// far more often than that.
func (s *Store) sweepTemp() {
	if s.tempDir == "" {
		return // the system's temp directory is not ours to clean
	}
	entries, err := os.ReadDir(s.tempDir)
	if err != nil {
		s.log.Warn("SweepTempFailed", "error", err)
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, spoolPattern) && !strings.HasPrefix(name, "tusd-s3-tmp-") {
			continue
		}
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && time.Since(info.ModTime()) > s.leftoverAge() {
			if err := os.Remove(filepath.Join(s.tempDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("RemoveFailed", "error", err)
			}
		}
	}
}

// Interval is how often Sweep should run for expiry to be on time within a small
// fraction of it.
func (s *Store) Interval() time.Duration {
	return min(max(s.t().expire/4, 100*time.Millisecond), time.Minute)
}
