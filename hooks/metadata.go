package hooks

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/tus/tusd/v2/pkg/handler"
)

// CheckMetadata refuses an Upload-Metadata header that breaks tus's grammar: pairs of
// a key and an optional base64 value, separated by one space, pairs by commas, keys
// unique and free of spaces and commas. tusd drops what it cannot parse, which would
// lose the file's name (or keep a wrong one) without telling the client. The error is
// a 400 that names the set and the pair.
func CheckMetadata(set string, headers []string) error {
	if len(headers) == 0 {
		return nil
	}
	refuse := func(i int, pair, why string) error {
		return handler.NewError("ERR_INVALID_METADATA", fmt.Sprintf(
			"set %q: Upload-Metadata pair %d (%q) %s; write key and base64 value pairs separated by commas, like \"filename YS5wbmc=\"", set, i+1, pair, why),
			http.StatusBadRequest)
	}
	if len(headers) > 1 {
		return refuse(0, strings.Join(headers, ", "), "is sent in more than one Upload-Metadata header")
	}
	seen := map[string]bool{}
	for i, pair := range strings.Split(headers[0], ",") {
		key, value, hasValue := strings.Cut(strings.TrimSpace(pair), " ")
		switch {
		case key == "":
			return refuse(i, pair, "has no key (an empty pair, or a comma too many)")
		case strings.ContainsAny(value, " "):
			return refuse(i, pair, "has more than a key and a value")
		case hasValue && value == "":
			return refuse(i, pair, "has a space but no value")
		case !printable(key):
			return refuse(i, pair, "has a key with characters other than printable ASCII")
		case seen[key]:
			return refuse(i, pair, fmt.Sprintf("repeats the key %q", key))
		}
		if _, err := base64.StdEncoding.DecodeString(value); err != nil {
			return refuse(i, pair, "has a value that is not base64")
		}
		seen[key] = true
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
