package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/internal/diskstore"
	"github.com/uploadsets/uploadsets/web"
)

// idPattern admits only IDs the store hands out (128 random bits, hex), so a malformed
// or hostile ID never reaches the store.
const idPattern = "{id:[0-9a-f]{32}}"

func (s *Server) routes() *mux.Router {
	// Match the path as sent: no cleaning redirects and no decoding of %2F, so that
	// a path with dot-segments or encoded slashes matches no route and is a plain 404.
	r := mux.NewRouter().SkipClean(true).UseEncodedPath()
	for _, us := range s.order {
		prefix := "/uploads/" + us.set.Name + "/"
		tus := us.tus
		// tusd's Middleware runs first: it answers OPTIONS and CORS, checks
		// Tus-Resumable and applies X-HTTP-Method-Override, so the method
		// switch below sees the method the client meant.
		collection := advertise(us.set.MaxSize, tus.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				methodNotAllowed(w, "POST, OPTIONS")
				return
			}
			if r.Header.Get("Upload-Defer-Length") != "" {
				// Not advertised; tusd would answer 501, which clients retry.
				writeTusError(w, deferredLength(us.set.Name))
				return
			}
			tus.PostFile(w, r)
		})))
		member := tus.Middleware(http.StripPrefix(prefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.URL.Path
			switch r.Method {
			case http.MethodHead:
				if s.placeEmpty(w, r, us, id) {
					tus.HeadFile(w, r)
				}
			case http.MethodPatch:
				// Only an empty PATCH at offset 0 can be the retry of an empty upload.
				if r.Header.Get("Upload-Offset") != "0" || r.ContentLength != 0 || s.placeEmpty(w, r, us, id) {
					tus.PatchFile(w, r)
				}
			case http.MethodDelete:
				tus.DelFile(w, r)
			case http.MethodGet:
				s.getUpload(w, r, us, id)
			default:
				methodNotAllowed(w, "HEAD, PATCH, DELETE, GET, OPTIONS")
			}
		})))
		collection = methodOverride(s.tusHeaders(us, collection))
		member = methodOverride(s.tusHeaders(us, member))
		r.Handle(prefix, collection)
		r.Handle(strings.TrimSuffix(prefix, "/"), collection)
		r.Handle(prefix+idPattern, advertise(us.set.MaxSize, member))
		if us.set.URL == "" {
			r.Handle("/files/"+us.set.Name+"/{name}", s.serveFile(us)).Methods(http.MethodGet, http.MethodHead)
		}
	}
	r.HandleFunc("/api/sets", s.apiSets).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/api/uploads/{set}/"+idPattern, s.apiUpload).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	}).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	page := web.Handler()
	r.PathPrefix("/assets/").Handler(page).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/", page).Methods(http.MethodGet, http.MethodHead)
	r.NotFoundHandler = http.HandlerFunc(notFound)
	return r
}

// advertise adds the set's limit to OPTIONS: tusd only sends Tus-Max-Size when it
// enforces the limit itself, and here the creation hook does.
func advertise(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			w.Header().Set("Tus-Max-Size", strconv.FormatInt(max, 10))
		}
		next.ServeHTTP(w, r)
	})
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

func notFound(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not found", http.StatusNotFound)
}

// methodOverride applies X-HTTP-Method-Override (for clients that cannot send PATCH or
// DELETE) before anything looks at the method. tusd applies it too, but only inside its
// own middleware, after the checks and headers wrapped around it.
func methodOverride(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := r.Header.Get("X-HTTP-Method-Override"); m != "" {
			r.Method = m
		}
		next.ServeHTTP(w, r)
	})
}

// placeEmpty places a zero-byte upload whose placement failed before HEAD or PATCH
// answers it. Such an upload has no last byte to withhold (see
// diskstore.Record.ReportedOffset): its offset equals its length, so the client would
// take it as done and never retry. The client's next HEAD or empty PATCH retries the
// placement instead, and is told of a failure like the completing request was. It
// reports whether the request should go on to tusd.
func (s *Server) placeEmpty(w http.ResponseWriter, r *http.Request, us *uploadSet, id string) bool {
	if rec, err := us.store.Record(id); err != nil || !rec.Unplaced() || rec.Size != 0 {
		return true
	}
	lock, err := us.locker.NewLock(id)
	if err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), lockTimeout)
		err = lock.Lock(ctx, func() {})
		cancel()
	}
	if err != nil {
		writeTusError(w, handler.ErrLockTimeout)
		return false
	}
	defer lock.Unlock()
	if _, err := us.hooks.Place(context.WithoutCancel(r.Context()), id); err != nil {
		var he handler.Error
		if !errors.As(err, &he) {
			he = diskstore.ErrInternal
		}
		writeTusError(w, he)
		return false
	}
	return true
}

func deferredLength(set string) handler.Error {
	return handler.NewError("ERR_UPLOAD_LENGTH_REQUIRED", fmt.Sprintf(
		"set %q needs Upload-Length when the upload is created, so that its size rule is checked before any byte; deferred length is not offered", set),
		http.StatusBadRequest)
}

func writeTusError(w http.ResponseWriter, e handler.Error) {
	for k, v := range e.HTTPResponse.Header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(e.HTTPResponse.StatusCode)
	w.Write([]byte(e.HTTPResponse.Body))
}
