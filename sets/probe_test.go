package sets

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestProbeDirs(t *testing.T) {
	dir := t.TempDir()
	src := `data_dir = "./data"
set "photos" {
  destination = "./blocked/photos"
}
set "docs" {
  dir_mode = "0770"
}
`
	// A file where a directory should be: no user, root included, can write there.
	os.WriteFile(filepath.Join(dir, "blocked"), nil, 0o644)
	cfg, diags := Parse([]byte(src), filepath.Join(dir, "config.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}

	diags = cfg.ProbeDirs(false)
	var out bytes.Buffer
	WriteDiagnostics(&out, diags)
	want := filepath.Join(dir, "config.hcl") + `:3,17: destination of set "photos" ` + filepath.Join(dir, "blocked", "photos") + " cannot be used: "
	if len(diags) != 1 || !strings.HasPrefix(out.String(), want) {
		t.Fatalf("check's probe:\n%s\nwant one line starting %q", out.String(), want)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Error("check created data_dir; it must change nothing")
	}

	if diags := cfg.ProbeDirs(true); len(diags) != 1 {
		t.Fatalf("serve's probe: %v, want the one destination error", diags)
	}
	st, err := os.Stat(filepath.Join(dir, "uploads", "docs"))
	if err != nil || st.Mode().Perm() != 0o770 {
		t.Fatalf("serve's probe made the destination with %v (%v), want dir_mode 0770 exactly", st.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*", ".uploadsets-probe-*")); len(left) > 0 {
		t.Errorf("probe files left behind: %v", left)
	}
}

func TestProbeDirsReadOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a read-only tmpfs needs root")
	}
	dir := t.TempDir()
	ro := filepath.Join(dir, "ro")
	os.Mkdir(ro, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", ro).CombinedOutput(); err != nil {
		t.Skipf("cannot mount: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", ro).Run() })
	cfg, diags := Parse([]byte(`data_dir = "./ro/data"
set "photos" {}
`), filepath.Join(dir, "config.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for _, create := range []bool{false, true} {
		var out bytes.Buffer
		WriteDiagnostics(&out, cfg.ProbeDirs(create))
		if !strings.Contains(out.String(), ":1,12: data_dir "+filepath.Join(ro, "data")+" cannot be used: the file system is read-only") {
			t.Errorf("create=%v:\n%s", create, out.String())
		}
	}
}
