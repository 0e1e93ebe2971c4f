package e2e

import (
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
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

var versionLine = regexp.MustCompile(`^uploadsets (\S+)(?: \(rev ([0-9a-f]{7}), ([^,]+)(, modified)?\))?\n$`)

// TestVersion checks what version prints against what the build recorded in the
// binary: the shared binary may have no VCS stamp (GOFLAGS=-buildvcs=false), so one is
// also built with it, whose revision must be the checkout's.
func TestVersion(t *testing.T) {
	stdout, _, code := runBinary(t, ".", "version")
	if code != 0 {
		t.Errorf("version: exit code %d", code)
	}
	checkVersion(t, binary, stdout)

	stamped := filepath.Join(t.TempDir(), "uploadsets")
	build := exec.Command("go", "build", "-race", "-buildvcs=true", "-o", stamped, "../cmd/uploadsets")
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("no VCS to stamp the build with here: %v\n%s", err, out)
	}
	if bi, err := buildinfo.ReadFile(stamped); err != nil {
		t.Fatal(err)
	} else if !slices.ContainsFunc(bi.Settings, func(s debug.BuildSetting) bool { return s.Key == "vcs.revision" }) {
		// Go looks for a .git directory, and a linked worktree has a .git file.
		t.Skip("the build recorded no revision: go does not stamp builds in a linked git worktree (golang/go#58218)")
	}
	out, err := exec.Command(stamped, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	m := checkVersion(t, stamped, string(out))
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	if m == nil || m[2] != string(head[:7]) {
		t.Errorf("version %q does not name the checkout's revision %.7s", out, head)
	}
}

// checkVersion compares the output of bin's version with bin's build info, and
// returns versionLine's match.
func checkVersion(t *testing.T, bin, out string) []string {
	t.Helper()
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	m := versionLine.FindStringSubmatch(out)
	if m == nil {
		t.Errorf("version printed %q, want like %q", out, "uploadsets v0.0.0-... (rev 7898dc3, 2026-12-01T10:00:00Z, modified)")
		return nil
	}
	vcs := map[string]string{}
	for _, s := range bi.Settings {
		vcs[s.Key] = s.Value
	}
	if m[1] != bi.Main.Version {
		t.Errorf("version %q, but the build recorded %q", m[1], bi.Main.Version)
	}
	if rev := vcs["vcs.revision"]; m[2] != rev[:min(len(rev), 7)] {
		t.Errorf("revision %q, but the build recorded %q", m[2], rev)
	}
	if m[3] != vcs["vcs.time"] {
		t.Errorf("time %q, but the build recorded %q", m[3], vcs["vcs.time"])
	}
	if modified := m[4] != ""; modified != (vcs["vcs.modified"] == "true") {
		t.Errorf("modified: %v, but the build recorded vcs.modified=%q", modified, vcs["vcs.modified"])
	}
	return m
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

func TestCheckAndServeWarnOfALeftoverSet(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "data", "old")
	const id = "0123456789abcdef0123456789abcdef"
	if err := os.MkdirAll(old, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{id, id + ".info"} {
		if err := os.WriteFile(filepath.Join(old, f), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	config := baseConfig + `set "photos" {}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "config.hcl"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}

	// A warning, at data_dir (line 3 of baseConfig), does not fail check.
	stdout, stderr, code := runBinary(t, dir, "check", "-config", "config.hcl")
	want := `config.hcl:3,12: warning: set "old" is not in the config, but data_dir holds 1 upload of it in ` + old + ":"
	if code != 0 || !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("check: exit code %d, stderr:\n%s\nwant one line starting %q", code, stderr, want)
	}
	if !strings.Contains(stdout, `set "photos"`) {
		t.Errorf("check printed no summary:\n%s", stdout)
	}

	s := startServerIn(t, dir, config)
	s.Stop(t)
	var warned []string
	for _, l := range strings.Split(s.Log(), "\n") {
		if strings.Contains(l, "LeftoverSet") {
			warned = append(warned, l)
		}
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "[WARN]") || !strings.Contains(warned[0], "dir="+old) || !strings.Contains(warned[0], "uploads=1") {
		t.Errorf("want one LeftoverSet warning with dir=%s uploads=1, got %q in:\n%s", old, warned, s.Log())
	}
	if _, err := os.Stat(filepath.Join(old, id+".info")); err != nil {
		t.Errorf("the leftover upload was touched: %v", err)
	}
}

// TestServeTheREADMECurlExample runs the README's curl upload with a name longer than
// 57 bytes, past which GNU base64 would wrap its output and break the header.
func TestServeTheREADMECurlExample(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example := regexp.MustCompile(`(?s)curl -i -X POST http://127\.0\.0\.1:8080/uploads/photos/ \\\n.*?--data-binary @cat\.png\n`).Find(readme)
	if example == nil {
		t.Fatal("no curl upload to http://127.0.0.1:8080/uploads/photos/ in README.md")
	}
	s := startServer(t, defaultSets)
	name := strings.Repeat("a", 60) + ".png"
	png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), make([]byte, 100)...)
	if err := os.WriteFile(filepath.Join(s.Dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	script := strings.NewReplacer("http://127.0.0.1:8080", s.URL, "cat.png", name).Replace(string(example))
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = s.Dir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), " 201 ") || !strings.Contains(string(out), "Upload-File-Name: "+name) {
		t.Errorf("the README's curl example with a %d-byte name (%v):\n%s", len(name), err, out)
	}
}

func TestCheckRefusesAConfigWithoutSets(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.hcl"), []byte(baseConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runBinary(t, dir, "check", "-config", "config.hcl")
	if code != 1 || !strings.HasPrefix(stderr, "config.hcl:1,1: no set blocks: a config needs at least one set") {
		t.Errorf("check: exit code %d, stderr:\n%s", code, stderr)
	}
}
