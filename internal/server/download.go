package server

import (
	"context"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/hooks"
	"github.com/uploadsets/uploadsets/internal/uploads"
	"github.com/uploadsets/uploadsets/sets"
)

// sandbox is the CSP of everything served from uploads: even if a browser were talked
// into rendering one, it runs nothing and loads nothing.
const sandbox = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"

// getUpload answers GET on an upload URL: the placed file's URL once placed (a client
// that lost the final response can follow it), else the bytes received so far, as an
// attachment that nothing renders. It runs outside tusd's lock (see disk.Open), so
// a slow reader never keeps the uploader from resuming.
func (s *instance) getUpload(w http.ResponseWriter, r *http.Request, us *uploadSet, id string) {
	rec, f, err := us.store.Open(id)
	if err != nil {
		var he handler.Error
		if !errors.As(err, &he) {
			he = uploads.ErrInternal
		}
		writeTusError(w, he)
		return
	}
	if f == nil {
		http.Redirect(w, r, us.hooks.FileURL(s.baseURL(r), rec.Name), http.StatusSeeOther)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", sandbox)
	h.Set("Content-Disposition", attachment("attachment", clientFileName(rec)))
	h.Set("Cache-Control", "no-store")
	part := io.NewSectionReader(f, 0, rec.ReportedOffset())
	http.ServeContent(s.progressDeadline(w), r, "", rec.Created, part)
}

// attachment is a Content-Disposition with the name in RFC 5987's filename*, which
// mime.FormatMediaType uses for names that are not plain ASCII.
func attachment(disposition, name string) string {
	if name == "" {
		return disposition
	}
	if v := mime.FormatMediaType(disposition, map[string]string{"filename": name}); v != "" {
		return v
	}
	return disposition
}

// progressDeadline gives every write of a response network_timeout to go through, so a
// reader that stops reading loses its connection instead of holding it (and shutdown)
// for ever, while a slow but steady one is served to the end.
func (s *instance) progressDeadline(w http.ResponseWriter) http.ResponseWriter {
	return &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: s.cfg.NetworkTimeout}
}

type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

// deadlineChunk is how much one deadline covers when the body is sent with sendfile: a
// reader must take this much per network_timeout (at 60 s, 2 KiB/s) to be served.
const deadlineChunk = sendLowWater

// sendLowWater is TCP_NOTSENT_LOWAT of every connection. Without it a write into a
// full send buffer (autotuned up to 4 MiB) waits until a third of it has drained, which
// for a slow phone takes longer than network_timeout although it reads all the time;
// with it, the write wakes as soon as the unsent bytes are below this.
const sendLowWater = 128 << 10

// lowWater sets sendLowWater on each new connection (http.Server.ConnContext).
func lowWater(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*net.TCPConn); ok {
		if raw, err := tc.SyscallConn(); err == nil {
			raw.Control(func(fd uintptr) {
				unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, sendLowWater)
			})
		}
	}
	return ctx
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.ResponseWriter.Write(p)
}

// ReadFrom keeps net/http's sendfile path, one chunk per deadline. http.ServeContent
// hands it an io.LimitedReader over the file, which is split up without hiding the
// file from sendfile.
func (w *deadlineWriter) ReadFrom(src io.Reader) (int64, error) {
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	lr, limited := src.(*io.LimitedReader)
	if !ok || !limited {
		return io.Copy(struct{ io.Writer }{w}, src)
	}
	var total int64
	for lr.N > 0 {
		w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
		n, err := rf.ReadFrom(&io.LimitedReader{R: lr.R, N: min(lr.N, deadlineChunk)})
		total += n
		lr.N -= n
		if err != nil {
			return total, err
		}
		if n == 0 {
			break
		}
	}
	return total, nil
}

func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// clientFileName is the name a partial upload is downloaded as: the client's, made
// safe as if it were placed.
func clientFileName(rec uploads.Record) string {
	name, err := sets.SafeName(hooks.ClientName(rec.MetaData))
	if err != nil {
		return ""
	}
	return name
}
