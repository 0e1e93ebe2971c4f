package s3uploads

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/hashicorp/go-hclog"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/s3store"

	"github.com/uploadsets/uploadsets/internal/store"
	"github.com/uploadsets/uploadsets/internal/uploads"
)

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

// Store is one set's partial uploads and their records in an S3 bucket, as a tusd
// DataStore: s3store holds the bytes, a record object beside them the rest.
type Store struct {
	s3       s3store.S3Store
	client   *s3.Client
	bucket   string
	prefix   string // "" or ending in "/"
	set      string
	tempDir  string
	checksum func(context.Context) (hash.Hash, []byte, bool)
	locker   handler.Locker
	changed  func(kind string, rec Record) error
	log      hclog.Logger
	tune     atomic.Pointer[tuning]
	now      func() time.Time

	// mu guards writing: the uploads this instance is writing to, which its Sweep
	// leaves alone whether or not it has a Locker.
	mu      sync.Mutex
	writing map[string]int

	kmu   sync.Mutex
	known map[string]versioned // see remember
}

type tuning struct {
	expire  time.Duration
	maxSize int64
}

func (s *Store) t() *tuning { return s.tune.Load() }

// Options say what a store keeps to. They mirror disk.Options where that makes sense.
type Options struct {
	Set    string        // the set's name, for the errors clients see
	Expire time.Duration // unfinished uploads expire after this without activity
	// MaxSize is the most an upload of unknown length may reach (the set's
	// max_size); one created with a lower limit keeps to that (see uploads.LimitKey).
	MaxSize int64
	Log     hclog.Logger
	// Changed, when set, is told of an upload created, terminated or expired, before
	// the client is answered (and before its data is removed). If it fails, the
	// change does not happen: creation and termination fail, expiry waits.
	Changed func(kind string, rec Record) error
	// TempDir is where s3store cuts bodies into parts and where a checksummed body
	// waits until it is verified ("" is the system's): it needs room for the
	// largest checksummed PATCH body, whole, besides s3store's parts. Sweep removes
	// what crashes leave there when it is set.
	TempDir string
	// Checksum returns the hash a request's bytes must be fed to and the sum they
	// must end at, when the request carries an Upload-Checksum. It stands in for
	// disk's checksumOf, which is not exported (see the package doc).
	Checksum func(ctx context.Context) (h hash.Hash, want []byte, ok bool)
	// Locker, when set, is the one tusd is composed with: Sweep takes an upload's
	// lock before it removes it, so that no instance removes an upload another is
	// writing to. Without it, Sweep only knows of this instance's writes.
	Locker handler.Locker

	now func() time.Time // the clock, for tests; time.Now when nil
}

// New returns the store of the uploads under prefix in bucket. The prefix belongs to
// the store alone: every object under it is an upload's or a leftover.
func New(client *s3.Client, bucket, prefix string, o Options) (*Store, error) {
	if client == nil || bucket == "" {
		return nil, errors.New("s3uploads: a client and a bucket are needed")
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	if strings.HasPrefix(prefix, "/") {
		return nil, fmt.Errorf("s3uploads: prefix %q must not begin with a slash", prefix)
	}
	log := o.Log
	if log == nil {
		log = hclog.NewNullLogger()
	}
	// s3store's own defaults, which tusd's command line keeps too (parts of 50 MiB,
	// 20 buffered, 10 sent at once).
	st := s3store.New(bucket, client)
	st.ObjectPrefix = prefix
	st.TemporaryDirectory = o.TempDir
	s := &Store{
		s3: st, client: client, bucket: bucket, prefix: prefix, set: o.Set, tempDir: o.TempDir,
		checksum: o.Checksum, locker: o.Locker, changed: o.Changed, log: log,
		now: o.now, writing: map[string]int{}, known: map[string]versioned{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.Retune(o)
	return s, nil
}

// Retune applies a reloaded config's values; uploads in progress keep the limit they
// were created with.
func (s *Store) Retune(o Options) {
	s.tune.Store(&tuning{expire: o.Expire, maxSize: o.MaxSize})
}

// UseIn composes the store into tusd: core, termination and deferred length, which
// the store polices (no byte past an upload's limit is stored). Concatenation, which
// s3store offers, is left out: it creates bytes the creation-time policy never saw.
// So is s3store's content serving: GET goes through GetReader.
func (s *Store) UseIn(c *handler.StoreComposer) {
	c.UseCore(s)
	c.UseTerminater(s)
	c.UseLengthDeferrer(s)
}

func (s *Store) recordKey(id string) string { return s.prefix + id + recordSuffix }

// dataKey is where s3store assembles a finished upload's bytes, and the key of its
// multipart upload until then.
func (s *Store) dataKey(id string) string { return s.prefix + id }

const recordSuffix = ".record"

// callTimeout bounds the S3 calls of the methods that take no context (the hooks'
// and the janitor's): the SDK retries what can be retried within it.
const callTimeout = time.Minute

func (s *Store) callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), callTimeout)
}

// NewUpload creates s3store's upload (its multipart upload and .info) and then the
// record, which is what makes the upload exist for this store.
func (s *Store) NewUpload(ctx context.Context, info handler.FileInfo) (handler.Upload, error) {
	if info.ID == "" {
		info.ID = uploads.NewID()
	}
	id := info.ID
	if !uploads.ValidID(id) {
		return nil, s.internal("NewUpload", id, fmt.Errorf("invalid upload ID %q", id))
	}
	limit := s.t().maxSize
	if l, err := strconv.ParseInt(info.Storage[uploads.LimitKey], 10, 64); err == nil && l > 0 && (limit <= 0 || l < limit) {
		limit = l
	}
	// s3store replaces Storage with its own; the hints are the record's. The
	// metadata are the record's alone: s3store would make them the S3 metadata of
	// the multipart upload and the final object, where a key that is no HTTP token
	// or more than S3's 2 KiB of them fail the creation, non-ASCII is replaced by
	// "?", and the client's filetype becomes the object's Content-Type.
	hints, md := info.Storage, info.MetaData
	info.Storage, info.MetaData = nil, nil
	up, err := s.s3.NewUpload(ctx, info)
	if err != nil {
		return nil, s.internal("NewUpload", id, err)
	}
	got, err := up.GetInfo(ctx) // what s3store wrote to .info, kept in memory
	if err != nil {
		return nil, s.internal("NewUpload", id, err)
	}
	got.MetaData = md
	now := s.now().UTC()
	rec := Record{FileInfo: got, Limit: limit, Created: now,
		Owner: hints[uploads.OwnerKey], Folder: hints[uploads.FolderKey], Rename: hints[uploads.RenameKey]}
	rec.ID = id
	obj := object{Record: rec, Upload: got.ID, Active: now}
	etag, err := s.putRecord(ctx, obj, "")
	if err != nil {
		s.removeData(ctx, obj)
		return nil, s.internal("CreateRecord", id, err)
	}
	if err := s.tell(uploads.Created, rec); err != nil {
		s.removeData(ctx, obj)
		s.deleteRecord(ctx, id)
		return nil, err
	}
	uploads.RunCreatedHook(ctx, rec)
	return &upload{store: s, v: versioned{obj, etag}, rec: rec, s3: up}, nil
}

// GetUpload loads the record and, while bytes are arriving, the offset s3store
// reads back from the bucket: what reached S3 counts, on every instance alike.
func (s *Store) GetUpload(ctx context.Context, id string) (handler.Upload, error) {
	l, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	rec := l.rec
	if rec.State == Rejected {
		return nil, rejectedError(rec.Reason)
	}
	if s.expired(rec) {
		return nil, s.expiredError()
	}
	u := &upload{store: s, v: l.v, rec: rec, s3: l.s3, assembled: l.assembled}
	if rec.ReportedOffset() < rec.Offset {
		u.rec.Offset = rec.ReportedOffset()
		u.withheld = true
	}
	return u, nil
}

// loaded is an upload as read back: its record object, the Record the hooks see (with
// its offset and activity), and s3store's upload while it has data.
type loaded struct {
	v         versioned
	rec       Record
	s3        handler.Upload
	assembled bool // the final object holds every byte
}

// load reads what the store knows of an upload. Its errors are ErrNotFound or safe
// for a client. When the record is there but its data is gone (a crash inside
// Terminate), it returns the loaded record with ErrNotFound, for Sweep to judge.
func (s *Store) load(ctx context.Context, id string) (*loaded, error) {
	if !uploads.ValidID(id) {
		return nil, handler.ErrNotFound
	}
	v, err := s.getRecord(ctx, id)
	if errors.Is(err, handler.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, s.internal("ReadRecord", id, err)
	}
	if !strings.HasPrefix(v.obj.Upload, id+"+") {
		return nil, s.internal("ReadRecord", id, fmt.Errorf("record names upload %q", v.obj.Upload))
	}
	l := &loaded{v: v, rec: v.obj.Record}
	l.rec.ID = id
	l.rec.Activity = v.obj.Active
	switch l.rec.State {
	case Placed:
		l.rec.Offset, l.rec.Activity = l.rec.Size, v.obj.Changed
		return l, nil
	case Rejected:
		l.rec.Offset, l.rec.Activity = 0, v.obj.Changed
		return l, nil
	}
	// GetUpload of s3store makes no request: it only splits the ID.
	if l.s3, err = s.s3.GetUpload(ctx, v.obj.Upload); err != nil {
		return nil, s.internal("ReadRecord", id, err)
	}
	if v.obj.Assembled {
		l.rec.Offset, l.assembled = l.rec.Size, true
		return l, nil
	}
	info, err := l.s3.GetInfo(ctx)
	if errors.Is(err, handler.ErrNotFound) {
		return l, handler.ErrNotFound
	}
	if err != nil {
		return nil, s.internal("ReadData", id, err)
	}
	// s3store's .info has the length (DeclareLength writes it there first) and its
	// parts the offset.
	l.rec.Size, l.rec.SizeIsDeferred, l.rec.Offset = info.Size, info.SizeIsDeferred, info.Offset
	if l.rec.Complete() {
		// Every byte is in: the multipart upload either waits to be completed
		// or was completed (s3store cannot tell them apart when its parts are
		// gone) by a request that could not record it.
		_, found, err := s.head(ctx, id)
		if err != nil {
			return nil, s.internal("ReadData", id, err)
		}
		l.assembled = found
	}
	return l, nil
}

// Record returns what the store knows of one upload, with its current offset.
func (s *Store) Record(id string) (Record, error) {
	ctx, cancel := s.callCtx()
	defer cancel()
	l, err := s.load(ctx, id)
	if err != nil {
		return Record{}, err
	}
	return l.rec, nil
}

// Offset is the offset a HEAD would report.
func (s *Store) Offset(id string) (int64, error) {
	ctx, cancel := s.callCtx()
	defer cancel()
	u, err := s.GetUpload(ctx, id)
	if err != nil {
		return 0, err
	}
	return u.(*upload).rec.Offset, nil
}

// stateChange is what the hooks make of a record after its bytes are in. One that
// only announces an intended name leaves the state as it was.
type stateChange struct {
	State  State
	Name   string
	Intend string
	Reason string
	Thumbs map[string]string
}

// apply makes the change to o, reporting whether it changed anything: a retry that
// failed the same way, or an intent already recorded, writes nothing.
func (c stateChange) apply(o *object, now time.Time) bool {
	switch {
	case c.Intend != "":
		if o.Intended == c.Intend {
			return false
		}
		o.Intended = c.Intend
	case o.State == c.State:
		return false
	default:
		o.State, o.Name, o.Reason, o.Thumbs = c.State, c.Name, c.Reason, c.Thumbs
		o.Changed = now
	}
	return true
}

func (s *Store) changeState(ctx context.Context, id string, c stateChange) (versioned, error) {
	if !uploads.ValidID(id) {
		return versioned{}, handler.ErrNotFound
	}
	now := s.now().UTC()
	var have *versioned
	if v, ok := s.recall(id); ok {
		have = &v
	}
	v, err := s.update(ctx, id, have, true, func(o *object) bool { return c.apply(o, now) })
	if errors.Is(err, handler.ErrNotFound) {
		return v, err
	}
	if err != nil {
		return v, s.internal("ChangeState", id, err)
	}
	return v, nil
}

// MarkPlaced records that the upload's bytes now live at name in the destination,
// then removes its data (the final object and what s3store kept beside it). The
// record is written first: a crash in between leaves data that Sweep removes, never
// a placed file the store does not know about.
func (s *Store) MarkPlaced(id, name string, thumbs map[string]string) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	v, err := s.changeState(ctx, id, stateChange{State: Placed, Name: name, Thumbs: thumbs})
	if err != nil {
		return err
	}
	s.removeData(ctx, v.obj)
	return nil
}

// MarkFailed records that the client was told the upload's placement failed, so that
// only the client's retry places it (see uploads.Failed).
func (s *Store) MarkFailed(id string) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	_, err := s.changeState(ctx, id, stateChange{State: Failed})
	return err
}

// Intend records the name a copy is about to be placed under (see
// store.Request.Intend).
func (s *Store) Intend(id, name string) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	_, err := s.changeState(ctx, id, stateChange{Intend: name})
	return err
}

// Reject records why the upload was refused, then removes its data through s3store;
// the record stays, so that a client asking later learns the reason.
func (s *Store) Reject(id, reason string) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	v, err := s.changeState(ctx, id, stateChange{State: Rejected, Reason: reason})
	if err != nil {
		return err
	}
	s.removeData(ctx, v.obj)
	return nil
}

// removeData has s3store terminate the upload: abort its multipart upload, delete
// the final object, .part and .info. It is idempotent; a failure is logged, and
// Sweep removes what is left.
func (s *Store) removeData(ctx context.Context, obj object) {
	var err error
	if obj.Assembled {
		err = s.removeAssembled(ctx, obj.ID)
	} else {
		err = s.terminate(ctx, obj)
	}
	if err != nil {
		s.log.Warn("RemoveDataFailed", "id", obj.ID, "error", err)
	}
}

// removeAssembled deletes what s3store leaves of a completed upload in one request:
// its multipart upload is over, so going through s3store's Terminate would only load
// it (three requests) and abort what is not there (a fourth).
func (s *Store) removeAssembled(ctx context.Context, id string) error {
	var objects []types.ObjectIdentifier
	for _, key := range []string{s.dataKey(id), s.dataKey(id) + ".info", s.dataKey(id) + ".part"} {
		objects = append(objects, types.ObjectIdentifier{Key: aws.String(key)})
	}
	out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(s.bucket),
		Delete: &types.Delete{Objects: objects, Quiet: aws.Bool(true)},
	})
	if err == nil && len(out.Errors) > 0 {
		err = fmt.Errorf("deleting %s: %s", aws.ToString(out.Errors[0].Key), aws.ToString(out.Errors[0].Message))
	}
	return err
}

func (s *Store) terminate(ctx context.Context, obj object) error {
	up, err := s.s3.GetUpload(ctx, obj.Upload)
	if err != nil {
		return err
	}
	return s.s3.AsTerminatableUpload(up).Terminate(ctx)
}

// Source is the final object s3store assembles of a complete upload, which the S3
// destination copies server-side (no local file to offer).
func (s *Store) Source(id string) store.Source {
	return store.Source{Bucket: s.bucket, Key: s.dataKey(id)}
}

// Object names the final object s3store assembled of a complete upload, for an S3
// destination to copy server-side, and its size; the object never changes once
// assembled. It is ErrNotFound until the upload is complete, and again once its
// data is removed (placed, rejected). It costs one HEAD and reads no record.
func (s *Store) Object(id string) (bucket, key string, size int64, err error) {
	if !uploads.ValidID(id) {
		return "", "", 0, handler.ErrNotFound
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	size, found, err := s.head(ctx, id)
	switch {
	case err != nil:
		return "", "", 0, s.internal("ReadData", id, err)
	case !found:
		return "", "", 0, handler.ErrNotFound
	}
	return s.bucket, s.dataKey(id), size, nil
}

// Head returns up to n first bytes of a complete upload's data, with one ranged GET.
func (s *Store) Head(id string, n int) ([]byte, error) {
	if !uploads.ValidID(id) {
		return nil, handler.ErrNotFound
	}
	if n <= 0 {
		return nil, nil
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.dataKey(id)),
		Range: aws.String(fmt.Sprintf("bytes=0-%d", n-1)),
	})
	switch {
	case statusOf(err) == http.StatusRequestedRangeNotSatisfiable:
		return nil, nil // an empty object has no byte 0
	case isNotFound(err):
		return nil, handler.ErrNotFound
	case err != nil:
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(io.LimitReader(out.Body, int64(n)))
}

// Open returns what a GET of the upload URL serves. A placed upload is its record
// alone; a complete one that is not placed yet reads its final object with ranged
// GETs. The bytes of an upload still receiving are in parts of a multipart upload,
// which S3 cannot read back: Open answers 409 ERR_INCOMPLETE_UPLOAD for it. It takes
// no lock: the final object never changes once assembled.
func (s *Store) Open(id string) (Record, store.Data, error) {
	ctx, cancel := s.callCtx()
	defer cancel()
	l, err := s.load(ctx, id)
	switch {
	case err != nil:
		return Record{}, nil, err
	case l.rec.State == Placed:
		return l.rec, nil, nil
	case l.rec.State == Rejected:
		return Record{}, nil, rejectedError(l.rec.Reason)
	case s.expired(l.rec):
		return Record{}, nil, s.expiredError()
	case !l.assembled:
		return Record{}, nil, s.incomplete()
	}
	return l.rec, &objectData{client: s.client, bucket: s.bucket, key: s.dataKey(id), size: l.rec.Size}, nil
}

// IDs lists the uploads the store holds a record of.
func (s *Store) IDs() ([]string, error) {
	ctx, cancel := s.callCtx()
	defer cancel()
	var ids []string
	err := s.list(ctx, func(key string, _ time.Time) {
		if id, ok := strings.CutSuffix(key, recordSuffix); ok && uploads.ValidID(id) {
			ids = append(ids, id)
		}
	})
	return ids, err
}

// tell reports a change through Options.Changed; its error is what the client is told.
func (s *Store) tell(kind string, rec Record) error {
	if s.changed == nil {
		return nil
	}
	if err := s.changed(kind, rec); err != nil {
		s.log.Error("NotifyFailed", "id", rec.ID, "event", kind, "error", err)
		return uploads.Failure(s.set, "could not record the event for the app", "upload bucket", err)
	}
	return nil
}

// steps says in a client's words what each store operation was doing.
var steps = map[string]string{
	"NewUpload":    "could not create the upload",
	"CreateRecord": "could not create the upload",
	"ReadRecord":   "could not read the upload's record",
	"ReadData":     "could not read the upload's state",
	"ChangeState":  "could not record the upload's state",
	"WriteChunk":   "could not store the upload's bytes",
	"FinishUpload": "could not assemble the upload's bytes",
	"GetReader":    "could not read the upload",
	"Terminate":    "could not remove the upload",
}

// internal logs err, which may name buckets, keys and local paths, and returns an
// error safe to show a client that names the set and the step.
func (s *Store) internal(op, id string, err error) error {
	if uploads.IsNoSpace(err) {
		s.log.Warn("StorageFull", "op", op, "id", id, "error", err)
	} else {
		s.log.Error("StoreError", "op", op, "id", id, "error", err)
	}
	return uploads.Failure(s.set, steps[op], "upload bucket", err)
}

func rejectedError(reason string) error {
	return handler.NewError("ERR_UPLOAD_REJECTED", reason, http.StatusGone)
}

func (s *Store) incomplete() error {
	return handler.NewError("ERR_INCOMPLETE_UPLOAD", fmt.Sprintf(
		"set %q: the bytes of an upload in progress cannot be read back; they can once it is complete", s.set), http.StatusConflict)
}

func (s *Store) tooLarge(limit int64) error {
	return handler.NewError("ERR_UPLOAD_TOO_LARGE", fmt.Sprintf(
		"set %q accepts uploads of up to %d bytes; this one goes on past that, and nothing past it was stored", s.set, limit), http.StatusRequestEntityTooLarge)
}

func (s *Store) checksumMismatch() error {
	return handler.NewError("ERR_CHECKSUM_MISMATCH", fmt.Sprintf(
		"set %q: the bytes of this request do not match its Upload-Checksum; none of them were kept, resume from the offset HEAD reports", s.set), 460)
}

// AsTerminatableUpload implements handler.TerminaterDataStore.
func (s *Store) AsTerminatableUpload(u handler.Upload) handler.TerminatableUpload {
	return u.(*upload)
}

// AsLengthDeclarableUpload implements handler.LengthDeferrerDataStore.
func (s *Store) AsLengthDeclarableUpload(u handler.Upload) handler.LengthDeclarableUpload {
	return u.(*upload)
}

var _ store.Uploads = (*Store)(nil)
