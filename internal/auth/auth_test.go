package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tus/tusd/v2/pkg/handler"
)

var (
	testKey  = []byte("0123456789abcdef0123456789abcdef-test-key")
	otherKey = []byte("fedcba9876543210fedcba9876543210-other-key")
	// now is the verifier's clock, so that "expired 3m ago" is exact.
	now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
)

const (
	challenge        = `Bearer realm="uploadsets"`
	invalidChallenge = `Bearer realm="uploadsets", error="invalid_token"`
)

// claims are a valid token's claims for set "photos", with changes applied.
func claims(change func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"aud": "photos",
		"exp": now.Add(time.Hour).Unix(),
		"iat": now.Add(-time.Minute).Unix(),
	}
	if change != nil {
		change(c)
	}
	return c
}

// sign mints with golang-jwt directly, so that the tests do not trust Mint.
func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hs256(t *testing.T, c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, testKey, c) }

func bearer(tok string) string { return "Bearer " + tok }

func newTestVerifier() *Verifier {
	v := NewVerifier("photos", testKey)
	v.now = func() time.Time { return now }
	return v
}

func TestVerify(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	set := func(k string, v any) func(jwt.MapClaims) { return func(c jwt.MapClaims) { c[k] = v } }
	drop := func(k string) func(jwt.MapClaims) { return func(c jwt.MapClaims) { delete(c, k) } }

	tests := map[string]struct {
		header func(t *testing.T) string // Authorization; "" sends none
		want   Claims
		status int    // 0: accepted
		code   string // with status
		why    string // part of the message
	}{
		"good": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(nil))) },
		},
		"all claims": {
			header: func(t *testing.T) string {
				return bearer(hs256(t, claims(func(c jwt.MapClaims) {
					c["sub"], c["max_size"], c["folder"], c["name"] = "user-42", 10485760, "2026/june", "cover."
				})))
			},
			want: Claims{Subject: "user-42", MaxSize: 10485760, Folder: "2026/june", Name: "cover."},
		},
		"lowercase bearer": {
			header: func(t *testing.T) string { return "bearer " + hs256(t, claims(nil)) },
		},
		"wrong key": {
			header: func(t *testing.T) string { return bearer(sign(t, jwt.SigningMethodHS256, otherKey, claims(nil))) },
			status: 401, code: CodeInvalid, why: "signature does not match",
		},
		"alg none": {
			header: func(t *testing.T) string {
				return bearer(sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)))
			},
			status: 401, code: CodeInvalid, why: "signed with none; only HS256",
		},
		"RS256": {
			header: func(t *testing.T) string { return bearer(sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil))) },
			status: 401, code: CodeInvalid, why: "signed with RS256; only HS256",
		},
		"HS384 with the right key": {
			header: func(t *testing.T) string { return bearer(sign(t, jwt.SigningMethodHS384, testKey, claims(nil))) },
			status: 401, code: CodeInvalid, why: "signed with HS384; only HS256",
		},
		"expired": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("exp", now.Add(-3*time.Minute).Unix())))) },
			status: 401, code: CodeInvalid, why: "the upload token expired 3m ago",
		},
		"expired within the leeway": {
			header: func(t *testing.T) string {
				return bearer(hs256(t, claims(set("exp", now.Add(-50*time.Second).Unix()))))
			},
		},
		"nbf beyond the leeway": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("nbf", now.Add(5*time.Minute).Unix())))) },
			status: 401, code: CodeInvalid, why: "not valid for another 5m (nbf)",
		},
		"nbf within the leeway": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("nbf", now.Add(30*time.Second).Unix())))) },
		},
		"iat in the future": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("iat", now.Add(2*time.Hour).Unix())))) },
			status: 401, code: CodeInvalid, why: "issued 2h in the future",
		},
		"no exp": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(drop("exp")))) },
			status: 401, code: CodeInvalid, why: "no exp claim",
		},
		"aud array": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("aud", []string{"docs", "photos"})))) },
		},
		"no aud": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(drop("aud")))) },
			status: 401, code: CodeInvalid, why: "no aud claim",
		},
		"other set": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("aud", "docs")))) },
			status: 403, code: CodeWrongSet, why: `for set "docs", not for this one`,
		},
		"other sets": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("aud", []string{"docs", "files"})))) },
			status: 403, code: CodeWrongSet, why: `for sets "docs", "files", not for this one`,
		},
		"other set but expired": {
			header: func(t *testing.T) string {
				return bearer(hs256(t, claims(func(c jwt.MapClaims) { c["aud"], c["exp"] = "docs", now.Add(-time.Hour).Unix() })))
			},
			status: 401, code: CodeInvalid, why: "expired 1h ago",
		},
		"other set, wrong key": {
			header: func(t *testing.T) string {
				return bearer(sign(t, jwt.SigningMethodHS256, otherKey, claims(set("aud", "docs"))))
			},
			status: 401, code: CodeInvalid, why: "signature",
		},
		"max_size negative": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("max_size", -1)))) },
			status: 401, code: CodeInvalid, why: "max_size must be a positive whole number",
		},
		"max_size zero": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("max_size", 0)))) },
			status: 401, code: CodeInvalid, why: "max_size",
		},
		"max_size float": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("max_size", 1.5)))) },
			status: 401, code: CodeInvalid, why: "max_size",
		},
		"max_size string": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("max_size", "1048576")))) },
			status: 401, code: CodeInvalid, why: "max_size",
		},
		"max_size null": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("max_size", nil)))) },
		},
		"folder dot-dot": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("folder", "../x")))) },
			status: 401, code: CodeInvalid, why: `folder must not have an empty, "." or ".." segment`,
		},
		"folder absolute": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("folder", "/abs")))) },
			status: 401, code: CodeInvalid, why: "folder must be a relative path",
		},
		"folder empty segment": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("folder", "a//b")))) },
			status: 401, code: CodeInvalid, why: "empty",
		},
		"folder trailing slash": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("folder", "a/")))) },
			status: 401, code: CodeInvalid, why: "empty",
		},
		"folder backslash": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("folder", `a\b`)))) },
			status: 401, code: CodeInvalid, why: "backslash",
		},
		"folder NUL": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("folder", "a\x00b")))) },
			status: 401, code: CodeInvalid, why: "NUL",
		},
		"folder too deep": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("folder", "1/2/3/4/5/6/7/8/9")))) },
			status: 401, code: CodeInvalid, why: "more than 8 segments",
		},
		"folder of 8 segments": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("folder", "1/2/3/4/5/6/7/8")))) },
			want:   Claims{Folder: "1/2/3/4/5/6/7/8"},
		},
		"folder empty": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("folder", "")))) },
			status: 401, code: CodeInvalid, why: "folder is empty",
		},
		"folder not a string": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("folder", 7)))) },
			status: 401, code: CodeInvalid, why: `"folder" claim has the wrong type`,
		},
		"name good": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("name", "report.pdf")))) },
			want:   Claims{Name: "report.pdf"},
		},
		"name with a slash": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("name", "a/b")))) },
			status: 401, code: CodeInvalid, why: "name must be a single file name",
		},
		"name dot-dot": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("name", "..")))) },
			status: 401, code: CodeInvalid, why: "name must be a file name",
		},
		"sub not a string": {
			header: func(t *testing.T) string { return bearer(hs256(t, claims(set("sub", 42)))) },
			status: 401, code: CodeInvalid, why: `"sub" claim has the wrong type (number)`,
		},
		"missing header": {
			header: func(t *testing.T) string { return "" },
			status: 401, code: CodeMissing, why: "no upload token",
		},
		"Bearer with nothing": {
			header: func(t *testing.T) string { return "Bearer " },
			status: 401, code: CodeMissing, why: "no token after Bearer",
		},
		"Basic": {
			header: func(t *testing.T) string { return "Basic dXNlcjpwYXNz" },
			status: 401, code: CodeMissing, why: "not with another scheme",
		},
		"not a JWT": {
			header: func(t *testing.T) string { return "Bearer secret-looking-garbage" },
			status: 401, code: CodeInvalid, why: "not a well-formed JWT",
		},
		"too long": {
			header: func(t *testing.T) string { return bearer(strings.Repeat("a", maxTokenLen+1)) },
			status: 401, code: CodeInvalid, why: "longer than",
		},
	}
	v := newTestVerifier()
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPatch, "/uploads/photos/abc", nil)
			h := tt.header(t)
			if h != "" {
				r.Header.Set("Authorization", h)
			}
			got, err := v.Verify(r)
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got != tt.want {
					t.Errorf("claims = %+v, want %+v", got, tt.want)
				}
				return
			}
			var he handler.Error
			if !errors.As(err, &he) {
				t.Fatalf("error %v (%T), want a handler.Error", err, err)
			}
			if got != (Claims{}) {
				t.Errorf("claims %+v with an error", got)
			}
			if he.HTTPResponse.StatusCode != tt.status || he.ErrorCode != tt.code {
				t.Errorf("%d %s, want %d %s", he.HTTPResponse.StatusCode, he.ErrorCode, tt.status, tt.code)
			}
			wantChallenge := invalidChallenge
			switch tt.code {
			case CodeMissing:
				wantChallenge = challenge
			case CodeWrongSet:
				wantChallenge = `Bearer realm="uploadsets", error="insufficient_scope"`
			}
			if c := he.HTTPResponse.Header["WWW-Authenticate"]; c != wantChallenge {
				t.Errorf("WWW-Authenticate = %q, want %q", c, wantChallenge)
			}
			if !strings.HasPrefix(he.Message, `set "photos": `) || !strings.Contains(he.Message, tt.why) {
				t.Errorf("message %q does not name the set and %q", he.Message, tt.why)
			}
			if want := tt.code + ": " + he.Message + "\n"; he.HTTPResponse.Body != want {
				t.Errorf("body %q, want %q", he.HTTPResponse.Body, want)
			}
			if tok := strings.TrimSpace(h[min(len(h), len("Bearer ")):]); len(tok) > 8 && strings.Contains(he.HTTPResponse.Body, tok[:8]) {
				t.Errorf("the body echoes the token: %q", he.HTTPResponse.Body)
			}
		})
	}
}

func TestVerifyRefusesTwoAuthorizationHeaders(t *testing.T) {
	v := newTestVerifier()
	r := httptest.NewRequest(http.MethodHead, "/uploads/photos/abc", nil)
	r.Header.Add("Authorization", bearer(hs256(t, claims(nil))))
	r.Header.Add("Authorization", bearer(hs256(t, claims(nil))))
	var he handler.Error
	if _, err := v.Verify(r); !errors.As(err, &he) || he.HTTPResponse.StatusCode != 401 {
		t.Fatalf("err = %v, want a 401", err)
	}
}

// TestVerifyRealClock checks the wiring of the parser to time.Now, which the other
// tests replace.
func TestVerifyRealClock(t *testing.T) {
	v := NewVerifier("photos", testKey)
	good := jwt.MapClaims{"aud": "photos", "exp": time.Now().Add(time.Minute).Unix()}
	expired := jwt.MapClaims{"aud": "photos", "exp": time.Now().Add(-10 * time.Minute).Unix()}
	for tok, ok := range map[string]bool{hs256(t, good): true, hs256(t, expired): false} {
		r := httptest.NewRequest(http.MethodGet, "/files/photos/x.jpg", nil)
		r.Header.Set("Authorization", bearer(tok))
		if _, err := v.Verify(r); (err == nil) != ok {
			t.Errorf("Verify = %v, want ok = %v", err, ok)
		}
	}
}

func TestMintRoundTrip(t *testing.T) {
	want := Claims{Subject: "user-42", MaxSize: 10 << 20, Folder: "2026/06", Name: "cover.jpg"}
	tok, err := Mint(testKey, "photos", want, time.Hour, now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/uploads/photos/", nil)
	r.Header.Set("Authorization", bearer(tok))
	got, err := newTestVerifier().Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("claims = %+v, want %+v", got, want)
	}

	// And what Mint writes is what the contract says, read by golang-jwt itself.
	parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return testKey, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	mc := parsed.Claims.(jwt.MapClaims)
	if aud, _ := mc.GetAudience(); len(aud) != 1 || aud[0] != "photos" {
		t.Errorf("aud = %v", aud)
	}
	if exp, _ := mc.GetExpirationTime(); exp == nil || !exp.Equal(now.Add(59*time.Minute)) {
		t.Errorf("exp = %v, want %v", exp, now.Add(59*time.Minute))
	}
	if mc["max_size"] != float64(10<<20) || mc["sub"] != "user-42" || mc["folder"] != "2026/06" || mc["name"] != "cover.jpg" {
		t.Errorf("claims = %v", mc)
	}

	// The optional claims are left out when empty.
	tok, err = Mint(testKey, "photos", Claims{}, time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _, err = jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"sub", "max_size", "folder", "name", "nbf"} {
		if _, ok := parsed.Claims.(jwt.MapClaims)[k]; ok {
			t.Errorf("claim %q in a token minted without it", k)
		}
	}
}

func TestMintRefuses(t *testing.T) {
	tests := map[string]struct {
		key []byte
		set string
		c   Claims
		ttl time.Duration
	}{
		"no key":            {nil, "photos", Claims{}, time.Hour},
		"no set":            {testKey, "", Claims{}, time.Hour},
		"no lifetime":       {testKey, "photos", Claims{}, 0},
		"negative max_size": {testKey, "photos", Claims{MaxSize: -1}, time.Hour},
		"folder ..":         {testKey, "photos", Claims{Folder: "a/../b"}, time.Hour},
		"name with a slash": {testKey, "photos", Claims{Name: "a/b"}, time.Hour},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if tok, err := Mint(tt.key, tt.set, tt.c, tt.ttl, now); err == nil {
				t.Errorf("minted %s", tok)
			}
		})
	}
}

func TestRoughly(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                     "less than a second",
		50 * time.Second:                      "50s",
		3*time.Minute + 10*time.Second:        "3m",
		time.Hour:                             "1h",
		2*time.Hour + 5*time.Minute + 3:       "2h5m",
		49*time.Hour + 29*time.Second:         "49h",
		59*time.Second + 600*time.Millisecond: "1m",
	} {
		if got := roughly(d); got != want {
			t.Errorf("roughly(%s) = %q, want %q", d, got, want)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	key := []byte("0123456789abcdef0123456789abcdef")
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"aud": "photos", "sub": "user-42", "exp": time.Now().Add(time.Hour).Unix(),
		"iat": time.Now().Unix(), "max_size": 10 << 20, "folder": "2026/06", "name": "cover.jpg",
	}).SignedString(key)
	if err != nil {
		b.Fatal(err)
	}
	v := NewVerifier("photos", key)
	r := httptest.NewRequest(http.MethodPatch, "/uploads/photos/abc", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}
