//go:build cgo

package images

// The two things govips does not expose: blocking loaders, and a header-only load
// through the one loader the sniffed type names.

// #cgo pkg-config: vips
// #include <stdlib.h>
// #include <vips/vips.h>
//
// // Every loader is blocked but those of the allow-list: even if the sniffing were
// // wrong, libvips could not reach its SVG, PDF, TIFF, FITS, Magick... parsers.
// // vips_block_untrusted_set alone would leave TIFF, FITS and others open.
// static void uploadsets_block_loaders(void) {
//   vips_block_untrusted_set(TRUE);
//   vips_operation_block_set("VipsForeignLoad", TRUE);
//   vips_operation_block_set("VipsForeignLoadJpeg", FALSE);
//   vips_operation_block_set("VipsForeignLoadPng", FALSE);
//   vips_operation_block_set("VipsForeignLoadWebp", FALSE);
//   vips_operation_block_set("VipsForeignLoadNsgif", FALSE);
//   vips_operation_block_set("VipsForeignLoadHeif", FALSE);
// }
//
// // Loads only the header: libvips images are lazy, so no pixel is decoded here.
// static int uploadsets_header(const char *path, int kind, int *width, int *height, int *orientation) {
//   VipsImage *img = NULL;
//   int err;
//   switch (kind) {
//   case 1: err = vips_jpegload(path, &img, "access", VIPS_ACCESS_SEQUENTIAL, NULL); break;
//   case 2: err = vips_pngload(path, &img, "access", VIPS_ACCESS_SEQUENTIAL, NULL); break;
//   case 3: err = vips_webpload(path, &img, "access", VIPS_ACCESS_SEQUENTIAL, NULL); break;
//   case 4: err = vips_gifload(path, &img, "access", VIPS_ACCESS_SEQUENTIAL, NULL); break;
//   case 5: err = vips_heifload(path, &img, "access", VIPS_ACCESS_SEQUENTIAL, NULL); break;
//   default: return -1;
//   }
//   if (err) {
//     return err;
//   }
//   *width = vips_image_get_width(img);
//   *height = vips_image_get_height(img);
//   *orientation = vips_image_get_orientation(img);
//   g_object_unref(img);
//   return 0;
// }
import "C"

import (
	"errors"
	"strings"
	"unsafe"
)

func blockLoaders() { C.uploadsets_block_loaders() }

// header reads the dimensions and EXIF orientation of path, which sniff found to be of
// kind k. The error text is libvips's, which may hold the path: log it, never show it.
// libvips keeps one error buffer for the process, so under load it may also hold another
// job's message; it is only ever logged.
func header(path string, k kind) (width, height, orientation int, err error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var w, h, o C.int
	if C.uploadsets_header(cpath, C.int(k), &w, &h, &o) != 0 {
		msg := strings.TrimSpace(C.GoString(C.vips_error_buffer()))
		C.vips_error_clear()
		if msg == "" {
			msg = "header not readable"
		}
		return 0, 0, 0, errors.New(msg)
	}
	return int(w), int(h), int(o), nil
}
