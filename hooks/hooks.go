// Package hooks adapts an upload set's policy to tusd: the callbacks tusd calls when an
// upload is created, finished or terminated, and the one table that turns policy errors
// into HTTP responses.
package hooks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/internal/auth"
	"github.com/uploadsets/uploadsets/internal/crashpoint"
	"github.com/uploadsets/uploadsets/internal/reqid"
	"github.com/uploadsets/uploadsets/internal/store"
	"github.com/uploadsets/uploadsets/internal/uploads"
	"github.com/uploadsets/uploadsets/sets"
)

// Store is what the hooks need of a set's uploads.
type Store interface {
	store.Records
	store.Bytes
}

// Set enforces one upload set's policy on tusd's events.
type Set struct {
	Set    *sets.Set
	Store  Store
	Placer store.Placer
	Log    hclog.Logger
	// Events, when set, is told what happened to each upload (metrics).
	Events func(set string, o Outcome)
	// Announce, when set, durably queues the news of an upload's outcome for the app
	// (notifications); the client is answered only once it has returned.
	Announce func(ctx context.Context, a Announcement) error
	// Process, when set (a set with an image block), makes of a finished upload's
	// data the file to place and its thumbnails; a *sets.PolicyError rejects it.
	Process func(ctx context.Context, id, src, name string) (*Processed, error)
}

// Event names an outcome worth counting.
type Event string

// Outcome is an Event with what metrics measure of it.
type Outcome struct {
	Event Event
	Size  int64         // of a placed upload
	Took  time.Duration // from creation to placement
}

const (
	EventRefused  Event = "refused"  // at creation, by policy
	EventPlaced   Event = "placed"   // finished and moved into the destination
	EventRejected Event = "rejected" // finished, then failed a content check
)

// Config fills in the tusd callbacks of c.
func (h *Set) Config(c *handler.Config) {
	c.PreUploadCreateCallback = h.PreCreate
	c.PreFinishResponseCallback = h.PreFinish
}

// Quote makes a client's name safe to log: escaped as in a Go string, so that a
// newline or a control character in it cannot start a line of its own.
func Quote(name string) string {
	q := strconv.Quote(name)
	return q[1 : len(q)-1]
}

// ClientName is the file name a client sent, under either spelling in use: tus-js-client
// examples send "filename", Uppy sends "name".
func ClientName(meta handler.MetaData) string {
	if n := meta["filename"]; n != "" {
		return n
	}
	return meta["name"]
}

// ClientType is the media type a client declared ("filetype", or Uppy's "type").
func ClientType(meta handler.MetaData) string {
	if t := meta["filetype"]; t != "" {
		return t
	}
	return meta["type"]
}

// PreCreate refuses, before a byte is stored, an upload the set's policy can already
// rule out from its declared name and length.
func (h *Set) PreCreate(ev handler.HookEvent) (handler.HTTPResponse, handler.FileInfoChanges, error) {
	var changes handler.FileInfoChanges
	meta := ev.Upload.MetaData
	if ClientName(meta) == "" && ev.HTTPRequest.Header.Get("Upload-Metadata") != "" {
		// tusd takes an IETF-draft upload's name from Content-Disposition only;
		// tus-js-client in its ietf-draft mode sends tus's Upload-Metadata instead.
		meta = handler.ParseMetadataHeader(ev.HTTPRequest.Header.Get("Upload-Metadata"))
		maps.Copy(meta, ev.Upload.MetaData)
		changes.MetaData = meta
	}
	name := ClientName(meta)
	policy := h.Set
	claims, granted := auth.Granted(ev.Context)
	if granted {
		var err error
		if name, changes.Storage, policy, err = h.grant(claims, name); err != nil {
			return handler.HTTPResponse{}, handler.FileInfoChanges{}, responseError(err)
		}
	}
	if err := policy.Admit(name, ev.Upload.Size); err != nil {
		h.emit(Outcome{Event: EventRefused})
		h.event(ev.Context, "UploadRefused", "name", Quote(name), "size", ev.Upload.Size, "owner", claims.Subject, "reason", err)
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, responseError(err)
	}
	return handler.HTTPResponse{}, changes, nil
}

// grant applies an upload token's claims, as Flask-Uploads' save(folder=, name=)
// does: the name it gives replaces the client's (one ending in "." keeps the client's
// extension), its folder is made safe segment by segment, and its max_size lowers the
// set's. What the store must keep comes back as FileInfo.Storage hints.
func (h *Set) grant(c auth.Claims, clientName string) (name string, hints map[string]string, policy *sets.Set, err error) {
	name, policy = clientName, h.Set
	hints = map[string]string{}
	if c.Subject != "" {
		hints[uploads.OwnerKey] = c.Subject
	}
	if c.Name != "" {
		name = c.Name
		if strings.HasSuffix(name, ".") {
			name = strings.TrimSuffix(name, ".")
			if ext := sets.Ext(clientName); ext != "" {
				name += "." + ext
			}
		}
		hints[uploads.RenameKey] = name
	}
	if c.Folder != "" {
		if len(h.Set.Thumbnails) > 0 && (c.Folder == ThumbsFolder || strings.HasPrefix(c.Folder, ThumbsFolder+"/")) {
			return "", nil, nil, handler.NewError("ERR_TOKEN_INVALID", fmt.Sprintf("set %q: the upload token's folder %q is where the set's thumbnails go", h.Set.Name, c.Folder), http.StatusBadRequest)
		}
		var segs []string
		for _, seg := range strings.Split(c.Folder, "/") {
			safe, err := sets.SafeName(seg)
			if err != nil {
				return "", nil, nil, handler.NewError("ERR_TOKEN_INVALID", fmt.Sprintf("set %q: the upload token's folder %q has no usable name in it", h.Set.Name, c.Folder), http.StatusBadRequest)
			}
			segs = append(segs, safe)
		}
		hints[uploads.FolderKey] = strings.Join(segs, "/")
	}
	if c.MaxSize > 0 && (h.Set.MaxSize <= 0 || c.MaxSize < h.Set.MaxSize) {
		lowered := *h.Set
		lowered.MaxSize = c.MaxSize
		policy = &lowered
		hints[uploads.LimitKey] = strconv.FormatInt(c.MaxSize, 10)
	}
	return name, hints, policy, nil
}

// PreFinish places a finished upload and tells the client its final name (the server
// adds the URL, which depends on how the client reached it).
func (h *Set) PreFinish(ev handler.HookEvent) (handler.HTTPResponse, error) {
	// The request may be cancelled by now (a client giving up, a lock hand-off);
	// placement still has to run to the end once started.
	name, err := h.Finish(context.WithoutCancel(ev.Context), ev.Upload.ID)
	if err != nil {
		var pe *sets.PolicyError
		if !errors.As(err, &pe) { // a rejection is final: nothing to retry
			// The client learns of the failure; from now on only its retry places
			// the upload (see uploads.Failed).
			if merr := h.Store.MarkFailed(ev.Upload.ID); merr != nil {
				h.Log.Warn("FailureNotRecorded", "id", ev.Upload.ID, "error", merr)
			}
		}
		return handler.HTTPResponse{}, responseError(err)
	}
	return handler.HTTPResponse{Header: handler.HTTPHeader{"Upload-File-Name": url.PathEscape(name)}}, nil
}

// Place runs placement outside tusd's finish callback (for a zero-byte upload whose
// placement failed: see the server); its error is what the client is told.
func (h *Set) Place(ctx context.Context, id string) (string, error) {
	name, err := h.Finish(ctx, id)
	if err != nil {
		return "", responseError(err)
	}
	return name, nil
}

// Finish places a complete upload (or finds where it was placed) and records the
// result with the store. It is also run at startup for uploads whose placement a crash
// interrupted.
func (h *Set) Finish(ctx context.Context, id string) (name string, err error) {
	rec, err := h.record(ctx, id)
	if err != nil {
		return "", err
	}
	if rec.State == uploads.Placed {
		return rec.Name, nil
	}
	if !rec.Unplaced() {
		return "", handler.ErrUploadNotFinished
	}
	given := ClientName(rec.MetaData)
	if rec.Rename != "" {
		given = rec.Rename
	}
	safe, err := sets.SafeName(given)
	if err != nil {
		// Admit let it in, so the name was usable then; nothing to place now.
		return "", err
	}
	if err := h.checkContent(ctx, id, safe); err != nil {
		return "", err
	}
	src, base := h.Store.Source(id), safe
	var proc *Processed
	if h.Process != nil {
		if proc, err = h.Process(ctx, id, src.Path, safe); err != nil {
			var pe *sets.PolicyError
			if errors.As(err, &pe) {
				return "", h.reject(ctx, id, safe, pe)
			}
			h.Log.Error("ProcessFailed", "id", id, "error", err)
			return "", uploads.Failure(h.Set.Name, "could not process the image", "data directory", err)
		}
		src, base = store.Source{Path: proc.Main}, proc.Name
	}
	crashpoint.Pause("placing")
	// What is placed is taken back if a later step fails: not recorded means not
	// placed, and a client told of the failure must find no file of it (it may
	// start over); the retry places it anew.
	var placed []string
	undo := func() {
		for _, n := range placed {
			if uerr := h.Placer.Unplace(n); uerr != nil {
				h.Log.Error("UnplaceFailed", "id", id, "name", n, "error", uerr)
			}
		}
	}
	name, err = h.Placer.Place(store.Request{
		Src:      src,
		Names:    h.Set.Candidates(base, id),
		Folder:   rec.Folder,
		Intended: rec.Intended,
		Intend:   func(name string) error { return h.Store.Intend(id, name) },
	})
	if name != "" {
		placed = append(placed, name)
	}
	var thumbs map[string]string
	if err == nil && proc != nil {
		thumbs, err = h.placeThumbs(id, proc, name, &placed)
	}
	if err != nil {
		undo()
		// The upload stays complete but unplaced: the store withholds its last
		// byte from the offset, so the client's retry of it places it again.
		// os.Root's errors name files relative to the destination.
		h.Log.Error("PlaceFailed", "id", id, "destination", h.Set.Destination, "error", err)
		return "", uploads.Failure(h.Set.Name, "could not place the file", "destination", err)
	}
	crashpoint.At("placed") // linked or copied into place, not yet recorded
	// The app is told before the record says placed, so that no outcome a client
	// learns of is missing from the outbox; a crash in between tells it again (the
	// same event, the same webhook-id) when placement is redone.
	if err := h.announce(ctx, Announcement{Event: EventPlaced, Record: rec, Name: name, Thumbs: thumbs}); err != nil {
		undo()
		return "", err
	}
	if err := h.Store.MarkPlaced(id, name, thumbs); err != nil {
		undo()
		return "", err // the store's error names the set and the step
	}
	if proc != nil && proc.Done != nil {
		proc.Done()
	}
	h.emit(Outcome{Event: EventPlaced, Size: rec.Size, Took: time.Since(rec.Created)})
	h.event(ctx, "UploadPlaced", "id", id, "name", Quote(name), "size", rec.Size, "thumbnails", len(thumbs))
	return name, nil
}

// record reads an upload's record as the request of ctx sees it, when the store
// offers that (an S3 store: the request that assembled an upload holds its record
// already, under the upload's lock, and spares a request to the bucket).
func (h *Set) record(ctx context.Context, id string) (uploads.Record, error) {
	if rs, ok := h.Store.(interface {
		RecordIn(context.Context, string) (uploads.Record, error)
	}); ok {
		return rs.RecordIn(ctx, id)
	}
	return h.Store.Record(id)
}

// placeThumbs puts each thumbnail at thumbs/{label}/{name}, name being the placed
// file's (its folder included) with the thumbnail's extension, and returns them by
// label. Each name placed is added to placed.
func (h *Set) placeThumbs(id string, proc *Processed, name string, placed *[]string) (map[string]string, error) {
	thumbs := map[string]string{}
	for _, t := range proc.Thumbs {
		folder := path.Join(ThumbsFolder, t.Label, path.Dir(name))
		base := strings.TrimSuffix(path.Base(name), path.Ext(name)) + t.Ext
		got, err := h.Placer.Place(store.Request{
			Src: store.Source{Path: t.Path}, Names: h.Set.Candidates(base, id), Folder: folder,
			// A thumbnail placed twice after a crash costs a file, not an upload.
			Intend: func(string) error { return nil },
		})
		if got != "" {
			*placed = append(*placed, got)
		}
		if err != nil {
			return nil, err
		}
		thumbs[t.Label] = got
	}
	return thumbs, nil
}

// ThumbsFolder is where an image set's thumbnails go in its destination; a token's
// folder may not claim it.
const ThumbsFolder = "thumbs"

// Processed is what Set.Process made of an upload: the file to place instead of its
// data, and its thumbnails.
type Processed struct {
	Main   string // a file on the data directory's file system
	Name   string // the name to place it under: the output format's extension
	Thumbs []Thumb
	Done   func() // removes the outputs' own names once they are placed
}

// Thumb is one thumbnail of a Processed upload.
type Thumb struct {
	Label string
	Path  string
	Ext   string // ".jpg"
}

// checkContent rejects an upload whose bytes are not what its extension claims: the
// data is removed and the record keeps the reason, so that neither a HEAD nor a retry
// can make it look like a success.
func (h *Set) checkContent(ctx context.Context, id, safe string) error {
	ext := sets.Ext(safe)
	detected, ok, err := sniff(func() ([]byte, error) { return h.Store.Head(id, headSize) }, ext)
	if err != nil {
		h.Log.Error("SniffFailed", "id", id, "error", err)
		return uploads.Failure(h.Set.Name, "could not check the file's content", "data directory", err)
	}
	if ok {
		return nil
	}
	h.Log.Debug("ContentMismatch", "id", id, "detected", detected)
	return h.reject(ctx, id, safe, h.Set.ContentMismatch(safe, ext, detected))
}

// reject ends an upload whose content its set refuses: the app is told, the data is
// removed and the record keeps the reason, so that neither a HEAD nor a retry can make
// it look like a success. It returns perr, for the client.
func (h *Set) reject(ctx context.Context, id, name string, perr error) error {
	rec, err := h.record(ctx, id)
	if err != nil {
		return err
	}
	if err := h.announce(ctx, Announcement{Event: EventRejected, Record: rec, Name: name, Reason: perr.Error()}); err != nil {
		return err
	}
	if err := h.Store.Reject(id, perr.Error()); err != nil {
		return err
	}
	h.emit(Outcome{Event: EventRejected})
	h.event(ctx, "UploadRejected", "id", id, "name", Quote(name), "reason", perr)
	return perr
}

// FileURL is where a placed file is served: under the set's own url, or by this
// server under /files/<set>/ (base is this server's URL as the client knows it).
func (h *Set) FileURL(base, name string) string {
	if h.Set.URL != "" {
		return h.Set.URL + escapePath(name)
	}
	return base + "/files/" + h.Set.Name + "/" + escapePath(name)
}

// escapePath escapes each segment of a placed name ("2026/May report.pdf"); the
// slashes between folders stay.
func escapePath(name string) string {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

func (h *Set) emit(o Outcome) {
	if h.Events != nil {
		h.Events(h.Set.Name, o)
	}
}

// Announcement is what the app is told of an upload's outcome (see Set.Announce).
type Announcement struct {
	Event  Event // EventPlaced or EventRejected
	Record uploads.Record
	Name   string            // the placed name (folder/name), or the name a rejected upload had
	Reason string            // why it was rejected
	Thumbs map[string]string // a placed image's thumbnails, by label
}

// announce tells the app, through Announce, before the client learns the outcome;
// its error is what the client is told instead.
func (h *Set) announce(ctx context.Context, a Announcement) error {
	if h.Announce == nil {
		return nil
	}
	if err := h.Announce(ctx, a); err != nil {
		h.Log.Error("NotifyFailed", "id", a.Record.ID, "event", string(a.Event), "error", err)
		return uploads.Failure(h.Set.Name, "could not record the event for the app", "data directory", err)
	}
	return nil
}

// event logs what happened to an upload, with what an operator looks for in every
// such line: the set, and the request it happened in.
func (h *Set) event(ctx context.Context, name string, args ...any) {
	h.Log.Info(name, append([]any{"set", h.Set.Name, "request_id", reqid.From(ctx)}, args...)...)
}

// responses maps policy rules to what the client is told; the first match wins.
var responses = []struct {
	rule   error
	code   string
	status int
}{
	{sets.ErrNoName, "ERR_FILE_NAME_MISSING", http.StatusBadRequest},
	{sets.ErrExtension, "ERR_EXTENSION_NOT_ALLOWED", http.StatusUnsupportedMediaType},
	{sets.ErrTooLarge, "ERR_UPLOAD_TOO_LARGE", http.StatusRequestEntityTooLarge},
	{sets.ErrContent, "ERR_CONTENT_MISMATCH", http.StatusUnprocessableEntity},
	{sets.ErrNotImage, "ERR_NOT_AN_IMAGE", http.StatusUnprocessableEntity},
	{sets.ErrPixels, "ERR_IMAGE_TOO_LARGE", http.StatusUnprocessableEntity},
}

// responseError turns err into the error tusd answers with. Policy errors carry their
// own plain-words message; tusd errors pass through; anything else becomes a bare
// "internal error", since its text may hold paths.
func responseError(err error) error {
	var pe *sets.PolicyError
	if errors.As(err, &pe) {
		for _, r := range responses {
			if errors.Is(err, r.rule) {
				return handler.NewError(r.code, pe.Error(), r.status)
			}
		}
	}
	var he handler.Error
	if errors.As(err, &he) {
		return he
	}
	return uploads.ErrInternal
}
