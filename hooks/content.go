package hooks

import (
	"strings"

	"github.com/gabriel-vasile/mimetype"
)

// family is what the bytes of a file with a given extension must look like. Only
// extensions whose formats have reliable signatures are checked; the rest pass.
type family func(m *mimetype.MIME) bool

func under(prefixes ...string) family {
	return func(m *mimetype.MIME) bool {
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
	image   = under("image/")
	audio   = under("audio/", "application/ogg", "video/ogg")
	video   = under("video/", "audio/mp4")
	text    = under("text/")
	zip     = under("application/zip")
	pdf     = under("application/pdf")
	gzip    = under("application/gzip")
	bzip2   = under("application/x-bzip2")
	xz      = under("application/x-xz")
	sevenz  = under("application/x-7z-compressed")
	tarball = under("application/x-tar")
)

// families: an image must be an image, a text file text, a zip-based document a zip.
// SVG is XML text, so it counts as text. The check is by family, not exact type: a JPEG
// named .png is still an image and is served as one; HTML named .png is not.
var families = map[string]family{
	"jpg": image, "jpe": image, "jpeg": image, "png": image, "gif": image, "bmp": image,
	"webp": image, "heic": image, "heif": image, "avif": image, "tif": image, "tiff": image, "ico": image,
	"svg": text,
	"wav": audio, "mp3": audio, "aac": audio, "ogg": audio, "oga": audio, "flac": audio, "m4a": audio, "opus": audio,
	"mp4": video, "m4v": video, "webm": video, "mov": video, "mkv": video, "avi": video,
	"txt": text, "csv": text, "json": text, "xml": text, "yaml": text, "yml": text, "ini": text, "md": text,
	"pdf": pdf,
	"zip": zip, "docx": zip, "xlsx": zip, "pptx": zip, "odt": zip, "ods": zip, "odp": zip, "epub": zip, "jar": zip,
	"gz": gzip, "tgz": gzip, "bz2": bzip2, "xz": xz, "txz": xz, "7z": sevenz, "tar": tarball,
}

// sniff reports the detected type of the file at path and whether it fits ext's family.
// An empty file fits nothing that has a signature.
func sniff(path, ext string) (detected string, ok bool, err error) {
	fits, checked := families[ext]
	if !checked {
		return "", true, nil
	}
	m, err := mimetype.DetectFile(path)
	if err != nil {
		return "", false, err
	}
	detected, _, _ = strings.Cut(m.String(), ";") // "text/plain", not "text/plain; charset=utf-8"
	return detected, fits(m), nil
}
