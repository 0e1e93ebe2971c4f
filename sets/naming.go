package sets

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"iter"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"
)

// Naming is how a set names placed files.
type Naming string

const (
	// NamingOriginal keeps the sanitised client name and adds _1, _2... on conflict.
	NamingOriginal Naming = "original"
	// NamingUUID names files with a UUID derived from the upload, keeping the extension.
	NamingUUID Naming = "uuid"
)

// maxName is the file name limit of every common filesystem (in bytes on Linux ext4/xfs).
const maxName = 255

// numbered bounds NamingOriginal's _1, _2... suffixes. Past it a directory full of one
// name would cost a link attempt per file for every further upload, and clients would
// wait on it, so the names go on with suffixes drawn from the upload's ID instead.
const numbered = 100

// hashed is how many ID-derived suffixes follow the numbered ones before the last
// resort, the upload's own UUID, which no other upload can have.
const hashed = 16

var errNoUsableName = errors.New("no usable file name")

// SafeName reduces a client-supplied name to one safe base-name component: no
// separators, no control, formatting or invisible characters, valid NFC UTF-8, no
// leading dot, no script or executable extension before the last one, at most 255
// bytes, a lower-case extension and never a Windows device name. It is deterministic
// and idempotent, so checking a name and placing it agree.
func SafeName(hint string) (string, error) {
	// One pass nearly always settles the name. The steps can undo each other only in
	// contrived cases (a cut exposing an upper-case extension, lower-casing that
	// lengthens a name past the cap), so repeat to a fixed point; returning only fixed
	// points is what makes SafeName idempotent.
	s := hint
	for range 4 {
		next := clean(s)
		if next == s {
			if s == "" {
				return "", errNoUsableName
			}
			return s, nil
		}
		s = next
	}
	return "", errNoUsableName
}

func clean(s string) string {
	// "_" rather than nothing keeps a trace of what was there, so "a\xffb" does not
	// become a different real word; U+FFFD would be a character the client never sent.
	s = strings.ToValidUTF8(s, "_")
	// Clients send paths (old browsers sent C:\fakepath\...); only the last component
	// is the name.
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.Map(func(r rune) rune {
		if invisible(r) {
			return -1
		}
		return r
	}, s)
	// One spelling per name: macOS sends NFD, everyone else NFC.
	s = norm.NFC.String(s)
	// Windows drops trailing dots and spaces silently, and a leading dot hides a file
	// (or makes it .htaccess).
	s = strings.TrimFunc(s, func(r rune) bool { return r == '.' || unicode.IsSpace(r) })
	s = replaceUnsafe(s)
	if s == "" {
		return ""
	}
	if reservedOnWindows(s) {
		s = "_" + s
	}
	base, ext := splitExt(s)
	return capName(defuseInnerExts(base) + strings.ToLower(ext))
}

// invisible reports the runes a name must not hold because they show as nothing.
// Category C covers NUL and control characters, but also the bidi overrides used to
// make "gpj.exe" display as "exe.jpg", zero-width characters, and unassigned code
// points whose meaning a later Unicode version could change. With the two properties
// below it makes up Unicode's Default_Ignorable_Code_Point: Other_Default_Ignorable
// holds invisible "letters" (the Hangul fillers U+115F, U+1160, U+3164, U+FFA0, the
// Khmer inherent vowels U+17B4/5, the combining grapheme joiner U+034F), and
// Variation_Selector the selectors that make "a" and "a\ufe0f" two names that look
// alike. The braille blank U+2800 and the musical null notehead U+1D159 are graphic
// symbols outside the property that render as blank all the same.
func invisible(r rune) bool {
	return unicode.Is(unicode.C, r) || !unicode.IsGraphic(r) && !unicode.IsSpace(r) ||
		unicode.In(r, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector) ||
		r == '\u2800' || r == '\U0001D159'
}

// runnable is every extension a web server or desktop may run a file by, wherever it
// sits in the name: Apache's mod_mime maps each extension of "x.php.png", so that file
// runs as PHP on a server with AddHandler for .php.
var runnable = func() map[string]bool {
	m := map[string]bool{}
	for _, e := range slices.Concat(presets["scripts"], presets["executables"], []string{
		"php3", "php4", "php5", "php7", "php8", "phtml", "pht", "phar", "phps",
		"cgi", "fcgi", "asp", "aspx", "ashx", "asmx", "cer", "jsp", "jspx", "shtml", "htaccess",
		"bat", "cmd", "com", "scr", "pif", "msi", "vbs", "vbe", "wsf", "ps1", "jar", "hta",
	}) {
		m[e] = true
	}
	return m
}()

// defuseInnerExts turns the dot before each runnable extension inside base into "_":
// "x.php" of "x.php.png" becomes "x_php". The first component is the stem, not an
// extension, so "php.png" stays.
func defuseInnerExts(base string) string {
	parts := strings.Split(base, ".")
	var b strings.Builder
	for i, p := range parts {
		switch {
		case i == 0:
		case runnable[strings.ToLower(p)]:
			b.WriteByte('_')
		default:
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// replaceUnsafe turns characters that mean something in paths, URLs or shells into "_",
// and each run of whitespace into a single "_".
func replaceUnsafe(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			if !space {
				b.WriteByte('_')
			}
			space = true
			continue
		}
		space = false
		if strings.ContainsRune(`<>:"|?*%#;`, r) {
			r = '_'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// reservedOnWindows reports names Windows treats as devices, with or without an
// extension ("con.txt" opens the console); COM0, LPT0 and the superscript digits
// count too (Microsoft's naming rules list them, though no port has those numbers).
func reservedOnWindows(s string) bool {
	stem, _, _ := strings.Cut(s, ".")
	switch strings.ToUpper(stem) {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	for _, p := range []string{"COM", "LPT"} {
		if len(stem) > 3 && strings.EqualFold(stem[:3], p) {
			if d := stem[3:]; len(d) == 1 && d[0] >= '0' && d[0] <= '9' || d == "¹" || d == "²" || d == "³" {
				return true
			}
		}
	}
	return false
}

// capName shortens s to maxName bytes, keeping the extension by cutting the base. An
// extension too long to leave room for any base is cut along with the rest.
func capName(s string) string {
	if len(s) <= maxName {
		return s
	}
	base, ext := splitExt(s)
	if len(ext) <= maxName-utf8.UTFMax {
		s = truncate(base, maxName-len(ext)) + ext
	} else {
		s = truncate(s, maxName)
	}
	// A cut can end the name in a dot, which Windows would drop.
	return strings.TrimRight(s, ".")
}

// truncate cuts s to at most n bytes without splitting a rune.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// splitExt splits at the last dot: "a.tar.gz" is ("a.tar", ".gz"). A name's first
// character is never its dot, so ".htaccess"-like names never come back from SafeName.
func splitExt(s string) (base, ext string) {
	i := strings.LastIndexByte(s, '.')
	if i <= 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// Ext returns the lower-cased extension of a name, without the dot ("" if none).
func Ext(name string) string {
	_, ext := splitExt(name)
	return strings.ToLower(strings.TrimPrefix(ext, "."))
}

// Candidates yields the final names to try, in order, for a safe name and the upload's
// ID. They depend on nothing else, so a recovery pass after a crash re-derives the same
// names and finds the file it had already placed.
func (s *Set) Candidates(safe, id string) iter.Seq[string] {
	base, ext := splitExt(safe)
	ext = strings.ToLower(ext)
	if s.Naming == NamingUUID {
		return func(yield func(string) bool) {
			// The UUID is the name: only an absurdly long extension gives way.
			yield(strings.TrimRight(truncate(uuidName(id)+ext, maxName), "."))
		}
	}
	return func(yield func(string) bool) {
		if !yield(fit(base, "", ext)) {
			return
		}
		for i := 1; i < numbered; i++ {
			if !yield(fit(base, "_"+strconv.Itoa(i), ext)) {
				return
			}
		}
		for i := range hashed {
			if !yield(fit(base, "_"+hashedSuffix(id, i), ext)) {
				return
			}
		}
		yield(fit(base, "_"+uuidName(id), ext))
	}
}

// hashedSuffix is the i-th suffix of an upload past the numbered ones: random-looking,
// so a thousand uploads of one name rarely collide, yet the same on every attempt, so a
// retry after a crash finds the file it placed.
func hashedSuffix(id string, i int) string {
	sum := sha256.Sum256([]byte("uploadsets/suffix/" + strconv.Itoa(i) + "/" + id))
	return hex.EncodeToString(sum[:4])
}

// uuidName derives a version-4-shaped UUID from the upload ID through a hash, so the
// public name is stable for the upload but does not reveal its ID (which grants PATCH
// and DELETE on it).
func uuidName(id string) string {
	sum := sha256.Sum256([]byte("uploadsets/uuid-name/" + id))
	var u uuid.UUID
	copy(u[:], sum[:16])
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u.String()
}

// fit joins base+suffix+ext within maxName bytes, cutting the base first (keeping at
// least one rune) and only then the extension. The extension can only be cut when it is
// hundreds of bytes long, so no cut turns it into a short one such as ".exe".
func fit(base, suffix, ext string) string {
	over := len(base) + len(suffix) + len(ext) - maxName
	if over <= 0 {
		return base + suffix + ext
	}
	_, first := utf8.DecodeRuneInString(base)
	keep := max(len(base)-over, first)
	cut := truncate(base, keep)
	if cut == "" {
		cut = base[:first]
	}
	name := cut + suffix + ext
	return strings.TrimRight(truncate(name, maxName), ".")
}
