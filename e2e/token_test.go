package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const tokenKey = "e2e-token-key-0123456789abcdef0123456789"

// tokenConfig has a set with an auth block and one without; its key file is written
// next to it, as an operator would keep it.
const tokenConfig = baseConfig + `
set "photos" {
  extensions = images
  max_size   = "16MiB"
  auth {
    secret_file = "./secrets/jwt.key"
  }
}
set "open" {
  extensions = text
}
`

func tokenDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets", "jwt.key"), []byte(tokenKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.hcl"), []byte(tokenConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestTokenPrintsAVerifiableToken(t *testing.T) {
	dir := tokenDir(t)
	before := time.Now().Truncate(time.Second)
	stdout, stderr, code := runBinary(t, dir, "token", "-set", "photos", "-sub", "user-42", "-ttl", "15m",
		"-max-size", "10MiB", "-folder", "2026/june", "-name", "cover.jpg", "-config", "config.hcl")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr: %q", stderr)
	}
	if !strings.HasSuffix(stdout, "\n") || strings.Count(stdout, "\n") != 1 {
		t.Errorf("stdout is not one line: %q", stdout)
	}
	// Verified as an app's middleware would: the key without its newline, HS256 only.
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(strings.TrimSpace(stdout), claims,
		func(*jwt.Token) (any, error) { return []byte(tokenKey), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithAudience("photos"))
	if err != nil {
		t.Fatalf("the printed token does not verify: %v", err)
	}
	exp, _ := claims.GetExpirationTime()
	if exp == nil || exp.Before(before.Add(15*time.Minute)) || exp.After(time.Now().Add(15*time.Minute)) {
		t.Errorf("exp = %v, want 15m from now", exp)
	}
	for k, want := range map[string]any{"sub": "user-42", "max_size": float64(10 << 20), "folder": "2026/june", "name": "cover.jpg"} {
		if claims[k] != want {
			t.Errorf("claim %s = %v (%T), want %v", k, claims[k], claims[k], want)
		}
	}

	// The default config path and lifetime; no optional claims unless asked for.
	stdout, stderr, code = runBinary(t, dir, "token", "-set", "photos")
	if code != 0 {
		t.Fatalf("without -config: exit %d, stderr:\n%s", code, stderr)
	}
	claims = jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(strings.TrimSpace(stdout), claims,
		func(*jwt.Token) (any, error) { return []byte(tokenKey), nil }, jwt.WithValidMethods([]string{"HS256"})); err != nil {
		t.Fatal(err)
	}
	if exp, _ := claims.GetExpirationTime(); exp == nil || exp.Sub(time.Now()) < 59*time.Minute || exp.Sub(time.Now()) > time.Hour {
		t.Errorf("default exp = %v, want an hour from now", exp)
	}
	for _, k := range []string{"sub", "max_size", "folder", "name"} {
		if _, ok := claims[k]; ok {
			t.Errorf("claim %s in a token that did not ask for it", k)
		}
	}
}

func TestTokenRefuses(t *testing.T) {
	dir := tokenDir(t)
	tests := map[string]struct {
		args []string
		code int
		want string // on the one line of stderr
	}{
		"a set without auth": {[]string{"-set", "open"}, 1, `set "open" in config.hcl has no auth block`},
		"an unknown set":     {[]string{"-set", "nope"}, 1, `config.hcl has no set "nope" (its sets: photos, open)`},
		"no -set":            {nil, 2, "-set is required"},
		"a bad folder":       {[]string{"-set", "photos", "-folder", "../up"}, 2, `folder "../up"`},
		"a bad size":         {[]string{"-set", "photos", "-max-size", "-1MB"}, 2, "must not be negative"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			stdout, stderr, code := runBinary(t, dir, append([]string{"token"}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			if stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr is not one line with %q:\n%s", tt.want, stderr)
			}
		})
	}
}

func TestTokenHelp(t *testing.T) {
	stdout, stderr, code := runBinary(t, t.TempDir(), "token", "-h")
	if code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if stdout != "" || !strings.Contains(stderr, "usage: uploadsets token -set NAME") {
		t.Errorf("stdout %q, stderr:\n%s", stdout, stderr)
	}
}
