package hooks

import (
	"strings"
	"testing"
)

// Samples are the signatures of real files padded to a plausible header; svg* are shapes
// ordinary SVG files come in (from editors, icon sets, minifiers).
var (
	svgProlog = `<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>`
	svgIllustrator = `<?xml version="1.0" encoding="utf-8"?>
<!-- Generator: Adobe Illustrator 16.0.0, SVG Export Plug-In . SVG Version: 6.00 Build 0)  -->
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [
	<!ENTITY ns_svg "http://www.w3.org/2000/svg">
	<!ENTITY ns_xlink "http://www.w3.org/1999/xlink">
]>
<svg version="1.1" xmlns="&ns_svg;" xmlns:xlink="&ns_xlink;" width="10" height="10"></svg>`
	svgDoctype = `<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>`
	svgComment = `<!--
 * Font Awesome Free 5.15.2 by @fontawesome - https://fontawesome.com
-->
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512"><path d="M0 0h512v512H0z"/></svg>`
	svgMinified = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><path d="M0 0h1v1H0z"/></svg>`
	svgBOM      = "\ufeff" + svgProlog
	svgScript   = `<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.domain)"/>`

	html    = "<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
	pngHead = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + strings.Repeat("\x00", 64)
	oleHead = "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + strings.Repeat("\x00", 504)
	zipHead = "PK\x03\x04\x14\x00\x00\x00\x08\x00" + strings.Repeat("\x00", 64)
	pad     = strings.Repeat("\x00", 64)
)

func TestSniff(t *testing.T) {
	tests := map[string]struct {
		ext, data string
		ok        bool
	}{
		"svg with XML declaration":        {"svg", svgProlog, true},
		"svg from Illustrator":            {"svg", svgIllustrator, true},
		"svg with a DOCTYPE only":         {"svg", svgDoctype, true},
		"svg after a comment":             {"svg", svgComment, true},
		"svg minified":                    {"svg", svgMinified, true},
		"svg after a byte-order mark":     {"svg", svgBOM, true},
		"svg with script is still svg":    {"svg", svgScript, true},
		"html named .svg":                 {"svg", html, false},
		"png named .svg":                  {"svg", pngHead, false},
		"plain text named .svg":           {"svg", "just some words\n", false},
		"xml that is not svg named .svg":  {"svg", `<?xml version="1.0"?><note><to>x</to></note>`, false},
		"unterminated comment named .svg": {"svg", "<!-- <svg>", false},
		"empty named .svg":                {"svg", "", false},

		"svg named .png":            {"png", svgProlog, false},
		"minified svg named .png":   {"png", svgMinified, false},
		"doctype svg named .jpg":    {"jpg", svgDoctype, false},
		"svg script named .gif":     {"gif", svgScript, false},
		"svg named .webp":           {"webp", svgComment, false},
		"svg named .ico":            {"ico", svgIllustrator, false},
		"plain netpbm named .png":   {"png", "P1\n2 2\n0 1\n1 0\n", false},
		"png named .png":            {"png", pngHead, true},
		"png named .jpg is a image": {"jpg", pngHead, true},
		"empty named .png":          {"png", "", false},

		"html named .txt displays as text": {"txt", html, true},
		"svg named .txt displays as text":  {"txt", svgProlog, true},
		"svg named .xml is xml":            {"xml", svgProlog, true},

		"doc":                   {"doc", oleHead, true},
		"xls":                   {"xls", oleHead, true},
		"ppt":                   {"ppt", oleHead, true},
		"html saved as .xls":    {"xls", "<html><table><tr><td>1</td></tr></table></html>", false},
		"docx renamed .doc":     {"doc", zipHead, false},
		"rtf":                   {"rtf", `{\rtf1\ansi\deff0{\fonttbl{\f0\fswiss Helvetica;}}\f0\pard Hello\par}`, true},
		"html named .rtf":       {"rtf", html, false},
		"text named .rtf":       {"rtf", "Hello\n", false},
		"wasm":                  {"wasm", "\x00asm\x01\x00\x00\x00" + pad, true},
		"js named .wasm":        {"wasm", "export default 1;\n", false},
		"sqlite":                {"sqlite", "SQLite format 3\x00\x10\x00\x01\x01" + pad, true},
		"sqlite3":               {"sqlite3", "SQLite format 3\x00\x10\x00\x01\x01" + pad, true},
		"psd":                   {"psd", "8BPS\x00\x01" + pad, true},
		"svg named .psd":        {"psd", svgProlog, false},
		"midi":                  {"mid", "MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60MTrk\x00\x00\x00\x04\x00\xff\x2f\x00", true},
		"ttf":                   {"ttf", "\x00\x01\x00\x00\x00\x0a\x00\x80\x00\x03\x00\x20" + pad, true},
		"truetype named .otf":   {"otf", "\x00\x01\x00\x00\x00\x0a\x00\x80\x00\x03\x00\x20" + pad, true},
		"otf":                   {"otf", "OTTO\x00\x0a\x00\x80\x00\x03\x00\x20" + pad, true},
		"ttc":                   {"ttc", "ttcf\x00\x01\x00\x00\x00\x00\x00\x02" + pad, true},
		"woff":                  {"woff", "wOFF\x00\x01\x00\x00" + pad, true},
		"woff2":                 {"woff2", "wOF2\x00\x01\x00\x00" + pad, true},
		"html named .woff2":     {"woff2", html, false},
		"cab":                   {"cab", "MSCF\x00\x00\x00\x00" + pad, true},
		"installshield cab":     {"cab", "ISc(\x00\x00\x00\x02" + pad, true},
		"rar 4":                 {"rar", "Rar!\x1a\x07\x00" + pad, true},
		"rar 5":                 {"rar", "Rar!\x1a\x07\x01\x00" + pad, true},
		"zip named .rar":        {"rar", zipHead, false},
		"zstd":                  {"zst", "\x28\xb5\x2f\xfd\x04\x00" + pad, true},
		"lzip":                  {"lz", "LZIP\x01\x0c" + pad, true},
		"gzip named .zst":       {"zst", "\x1f\x8b\x08\x00" + pad, false},
		"unchecked extension":   {"lz4", html, true},
		"shared extension .dot": {"dot", "digraph { a -> b }\n", true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			detected, ok, err := sniff(headOf(tt.data), tt.ext)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.ok {
				t.Errorf("%q as .%s: detected %s, fits %v, want %v", tt.data[:min(len(tt.data), 40)], tt.ext, detected, ok, tt.ok)
			}
		})
	}
}

// Every checked extension but the text ones refuses HTML and SVG: those are what a
// browser would run.
func TestSniffMarkupFitsOnlyText(t *testing.T) {
	textual := map[string]bool{"txt": true, "csv": true, "json": true, "xml": true, "yaml": true, "yml": true, "ini": true, "md": true}
	for ext := range families {
		for name, data := range map[string]string{"html": html, "svg": svgProlog} {
			want := textual[ext] || ext == "svg" && name == "svg"
			if _, ok, err := sniff(headOf(data), ext); err != nil || ok != want {
				t.Errorf("%s named .%s: fits %v (%v), want %v", name, ext, ok, err, want)
			}
		}
	}
}

// svgRoot's own cases; mimetype already accepts some of these (it takes "<svgfoo" for
// svg), which is harmless and not what is tested here.
func TestSVGRoot(t *testing.T) {
	tests := map[string]struct {
		head string
		want bool
	}{
		"bare":                   {"<svg>", true},
		"self-closing":           {"<svg/>", true},
		"line break in the tag":  {"<svg\n xmlns='http://www.w3.org/2000/svg'/>", true},
		"longer name":            {"<svgfoo/>", false},
		"prefixed":               {"<svg:svg/>", false},
		"html root":              {"<!DOCTYPE html><html><svg/></html>", false},
		"subset holding >":       {"<!DOCTYPE svg [<!ENTITY a \"<b>\">]><svg/>", true},
		"subset never closed":    {"<!DOCTYPE svg [<!ENTITY a \"b\"><svg/>", false},
		"declaration not closed": {"<?xml version=\"1.0\" <svg/>", false},
		"only a comment":         {"<!-- x -->", false},
		"empty":                  {"", false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := svgRoot([]byte(tt.head)); got != tt.want {
				t.Errorf("svgRoot(%q) = %v, want %v", tt.head, got, tt.want)
			}
		})
	}
}

// headOf reads data's first bytes as a store's Head would.
func headOf(data string) func() ([]byte, error) {
	return func() ([]byte, error) { return []byte(data[:min(len(data), headSize)]), nil }
}
