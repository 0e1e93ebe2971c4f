package server

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/hooks"
	"github.com/uploadsets/uploadsets/internal/uploads"
)

// What tus 1.0 asks of a server that tusd leaves to it, or does more loosely than the
// protocol says: checked before tusd sees the request, so that a refusal stores
// nothing.

// extensions are added to tusd's Tus-Extension: expiration, since unfinished uploads
// are removed and carry Upload-Expires (a server that does MUST list it), and
// checksum, verified by the store.
const extensions = ",expiration,checksum"

// overrideMethod applies X-HTTP-Method-Override (for clients that cannot send PATCH or
// DELETE) whatever the real method, before anything looks at the method. tusd applies
// it only to POSTs, and only inside its own middleware.
func overrideMethod(r *http.Request) {
	if m := r.Header.Get("X-HTTP-Method-Override"); m != "" {
		r.Method = strings.ToUpper(m)
	}
}

// advertise answers OPTIONS through next, adding what tusd leaves out: the set's limit
// (tusd sends Tus-Max-Size only when it enforces the limit itself, and here the
// creation hook does), the extensions above, and the checksum algorithms.
func advertise(max int64, next http.Handler, w http.ResponseWriter, r *http.Request) {
	next.ServeHTTP(&tusWriter{ResponseWriter: w, before: func(h http.Header, code int) (int, string) {
		if code < 300 {
			h.Set("Tus-Max-Size", strconv.FormatInt(max, 10))
			if e := h.Get("Tus-Extension"); e != "" {
				h.Set("Tus-Extension", e+extensions)
			}
			h.Set("Tus-Checksum-Algorithm", uploads.ChecksumAlgorithms)
		}
		return 0, ""
	}}, r)
}

// checkCreation refuses a POST tusd would take but the set cannot police, or whose
// request is malformed. It reports whether the request may go on.
func checkCreation(w http.ResponseWriter, r *http.Request, set string) bool {
	switch {
	case r.Header.Get("Upload-Concat") != "":
		writeTusError(w, handler.NewError("ERR_CONCATENATION_UNSUPPORTED", fmt.Sprintf(
			"set %q does not offer concatenation (Upload-Concat): upload the file as one upload; it resumes where it stopped", set), http.StatusBadRequest))
	default:
		if err := hooks.CheckMetadata(set, r.Header.Values("Upload-Metadata")); err != nil {
			writeTusError(w, err.(handler.Error))
			return false
		}
		return checkChecksum(w, r, set)
	}
	return false
}

// checkPatch refuses a PATCH whose body is not declared as tus requires (415), and
// hands its Upload-Checksum, if any, to the store.
func checkPatch(w http.ResponseWriter, r *http.Request, set string) bool {
	// tusd checks the IETF draft's content type, which depends on its version.
	if ct := r.Header.Get("Content-Type"); ct != "application/offset+octet-stream" && !ietfDraft(r) {
		writeTusError(w, handler.NewError("ERR_INVALID_CONTENT_TYPE", fmt.Sprintf(
			"set %q: a PATCH must have Content-Type: application/offset+octet-stream, not %q", set, ct), http.StatusUnsupportedMediaType))
		return false
	}
	return checkChecksum(w, r, set)
}

func checkChecksum(w http.ResponseWriter, r *http.Request, set string) bool {
	header := r.Header.Get("Upload-Checksum")
	if header == "" {
		return true
	}
	c, err := uploads.ParseChecksum(set, header)
	if err != nil {
		writeTusError(w, err.(handler.Error))
		return false
	}
	uploads.SetChecksum(r.Context(), c)
	return true
}

// ietfDraft reports whether r speaks the IETF resumable-upload draft (interop versions
// 3 to 6, which tusd implements) rather than tus 1.0.
func ietfDraft(r *http.Request) bool {
	switch r.Header.Get("Upload-Draft-Interop-Version") {
	case "3", "4", "5", "6":
		return true
	}
	return false
}
