package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const jwtKey = "a-test-key-of-thirty-two-bytes!!"

// token mints an upload token the way an app would, with golang-jwt.
func token(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(jwtKey))
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + s
}

const authSets = `
set "private" {
  extensions = all
  auth {
    secret_file = "./jwt.key"
  }
}
set "public" {
  extensions = all
  auth {
    secret_file  = "./jwt.key"
    public_files = true
  }
}
set "open" {
  extensions = all
}
`

func startAuthServer(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "jwt.key"), []byte(jwtKey+"\n"), 0o600)
	return startServerIn(t, dir, baseConfig+authSets)
}

func TestUploadTokens(t *testing.T) {
	s := startAuthServer(t)
	endpoint := s.URL + "/uploads/private/"
	meta := encodeMeta(map[string]string{"filename": "report.bin"})
	post := func(auth string, size int) (*http.Response, string) {
		h := map[string]string{"Upload-Length": strconvI(size), "Upload-Metadata": meta}
		if auth != "" {
			h["Authorization"] = auth
		}
		return do(t, http.MethodPost, endpoint, nil, h)
	}
	alice := token(t, jwt.MapClaims{"aud": "private", "sub": "alice"})
	bob := token(t, jwt.MapClaims{"aud": []string{"other", "private"}, "sub": "bob"})

	for name, tc := range map[string]struct {
		auth string
		code int
		says string
	}{
		"no token":          {"", 401, `set "private"`},
		"garbage":           {"Bearer not.a.jwt", 401, "token"},
		"expired":           {token(t, jwt.MapClaims{"aud": "private", "exp": time.Now().Add(-time.Hour).Unix()}), 401, "expired"},
		"wrong key":         {"Bearer " + must(jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"aud": "private", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte("another key, thirty-two bytes!!!"))), 401, "token"},
		"for another set":   {token(t, jwt.MapClaims{"aud": "public"}), 403, `"public"`},
		"over its max_size": {token(t, jwt.MapClaims{"aud": "private", "max_size": 100}), 413, "100 B"},
	} {
		t.Run(name, func(t *testing.T) {
			res, body := post(tc.auth, 1000)
			if res.StatusCode != tc.code || !strings.Contains(body, tc.says) {
				t.Errorf("%d %q, want %d saying %q", res.StatusCode, body, tc.code, tc.says)
			}
			if tc.code == 401 && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), `Bearer realm="uploadsets"`) {
				t.Errorf("WWW-Authenticate %q", res.Header.Get("WWW-Authenticate"))
			}
		})
	}
	if entries, _ := os.ReadDir(filepath.Join(s.Dir, "data", "private")); len(entries) != 0 {
		t.Fatalf("refused requests stored %d entries", len(entries))
	}

	// Alice's upload is hers: Bob's token, valid for the set, may not touch it.
	data := randomBytes(t, 1000)
	res, _ := post(alice, len(data))
	url := res.Header.Get("Location")
	id := uploadID(url)
	patchAs := func(auth string, off int, b []byte) *http.Response {
		res, _ := do(t, http.MethodPatch, url, strings.NewReader(string(b)), map[string]string{
			"Authorization": auth, "Upload-Offset": strconvI(off), "Content-Type": "application/offset+octet-stream"})
		return res
	}
	for _, m := range []string{http.MethodHead, http.MethodGet, http.MethodDelete} {
		if res, _ := do(t, m, url, nil, map[string]string{"Authorization": bob}); res.StatusCode != 403 {
			t.Errorf("%s of Alice's upload with Bob's token: %d, want 403", m, res.StatusCode)
		}
	}
	if res := patchAs(bob, 0, data); res.StatusCode != 403 {
		t.Errorf("PATCH with Bob's token: %d", res.StatusCode)
	}
	if res, _ := do(t, http.MethodGet, s.URL+"/api/uploads/private/"+id, nil, map[string]string{"Authorization": bob}); res.StatusCode != 403 {
		t.Errorf("status with Bob's token: %d", res.StatusCode)
	}
	if res, _ := do(t, http.MethodGet, s.URL+"/api/uploads/private/"+id, nil, nil); res.StatusCode != 401 {
		t.Errorf("status without a token: %d", res.StatusCode)
	}
	if res := patchAs(alice, 0, data); res.StatusCode != 204 || res.Header.Get("Upload-File-Name") != "report.bin" {
		t.Fatalf("PATCH with Alice's token: %d", res.StatusCode)
	}
	fileURL := s.URL + "/files/private/report.bin"
	if res, _ := do(t, http.MethodGet, fileURL, nil, nil); res.StatusCode != 401 {
		t.Errorf("a file of a set without public_files, no token: %d", res.StatusCode)
	}
	if res, body := do(t, http.MethodGet, fileURL, nil, map[string]string{"Authorization": bob}); res.StatusCode != 200 || body != string(data) {
		t.Errorf("the file with a token of the set: %d", res.StatusCode)
	}

	// folder and name, as Flask-Uploads' save(folder=, name=).
	saved := token(t, jwt.MapClaims{"aud": "private", "sub": "alice", "folder": "reports/Q1 2026", "name": "summary."})
	res, _ = post(saved, len(data))
	res = func() *http.Response {
		res, _ := do(t, http.MethodPatch, res.Header.Get("Location"), strings.NewReader(string(data)), map[string]string{
			"Authorization": saved, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
		return res
	}()
	if got := res.Header.Get("Upload-File-Name"); res.StatusCode != 204 || got != "reports%2FQ1_2026%2Fsummary.bin" {
		t.Fatalf("token with folder and name: %d, Upload-File-Name %q", res.StatusCode, got)
	}
	if fileSHA(t, filepath.Join(s.Uploads("private"), "reports", "Q1_2026", "summary.bin")) != sha(data) {
		t.Error("bytes differ")
	}
	if res, _ := do(t, http.MethodGet, res.Header.Get("Upload-File-Url"), nil, map[string]string{"Authorization": bob}); res.StatusCode != 200 {
		t.Errorf("GET %s: %d", res.Request.URL, res.StatusCode)
	}

	// public_files: uploads need a token, files do not.
	pub := token(t, jwt.MapClaims{"aud": "public"})
	res, _ = do(t, http.MethodPost, s.URL+"/uploads/public/", strings.NewReader("hello"), map[string]string{
		"Authorization": pub, "Upload-Length": "5", "Upload-Metadata": encodeMeta(map[string]string{"filename": "hi.bin"}),
		"Content-Type": "application/offset+octet-stream"})
	if res.StatusCode != 201 {
		t.Fatalf("POST to the public set: %d", res.StatusCode)
	}
	if res, body := do(t, http.MethodGet, s.URL+"/files/public/hi.bin", nil, nil); res.StatusCode != 200 || body != "hello" {
		t.Errorf("a public file without a token: %d %q", res.StatusCode, body)
	}
	_, body := do(t, http.MethodGet, s.URL+"/api/sets", nil, nil)
	if !strings.Contains(body, `"name":"private"`) || strings.Count(body, `"auth":true`) != 2 || !strings.Contains(body, `"auth":false`) {
		t.Errorf("/api/sets does not mark the sets with auth: %s", body)
	}
}

// A real client passes its token as a header, and `uploadsets token` mints one.
func TestUploadTokenFromTheCommandAndTusJSClient(t *testing.T) {
	s := startAuthServer(t)
	out, errOut, code := runBinary(t, s.Dir, "token", "-config", s.Config, "-set", "private", "-sub", "carol", "-ttl", "5m")
	if code != 0 {
		t.Fatalf("uploadsets token: %d %s", code, errOut)
	}
	data := randomBytes(t, 300_000)
	r := tusJS(t, jsOptions{Endpoint: s.URL + "/uploads/private/", File: writeTemp(t, data), Name: "js.bin",
		Headers: map[string]string{"Authorization": "Bearer " + strings.TrimSpace(out)}})
	if !r.OK || r.FileName != "js.bin" {
		t.Fatalf("tus-js-client with the token: %+v", r)
	}
	r = tusJS(t, jsOptions{Endpoint: s.URL + "/uploads/private/", File: writeTemp(t, data), Name: "nope.bin", RetryDelays: []int{}})
	if r.OK || r.Status != 401 {
		t.Errorf("tus-js-client without a token: %+v", r)
	}
}

func strconvI(n int) string { return strconv.Itoa(n) }

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}
