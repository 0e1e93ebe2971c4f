// Package reqid carries a request's ID, the one a client sent in X-Request-ID or one
// made up for it, from the edge of the server to every log line about the request.
package reqid

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"net/http"
)

// Header is where the ID comes in and goes out.
const Header = "X-Request-ID"

type key struct{}

// From returns the ID of the request ctx belongs to, or "".
func From(ctx context.Context) string {
	if ctx == nil {
		return "" // a hook event built by hand, in tests or at start-up
	}
	id, _ := ctx.Value(key{}).(string)
	return id
}

// Middleware accepts a client's X-Request-ID when it is up to 128 characters of
// [A-Za-z0-9._-] (anything else could forge log fields or flood them), or makes one,
// and echoes it in the response.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, Tag(w, r))
	})
}

// Tag is Middleware's work on one request: it returns r with its ID, echoed in w.
// Servers that keep their handler chain shallow call it inline: every frame between
// net/http and a body read stays on the stack of a held upload.
func Tag(w http.ResponseWriter, r *http.Request) *http.Request {
	id := r.Header.Get(Header)
	if !valid(id) {
		id = newID()
	}
	w.Header().Set(Header, id)
	return r.WithContext(context.WithValue(r.Context(), key{}, id))
}

func valid(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

var encoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func newID() string {
	var b [10]byte
	rand.Read(b[:])
	return encoding.EncodeToString(b[:])
}
