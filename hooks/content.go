package hooks

import (
	"bytes"
	"strings"

	"github.com/gabriel-vasile/mimetype"
)

// headSize is mimetype's default read limit: detecting on exactly what DetectFile would
// read keeps its results, and the SVG check below looks at the same bytes.
const headSize = 3072

// family is what the bytes of a file with a given extension must look like: m is what
// mimetype detected in head, the start of the file. Only extensions whose formats have
// reliable signatures are checked; the rest pass.
type family func(m *mimetype.MIME, head []byte) bool

func under(prefixes ...string) family {
	return func(m *mimetype.MIME, _ []byte) bool {
		for ; m != nil; m = m.Parent() {
			for _, p := range prefixes {
				if strings.HasPrefix(m.String(), p) {
					return true
				}
			}
		}
		return false
	}
}

var (
	anyImage = under("image/")
	audio    = under("audio/", "application/ogg", "video/ogg")
	video    = under("video/", "audio/mp4")
	text     = under("text/")
	svgDoc   = under("image/svg+xml")
	// TrueType outlines are common in .otf files, so any font fits any font extension.
	font = under("font/")
	// Any OLE2 compound file: mimetype tells Word from Excel by CLSIDs that are often
	// past the bytes it reads, so a real .xls can come back as bare OLE storage.
	ole     = under("application/x-ole-storage")
	rtf     = under("text/rtf")
	pdf     = under("application/pdf")
	zip     = under("application/zip")
	gzip    = under("application/gzip")
	bzip2   = under("application/x-bzip2")
	xz      = under("application/x-xz")
	zstd    = under("application/zstd")
	lzip    = under("application/lzip")
	sevenz  = under("application/x-7z-compressed")
	rar     = under("application/x-rar-compressed")
	cab     = under("application/vnd.ms-cab-compressed", "application/x-installshield")
	tarball = under("application/x-tar")
	wasm    = under("application/wasm")
	sqlite  = under("application/vnd.sqlite3")
)

// image is a binary image format. mimetype files SVG under image/, but reaches it (and
// plain-text Netpbm) only through its text detector: markup that can carry script is
// exactly what must not pass as a .png.
func image(m *mimetype.MIME, head []byte) bool {
	return anyImage(m, head) && !text(m, head)
}

// svg requires an SVG document. mimetype alone misses ordinary ones (a DOCTYPE before
// <svg> without an XML declaration, a comment followed by a line break, a byte-order
// mark), so a document element named svg is enough too.
func svg(m *mimetype.MIME, head []byte) bool {
	return svgDoc(m, head) || svgRoot(head)
}

// families: an image must be a binary image, a text file text, a zip-based document a
// zip. The check is by family, not exact type: a JPEG named .png is still an image and
// is served as one; HTML or SVG named .png is not. Text is loose on purpose: HTML named
// .txt is served as text/plain with nosniff and a sandbox CSP, so it displays as text.
// Extensions that several unrelated formats share (.dot is also Graphviz, .pot gettext,
// .msg Tcl catalogs, .db anything) are not checked, nor formats mimetype cannot detect
// (.lz4, .iso).
var families = map[string]family{
	"jpg": image, "jpe": image, "jpeg": image, "png": image, "gif": image, "bmp": image,
	"webp": image, "heic": image, "heif": image, "avif": image, "tif": image, "tiff": image, "ico": image,
	"psd": image,
	"svg": svg,
	"wav": audio, "mp3": audio, "aac": audio, "ogg": audio, "oga": audio, "flac": audio, "m4a": audio, "opus": audio,
	"mid": audio, "midi": audio,
	"mp4": video, "m4v": video, "webm": video, "mov": video, "mkv": video, "avi": video,
	"txt": text, "csv": text, "json": text, "xml": text, "yaml": text, "yml": text, "ini": text, "md": text,
	"rtf": rtf,
	"pdf": pdf,
	"doc": ole, "xls": ole, "ppt": ole,
	"zip": zip, "docx": zip, "xlsx": zip, "pptx": zip, "odt": zip, "ods": zip, "odp": zip, "epub": zip, "jar": zip,
	"gz": gzip, "tgz": gzip, "bz2": bzip2, "xz": xz, "txz": xz, "zst": zstd, "lz": lzip,
	"7z": sevenz, "rar": rar, "cab": cab, "tar": tarball,
	"ttf": font, "otf": font, "ttc": font, "woff": font, "woff2": font,
	"wasm": wasm, "sqlite": sqlite, "sqlite3": sqlite,
}

// sniff reports the detected type of a file whose first bytes head reads (only when
// ext has a family to check) and whether it fits ext's family.
// An empty file fits nothing that has a signature.
func sniff(head func() ([]byte, error), ext string) (detected string, ok bool, err error) {
	fits, checked := families[ext]
	if !checked {
		return "", true, nil
	}
	b, err := head()
	if err != nil {
		return "", false, err
	}
	m := mimetype.Detect(b)
	detected, _, _ = strings.Cut(m.String(), ";") // "text/plain", not "text/plain; charset=utf-8"
	return detected, fits(m, b), nil
}

// svgRoot reports whether the document element of the XML in head is <svg>, skipping
// what may come before it: a byte-order mark, the XML declaration and other processing
// instructions, comments and a DOCTYPE (whose internal subset may hold ">"). It is
// a check that the file is what it claims, not a security boundary: a served .svg is
// an attachment under a sandbox CSP whatever it holds.
func svgRoot(head []byte) bool {
	s := bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	for {
		s = bytes.TrimLeft(s, " \t\r\n")
		var end int
		switch {
		case bytes.HasPrefix(s, []byte("<?")):
			end = after(s, 2, "?>")
		case bytes.HasPrefix(s, []byte("<!--")):
			end = after(s, 4, "-->")
		case bytes.HasPrefix(s, []byte("<!DOCTYPE")):
			end = after(s, 9, ">")
			if open := bytes.IndexByte(s, '['); open >= 0 && (end < 0 || open < end) {
				if shut := after(s, open, "]"); shut >= 0 {
					end = after(s, shut, ">")
				} else {
					end = -1
				}
			}
		default:
			rest, ok := bytes.CutPrefix(s, []byte("<svg"))
			return ok && len(rest) > 0 && bytes.IndexByte([]byte(" \t\r\n>/"), rest[0]) >= 0
		}
		if end < 0 {
			return false
		}
		s = s[end:]
	}
}

// after returns the index just past the first sep in s[from:], or -1.
func after(s []byte, from int, sep string) int {
	i := bytes.Index(s[from:], []byte(sep))
	if i < 0 {
		return -1
	}
	return from + i + len(sep)
}
