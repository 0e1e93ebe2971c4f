package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/hooks"
	"github.com/uploadsets/uploadsets/internal/auth"
	"github.com/uploadsets/uploadsets/internal/reqid"
	"github.com/uploadsets/uploadsets/internal/store/s3uploads"
	"github.com/uploadsets/uploadsets/internal/uploads"
)

// tusHeaders adds what tusd leaves out of its upload responses, at the moment the
// status is known (tusd still holds the upload's lock then, so what it adds agrees
// with what tusd answers):
//   - Upload-File-Url next to the Upload-File-Name of a placed upload, built for this
//     request (see forwarded.go); HEAD of a placed upload gets both;
//   - Upload-Expires (tus's expiration extension) on creation, on every PATCH of an
//     unfinished upload, since each byte moves the date, and on HEAD of one; never
//     on a response about a finished upload, nor on a refusal;
//   - Upload-Offset on a 409, so a client with the wrong offset learns the right one
//     without another round trip;
//   - Location on an error that follows the creation of an upload (a failed
//     placement, a full disk during creation-with-upload), so the client can resume
//     it instead of starting over and leaving a second copy behind.
//
// It also makes POST and PATCH requests cuttable (see handoff.go): by the lock hand-off,
// and by shutdown.
//
// It is the one wrapper around tusd's handling of a set's requests, method override
// and OPTIONS included: every frame between net/http and a body read stays on the
// stack of a held upload, and a stack past 8 KiB doubles.
func (s *instance) tusHeaders(us *uploadSet, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		overrideMethod(r)
		if r.Method == http.MethodOptions {
			advertise(us.set.MaxSize, next, w, r)
			return
		}
		var created *string
		var c *cutter
		ctx := context.WithValue(auth.WithSlot(r.Context()), baseKey{}, s.baseURL(r))
		r = r.WithContext(ctx)
		if r.Method == http.MethodPost || r.Method == http.MethodPatch {
			r, c = withCutter(w, r)
			s.inFlight.add(c)
			defer s.inFlight.remove(c)
			active := s.metrics.active.WithLabelValues(us.set.Name)
			active.Inc()
			defer active.Dec()
			ctx := uploads.ExpectChecksum(r.Context())
			if _, onS3 := us.store.(*s3uploads.Store); onS3 {
				// A request that completes an upload on S3 reads its record once.
				ctx = s3uploads.WithRequest(ctx)
			}
			if r.Method == http.MethodPost {
				created = new(string)
				ctx = context.WithValue(ctx, createdKey{}, created)
				ctx = uploads.WithCreatedHook(ctx, func(rec uploads.Record) { s.logCreated(us, r, rec.ID) })
				// tus's creation-with-upload answers only after the body is
				// written (the IETF draft's 104 does before: see tusd's PostFileV2).
				if r.Header.Get("Content-Type") == "application/offset+octet-stream" && !ietfDraft(r) {
					ctx = uploads.WithBodyToWrite(ctx)
				}
			}
			r = r.WithContext(ctx)
		}
		expires := time.Now().Add(us.set.ExpireAfter)
		tw := &tusWriter{ResponseWriter: w}
		tw.before = func(h http.Header, code int) (int, string) {
			if code == http.StatusPreconditionFailed {
				// The 412 of a wrong Tus-Resumable says which version to speak.
				h.Set("Tus-Version", "1.0.0")
			}
			if code == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
				// Locks unavailable (Redis down): nothing changed, try again soon.
				h.Set("Retry-After", "1")
			}
			if c != nil && code >= 500 {
				// tusd answers a cut body with 500 ERR_READ_TIMEOUT; the bytes
				// that arrived are kept either way.
				switch c.by.Load() {
				case cutByShutdown:
					tw.cut = true
					h.Set("Retry-After", "5")
					return http.StatusServiceUnavailable, fmt.Sprintf("ERR_SERVER_SHUTTING_DOWN: set %q: the server is restarting; what arrived is kept, resume in a few seconds\n", us.set.Name)
				case cutByHandoff:
					tw.cut = true
					return http.StatusBadRequest, "ERR_UPLOAD_INTERRUPTED: a newer request for this upload took over; what arrived is kept\n"
				}
			}
			if r.Method != http.MethodPost && r.Method != http.MethodPatch && r.Method != http.MethodHead {
				return 0, ""
			}
			id := lastSegment(r.URL.Path)
			if created != nil {
				id = *created
			}
			if name := h.Get("Upload-File-Name"); name != "" && code < 300 {
				if raw, err := url.PathUnescape(name); err == nil {
					h.Set("Upload-File-Url", us.hooks.FileURL(s.baseURL(r), raw))
				}
				return 0, ""
			}
			switch {
			case code == http.StatusConflict && r.Method == http.MethodPatch:
				if offset, err := us.store.Offset(id); err == nil {
					h.Set("Upload-Offset", strconv.FormatInt(offset, 10))
				}
			case code >= 400 && created != nil && id != "" && h.Get("Location") == "":
				if _, err := us.store.Record(id); err == nil {
					h.Set("Location", s.uploadURL(r, us, id))
				}
			case code < 300 && (r.Method == http.MethodHead || r.Method == http.MethodPatch && r.ContentLength <= 0):
				// HEAD, or a PATCH tusd answered without reading its body (a
				// PATCH of a finished upload among them): the record says
				// whether the upload is finished.
				rec, err := us.store.Record(id)
				switch {
				case err != nil:
				case rec.Complete() && r.Method == http.MethodPatch && r.ContentLength != 0:
					// tusd answers 204 and drops the body; bytes past the
					// length are refused, whatever state the upload is in.
					return http.StatusRequestEntityTooLarge, tooLong(us.set.Name)
				case rec.State == uploads.Placed:
					h.Set("Upload-File-Name", url.PathEscape(rec.Name))
					h.Set("Upload-File-Url", us.hooks.FileURL(s.baseURL(r), rec.Name))
				case !rec.Complete():
					h.Set("Upload-Expires", rec.Activity.Add(us.set.ExpireAfter).UTC().Format(http.TimeFormat))
				}
			case code < 300 && r.Method == http.MethodPatch && r.ContentLength > 0 && h.Get("Upload-Offset") == r.Header.Get("Upload-Offset"):
				if rec, err := us.store.Record(id); err == nil && rec.Complete() {
					return http.StatusRequestEntityTooLarge, tooLong(us.set.Name)
				}
				h.Set("Upload-Expires", expires.UTC().Format(http.TimeFormat))
			case code < 300:
				h.Set("Upload-Expires", expires.UTC().Format(http.TimeFormat))
			}
			return 0, ""
		}
		next.ServeHTTP(tw, r)
		s.responded(us, r, tw)
	})
}

// logCreated logs an upload the request created, once its record is durable (the
// store calls it: see uploads.WithCreatedHook), so that it comes before whatever the
// request goes on to do with it, and whether or not the rest of the request works.
func (s *instance) logCreated(us *uploadSet, r *http.Request, id string) {
	meta := handler.ParseMetadataHeader(r.Header.Get("Upload-Metadata"))
	us.hooks.Log.Info("UploadCreated", "set", us.set.Name, "request_id", reqid.From(r.Context()), "id", id,
		"name", hooks.Quote(hooks.ClientName(meta)), "size", r.Header.Get("Upload-Length"), "client", r.RemoteAddr)
}

// responded logs terminations and counts error responses, now that the status is
// known.
func (s *instance) responded(us *uploadSet, r *http.Request, tw *tusWriter) {
	log := us.hooks.Log.With("set", us.set.Name, "request_id", reqid.From(r.Context()))
	switch {
	case tw.status == http.StatusNoContent && r.Method == http.MethodDelete:
		log.Info("UploadTerminated", "id", lastSegment(r.URL.Path), "client", r.RemoteAddr)
	case tw.cut:
		// A client pausing, reloading or resuming elsewhere, or a shutdown: not
		// the server's error.
		log.Debug("RequestCut", "id", lastSegment(r.URL.Path), "status", tw.status, "client", r.RemoteAddr)
	case tw.status >= 400:
		s.metrics.errors.WithLabelValues(us.set.Name, strconv.Itoa(tw.status), tw.code).Inc()
	}
}

func tooLong(set string) string {
	return fmt.Sprintf("ERR_UPLOAD_SIZE_EXCEEDED: set %q: this upload already has all its bytes; a PATCH may not send bytes past Upload-Length\n", set)
}

// createdKey holds, in a POST's context, the ID of the upload it created (see the
// creation callback in server.go).
type createdKey struct{}

func noteCreated(ctx context.Context, id string) {
	if p, ok := ctx.Value(createdKey{}).(*string); ok {
		*p = id
	}
}

// uploadURL is the URL of an upload, as tusd's Location gives it.
func (s *instance) uploadURL(r *http.Request, us *uploadSet, id string) string {
	return s.baseURL(r) + "/uploads/" + us.set.Name + "/" + id
}

// tusWriter calls before just before the status line is written. before may replace
// the response: a status and a body (tusd's body, if any, is then dropped).
type tusWriter struct {
	http.ResponseWriter
	before   func(http.Header, int) (int, string)
	done     bool
	replaced bool
	status   int    // as sent
	code     string // the error code that starts an error body
	cut      bool   // the request was cut by a hand-off or shutdown
}

func (w *tusWriter) WriteHeader(code int) {
	if w.done || code < 200 {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.done = true
	w.status = code
	if status, body := w.before(w.Header(), code); status != 0 {
		w.replaced, w.status = true, status
		w.code, _, _ = strings.Cut(body, ":")
		h := w.Header()
		h.Del("Upload-Offset")
		h.Del("Upload-Expires")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.ResponseWriter.WriteHeader(status)
		io.WriteString(w.ResponseWriter, body)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *tusWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	if w.replaced {
		return len(b), nil
	}
	if w.status >= 400 && w.code == "" {
		w.code, _, _ = strings.Cut(string(b[:min(len(b), 64)]), ":")
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets tusd reach the connection's deadlines through http.ResponseController:
// without it the network timeout would silently not apply.
func (w *tusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func lastSegment(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			return path[i+1:]
		}
	}
	return path
}
