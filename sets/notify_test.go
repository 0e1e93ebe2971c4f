package sets

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// specKey is the key of the Standard Webhooks test vector, 24 bytes: the shortest allowed.
const specKey = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func writeSecret(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets", "notify.key"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestParseNotify(t *testing.T) {
	dir := t.TempDir()
	writeSecret(t, dir, specKey+"\n")
	src := `
set "photos" {}
set "docs" {}

notify "app" {
  url         = "http://127.0.0.1:9000/hooks/uploads?src=uploadsets"
  secret_file = "./secrets/notify.key"
  sets        = ["photos", "photos"]
  events      = ["upload.placed", "upload.rejected"]
  timeout     = "3s"
  max_age     = "1h"
}

notify "audit" {
  url         = "https://audit.example.com/"
  secret_file = "` + filepath.Join(dir, "secrets", "notify.key") + `"
  sets        = null
}
`
	cfg, diags := Parse([]byte(src), filepath.Join(dir, "config.hcl"))
	if len(diags) > 0 {
		var out bytes.Buffer
		WriteDiagnostics(&out, diags)
		t.Fatalf("diagnostics:\n%s", out.String())
	}
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(specKey, "whsec_"))
	want := []*Notify{
		{
			Name: "app", URL: "http://127.0.0.1:9000/hooks/uploads?src=uploadsets", Key: key,
			Sets: []string{"photos"}, Events: []string{"upload.placed", "upload.rejected"},
			Timeout: 3 * time.Second, MaxAge: time.Hour,
		},
		{Name: "audit", URL: "https://audit.example.com/", Key: key, Timeout: 10 * time.Second, MaxAge: 72 * time.Hour},
	}
	if !reflect.DeepEqual(cfg.Notify, want) {
		for _, n := range cfg.Notify {
			t.Logf("got %+v", *n)
		}
		t.Errorf("want %+v, %+v", *want[0], *want[1])
	}
}

// The secret file's content cannot be checked by the golden files: testdata holds no
// key files.
func TestParseNotifySecret(t *testing.T) {
	tests := map[string]struct {
		content string
		want    string // the message after the position; "" = accepted
	}{
		"CRLF is trimmed":    {content: specKey + "\r\n"},
		"32 bytes":           {content: "whsec_" + strings.Repeat("A", 43) + "="},
		"bad base64":         {content: "whsec_not base64!", want: `secret_file $DIR/secrets/notify.key: what follows "whsec_" is not standard base64`},
		"unpadded base64":    {content: "whsec_" + strings.Repeat("A", 43), want: `what follows "whsec_" is not standard base64`},
		"short key":          {content: "whsec_c2hvcnQga2V5", want: `secret_file $DIR/secrets/notify.key holds a 9-byte key, too short to sign with`},
		"only the prefix":    {content: "whsec_\n", want: "holds a 0-byte key"},
		"only a newline":     {content: "\n", want: "secret_file $DIR/secrets/notify.key is empty"},
		"a raw key":          {content: strings.Repeat("k", 32), want: `does not start with "whsec_"`},
		"leading whitespace": {content: " " + specKey, want: `does not start with "whsec_"`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeSecret(t, dir, tt.content)
			src := "set \"a\" {}\nnotify \"app\" {\n  url = \"https://app.example.com/h\"\n  secret_file = \"secrets/notify.key\"\n}\n"
			cfg, diags := Parse([]byte(src), filepath.Join(dir, "c.hcl"))
			var out bytes.Buffer
			WriteDiagnostics(&out, diags)
			got := strings.ReplaceAll(out.String(), dir, "$DIR")
			if tt.want == "" {
				if got != "" || len(cfg.Notify) != 1 || len(cfg.Notify[0].Key) < minWebhookKey {
					t.Fatalf("want the key accepted, got %q", got)
				}
				return
			}
			prefix := "$DIR/c.hcl:4,17: "
			if !strings.HasPrefix(got, prefix) || !strings.Contains(got, tt.want) || strings.Count(got, "\n") != 1 {
				t.Errorf("got %q, want one error at %s containing %q", got, prefix, tt.want)
			}
			if strings.Contains(got, "c2hvcnQ") || strings.Contains(got, "kkkk") {
				t.Errorf("the error quotes the secret: %q", got)
			}
		})
	}
}
