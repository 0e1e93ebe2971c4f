package sets

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSafeName(t *testing.T) {
	long := strings.Repeat("é", 150) // 300 bytes
	tests := map[string]struct {
		in   string
		want string // "" means an error
	}{
		"plain":                       {"photo.png", "photo.png"},
		"unix traversal":              {"../../etc/passwd", "passwd"},
		"windows traversal":           {`..\..\win.ini`, "win.ini"},
		"fakepath":                    {`C:\fakepath\cat.jpg`, "cat.jpg"},
		"trailing separator":          {"photos/", ""},
		"NUL inside":                  {"evil.php\x00.png", "evil_php.png"},
		"control characters":          {"a\x01b\x7fc\u0085.txt", "abc.txt"},
		"tab and newline are dropped": {"a\tb\nc.txt", "abc.txt"},
		"bidi override":               {"invoice\u202egnp.exe", "invoicegnp.exe"},
		"zero-width space":            {"a\u200bb.txt", "ab.txt"},
		"CON":                         {"CON", "_CON"},
		"con.txt":                     {"con.txt", "_con.txt"},
		"con.tar.gz":                  {"con.tar.gz", "_con.tar.gz"},
		"lpt9 upper ext":              {"LPT9.TXT", "_LPT9.txt"},
		"com superscript":             {"com¹.txt", "_com¹.txt"},
		"not quite reserved":          {"console.txt", "console.txt"},
		"com0":                        {"com0", "_com0"},
		"LPT0.txt":                    {"LPT0.txt", "_LPT0.txt"},
		"com10 is fine":               {"com10", "com10"},
		"unicode":                     {"фото.PNG", "фото.png"},
		"base case kept":              {"MyPhoto.JPEG", "MyPhoto.jpeg"},
		"NFD becomes NFC":             {"cafe\u0301.txt", "caf\u00e9.txt"},
		"unsafe characters":           {`a<b>c:d"e|f?g*h%i#j;k.txt`, "a_b_c_d_e_f_g_h_i_j_k.txt"},
		"whitespace runs":             {"my   holiday \u00a0 photo.jpg", "my_holiday_photo.jpg"},
		"trim spaces and dots":        {"  .. photo.jpg .. ", "photo.jpg"},
		"double extension":            {"x.png.php", "x.png.php"},
		".htaccess":                   {".htaccess", "htaccess"},
		"...":                         {"...", ""},
		"..":                          {"..", ""},
		".":                           {".", ""},
		"empty":                       {"", ""},
		"only spaces":                 {"   ", ""},
		"only control characters":     {"\x00\x01", ""},
		"invalid UTF-8":               {"a\xffb\xc3.txt", "a_b_.txt"},
		"invalid run is one _":        {"a\xff\xfe\xfdb.txt", "a_b.txt"},
		"invalid extension byte":      {"a.p\xffg", "a.p_g"},
		"only invalid UTF-8":          {"\xff\xfe", "_"},
		"U+FFFD sent is kept":         {"a\ufffd.txt", "a\ufffd.txt"},
		"Hangul filler":               {"a\u3164.txt", "a.txt"},
		"Hangul choseong fillers":     {"\u115f\u1160b.txt", "b.txt"},
		"halfwidth Hangul filler":     {"b\uffa0.txt", "b.txt"},
		"only a Hangul filler":        {"\u3164", ""},
		"grapheme joiner":             {"a\u034fb.txt", "ab.txt"},
		"braille blank":               {"\u2800.png", "png"},
		"braille blank inside":        {"a\u2800b.png", "ab.png"},
		"Mongolian vowel separator":   {"a\u180eb.txt", "ab.txt"},
		"Mongolian selectors":         {"a\u180b\u180fb.txt", "ab.txt"},
		"zero-width joiners":          {"a\u200c\u200d\u200e\u200fb.txt", "ab.txt"},
		"word joiner and isolates":    {"a\u2060\u2066\u2069\u206fb.txt", "ab.txt"},
		"variation selectors":         {"a\ufe00\ufe0fb.txt", "ab.txt"},
		"ideographic selector":        {"a\U000E0100b.txt", "ab.txt"},
		"tags":                        {"a\U000E0001\U000E0041\U000E007Fb.txt", "ab.txt"},
		"musical null notehead":       {"a\U0001D159b.txt", "ab.txt"},
		"musical beams":               {"a\U0001D173\U0001D17Ab.txt", "ab.txt"},
		"Khmer inherent vowels":       {"a\u17b4\u17b5b.txt", "ab.txt"},
		"soft hyphen":                 {"in\u00advoice.pdf", "invoice.pdf"},
		"filler hides the extension":  {"photo.\u3164php", "photo.php"},
		"inner php":                   {"x.php.png", "x_php.png"},
		"inner exe":                   {"a.exe.jpg", "a_exe.jpg"},
		"inner phtml":                 {"shell.phtml.gif", "shell_phtml.gif"},
		"inner upper case":            {"x.PHP.png", "x_PHP.png"},
		"several inner":               {"x.cgi.pl.py.txt", "x_cgi_pl_py.txt"},
		"inner among plain ones":      {"x.v2.asp.tar.gz", "x.v2_asp.tar.gz"},
		"inner aspx jsp sh":           {"a.aspx.b.jsp.c.sh.png", "a_aspx.b_jsp.c_sh.png"},
		"inner bat cmd com scr js":    {"a.bat.cmd.com.scr.js.txt", "a_bat_cmd_com_scr_js.txt"},
		"inner htaccess":              {"x.htaccess.txt", "x_htaccess.txt"},
		"inner after invisible":       {"x.p\u200bhp.png", "x_php.png"},
		"stem is not an extension":    {"php.png", "php.png"},
		"plain double extension":      {"a.tar.gz", "a.tar.gz"},
		"inner and reserved":          {"con.exe.txt", "_con_exe.txt"},
		"cut exposes an inner php":    {strings.Repeat("a", 247) + ".phpx.png", strings.Repeat("a", 247) + "_php.png"},
		"underscores kept":            {"__init__.py", "__init__.py"},
		"300 characters":              {strings.Repeat("a", 300) + ".PNG", strings.Repeat("a", 251) + ".png"},
		"300 bytes cut on a rune":     {long + ".txt", strings.Repeat("é", 125) + ".txt"},
		"long extension is cut too":   {"a." + strings.Repeat("x", 300), "a." + strings.Repeat("x", 253)},
		"cut does not end in a dot":   {strings.Repeat("a", 254) + "." + strings.Repeat("X", 300), strings.Repeat("a", 254)},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := SafeName(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("SafeName(%q) = %q, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("SafeName(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("SafeName(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			checkSafe(t, tt.in, got)
		})
	}
}

func TestExt(t *testing.T) {
	tests := map[string]struct{ name, want string }{
		"simple":   {"a.png", "png"},
		"upper":    {"a.PNG", "png"},
		"last dot": {"a.tar.gz", "gz"},
		"none":     {"README", ""},
		"dotfile":  {".bashrc", ""},
		"trailing": {"a.", ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Ext(tt.name); got != tt.want {
				t.Errorf("Ext(%q) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

const testID = "0123456789abcdef0123456789abcdef"

func TestCandidatesOriginal(t *testing.T) {
	s := &Set{Name: "photos", Naming: NamingOriginal}
	tests := map[string]struct {
		safe string
		want []string // the first candidates
	}{
		"with extension": {"photo.png", []string{"photo.png", "photo_1.png", "photo_2.png", "photo_3.png"}},
		"without":        {"README", []string{"README", "README_1", "README_2"}},
		"double":         {"a.tar.gz", []string{"a.tar.gz", "a.tar_1.gz"}},
		"long base is cut for the suffix": {strings.Repeat("a", 251) + ".png", []string{
			strings.Repeat("a", 251) + ".png",
			strings.Repeat("a", 249) + "_1.png",
			strings.Repeat("a", 249) + "_2.png",
		}},
		"cut on a rune": {strings.Repeat("é", 125) + ".txt", []string{
			strings.Repeat("é", 125) + ".txt",
			strings.Repeat("é", 124) + "_1.txt",
		}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			for c := range s.Candidates(tt.safe, testID) {
				got = append(got, c)
				if len(got) == len(tt.want) {
					break
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestCandidatesBounded(t *testing.T) {
	s := &Set{Name: "photos"}                  // zero Naming behaves as original
	long := strings.Repeat("ж", 126) + ".jpeg" // 257 bytes before SafeName
	safe, err := SafeName(long)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	seen := map[string]bool{}
	for c := range s.Candidates(safe, testID) {
		n++
		if len(c) > maxName || !utf8.ValidString(c) {
			t.Fatalf("candidate %d: %d bytes, valid UTF-8 %v", n, len(c), utf8.ValidString(c))
		}
		if Ext(c) != "jpeg" {
			t.Fatalf("candidate %q lost its extension", c)
		}
		if seen[c] {
			t.Fatalf("candidate %q repeated", c)
		}
		seen[c] = true
		if again, err := SafeName(c); err != nil || again != c {
			t.Fatalf("candidate %q is not a safe name (%q, %v)", c, again, err)
		}
	}
	if want := numbered + hashed + 1; n != want {
		t.Errorf("%d candidates, want %d", n, want)
	}
	// Past the numbered ones, suffixes come from the ID: the same on every attempt
	// (a retry finds its own file), different for another upload.
	tail := slices.Collect(s.Candidates("cat.png", testID))[numbered:]
	other := slices.Collect(s.Candidates("cat.png", strings.Repeat("b", 32)))[numbered:]
	if again := slices.Collect(s.Candidates("cat.png", testID))[numbered:]; !slices.Equal(tail, again) {
		t.Error("ID-derived candidates differ between attempts")
	}
	if tail[0] == other[0] || !strings.HasPrefix(tail[0], "cat_") || !strings.HasSuffix(tail[len(tail)-1], ".png") {
		t.Errorf("ID-derived candidates %q / %q", tail[0], other[0])
	}
}

func TestCandidatesUUID(t *testing.T) {
	s := &Set{Name: "attachments", Naming: NamingUUID}
	tests := map[string]struct {
		safe, ext string
	}{
		"with extension": {"report.PDF", ".pdf"},
		"without":        {"README", ""},
		"long extension": {"a." + strings.Repeat("x", 253), "." + strings.Repeat("x", 218)},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := slices.Collect(s.Candidates(tt.safe, testID))
			if len(got) != 1 {
				t.Fatalf("got %d candidates, want exactly one: %q", len(got), got)
			}
			u, ext := got[0][:36], got[0][36:]
			if !uuidV4.MatchString(u) || ext != tt.ext {
				t.Errorf("got %q, want a v4-layout UUID followed by %q", got[0], tt.ext)
			}
			if strings.Contains(got[0], testID) || strings.Contains(strings.ReplaceAll(u, "-", ""), testID[:8]) {
				t.Errorf("%q reveals the upload ID", got[0])
			}
			if len(got[0]) > maxName {
				t.Errorf("%d bytes", len(got[0]))
			}
			if again := slices.Collect(s.Candidates(tt.safe, testID)); !slices.Equal(again, got) {
				t.Errorf("not deterministic: %q then %q", got, again)
			}
		})
	}
	a := slices.Collect(s.Candidates("x.png", testID))
	b := slices.Collect(s.Candidates("x.png", "fedcba9876543210fedcba9876543210"))
	if slices.Equal(a, b) {
		t.Errorf("two uploads got the same name %q", a)
	}
	// The name depends on the ID, not on the client's name.
	if c := slices.Collect(s.Candidates("other.png", testID)); !slices.Equal(a, c) {
		t.Errorf("%q != %q", a, c)
	}
}

// checkSafe asserts the invariants every SafeName result has.
func checkSafe(t *testing.T, in, got string) {
	t.Helper()
	switch {
	case got == "" || got == "." || got == "..":
		t.Errorf("SafeName(%q) = %q", in, got)
	case strings.ContainsAny(got, "/\\\x00"):
		t.Errorf("SafeName(%q) = %q has a separator or NUL", in, got)
	case !utf8.ValidString(got):
		t.Errorf("SafeName(%q) = %q is not UTF-8", in, got)
	case len(got) > maxName:
		t.Errorf("SafeName(%q) is %d bytes", in, len(got))
	case strings.HasPrefix(got, "."):
		t.Errorf("SafeName(%q) = %q starts with a dot", in, got)
	case strings.HasSuffix(got, ".") || strings.HasSuffix(got, " "):
		t.Errorf("SafeName(%q) = %q ends with a dot or space", in, got)
	case Ext(got) != strings.ToLower(Ext(got)) || !strings.HasSuffix(got, strings.ToLower(got[len(got)-len(Ext(got)):])):
		t.Errorf("SafeName(%q) = %q: extension not lower-case", in, got)
	}
	for _, r := range got {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
			t.Errorf("SafeName(%q) = %q has control character %U", in, got, r)
		}
		if unicode.Is(defaultIgnorable, r) || r == '\u2800' || r == '\U0001D159' {
			t.Errorf("SafeName(%q) = %q has invisible %U", in, got, r)
		}
	}
	if strings.ContainsRune(got, utf8.RuneError) && !strings.ContainsRune(in, utf8.RuneError) {
		t.Errorf("SafeName(%q) = %q made up U+FFFD", in, got)
	}
	base, _ := splitExt(got)
	if parts := strings.Split(base, "."); len(parts) > 1 {
		for _, p := range parts[1:] {
			if p := strings.ToLower(p); runnable[p] || slices.Contains(presets["scripts"], p) || slices.Contains(presets["executables"], p) {
				t.Errorf("SafeName(%q) = %q keeps the inner extension %q", in, got, p)
			}
		}
	}
	if again, err := SafeName(got); err != nil || again != got {
		t.Errorf("SafeName not idempotent: %q -> %q -> %q (%v)", in, got, again, err)
	}
}

// defaultIgnorable is Default_Ignorable_Code_Point as Unicode 14's
// DerivedCoreProperties.txt lists it, written out so that the tests do not trust the
// property arithmetic in invisible.
var defaultIgnorable = &unicode.RangeTable{
	R16: []unicode.Range16{
		{0x00ad, 0x00ad, 1}, {0x034f, 0x034f, 1}, {0x061c, 0x061c, 1}, {0x115f, 0x1160, 1},
		{0x17b4, 0x17b5, 1}, {0x180b, 0x180f, 1}, {0x200b, 0x200f, 1}, {0x202a, 0x202e, 1},
		{0x2060, 0x206f, 1}, {0x3164, 0x3164, 1}, {0xfe00, 0xfe0f, 1}, {0xfeff, 0xfeff, 1},
		{0xffa0, 0xffa0, 1}, {0xfff0, 0xfff8, 1},
	},
	R32: []unicode.Range32{
		{0x1bca0, 0x1bca3, 1}, {0x1d173, 0x1d17a, 1}, {0xe0000, 0xe0fff, 1},
	},
}

func TestInvisibleIsDefaultIgnorable(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if unicode.Is(defaultIgnorable, r) && !invisible(r) {
			t.Errorf("%U is default-ignorable but kept", r)
		}
	}
	for _, r := range "aZ09_-.é字ж ~\u00a0\u3000" {
		if invisible(r) {
			t.Errorf("%U is visible but dropped", r)
		}
	}
}
