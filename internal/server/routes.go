package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/internal/uploads"
	"github.com/uploadsets/uploadsets/web"
)

// idPattern admits only IDs the store hands out (128 random bits, hex), so a malformed
// or hostile ID never reaches the store.
const idPattern = "{id:[0-9a-f]{32}}"

func (s *instance) routes() *mux.Router {
	// Match the path as sent: no cleaning redirects and no decoding of %2F, so that
	// a path with dot-segments or encoded slashes matches no route and is a plain 404.
	r := mux.NewRouter().SkipClean(true).UseEncodedPath()
	sets := slices.Clone(s.order)
	for _, us := range s.retired {
		sets = append(sets, us)
	}
	for _, us := range sets {
		retired := s.sets[us.set.Name] == nil
		prefix := "/uploads/" + us.set.Name + "/"
		tus := us.tus
		// tusd's Middleware answers OPTIONS and CORS and checks Tus-Resumable; the
		// checks here run inside it, so their refusals carry its CORS headers.
		collection := tus.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				methodNotAllowed(w, "POST, OPTIONS")
				return
			}
			if retired {
				writeTusError(w, handler.NewError("ERR_SET_REMOVED", fmt.Sprintf(
					"set %q is no longer in the server's config: it takes no new uploads (uploads in progress can still finish)", us.set.Name), http.StatusNotFound))
				return
			}
			if s.authorize(w, r, us, "") && checkCreation(w, r, us.set.Name) {
				tus.PostFile(w, r)
			}
		}))
		member := tus.Middleware(http.StripPrefix(prefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.URL.Path
			if !s.authorize(w, r, us, id) {
				return
			}
			switch r.Method {
			case http.MethodHead:
				if s.placeEmpty(w, r, us, id) {
					tus.HeadFile(w, r)
				}
			case http.MethodPatch:
				if !checkPatch(w, r, us.set.Name) {
					return
				}
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
		collection, member = s.tusHeaders(us, collection), s.tusHeaders(us, member)
		r.Handle(prefix, collection)
		r.Handle(strings.TrimSuffix(prefix, "/"), collection)
		r.Handle(prefix+idPattern, member)
		if us.set.URL == "" && !retired {
			// {name} may hold the folders an upload token put the file in.
			r.Handle("/files/"+us.set.Name+"/{name:.+}", s.serveFile(us)).Methods(http.MethodGet, http.MethodHead)
		}
	}
	r.HandleFunc("/api/sets", s.apiSets).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/api/uploads/{set}/"+idPattern, s.apiUpload).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/api/uploads/{set}/"+idPattern, apiPreflight).Methods(http.MethodOptions)
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

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

func notFound(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not found", http.StatusNotFound)
}

// placeEmpty places a zero-byte upload whose placement failed before HEAD or PATCH
// answers it. Such an upload has no last byte to withhold (see
// uploads.Record.ReportedOffset): its offset equals its length, so the client would
// take it as done and never retry. The client's next HEAD or empty PATCH retries the
// placement instead, and is told of a failure like the completing request was. It
// reports whether the request should go on to tusd.
func (s *instance) placeEmpty(w http.ResponseWriter, r *http.Request, us *uploadSet, id string) bool {
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
			he = uploads.ErrInternal
		}
		writeTusError(w, he)
		return false
	}
	return true
}

func writeTusError(w http.ResponseWriter, e handler.Error) {
	for k, v := range e.HTTPResponse.Header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(e.HTTPResponse.StatusCode)
	w.Write([]byte(e.HTTPResponse.Body))
}
