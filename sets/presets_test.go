package sets

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// extensionsOf decodes one set with the given body and returns its extensions.
func extensionsOf(t *testing.T, body string) Extensions {
	t.Helper()
	cfg, diags := Parse([]byte("set \"s\" {\n"+body+"\n}\n"), "t.hcl")
	if len(diags) > 0 {
		var out bytes.Buffer
		WriteDiagnostics(&out, diags)
		t.Fatalf("diagnostics:\n%s", out.String())
	}
	return cfg.Sets[0].Extensions
}

func TestPresets(t *testing.T) {
	tests := map[string]struct {
		body string
		want string
	}{
		"text":                         {`extensions = text`, "txt"},
		"images":                       {`extensions = images`, "bmp, gif, jpe, jpeg, jpg, png, svg, webp"},
		"audio":                        {`extensions = audio`, "aac, flac, mp3, oga, ogg, wav"},
		"documents":                    {`extensions = documents`, "abw, doc, docx, gnumeric, odf, ods, rtf, xls, xlsx"},
		"data":                         {`extensions = data`, "csv, ini, json, plist, xml, yaml, yml"},
		"scripts":                      {`extensions = scripts`, "js, php, pl, py, rb, sh"},
		"archives":                     {`extensions = archives`, "7z, bz2, gz, tar, tgz, txz, zip"},
		"executables":                  {`extensions = executables`, "dll, exe, so"},
		"defaults":                     {`extensions = defaults`, "abw, bmp, csv, doc, docx, gif, gnumeric, ini, jpe, jpeg, jpg, json, odf, ods, plist, png, rtf, svg, txt, webp, xls, xlsx, xml, yaml, yml"},
		"absent":                       {``, "abw, bmp, csv, doc, docx, gif, gnumeric, ini, jpe, jpeg, jpg, json, odf, ods, plist, png, rtf, svg, txt, webp, xls, xlsx, xml, yaml, yml"},
		"all":                          {`extensions = all`, "any"},
		"literal":                      {`extensions = ["pdf", "epub"]`, "epub, pdf"},
		"lower-cased, one dot dropped": {`extensions = ["PDF", ".Epub", "7Z"]`, "7z, epub, pdf"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := extensionsOf(t, tt.body).String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCombinators(t *testing.T) {
	tests := map[string]struct {
		body string
		want string
	}{
		"concat presets and a list":        {`extensions = concat(documents, text, ["pdf"])`, "abw, doc, docx, gnumeric, odf, ods, pdf, rtf, txt, xls, xlsx"},
		"concat of lists only":             {`extensions = concat(text, executables)`, "dll, exe, so, txt"},
		"concat of tuples only":            {`extensions = concat(["a"], ["b", "A"])`, "a, b"},
		"all_except a preset":              {`extensions = all_except(executables)`, "any except dll, exe, so"},
		"all_except a list":                {`extensions = all_except([".EXE", "bat"])`, "any except bat, exe"},
		"all_except nothing":               {`extensions = all_except([])`, "any"},
		"listing widens all_except":        {`extensions = concat(all_except(["exe", "x"]), ["x"])`, "any except exe"},
		"union of groups keeps the common": {`extensions = concat(all_except(["exe", "dll"]), all_except(["exe", "so"]))`, "any except exe"},
		"all absorbs a group":              {`extensions = concat(all_except(["exe"]), all)`, "any"},
		"allow adds":                       {"extensions = images\nallow = [\"HEIC\", \".avif\"]", "avif, bmp, gif, heic, jpe, jpeg, jpg, png, svg, webp"},
		"allow takes presets":              {"extensions = text\nallow = audio", "aac, flac, mp3, oga, ogg, txt, wav"},
		"allow re-admits an exclusion":     {"extensions = all_except(executables)\nallow = [\"dll\"]", "any except exe, so"},
		"allow all":                        {"extensions = text\nallow = all", "any"},
		"deny removes":                     {"extensions = images\ndeny = [\"SVG\", \".bmp\"]", "gif, jpe, jpeg, jpg, png, webp"},
		"deny after allow":                 {"extensions = text\nallow = [\"md\"]\ndeny = [\"txt\"]", "md"},
		"deny excludes from all":           {"extensions = all\ndeny = [\"exe\"]", "any except exe"},
		"deny a preset from all":           {"extensions = all\ndeny = concat(executables, scripts)", "any except dll, exe, js, php, pl, py, rb, sh, so"},
		"deny from the defaults":           {`deny = ["svg"]`, "abw, bmp, csv, doc, docx, gif, gnumeric, ini, jpe, jpeg, jpg, json, odf, ods, plist, png, rtf, txt, webp, xls, xlsx, xml, yaml, yml"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := extensionsOf(t, tt.body).String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestExtensionsMethods(t *testing.T) {
	tests := map[string]struct {
		e       Extensions
		allowed []string
		refused []string
		any     bool
		list    []string
		str     string
	}{
		"list": {
			e:       AllowOnly("png", ".JPG"),
			allowed: []string{"png", "PNG", ".png", "jpg", "JPG"},
			refused: []string{"", "gif", "pn", "png "},
			list:    []string{"jpg", "png"},
			str:     "jpg, png",
		},
		"any except": {
			e:       AllowAnyExcept("exe", "dll"),
			allowed: []string{"", "png", "exe2", "tar.gz"},
			refused: []string{"exe", "EXE", ".Exe", "dll"},
			any:     true,
			list:    []string{"dll", "exe"},
			str:     "any except dll, exe",
		},
		"any": {
			e:       AllowAnyExcept(),
			allowed: []string{"", "exe", "x"},
			any:     true,
			list:    []string{},
			str:     "any",
		},
		"zero value": {
			refused: []string{"", "png"},
			list:    []string{},
			str:     "none",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			for _, ext := range tt.allowed {
				if !tt.e.Allows(ext) {
					t.Errorf("Allows(%q) = false", ext)
				}
			}
			for _, ext := range tt.refused {
				if tt.e.Allows(ext) {
					t.Errorf("Allows(%q) = true", ext)
				}
			}
			if tt.e.Any() != tt.any {
				t.Errorf("Any() = %v", tt.e.Any())
			}
			if got := tt.e.List(); !slices.Equal(got, tt.list) {
				t.Errorf("List() = %q, want %q", got, tt.list)
			}
			if got := tt.e.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
		})
	}
}

// TestNoMarkersLeak checks that however all and all_except are combined, nothing but
// plain extensions reaches what operators and clients see.
func TestNoMarkersLeak(t *testing.T) {
	bodies := []string{
		`extensions = all`,
		`extensions = all_except(executables)`,
		`extensions = concat(all_except(["exe"]), ["x"], images, all_except(["exe", "so"]))`,
		"extensions = concat(all, text)\ndeny = [\"exe\"]",
	}
	for _, body := range bodies {
		e := extensionsOf(t, body)
		for _, ext := range e.List() {
			if !validExt(ext) {
				t.Errorf("%s: List() has %q", body, ext)
			}
		}
		if s := e.String(); strings.ContainsAny(s, "*!") {
			t.Errorf("%s: String() = %q", body, s)
		}
	}
}
