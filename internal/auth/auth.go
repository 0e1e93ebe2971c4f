// Package auth checks and mints the upload tokens of sets with an auth block: JWTs
// signed with HS256 by the app, whose claims say which set they open and, optionally,
// who uploads, how much, and where the file goes.
//
// It speaks HTTP only as far as reading the Authorization header and answering with a
// handler.Error that carries its whole response (status, WWW-Authenticate, body), so the
// routes and hooks can hand that error to tusd or write it as they write tusd's own.
package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tus/tusd/v2/pkg/handler"
)

// Claims is what a valid token says beyond opening its set.
type Claims struct {
	Subject string // sub: the uploader's identity; "" when absent
	MaxSize int64  // max_size in bytes, lowering the set's limit; 0 = none
	Folder  string // folder: a checked relative path ("a/b"); "" when absent
	Name    string // name: the file name to use instead of the client's; "" when absent
}

// Error codes of the refusals, for callers that count or map them.
const (
	CodeMissing  = "ERR_TOKEN_MISSING"
	CodeInvalid  = "ERR_TOKEN_INVALID"
	CodeWrongSet = "ERR_TOKEN_WRONG_SET"
)

// Leeway is how far the clocks of the app and this server may disagree for exp, nbf
// and iat.
const Leeway = 60 * time.Second

// maxTokenLen bounds the work an anonymous request can cause: real tokens are a few
// hundred bytes, and the header limit of net/http (1 MB) is far above that.
const maxTokenLen = 8 << 10

// maxFolderSegments keeps folder trees shallow enough to list and to serve.
const maxFolderSegments = 8

// tokenClaims is the JSON of a token. max_size is kept raw because encoding/json would
// accept "123" (a string) into a json.Number and would silently truncate 1.5 into an
// int; folder and name are pointers so that an empty value is told from an absent one.
type tokenClaims struct {
	jwt.RegisteredClaims
	MaxSize json.RawMessage `json:"max_size,omitempty"`
	Folder  *string         `json:"folder,omitempty"`
	Name    *string         `json:"name,omitempty"`
}

// Verifier checks the tokens of one set. It is safe for concurrent use.
type Verifier struct {
	set    string
	key    any // []byte, converted once: the key function runs on every request
	parser *jwt.Parser
	now    func() time.Time // for messages; the parser is given the same clock
}

// NewVerifier returns a Verifier for the set named set, whose tokens are signed with
// key (Set.Auth.Key).
func NewVerifier(set string, key []byte) *Verifier {
	v := &Verifier{set: set, key: append([]byte(nil), key...), now: time.Now}
	v.parser = jwt.NewParser(
		// Only HS256: "none" would need no key, and an asymmetric alg would treat the
		// shared secret as a public key (the classic alg-confusion attack).
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithAudience(set),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	return v
}

func (v *Verifier) keyFunc(*jwt.Token) (any, error) { return v.key, nil }

// Verify checks the bearer token of r for the verifier's set. Every error is a
// handler.Error: 401 ERR_TOKEN_MISSING or ERR_TOKEN_INVALID with a WWW-Authenticate
// challenge, or 403 ERR_TOKEN_WRONG_SET for a valid token of other sets. Messages name
// the set and the reason, never the token.
func (v *Verifier) Verify(r *http.Request) (Claims, error) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return Claims{}, v.missing("the request has no upload token: send it as Authorization: Bearer <token>")
	}
	if len(values) > 1 {
		// Proxies and servers may pick different ones; none is trusted.
		return Claims{}, v.invalid("the request has more than one Authorization header")
	}
	scheme, token, _ := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		// RFC 6750 §3.1: a request with another scheme lacks a bearer token; it is
		// not an invalid one.
		return Claims{}, v.missing("the upload token must be sent as Authorization: Bearer <token>, not with another scheme")
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return Claims{}, v.missing("the Authorization header has no token after Bearer")
	}
	if len(token) > maxTokenLen {
		return Claims{}, v.invalid(fmt.Sprintf("the upload token is longer than %d bytes", maxTokenLen))
	}
	var tc tokenClaims
	tok, err := v.parser.ParseWithClaims(token, &tc, v.keyFunc)
	if err != nil {
		return Claims{}, v.refusal(tok, &tc, err)
	}
	c, why := tc.claims()
	if why != "" {
		return Claims{}, v.invalid("the upload token's " + why)
	}
	return c, nil
}

// refusal explains why the parser refused a token. Problems of the token itself come
// before a wrong audience: only a token that is valid in every other way is answered
// 403, so a forged or stale one never learns it got that far.
func (v *Verifier) refusal(tok *jwt.Token, tc *tokenClaims, err error) error {
	now := v.now()
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			// Field is a Go path ("RegisteredClaims.sub"); its last part is the claim.
			claim := te.Field[strings.LastIndexByte(te.Field, '.')+1:]
			return v.invalid(fmt.Sprintf("the upload token's %q claim has the wrong type (%s)", claim, te.Value))
		}
		return v.invalid("the upload token is not a well-formed JWT")
	case errors.Is(err, jwt.ErrTokenUnverifiable), errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if tok != nil && tok.Method != nil && tok.Method.Alg() != jwt.SigningMethodHS256.Alg() {
			return v.invalid(fmt.Sprintf("the upload token is signed with %s; only HS256 is accepted", tok.Method.Alg()))
		}
		if tok == nil || tok.Method == nil {
			return v.invalid("the upload token names no signing algorithm this server knows; only HS256 is accepted")
		}
		return v.invalid("the upload token's signature does not match this set's key")
	case tc.ExpiresAt == nil:
		return v.invalid("the upload token has no exp claim: tokens must say when they expire")
	case errors.Is(err, jwt.ErrTokenExpired):
		return v.invalid("the upload token expired " + roughly(now.Sub(tc.ExpiresAt.Time)) + " ago")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return v.invalid("the upload token is not valid for another " + roughly(tc.NotBefore.Sub(now)) + " (nbf)")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return v.invalid("the upload token was issued " + roughly(tc.IssuedAt.Sub(now)) + " in the future (iat): check the clocks of the app and of this server")
	case len(tc.Audience) == 0 || len(tc.Audience) == 1 && tc.Audience[0] == "":
		return v.invalid("the upload token has no aud claim: it must name the set it is for")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return v.wrongSet(tc.Audience)
	}
	return v.invalid("the upload token is not valid")
}

// claims checks the claims of uploadsets' own and returns them, or why they are wrong.
func (tc *tokenClaims) claims() (Claims, string) {
	c := Claims{Subject: tc.Subject}
	if raw := tc.MaxSize; len(raw) > 0 && string(raw) != "null" {
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || n <= 0 {
			// Exponents and fractions are refused rather than rounded: a limit that
			// is not what the app wrote is worse than a clear refusal.
			return Claims{}, "max_size must be a positive whole number of bytes, like 10485760"
		}
		c.MaxSize = n
	}
	if tc.Folder != nil {
		if why := checkFolder(*tc.Folder); why != "" {
			return Claims{}, "folder " + why
		}
		c.Folder = *tc.Folder
	}
	if tc.Name != nil {
		if why := checkName(*tc.Name); why != "" {
			return Claims{}, "name " + why
		}
		c.Name = *tc.Name
	}
	return c, ""
}

// checkFolder returns why folder cannot be a token's folder claim, or "". The hooks
// still make each segment safe like a file name; this refuses what could never be meant
// as a folder inside the set's destination.
func checkFolder(folder string) string {
	switch {
	case folder == "":
		return "is empty"
	case folder[0] == '/':
		return "must be a relative path, without a leading /"
	case strings.ContainsAny(folder, "\\\x00"):
		return "must not contain a backslash or a NUL byte"
	}
	n := 0
	for seg := range strings.SplitSeq(folder, "/") {
		if n++; n > maxFolderSegments {
			return fmt.Sprintf("has more than %d segments", maxFolderSegments)
		}
		if seg == "" || seg == "." || seg == ".." {
			return `must not have an empty, "." or ".." segment`
		}
	}
	return ""
}

// checkName returns why name cannot be a token's name claim, or "".
func checkName(name string) string {
	switch {
	case name == "":
		return "is empty"
	case name == "." || name == "..":
		return "must be a file name, not . or .."
	case strings.ContainsAny(name, "/\\\x00"):
		return "must be a single file name, without / or \\ or a NUL byte"
	}
	return ""
}

// roughly renders a clock difference the way a person reads it: "45s", "3m", "2h5m".
func roughly(d time.Duration) string {
	switch {
	case d < time.Second:
		return "less than a second"
	case d < time.Minute:
		d = d.Round(time.Second)
	default:
		d = d.Round(time.Minute)
	}
	s := d.String() // "3m0s", "2h0m0s": the zero tails say nothing
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (v *Verifier) missing(why string) error {
	return v.refuse(CodeMissing, why, http.StatusUnauthorized, `Bearer realm="uploadsets"`)
}

func (v *Verifier) invalid(why string) error {
	return v.refuse(CodeInvalid, why, http.StatusUnauthorized, `Bearer realm="uploadsets", error="invalid_token"`)
}

// maxAudShown keeps the message short when an app lists many sets in aud.
const maxAudShown = 3

func (v *Verifier) wrongSet(aud jwt.ClaimStrings) error {
	shown := make([]string, 0, maxAudShown)
	for _, a := range aud[:min(len(aud), maxAudShown)] {
		shown = append(shown, strconv.Quote(a))
	}
	list := strings.Join(shown, ", ")
	if len(aud) > maxAudShown {
		list += fmt.Sprintf(" and %d more", len(aud)-maxAudShown)
	}
	noun := "set"
	if len(aud) > 1 {
		noun = "sets"
	}
	return v.refuse(CodeWrongSet, fmt.Sprintf("the upload token is for %s %s, not for this one", noun, list),
		http.StatusForbidden, `Bearer realm="uploadsets", error="insufficient_scope"`)
}

func (v *Verifier) refuse(code, why string, status int, challenge string) error {
	e := handler.NewError(code, fmt.Sprintf("set %q: %s", v.set, why), status)
	e.HTTPResponse.Header["WWW-Authenticate"] = challenge
	return e
}

// Mint signs a token for set with key, valid from now for ttl, carrying c. It refuses
// claims that Verify would refuse, so what it returns always verifies until it expires.
func Mint(key []byte, set string, c Claims, ttl time.Duration, now time.Time) (string, error) {
	switch {
	case len(key) == 0:
		return "", errors.New("no key to sign with")
	case set == "":
		return "", errors.New("no set to mint a token for")
	case ttl <= 0:
		return "", fmt.Errorf("the token's lifetime must be more than 0, not %s", ttl)
	case c.MaxSize < 0:
		return "", fmt.Errorf("max_size must not be negative, not %d", c.MaxSize)
	}
	tc := tokenClaims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:   c.Subject,
		Audience:  jwt.ClaimStrings{set},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	if c.MaxSize > 0 {
		tc.MaxSize = json.RawMessage(strconv.FormatInt(c.MaxSize, 10))
	}
	if c.Folder != "" {
		if why := checkFolder(c.Folder); why != "" {
			return "", fmt.Errorf("folder %q %s", c.Folder, why)
		}
		tc.Folder = &c.Folder
	}
	if c.Name != "" {
		if why := checkName(c.Name); why != "" {
			return "", fmt.Errorf("name %q %s", c.Name, why)
		}
		tc.Name = &c.Name
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, tc).SignedString(key)
}
