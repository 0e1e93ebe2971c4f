package reqid

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMiddleware(t *testing.T) {
	var seen string
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = From(r.Context()) }))
	for name, tc := range map[string]struct {
		sent string
		kept bool
	}{
		"a client's ID":     {"req-42.a_B", true},
		"none":              {"", false},
		"too long":          {strings.Repeat("a", 129), false},
		"a space":           {"a b", false},
		"a newline":         {"a\nlevel=error", false},
		"a quote":           {`a"b`, false},
		"exactly 128 chars": {strings.Repeat("z", 128), true},
	} {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			if tc.sent != "" {
				req.Header.Set(Header, tc.sent)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			echoed := w.Header().Get(Header)
			if echoed != seen || seen == "" {
				t.Fatalf("logged %q, echoed %q", seen, echoed)
			}
			if (seen == tc.sent) != tc.kept {
				t.Errorf("sent %q, got %q", tc.sent, seen)
			}
		})
	}
}
