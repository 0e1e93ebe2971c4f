package sets

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodKey = "0123456789abcdef0123456789abcdef"

// authSet is a set "a" with an auth block holding attrs. HCL has no one-line nested
// blocks.
func authSet(attrs string) string { return "set \"a\" {\n  auth { " + attrs + " }\n}" }

func TestAuthDecode(t *testing.T) {
	tests := map[string]struct {
		key     string // content of secrets/jwt.key
		src     string
		want    *Auth
		warning string // the one diagnostic expected, or ""
	}{
		"no auth block": {
			src: `set "a" {}`,
		},
		"a key": {
			key:  goodKey,
			src:  authSet(`secret_file = "./secrets/jwt.key"`),
			want: &Auth{Key: []byte(goodKey)},
		},
		"one trailing newline is dropped": {
			key:  goodKey + "\n",
			src:  authSet(`secret_file = "secrets/jwt.key"`),
			want: &Auth{Key: []byte(goodKey)},
		},
		"and a Windows one": {
			key:  goodKey + "\r\n",
			src:  authSet(`secret_file = "secrets/jwt.key"`),
			want: &Auth{Key: []byte(goodKey)},
		},
		"only one newline is dropped": {
			key:  goodKey + "\n\n",
			src:  authSet(`secret_file = "secrets/jwt.key"`),
			want: &Auth{Key: []byte(goodKey + "\n")},
		},
		"public files": {
			key: goodKey,
			src: `set "a" {
  auth {
    secret_file  = "./secrets/jwt.key"
    public_files = true
  }
}`,
			want: &Auth{Key: []byte(goodKey), PublicFiles: true},
		},
		"a short key is a warning": {
			key:     "short\n",
			src:     authSet(`secret_file = "./secrets/jwt.key"`),
			want:    &Auth{Key: []byte("short")},
			warning: "$DIR/config.hcl:2,24: warning: secret_file $DIR/secrets/jwt.key holds a key of 5 bytes: HS256 wants at least 32 (256 bits) to keep the tokens of set \"a\" unguessable, like from `openssl rand -hex 32`\n",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.key != "" {
				os.Mkdir(filepath.Join(dir, "secrets"), 0o700)
				if err := os.WriteFile(filepath.Join(dir, "secrets", "jwt.key"), []byte(tt.key), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg, diags := Parse([]byte(tt.src), filepath.Join(dir, "config.hcl"))
			var out bytes.Buffer
			WriteDiagnostics(&out, diags)
			got := strings.ReplaceAll(out.String(), dir, "$DIR")
			if got != tt.warning {
				t.Fatalf("diagnostics:\n%s\nwant\n%s", got, tt.warning)
			}
			a := cfg.Sets[0].Auth
			switch {
			case tt.want == nil && a != nil:
				t.Errorf("Auth = %+v, want nil", a)
			case tt.want != nil && (a == nil || !bytes.Equal(a.Key, tt.want.Key) || a.PublicFiles != tt.want.PublicFiles):
				t.Errorf("Auth = %+v, want %+v", a, tt.want)
			}
		})
	}
}

func TestAuthSummary(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "jwt.key"), []byte(goodKey), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := Parse([]byte(`
set "private" {
  auth { secret_file = "jwt.key" }
}
set "public" {
  auth {
    secret_file  = "jwt.key"
    public_files = true
  }
}
set "open" {}
`), filepath.Join(dir, "config.hcl"))
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	var out strings.Builder
	cfg.WriteSummary(&out)
	sets := strings.Split(out.String(), "\nset ")[1:]
	want := map[string]string{
		`"private"`: "  auth:         HS256 token required (files need a token)\n",
		`"public"`:  "  auth:         HS256 token required (files public)\n",
	}
	for _, s := range sets {
		name, _, _ := strings.Cut(s, "\n")
		if line, ok := want[name]; ok != strings.Contains(s, "auth:") || ok && !strings.Contains(s, line) {
			t.Errorf("set %s: want auth line %q in:\n%s", name, line, s)
		}
	}
}
