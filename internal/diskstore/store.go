// Package diskstore keeps partial uploads and their state on local disk, as a tusd
// DataStore.
//
// It keeps tusd filestore's layout (<id> holds the bytes, <id>.info the JSON FileInfo)
// but not its writes: filestore rewrites .info in place (a crash leaves it torn), copies
// through 32 KiB reads, and loses track of an upload once its bytes have moved away.
// Here a record is written once, under a new name, and synced; the upload's state after
// completion (placed, rejected) is appended to it and synced, so that state lives with
// the store and not in one process's memory, and no write ever rewrites synced bytes.
package diskstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tus/tusd/v2/pkg/handler"
	"golang.org/x/sys/unix"

	"github.com/uploadsets/uploadsets/internal/durable"
)

// State is where an upload stands once its bytes are all in.
type State string

const (
	// Receiving: bytes are still arriving, or all arrived and placement is pending.
	Receiving State = ""
	// Placed: the bytes were moved into the set's destination under Record.Name.
	Placed State = "placed"
	// Rejected: the bytes failed a check after completion and were removed.
	Rejected State = "rejected"
)

// Record is what the store keeps about one upload. The embedded FileInfo is written
// exactly as tusd's filestore writes it, so the record of an unfinished upload stays
// readable by tusd's tools; a finished one has its state change appended.
type Record struct {
	handler.FileInfo
	State   State  `json:",omitempty"`
	Name    string `json:",omitempty"` // final name in the destination, once placed
	URL     string `json:",omitempty"` // where the placed file is served
	Reason  string `json:",omitempty"` // why it was rejected, in words for the client
	Created time.Time
	// Activity is when the upload last changed: its last byte written, or its
	// placement or rejection. Expiry counts from it.
	Activity time.Time `json:"-"`
}

// Complete reports whether every byte of the upload has arrived.
func (r Record) Complete() bool { return !r.SizeIsDeferred && r.Offset == r.Size }

var idPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// ValidID reports whether id has the shape of an ID this store hands out. Anything else
// is refused before it becomes part of a path.
func ValidID(id string) bool { return idPattern.MatchString(id) }

var (
	// ErrStorageFull is answered when the disk is full (StorageFull says for which
	// set). It is a 5xx so that clients retry, and the bytes written before the error
	// stay acknowledged.
	ErrStorageFull = handler.NewError("ERR_STORAGE_FULL", "the server has no space left to store this upload; retry later", http.StatusServiceUnavailable)
	// ErrInternal replaces internal errors in responses: their text holds paths.
	ErrInternal = handler.NewError("ERR_INTERNAL_SERVER_ERROR", "internal error", http.StatusInternalServerError)
	// ErrExpired answers for an unfinished upload that saw no activity for too long;
	// the response says for how long (see expiredError).
	ErrExpired = handler.NewError("ERR_UPLOAD_EXPIRED", "this upload expired", http.StatusGone)
	// ErrPlacedFile refuses to terminate an upload whose file is already in place;
	// the answer names the set (see forSet).
	ErrPlacedFile = handler.NewError("ERR_UPLOAD_COMPLETE", "this upload is complete and its file is in place; it cannot be terminated through the upload URL", http.StatusForbidden)
)

// StorageFull is ErrStorageFull for one set; errors.Is matches it by its code.
func StorageFull(set string) error { return forSet(ErrStorageFull, set) }

// forSet is e with the set's name in front of its message, as every refusal has it.
func forSet(e handler.Error, set string) error {
	return handler.NewError(e.ErrorCode, fmt.Sprintf("set %q: %s", set, e.Message), e.HTTPResponse.StatusCode)
}

// Store is a tusd DataStore in one directory, for one upload set.
type Store struct {
	dir    string
	set    string // the set's name, for the errors clients see
	expire time.Duration
	log    hclog.Logger
	now    func() time.Time

	// mu orders the janitor's removals against writes: a write registers in
	// writing before it starts, and the janitor never removes an upload with a
	// write in progress.
	mu      sync.Mutex
	writing map[string]int
}

// New opens (creating if needed) the store of the named set in dir, whose unfinished
// uploads expire after expire without activity.
func New(dir, set string, expire time.Duration, log hclog.Logger) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	return &Store{dir: dir, set: set, expire: expire, log: log, now: time.Now, writing: map[string]int{}}, nil
}

// UseIn composes the store into tusd. It deliberately leaves out concatenation and
// deferred length: both create bytes that the creation-time policy never saw.
func (s *Store) UseIn(c *handler.StoreComposer) {
	c.UseCore(s)
	c.UseTerminater(s)
	c.UseContentServer(s)
}

func (s *Store) binPath(id string) string  { return filepath.Join(s.dir, id) }
func (s *Store) infoPath(id string) string { return filepath.Join(s.dir, id+".info") }

// NewUpload creates the empty data file and the record.
func (s *Store) NewUpload(ctx context.Context, info handler.FileInfo) (handler.Upload, error) {
	if info.ID == "" {
		var b [16]byte
		rand.Read(b[:])
		info.ID = hex.EncodeToString(b[:])
	}
	if !ValidID(info.ID) {
		return nil, s.internal("NewUpload", info.ID, fmt.Errorf("invalid upload ID %q", info.ID))
	}
	info.Storage = map[string]string{"Type": "uploadsets-disk", "Path": s.binPath(info.ID), "InfoPath": s.infoPath(info.ID)}
	rec := Record{FileInfo: info, Created: s.now().UTC()}

	f, err := os.OpenFile(s.binPath(info.ID), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, s.internal("NewUpload", info.ID, err)
	}
	if err := f.Close(); err != nil {
		return nil, s.internal("NewUpload", info.ID, err)
	}
	if err := s.createRecord(rec); err != nil {
		os.Remove(s.binPath(info.ID))
		return nil, err
	}
	return &upload{store: s, rec: rec}, nil
}

// GetUpload loads the record. The offset is the data file's size: whatever reached the
// disk counts, so a crash never makes a client re-send, nor skip, acknowledged bytes.
func (s *Store) GetUpload(ctx context.Context, id string) (handler.Upload, error) {
	rec, err := s.Record(id)
	if err != nil {
		return nil, err
	}
	if rec.State == Rejected {
		return nil, rejectedError(rec.Reason)
	}
	if s.expired(rec) {
		return nil, s.expiredError()
	}
	if rec.State == Receiving && rec.Size > 0 && rec.Offset == rec.Size {
		// Every byte is here but the upload is not placed: placement failed (and
		// the client was told so with a 5xx). Offset == length would make the
		// client's retry declare success; one byte short makes it send the last
		// byte again, and that PATCH retries placement. That byte was never
		// acknowledged, so no acknowledged byte is taken back.
		rec.Offset--
		return &upload{store: s, rec: rec, withheld: true}, nil
	}
	return &upload{store: s, rec: rec}, nil
}

// Record returns what the store knows of one upload, with its current offset.
func (s *Store) Record(id string) (Record, error) {
	rec, _, err := s.readRecord(id)
	if err != nil && !errors.Is(err, handler.ErrNotFound) {
		return Record{}, s.internal("ReadRecord", id, err)
	}
	return rec, err
}

// stateChange is what a record gains after creation, its outcome, appended to the
// record file as one more JSON value. An append needs no new file, rename or directory
// sync: a placement costs one fdatasync. A crash during one leaves a torn last value,
// which was never synced and so never reported; parseRecord ignores it, and the next
// change is written over it.
type stateChange struct {
	State  State
	Name   string `json:",omitempty"`
	URL    string `json:",omitempty"`
	Reason string `json:",omitempty"`
}

// parseRecord decodes a record file: the record as created, then each state change in
// order. valid is the length of what decoded, before any torn value.
//
// It decodes on a goroutine of its own. encoding/json runs deep (reflection,
// recursion), and on a request's goroutine it would grow that stack from 8 to 16 KiB;
// a stack keeps its size while the request is held, which for a slow PATCH is minutes,
// so every held upload would pin 8 KiB more.
func parseRecord(data []byte) (rec Record, valid int64, err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		d := json.NewDecoder(bytes.NewReader(data))
		if err = d.Decode(&rec); err != nil {
			return
		}
		for valid = d.InputOffset(); ; valid = d.InputOffset() {
			var c stateChange
			if d.Decode(&c) != nil {
				return // the end, or a torn change
			}
			rec.State, rec.Name, rec.URL, rec.Reason = c.State, c.Name, c.URL, c.Reason
		}
	}()
	<-done
	return rec, valid, err
}

// readRecord also returns when the record file was last written (even when it cannot
// be decoded, for the janitor to judge its age). Errors other than ErrNotFound are
// returned raw.
func (s *Store) readRecord(id string) (Record, time.Time, error) {
	if !ValidID(id) {
		return Record{}, time.Time{}, handler.ErrNotFound
	}
	f, err := os.Open(s.infoPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, time.Time{}, handler.ErrNotFound
	}
	if err != nil {
		return Record{}, time.Time{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Record{}, time.Time{}, err
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return Record{}, st.ModTime(), err
	}
	rec, _, err := parseRecord(data)
	if err != nil {
		return Record{}, st.ModTime(), fmt.Errorf("record %s: %w", id, err)
	}
	switch rec.State {
	case Placed:
		rec.Offset = rec.Size
		rec.Activity = st.ModTime()
	case Rejected:
		rec.Offset = 0
		rec.Activity = st.ModTime()
	default:
		data, err := os.Stat(s.binPath(id))
		if errors.Is(err, fs.ErrNotExist) {
			return Record{}, st.ModTime(), handler.ErrNotFound
		}
		if err != nil {
			return Record{}, time.Time{}, err
		}
		rec.Offset = data.Size()
		rec.Activity = data.ModTime()
	}
	return rec, st.ModTime(), nil
}

// DataPath is where the bytes of an upload that is not yet placed live.
func (s *Store) DataPath(id string) string { return s.binPath(id) }

// MarkPlaced records that the upload's bytes now live at name in the destination, then
// removes the data file. The record is written first: a crash in between leaves a data
// file that Sweep removes, never a placed file the store does not know about.
func (s *Store) MarkPlaced(id, name, url string) error {
	if err := s.changeState(id, stateChange{State: Placed, Name: name, URL: url}); err != nil {
		return err
	}
	if err := os.Remove(s.binPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("RemoveDataFailed", "id", id, "error", err)
	}
	return nil
}

// Reject removes the data and keeps a record saying why, so that a client asking later
// learns the reason instead of a bare 404.
func (s *Store) Reject(id, reason string) error {
	if err := s.changeState(id, stateChange{State: Rejected, Reason: reason}); err != nil {
		return err
	}
	if err := os.Remove(s.binPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("RemoveDataFailed", "id", id, "error", err)
	}
	return nil
}

// createRecord writes an upload's first record. The name is new (O_EXCL), so there is
// no old record to protect and no temp file or rename is needed: a crash before the
// sync leaves a torn record of an upload whose creation was never answered, which the
// janitor removes once it is old.
func (s *Store) createRecord(rec Record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return s.internal("CreateRecord", rec.ID, err)
	}
	f, err := os.OpenFile(s.infoPath(rec.ID), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return s.internal("CreateRecord", rec.ID, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = unix.Fdatasync(int(f.Fd()))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = durable.SyncDir(s.dir)
	}
	if err != nil {
		os.Remove(s.infoPath(rec.ID))
		return s.internal("CreateRecord", rec.ID, err)
	}
	return nil
}

// changeState appends c to the record and syncs it, over a torn change a crash may
// have left (see stateChange).
func (s *Store) changeState(id string, c stateChange) error {
	if !ValidID(id) {
		return handler.ErrNotFound
	}
	f, err := os.OpenFile(s.infoPath(id), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return handler.ErrNotFound
	}
	if err != nil {
		return s.internal("ChangeState", id, err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return s.internal("ChangeState", id, err)
	}
	_, valid, err := parseRecord(data)
	if err != nil {
		return s.internal("ChangeState", id, fmt.Errorf("record: %w", err))
	}
	line, err := json.Marshal(c)
	if err != nil {
		return s.internal("ChangeState", id, err)
	}
	if valid < int64(len(data)) {
		err = f.Truncate(valid)
	}
	if err == nil {
		_, err = f.WriteAt(append([]byte{'\n'}, line...), valid)
	}
	if err == nil {
		// The size changed, so fdatasync covers it.
		err = unix.Fdatasync(int(f.Fd()))
	}
	if err != nil {
		return s.internal("ChangeState", id, err)
	}
	return nil
}

// internal logs err, which may hold paths, and returns an error safe to show a client.
func (s *Store) internal(op, id string, err error) error {
	if IsNoSpace(err) {
		s.log.Warn("StorageFull", "op", op, "id", id, "error", err)
		return StorageFull(s.set)
	}
	s.log.Error("StoreError", "op", op, "id", id, "error", err)
	return ErrInternal
}

func rejectedError(reason string) error {
	return handler.NewError("ERR_UPLOAD_REJECTED", reason, http.StatusGone)
}

// AsTerminatableUpload implements handler.TerminaterDataStore.
func (s *Store) AsTerminatableUpload(u handler.Upload) handler.TerminatableUpload {
	return u.(*upload)
}

// AsServableUpload implements handler.ContentServerDataStore.
func (s *Store) AsServableUpload(u handler.Upload) handler.ServableUpload {
	return u.(*upload)
}

// IDs lists the uploads the store holds a record of.
func (s *Store) IDs() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".info"); ok && ValidID(id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// Offset is the offset tusd reports for an upload: what HEAD would answer.
func (s *Store) Offset(id string) (int64, error) {
	u, err := s.GetUpload(context.Background(), id)
	if err != nil {
		return 0, err
	}
	return u.(*upload).rec.Offset, nil
}
