package sets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// The seeds below run in every `go test`; `go test -fuzz=FuzzX ./sets/` explores further.

func FuzzSafeName(f *testing.F) {
	for _, seed := range []string{
		"photo.png", "../../etc/passwd", `..\..\win.ini`, "a\x00b.png", "CON", "con.txt",
		"фото.PNG", "cafe\u0301.txt", ".htaccess", "...", "", "   ", "\xff\xfe.png",
		"x.png.php", "a\u202e.txt", strings.Repeat("ж", 200) + ".JPG", "a." + strings.Repeat("Ⱥ", 200),
		"<>:\"|?*%#;", "a . . b", "İ.İ", "ǅ.ǅ", ". \u0301", "a\u0338.png",
		"x.php.png", "a.EXE.jpg", "x.p\u200bhp.png", "php.png", "com0", "LPT0.x", "\u3164", "a\u2800b",
		"a\ufe0f\U000E0041.txt", "a\xffb\xc3.txt", "\ufffd", strings.Repeat("a", 250) + ".phpxy.png",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := SafeName(in)
		if err != nil {
			// Refused only when nothing is left, never because cleaning did not settle.
			if c := clean(in); c != "" {
				t.Errorf("SafeName(%q) refused, but one pass gives %q", in, c)
			}
			return
		}
		checkSafe(t, in, got)
		if again, _ := SafeName(in); again != got {
			t.Errorf("SafeName(%q) is not deterministic: %q then %q", in, got, again)
		}
		if !filepath.IsLocal(got) {
			t.Errorf("SafeName(%q) = %q is not local", in, got)
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, seed := range []string{
		"16MiB", "1GB", "512KB", "100B", "100", "1.5GiB", "16 Mebibytes", "-1", "", "0.001KB",
		"9223372036854775807", "8589934592GiB", "1.99999999999999999999999GiB", "007 kib",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n, err := ParseSize(in)
		if err != nil {
			if !strings.Contains(err.Error(), "units: ") && !strings.Contains(err.Error(), "negative") && !strings.Contains(err.Error(), "too large") {
				t.Errorf("ParseSize(%q): %v does not say what is accepted", in, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d", in, n)
		}
		// What FormatSize shows reads back as at most n, and within 1% of it.
		shown := FormatSize(n)
		back, err := ParseSize(shown)
		if err != nil {
			t.Fatalf("FormatSize(%d) = %q does not parse: %v", n, shown, err)
		}
		if back > n || n-back > n/100 {
			t.Errorf("%q -> %d -> %q -> %d", in, n, shown, back)
		}
	})
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.hcl")
	files = append(files, "../config.hcl")
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, seed := range []string{
		`set "a" { extensions = concat(all_except(["exe"]), ["x"]) }`,
		`set "a" { extensions = [all] }`,
		`set "a" { extensions = all_except(all) }`,
		`set "a" { extensions = concat() }`,
		`set "a" { extensions = images.x }`,
		`set "a" { extensions = images[0] }`,
		`set "a" { extensions = [for e in images : e] }`,
		`set "a" { extensions = {a = 1} }`,
		`set "a" { allow = all_except([]) }`,
		`set "a" { deny = [null] }`,
		`set "a" "b" {}`,
		`set "a" { set "b" {} }`,
		`max_size = 1e300`,
		`max_size = 1e99999999`,
		`max_size = -1`,
		`listen = ["a"]`,
		`listen = "${"a"}:${1}"`,
		"set \"\x00\" {}",
		`expire_after = "1ns"`,
		`data_dir = "."` + "\n" + `set "a" {}`,
		"data_dir = \"s3://b.c/p\"\ns3 {}\nset \"a\" { destination = \"s3://b.c\" }",
		"data_dir = \"s3://bkt/\"\nuploads_default_dest = \"s3://bkt/f\"\ns3 {}\nredis { url = \"unix:///s\" }\nset \"a\" {}",
		"data_dir = \"gs://x\"\nset \"a\" { destination = \"s3:x\" }",
		"s3 \"x\" {}\nredis {}\nset \"a\" { destination = \"s3://a..b//c/../?#\" }",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, diags := Parse(src, "fuzz.hcl")
		for _, d := range diags {
			if d.Subject == nil || d.Subject.Filename != "fuzz.hcl" {
				t.Fatalf("diagnostic without position: %q %q", d.Summary, d.Detail)
			}
		}
		if diags.HasErrors() {
			if cfg != nil {
				t.Fatal("config returned with errors")
			}
			return
		}
		if cfg == nil {
			t.Fatal("no config and no errors")
		}
		if !validLocation(cfg.DataDir) || cfg.DataDir.IsS3() && cfg.S3 == nil {
			t.Errorf("data_dir %+v, s3 %v", cfg.DataDir, cfg.S3)
		}
		for _, s := range cfg.Sets {
			if s.Destination.IsS3() != cfg.DataDir.IsS3() {
				t.Errorf("set %q: destination %s with data_dir %s", s.Name, s.Destination, cfg.DataDir)
			}
			if s.MaxSize <= 0 || s.MaxSize > cfg.MaxSize || s.ExpireAfter <= 0 {
				t.Errorf("set %q: max_size %d, expire_after %v", s.Name, s.MaxSize, s.ExpireAfter)
			}
			if s.URL != "" && !strings.HasSuffix(s.URL, "/") {
				t.Errorf("set %q: url %q", s.Name, s.URL)
			}
			if !validLocation(s.Destination) || !setName.MatchString(s.Name) {
				t.Errorf("set %q: destination %q", s.Name, s.Destination)
			}
			for _, ext := range s.Extensions.List() {
				if !validExt(ext) || !utf8.ValidString(ext) {
					t.Errorf("set %q: extension %q", s.Name, ext)
				}
			}
		}
	})
}

// validLocation is what Load promises of a Location.
func validLocation(l Location) bool {
	if !l.IsS3() {
		return filepath.IsAbs(l.Path) && l.Prefix == ""
	}
	if l.Path != "" || bucketProblem(l.Bucket) != "" {
		return false
	}
	if l.Prefix == "" {
		return true
	}
	if !strings.HasSuffix(l.Prefix, "/") {
		return false
	}
	for _, seg := range strings.Split(strings.TrimSuffix(l.Prefix, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}
