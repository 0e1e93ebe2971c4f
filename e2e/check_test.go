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

func TestServeCheckVersionHelp(t *testing.T) {
	tests := map[string]struct {
		args []string
		code int
		want string // in stderr
	}{
		"serve -h":        {[]string{"serve", "-h"}, 0, "-config"},
		"check -h":        {[]string{"check", "-h"}, 0, "-config"},
		"version -h":      {[]string{"version", "-h"}, 0, "usage: uploadsets version"},
		"serve -nope":     {[]string{"serve", "-nope"}, 2, "flag provided but not defined: -nope"},
		"check -nope":     {[]string{"check", "-nope"}, 2, "flag provided but not defined: -nope"},
		"unknown command": {[]string{"sevre"}, 2, `unknown command "sevre"`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			// In an empty directory, so that a -h that went on to serve would fail
			// for want of a config instead of starting a server.
			stdout, stderr, code := runBinary(t, t.TempDir(), tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit code %d (want %d), stdout %q, stderr:\n%s", code, tt.code, stdout, stderr)
			}
		})
	}
}
