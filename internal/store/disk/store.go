// Package disk keeps a set's partial uploads on local disk, as a tusd DataStore, and
// every upload's record in a log shared by the data_dir (Records).
//
// Each upload's bytes are one file, <id>, made by its first byte, appended to and
// synced before any offset is acknowledged; once placed, that file's inode is the
// placed file (placement links it). An upload is created by its record alone: a POST
// costs one commit of the log, shared with the other changes of that moment, and no
// file creation or directory sync.
// Unlike tusd's filestore it keeps no per-upload .info file, which filestore rewrites
// in place (a crash leaves it torn), and it keeps an upload's outcome (placed,
// rejected) after its bytes have moved away, so that state lives with the store and
// not in one process's memory.
package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/internal/durable"
	"github.com/uploadsets/uploadsets/internal/store"
	"github.com/uploadsets/uploadsets/internal/uploads"
)

// The vocabulary of uploads lives in package uploads, where the hooks and the server
// find it whatever store holds the bytes; these names keep the store's code short.
type (
	Record = uploads.Record
	State  = uploads.State
)

const (
	Receiving = uploads.Receiving
	Failed    = uploads.Failed
	Placed    = uploads.Placed
	Rejected  = uploads.Rejected
)

var (
	ValidID     = uploads.ValidID
	NewID       = uploads.NewID
	StorageFull = uploads.StorageFull
	Failure     = uploads.Failure
	forSet      = uploads.ForSet
	IsNoSpace   = uploads.IsNoSpace

	ErrStorageFull = uploads.ErrStorageFull
	ErrInternal    = uploads.ErrInternal
	ErrExpired     = uploads.ErrExpired
	ErrPlacedFile  = uploads.ErrPlacedFile
)

// Store is a tusd DataStore in one directory, for one upload set.
type Store struct {
	dir     string
	set     string // the set's name, for the errors clients see
	records *Records
	tune    atomic.Pointer[tuning]
	changed func(kind string, rec Record) error
	log     hclog.Logger
	now     func() time.Time

	// mu orders the janitor's removals against writes: a write registers in
	// writing before it starts, and the janitor never removes an upload with a
	// write in progress.
	mu      sync.Mutex
	writing map[string]int
}

// tuning is what a config reload may change of a store in use.
type tuning struct {
	expire   time.Duration
	fileMode os.FileMode // of data files, which become placed files
	maxSize  int64       // what an upload of unknown length may reach
}

func (s *Store) t() *tuning { return s.tune.Load() }

// Retune applies a reloaded config's values; uploads in progress keep the limit they
// were created with.
func (s *Store) Retune(o Options) {
	s.tune.Store(&tuning{expire: o.Expire, fileMode: o.FileMode, maxSize: o.MaxSize})
}

// Options say where a store lives and what it keeps to.
type Options struct {
	Dir string
	// Records is the log of the upload's records, shared by the stores of a
	// data_dir (each keeps its set's).
	Records *Records
	Set     string        // the set's name, for the errors clients see
	Expire  time.Duration // unfinished uploads expire after this without activity
	// FileMode is the mode of data files: placement links them into the
	// destination as they are.
	FileMode os.FileMode
	// MaxSize is the most an upload of unknown length may reach (the set's
	// max_size); one created with a lower limit keeps to that (see LimitKey).
	MaxSize int64
	Log     hclog.Logger
	// Changed, when set, is told of an upload created, terminated or expired, before
	// the client is answered (and before its data is removed). If it fails, the
	// change does not happen: creation and termination fail, expiry waits.
	Changed func(kind string, rec Record) error
}

// The hints and event kinds are package uploads'.
const (
	LimitKey   = uploads.LimitKey
	OwnerKey   = uploads.OwnerKey
	FolderKey  = uploads.FolderKey
	RenameKey  = uploads.RenameKey
	Created    = uploads.Created
	Terminated = uploads.Terminated
	Expired    = uploads.Expired
)

// New opens (creating if needed) a store.
func New(o Options) (*Store, error) {
	// Partial uploads are nobody's business but the server's, whatever dir_mode is.
	if err := durable.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, err
	}
	if o.Records == nil {
		return nil, errors.New("disk: no record log")
	}
	s := &Store{dir: o.Dir, set: o.Set, records: o.Records, log: o.Log, now: time.Now, writing: map[string]int{}, changed: o.Changed}
	s.Retune(o)
	if err := s.adoptLegacy(); err != nil {
		return nil, fmt.Errorf("adopting records of an earlier version: %w", err)
	}
	return s, nil
}

// UseIn composes the store into tusd. It deliberately leaves out concatenation, which
// creates bytes the creation-time policy never saw. Deferred length (the IETF draft's
// normal case) is offered because the store itself keeps such an upload within its
// limit: no byte past it is stored.
func (s *Store) UseIn(c *handler.StoreComposer) {
	c.UseCore(s)
	c.UseTerminater(s)
	c.UseLengthDeferrer(s)
}

func (s *Store) binPath(id string) string { return filepath.Join(s.dir, id) }

// NewUpload creates the record; the data file comes with the first byte (see
// WriteChunk).
func (s *Store) NewUpload(ctx context.Context, info handler.FileInfo) (handler.Upload, error) {
	if info.ID == "" {
		info.ID = NewID()
	}
	if !ValidID(info.ID) {
		return nil, s.internal("NewUpload", info.ID, fmt.Errorf("invalid upload ID %q", info.ID))
	}
	limit := s.t().maxSize
	if l, err := strconv.ParseInt(info.Storage[LimitKey], 10, 64); err == nil && l > 0 && (limit <= 0 || l < limit) {
		limit = l
	}
	hints := info.Storage
	info.Storage = map[string]string{"Type": "uploadsets-disk", "Path": s.binPath(info.ID)}
	rec := Record{FileInfo: info, Limit: limit, Created: s.now().UTC(),
		Owner: hints[OwnerKey], Folder: hints[FolderKey], Rename: hints[RenameKey]}

	if uploads.BodyToWrite(ctx) {
		// The client learns of the upload only once its body is written:
		// the record's commit runs beside that write, which waits for it.
		created := make(chan error, 1)
		go func() { created <- s.create(ctx, rec) }()
		return &upload{store: s, rec: rec, created: created}, nil
	}
	if err := s.create(ctx, rec); err != nil {
		return nil, err
	}
	return &upload{store: s, rec: rec}, nil
}

// create makes the record durable and tells of the new upload; if telling fails, the
// upload is taken back.
func (s *Store) create(ctx context.Context, rec Record) error {
	if err := s.records.create(s.set, entry{Record: rec, Changed: rec.Created}); err != nil {
		return s.internal("CreateRecord", rec.ID, err)
	}
	if err := s.tell(Created, rec); err != nil {
		s.records.remove(s.set, rec.ID)
		return err
	}
	uploads.RunCreatedHook(ctx, rec)
	return nil
}

// GetUpload loads the record. The offset is the data file's size (0 before it exists):
// whatever reached the disk counts, so a crash never makes a client re-send, nor skip,
// acknowledged bytes.
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
	if rec.ReportedOffset() < rec.Offset {
		rec.Offset = rec.ReportedOffset()
		return &upload{store: s, rec: rec, withheld: true}, nil
	}
	return &upload{store: s, rec: rec}, nil
}

// Open returns what a GET of the upload URL serves: the record and, unless the upload
// is placed, its data file, of which the first rec.ReportedOffset() bytes are to be
// served. It takes no lock: a data file is only ever appended to, so a read of its
// first bytes is consistent while a PATCH appends, and holds no upload's lock however
// slowly the reader takes them.
func (s *Store) Open(id string) (Record, store.Data, error) {
	rec, err := s.Record(id)
	switch {
	case err != nil:
		return Record{}, nil, err
	case rec.State == Placed:
		return rec, nil, nil
	case rec.State == Rejected:
		return Record{}, nil, rejectedError(rec.Reason)
	case s.expired(rec):
		return Record{}, nil, s.expiredError()
	}
	f, err := durable.OpenFile(s.binPath(id), os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		if rec.Offset == 0 {
			return rec, noData{}, nil // no byte yet
		}
		// Placed, rejected or removed since the record was read.
		if again, err := s.Record(id); err == nil && again.State == Placed {
			return again, nil, nil
		}
		return Record{}, nil, handler.ErrNotFound
	}
	if err != nil {
		return Record{}, nil, s.internal("GetReader", id, err)
	}
	return rec, f, nil
}

// noData is the data of an upload that has none yet.
type noData struct{}

func (noData) ReadAt([]byte, int64) (int, error) { return 0, io.EOF }
func (noData) Close() error                      { return nil }

// Source is the upload's data file, which placement links into the destination.
func (s *Store) Source(id string) store.Source { return store.Source{Path: s.binPath(id)} }

// Head returns up to n first bytes of the upload's data.
func (s *Store) Head(id string, n int) ([]byte, error) {
	f, err := durable.OpenFile(s.binPath(id), os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // a zero-byte upload
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, n)
	got, err := io.ReadFull(f, head)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil
	}
	return head[:got], err
}

// Record returns what the store knows of one upload, with its current offset.
func (s *Store) Record(id string) (Record, error) {
	rec, _, err := s.readRecord(id)
	if err != nil && !errors.Is(err, handler.ErrNotFound) {
		return Record{}, s.internal("ReadRecord", id, err)
	}
	return rec, err
}

// stateChange is what a record gains after creation: its outcome, an intended name or
// a length declared late. A change that only announces an intended name (Intend)
// leaves the state as it was.
type stateChange struct {
	State  State
	Name   string            `json:",omitempty"`
	Intend string            `json:",omitempty"`
	Reason string            `json:",omitempty"`
	Length int64             `json:",omitempty"` // the length of an upload that had none, once known
	Thumbs map[string]string `json:",omitempty"`
}

// apply makes the change to e, reporting whether it changed anything: a retry that
// failed the same way, or an intent already recorded, writes nothing.
func (c stateChange) apply(e *entry, now time.Time) bool {
	switch {
	case c.Length > 0:
		if !e.SizeIsDeferred {
			return false
		}
		e.Size, e.SizeIsDeferred = c.Length, false
	case c.Intend != "":
		if e.Intended == c.Intend {
			return false
		}
		e.Intended = c.Intend
	case e.State == c.State:
		return false
	default:
		e.State, e.Name, e.Reason, e.Thumbs = c.State, c.Name, c.Reason, c.Thumbs
		e.Changed = now
	}
	return true
}

// readRecord also returns when the record last changed (even when the upload's data is
// gone, for the janitor to judge its age). Errors other than ErrNotFound are returned
// raw.
func (s *Store) readRecord(id string) (Record, time.Time, error) {
	if !ValidID(id) {
		return Record{}, time.Time{}, handler.ErrNotFound
	}
	rec, changed, err := s.readOnce(id)
	if errors.Is(err, errNoData) {
		// Placed or rejected between reading the record and looking at its data
		// (both remove the data once the record says so): read it again.
		rec, changed, err = s.readOnce(id)
	}
	if errors.Is(err, errNoData) {
		// No byte has arrived yet (or the data is gone, which the client learns
		// by being asked for the bytes again).
		rec.Offset, rec.Activity, err = 0, changed, nil
	}
	return rec, changed, err
}

var errNoData = errors.New("an unfinished upload has no data file")

func (s *Store) readOnce(id string) (Record, time.Time, error) {
	e, err := s.records.get(s.set, id)
	if err != nil {
		return Record{}, time.Time{}, err
	}
	rec := e.Record
	switch rec.State {
	case Placed:
		rec.Offset = rec.Size
		rec.Activity = e.Changed
	case Rejected:
		rec.Offset = 0
		rec.Activity = e.Changed
	default:
		data, err := os.Stat(s.binPath(id))
		if errors.Is(err, fs.ErrNotExist) {
			return rec, e.Changed, errNoData
		}
		if err != nil {
			return Record{}, time.Time{}, err
		}
		rec.Offset = data.Size()
		rec.Activity = data.ModTime()
	}
	return rec, e.Changed, nil
}

// MarkPlaced records that the upload's bytes now live at name in the destination, then
// removes the data file. The record is written first: a crash in between leaves a data
// file that Sweep removes, never a placed file the store does not know about.
func (s *Store) MarkPlaced(id, name string, thumbs map[string]string) error {
	if err := s.changeState(id, stateChange{State: Placed, Name: name, Thumbs: thumbs}); err != nil {
		return err
	}
	if err := os.Remove(s.binPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("RemoveDataFailed", "id", id, "error", err)
	}
	return nil
}

// MarkFailed records that the client was told the upload's placement failed, so that
// only the client's retry places it (see Failed).
func (s *Store) MarkFailed(id string) error {
	return s.changeState(id, stateChange{State: Failed})
}

// Intend records the name a copy is about to be placed under (see
// placement.Request.Intend).
func (s *Store) Intend(id, name string) error {
	return s.changeState(id, stateChange{Intend: name})
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

// changeState makes c part of the record, durably.
func (s *Store) changeState(id string, c stateChange) error {
	if !ValidID(id) {
		return handler.ErrNotFound
	}
	now := s.now().UTC()
	err := s.records.update(s.set, id, func(e *entry) bool { return c.apply(e, now) })
	if errors.Is(err, handler.ErrNotFound) {
		return err
	}
	if err != nil {
		return s.internal("ChangeState", id, err)
	}
	return nil
}

// tell reports a change through Options.Changed; its error is what the client is told.
func (s *Store) tell(kind string, rec Record) error {
	if s.changed == nil {
		return nil
	}
	if err := s.changed(kind, rec); err != nil {
		s.log.Error("NotifyFailed", "id", rec.ID, "event", kind, "error", err)
		return Failure(s.set, "could not record the event for the app", "data directory", err)
	}
	return nil
}

// steps says in a client's words what each store operation was doing.
var steps = map[string]string{
	"NewUpload":    "could not create the upload",
	"CreateRecord": "could not create the upload",
	"ReadRecord":   "could not read the upload's record",
	"ChangeState":  "could not record the upload's state",
	"WriteChunk":   "could not store the upload's bytes",
	"GetReader":    "could not read the upload",
	"Terminate":    "could not remove the upload",
}

// internal logs err, which may hold paths, and returns an error safe to show a client
// that names the set and the step.
func (s *Store) internal(op, id string, err error) error {
	if IsNoSpace(err) {
		s.log.Warn("StorageFull", "op", op, "id", id, "error", err)
	} else {
		s.log.Error("StoreError", "op", op, "id", id, "error", err)
	}
	return Failure(s.set, steps[op], "data directory", err)
}

func rejectedError(reason string) error {
	return handler.NewError("ERR_UPLOAD_REJECTED", reason, http.StatusGone)
}

// AsLengthDeclarableUpload implements handler.LengthDeferrerDataStore.
func (s *Store) AsLengthDeclarableUpload(u handler.Upload) handler.LengthDeclarableUpload {
	return u.(*upload)
}

func (s *Store) tooLarge(limit int64) error {
	return handler.NewError("ERR_UPLOAD_TOO_LARGE", fmt.Sprintf(
		"set %q accepts uploads of up to %d bytes; this one goes on past that, and nothing past it was stored", s.set, limit), http.StatusRequestEntityTooLarge)
}

// AsTerminatableUpload implements handler.TerminaterDataStore.
func (s *Store) AsTerminatableUpload(u handler.Upload) handler.TerminatableUpload {
	return u.(*upload)
}

// IDs lists the uploads the store holds a record of.
func (s *Store) IDs() ([]string, error) { return s.records.ids(s.set) }

// Offset is the offset tusd reports for an upload: what HEAD would answer.
func (s *Store) Offset(id string) (int64, error) {
	u, err := s.GetUpload(context.Background(), id)
	if err != nil {
		return 0, err
	}
	return u.(*upload).rec.Offset, nil
}

var _ store.Uploads = (*Store)(nil)
