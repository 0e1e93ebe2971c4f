package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The compose example's uploadsets config is one `check` accepts without a warning.
func TestComposeExampleConfigChecks(t *testing.T) {
	compose, err := os.ReadFile("../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(compose), "  uploadsets:\n    content: |\n")
	if !ok {
		t.Fatal("compose.yaml has no inline uploadsets config")
	}
	var config strings.Builder
	for _, line := range strings.Split(after, "\n") {
		if line != "" && !strings.HasPrefix(line, "      ") {
			break
		}
		config.WriteString(strings.TrimPrefix(line, "      ") + "\n")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.hcl"), []byte(config.String()), 0o644)
	stdout, stderr, code := runBinary(t, dir, "check", "-config", "config.hcl")
	if code != 0 || stderr != "" {
		t.Errorf("check of compose.yaml's config: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{`set "photos"`, `set "attachments"`, "s3://uploads/"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("check's summary lacks %q:\n%s", want, stdout)
		}
	}
}
