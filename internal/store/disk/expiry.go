package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/internal/durable"
)

// expired reports whether an unfinished upload has gone too long without a byte, or a
// finished one's record has been kept long enough. A client that lost the completing
// response learns the result from the record until then.
func (s *Store) expired(rec Record) bool {
	return s.t().expire > 0 && !rec.Activity.IsZero() && s.now().Sub(rec.Activity) > s.t().expire
}

// expiredError tells the client which rule ended its upload.
func (s *Store) expiredError() error {
	return forSet(handler.NewError(ErrExpired.ErrorCode, fmt.Sprintf(
		"this upload expired: no byte arrived for %s (the set's expire_after); start a new upload", s.t().expire), http.StatusGone), s.set)
}

// openForWrite opens the data file for appending, creating it if create is set (the
// upload's first byte: a file is made only for an upload that sends one), and
// registers the write, so that Sweep leaves the upload alone until done is called.
func (s *Store) openForWrite(id string, create bool) (f *os.File, done func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	flag := os.O_WRONLY | os.O_APPEND
	if create {
		flag |= os.O_CREATE
	}
	f, err = durable.OpenFile(s.binPath(id), flag, s.t().fileMode)
	if err != nil {
		return nil, nil, err
	}
	s.writing[id]++
	return f, func() {
		s.mu.Lock()
		if s.writing[id]--; s.writing[id] == 0 {
			delete(s.writing, id)
		}
		s.mu.Unlock()
	}, nil
}

// Sweep removes what has expired: unfinished uploads with no activity for the expiry
// time, records of finished uploads kept that long, and leftovers of crashes (a data
// file without a record, a temp record). Placed files live in the destination and are
// never touched. It returns how many uploads it removed.
func (s *Store) Sweep() (int, error) {
	ids, err := s.records.ids(s.set)
	if err != nil {
		return 0, err
	}
	known := make(map[string]bool, len(ids))
	removed := 0
	for _, id := range ids {
		known[id] = true
		if s.sweepUpload(id) {
			removed++
		}
	}
	// Listed after the records: a data file created meanwhile is too young to go.
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return removed, err
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case ValidID(name) && known[name]:
			// Data of an upload with a record: swept with its record.
		case len(name) > 32 && ValidID(name[:32]) && strings.HasPrefix(name[32:], ".out."):
			// A processed image's output (the server's image step) that a
			// placement never took: kept while its upload is, else old ones go.
			if info, err := e.Info(); err == nil && !known[name[:32]] && s.now().Sub(info.ModTime()) > s.t().expire {
				s.remove(filepath.Join(s.dir, name))
			}
		case ValidID(name), strings.HasPrefix(name, ".") && strings.Contains(name, ".info-"):
			// A data file whose record was never written or already removed, or
			// a temp record left by a crash of a version that replaced records
			// through temp files.
			if info, err := e.Info(); err == nil && s.now().Sub(info.ModTime()) > s.t().expire {
				s.remove(filepath.Join(s.dir, name))
			}
		}
	}
	return removed, nil
}

func (s *Store) sweepUpload(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writing[id] > 0 {
		return false
	}
	rec, written, err := s.readRecord(id)
	if err != nil {
		// A record whose data is gone (a crash in the middle of Terminate):
		// judged by the record's own age.
		if written.IsZero() {
			return false
		}
		rec.Activity = written
	}
	if !s.expired(rec) {
		return false
	}
	// A finished upload's record only ends its stay; an unfinished one is gone.
	if rec.ID != "" && rec.State != Placed && rec.State != Rejected && s.tell(Expired, rec) != nil {
		return false // told next sweep
	}
	s.remove(s.binPath(id))
	if err := s.records.remove(s.set, id); err != nil {
		s.log.Warn("RemoveFailed", "id", id, "error", err)
		return false
	}
	s.log.Info("UploadExpired", "id", id, "state", string(rec.State), "offset", rec.Offset, "size", rec.Size)
	return true
}

func (s *Store) exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (s *Store) remove(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("RemoveFailed", "error", err)
	}
}

// Interval is how often Sweep should run for expiry to be on time within a small
// fraction of it.
func (s *Store) Interval() time.Duration {
	return min(max(s.t().expire/4, 100*time.Millisecond), time.Minute)
}
