package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const brokenConfig = `listen = "127.0.0.1:0"
max_size = "lots"

set "photos" {
  extensions = imagez
  naming     = "random"
}

set "photos" {
  colour = "blue"
}
`

var diagLine = regexp.MustCompile(`^config\.hcl:\d+,\d+: \S`)

func TestCheckReportsEveryMistakeWithItsPosition(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.hcl"), []byte(brokenConfig), 0o644)
	stdout, stderr, code := runBinary(t, dir, "check", "-config", "config.hcl")
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) < 5 {
		t.Errorf("want at least 5 diagnostics (size, preset, naming, duplicate, unknown attribute), got:\n%s", stderr)
	}
	for _, l := range lines {
		if !diagLine.MatchString(l) {
			t.Errorf("not file:line,col: message: %q", l)
		}
	}
	for _, want := range []string{"config.hcl:2,", "config.hcl:5,", "config.hcl:6,", "config.hcl:9,", "config.hcl:10,"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("no diagnostic at %s in:\n%s", want, stderr)
		}
	}
	if stdout != "" {
		t.Errorf("stdout on a bad config: %q", stdout)
	}

	// serve refuses to start and prints the same lines.
	_, serveErr, code := runBinary(t, dir, "serve", "-config", "config.hcl")
	if code != 1 || !strings.Contains(serveErr, stderr) {
		t.Errorf("serve on a bad config: exit %d, stderr:\n%s", code, serveErr)
	}
}

func TestCheckSummarisesAGoodConfig(t *testing.T) {
	stdout, stderr, code := runBinary(t, "..", "check", "-config", "config.hcl")
	if code != 0 {
		t.Fatalf("check of the shipped config.hcl: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"photos", "/uploads/photos/", "16 MiB", "attachments"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
}

func TestVersion(t *testing.T) {
	stdout, _, code := runBinary(t, ".", "version")
	if code != 0 || !strings.HasPrefix(stdout, "uploadsets ") {
		t.Errorf("version: %d %q", code, stdout)
	}
}
