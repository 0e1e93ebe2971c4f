package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/internal/auth"
)

// authorize checks the upload token of a request to a set with an auth block, and
// that the upload it names, if any, was created under the same sub. The claims go on
// to the creation hook. It reports whether the request may go on; a refused one has
// been answered, and nothing was stored.
func (s *instance) authorize(w http.ResponseWriter, r *http.Request, us *uploadSet, id string) bool {
	if us.verifier == nil {
		return true
	}
	claims, err := s.check(r, us, id)
	if err != nil {
		var he handler.Error
		if !errors.As(err, &he) {
			he = handler.NewError("ERR_INTERNAL_SERVER_ERROR", "internal error", http.StatusInternalServerError)
		}
		writeTusError(w, he)
		return false
	}
	auth.Grant(r.Context(), claims)
	return true
}

// check verifies r's token for us and, with an id, the owner binding.
func (s *instance) check(r *http.Request, us *uploadSet, id string) (auth.Claims, error) {
	claims, err := us.verifier.Verify(r)
	if err != nil {
		return auth.Claims{}, err
	}
	if id != "" {
		// An unknown upload is tusd's 404 to answer.
		if rec, err := us.store.Record(id); err == nil && rec.Owner != "" && rec.Owner != claims.Subject {
			return auth.Claims{}, handler.NewError("ERR_NOT_OWNER", fmt.Sprintf(
				"set %q: this upload was created by another user; its token's sub is not this one's", us.set.Name), http.StatusForbidden)
		}
	}
	return claims, nil
}

// needsToken reports whether GET of a set's placed files needs a token.
func needsToken(us *uploadSet) bool { return us.verifier != nil && !us.set.Auth.PublicFiles }
