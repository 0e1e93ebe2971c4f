package sets

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/<name>.golden, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (run go test -update if the change is intended)\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

// stable replaces the absolute testdata directory, which differs per checkout.
func stable(t *testing.T, out string) []byte {
	t.Helper()
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.ReplaceAll(out, dir, "$DIR"))
}

func TestDiagnosticsGolden(t *testing.T) {
	tests := map[string]struct {
		file string
	}{
		"many mistakes":  {"broken"},
		"syntax error":   {"syntax"},
		"unknown preset": {"unknown_preset"},
		"duplicate set":  {"duplicate"},
		"extensions":     {"extensions"},
		"destinations":   {"destinations"},
		"modes, proxies": {"modes"},
		"log":            {"log"},
		"images":         {"image"},
		"no sets":        {"no_sets"},
		"notify":         {"notify"},
		"auth blocks":    {"auth"},
		"s3 and redis":   {"s3_broken"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, diags := Load("testdata/" + tt.file + ".hcl")
			if !diags.HasErrors() {
				t.Fatal("want errors, got none")
			}
			if cfg != nil {
				t.Error("want a nil *Config with errors")
			}
			for _, d := range diags {
				if d.Subject == nil {
					t.Errorf("diagnostic without position: %s", d.Summary)
				}
			}
			var out bytes.Buffer
			WriteDiagnostics(&out, diags)
			golden(t, tt.file, stable(t, out.String()))
		})
	}
}

func TestSummaryGolden(t *testing.T) {
	for _, file := range []string{"good", "s3_good"} {
		t.Run(file, func(t *testing.T) {
			cfg, diags := Load("testdata/" + file + ".hcl")
			if diags.HasErrors() {
				var out bytes.Buffer
				WriteDiagnostics(&out, diags)
				t.Fatalf("%s.hcl:\n%s", file, out.String())
			}
			var out bytes.Buffer
			WriteDiagnostics(&out, diags) // warnings, if any, belong in the golden file too
			cfg.WriteSummary(&out)
			golden(t, file, stable(t, out.String()))
		})
	}
}

func TestShippedConfig(t *testing.T) {
	cfg, diags := Load("../config.hcl")
	if len(diags) > 0 {
		var out bytes.Buffer
		WriteDiagnostics(&out, diags)
		t.Fatalf("the shipped config.hcl must load without errors or warnings:\n%s", out.String())
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Location{Path: filepath.Join(root, "data")}); cfg.DataDir != want {
		t.Errorf("DataDir = %q, want %q (next to the config file)", cfg.DataDir, want)
	}
	var names []string
	for _, s := range cfg.Sets {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, " "); got != "photos documents attachments" {
		t.Errorf("sets = %q", got)
	}
}

func TestParseDefaults(t *testing.T) {
	dir := t.TempDir()
	cfg, diags := Parse([]byte(`set "photos" {}`), filepath.Join(dir, "config.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := Config{
		Filename:        filepath.Join(dir, "config.hcl"),
		Listen:          "127.0.0.1:8080",
		DataDir:         Location{Path: filepath.Join(dir, "data")},
		MaxSize:         1 << 30,
		DefaultDest:     Location{Path: filepath.Join(dir, "uploads")},
		ExpireAfter:     24 * time.Hour,
		ShutdownTimeout: 30 * time.Second,
		NetworkTimeout:  60 * time.Second,
		FileMode:        0o644,
		DirMode:         0o755,
		DataDirAt:       hcl.Range{Filename: filepath.Join(dir, "config.hcl"), Start: hcl.InitialPos, End: hcl.InitialPos},
		LogLevel:        "info",
		LogFormat:       "text",
	}
	got := *cfg
	got.Sets = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config =\n%+v\nwant\n%+v", got, want)
	}
	s := cfg.Sets[0]
	if s.Name != "photos" || s.MaxSize != 1<<30 || s.Naming != NamingOriginal || s.URL != "" ||
		s.Destination != (Location{Path: filepath.Join(dir, "uploads", "photos")}) || s.ExpireAfter != 24*time.Hour ||
		s.FileMode != 0o644 || s.DirMode != 0o755 {
		t.Errorf("set = %+v", s)
	}
	if got, want := s.Extensions.String(), "abw, bmp, csv, doc, docx, gif, gnumeric, ini, jpe, jpeg, jpg, json, odf, ods, plist, png, rtf, svg, txt, webp, xls, xlsx, xml, yaml, yml"; got != want {
		t.Errorf("default extensions = %s, want %s", got, want)
	}
}

// aSet completes a config that tests something else: a config needs at least one set.
const aSet = "\nset \"a\" {}"

func TestParseValues(t *testing.T) {
	tests := map[string]struct {
		src   string
		check func(*Config) bool
	}{
		"size as a number":           {`max_size = 1048576` + aSet, func(c *Config) bool { return c.MaxSize == 1<<20 }},
		"decimal size":               {`max_size = "1.5 KiB"` + aSet, func(c *Config) bool { return c.MaxSize == 1536 }},
		"null means default":         {`max_size = null` + aSet, func(c *Config) bool { return c.MaxSize == 1<<30 }},
		"public_url loses its slash": {`public_url = "https://x.example/up/"` + aSet, func(c *Config) bool { return c.PublicURL == "https://x.example/up" }},
		"listen on any port":         {`listen = ":0"` + aSet, func(c *Config) bool { return c.Listen == ":0" }},
		"absolute data_dir":          {`data_dir = "/srv/data/"` + aSet, func(c *Config) bool { return c.DataDir == Location{Path: "/srv/data"} }},
		"durations": {`
			expire_after = "90m"
			shutdown_timeout = "1s"` + aSet, func(c *Config) bool { return c.ExpireAfter == 90*time.Minute && c.ShutdownTimeout == time.Second }},
		"default url gets a slash": {`
			uploads_default_url = "https://cdn.example.com/u"
			set "a" {}`, func(c *Config) bool {
			return c.DefaultURL == "https://cdn.example.com/u" && c.Sets[0].URL == "https://cdn.example.com/u/a/"
		}},
		"explicit empty url wins over the default": {`
			uploads_default_url = "https://cdn.example.com/"
			set "a" { url = "" }`, func(c *Config) bool { return c.Sets[0].URL == "" }},
		"set url gets a slash": {`set "a" { url = "https://cdn.example.com/a" }`, func(c *Config) bool { return c.Sets[0].URL == "https://cdn.example.com/a/" }},
		"set inherits expire_after and max_size": {`
			expire_after = "1h"
			max_size = "10MB"
			set "a" {}`, func(c *Config) bool { return c.Sets[0].ExpireAfter == time.Hour && c.Sets[0].MaxSize == 10e6 }},
		"set overrides": {`set "a" {
				expire_after = "2h"
				max_size = "1KB"
				naming = "uuid"
				destination = "/srv/a"
			}`, func(c *Config) bool {
			s := c.Sets[0]
			return s.ExpireAfter == 2*time.Hour && s.MaxSize == 1000 && s.Naming == NamingUUID && s.Destination == Location{Path: "/srv/a"}
		}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, diags := Parse([]byte(tt.src), "/etc/uploadsets/config.hcl")
			if len(diags) > 0 {
				var out bytes.Buffer
				WriteDiagnostics(&out, diags)
				t.Fatalf("diagnostics:\n%s", out.String())
			}
			if !tt.check(cfg) {
				t.Errorf("unexpected config: %+v", cfg)
				for _, s := range cfg.Sets {
					t.Logf("set %+v", s)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := map[string]struct {
		src  string
		want string // WriteDiagnostics output
	}{
		"set max_size above the server's": {`max_size = "1MiB"
set "a" { max_size = "2MiB" }`, `c.hcl:2,22: max_size of set "a" (2 MiB) is above the server-wide max_size (1 MiB): raise that one too` + "\n"},
		"set max_size above the default": {`set "a" { max_size = "20GB" }`, `c.hcl:1,22: max_size of set "a" (20 GB) is above the server-wide max_size (1 GiB): raise that one too` + "\n"},
		"zero size":                      {`max_size = 0` + aSet, "c.hcl:1,12: max_size must be more than 0 bytes\n"},
		"fractional bytes":               {`max_size = 1.5` + aSet, `c.hcl:1,12: invalid max_size 1.5: must be a whole number of bytes up to 9223372036854775807, or a string with a unit like "16MiB"` + "\n"},
		"huge number":                    {`max_size = 1e99999999` + aSet, `c.hcl:1,12: invalid max_size +Inf: must be a whole number of bytes up to 9223372036854775807, or a string with a unit like "16MiB"` + "\n"},
		"negative size":                  {`max_size = "-1MB"` + aSet, `c.hcl:1,12: invalid max_size "-1MB": must not be negative` + "\n"},
		"bare word":                      {`set "a" { naming = uuid }`, `c.hcl:1,20: naming must be a string in quotes: naming = "uuid"` + "\n"},
		"number for a string":            {`listen = 8080` + aSet, "c.hcl:1,10: listen must be a string in quotes\n"},
		"listen without port":            {`listen = "localhost"` + aSet, `c.hcl:1,10: invalid listen "localhost": must be host:port with a numeric port, like "127.0.0.1:8080" or ":8080"` + "\n"},
		"url with a query":               {`uploads_default_url = "https://x.example/?a=b"` + aSet, `c.hcl:1,23: invalid uploads_default_url "https://x.example/?a=b": must not have a query or a fragment: file names are appended to it` + "\n"},
		"url with a password":            {`public_url = "https://u:p@x.example"` + aSet, `c.hcl:1,14: invalid public_url "https://u:p@x.example": must not contain a user name or password` + "\n"},
		"empty destination":              {`set "a" { destination = "" }`, "c.hcl:1,25: destination must not be empty\n"},
		"set name too long":              {`set "` + strings.Repeat("a", 64) + `" {}`, `c.hcl:1,5: invalid set name "` + strings.Repeat("a", 64) + `": use 1 to 63 lower-case letters, digits, "_" or "-", starting with a letter or digit (it is part of URLs and paths)` + "\n"},
		"set without a name":             {`set {}`, "c.hcl:1,5: Missing name for set; All set blocks must have 1 labels (name).\n"},
		"variable in a scalar":           {`listen = "${images}"` + aSet, "c.hcl:1,13: Variables not allowed; Variables may not be used here.\n"},
		"function in a scalar":           {`listen = concat([])` + aSet, "c.hcl:1,10: Function calls not allowed; Functions may not be called here.\n"},
		"unknown function":               {`set "a" { extensions = upper("x") }`, "c.hcl:1,24: Call to unknown function; There is no function named \"upper\".\n"},
		"empty extensions":               {`set "a" { extensions = [] }`, `c.hcl:1,24: set "a" accepts no extensions` + "\n"},
		"deny everything": {`set "a" {
  extensions = ["png"]
  deny = ["PNG"]
}`, `c.hcl:3,10: set "a" accepts no extensions` + "\n"},
		"unknown attribute in a set": {`set "a" { colour = "red" }`, "c.hcl:1,11: Unsupported argument; An argument named \"colour\" is not expected here.\n"},
		"not UTF-8": {"listen = \"\xff\"", "c.hcl:1,11: Invalid character encoding; All input files must be UTF-8 encoded. Ensure that UTF-8 encoding is selected in your editor.\n" +
			"c.hcl:1,11: Unterminated template string; No closing marker was found for the string.\n"},
		"bad escape is not judged again": {`listen = "\xff"`, `c.hcl:1,11: Invalid escape sequence; The symbol "x" is not a valid escape sequence selector.` + "\n"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) { refusedWith(t, tt.src, tt.want) })
	}
}

func TestLoadMissingFile(t *testing.T) {
	cfg, diags := Load(filepath.Join(t.TempDir(), "nope.hcl"))
	if cfg != nil || !diags.HasErrors() || diags[0].Subject == nil {
		t.Fatalf("want one positioned error, got %v", diags)
	}
}

// refusedWith checks that src is refused with exactly the diagnostics want.
func refusedWith(t *testing.T, src, want string) {
	t.Helper()
	cfg, diags := Parse([]byte(src), "c.hcl")
	var out bytes.Buffer
	WriteDiagnostics(&out, diags)
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	if cfg != nil {
		t.Error("want a nil config")
	}
}
