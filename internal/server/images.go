package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/hooks"
	"github.com/uploadsets/uploadsets/internal/durable"
	"github.com/uploadsets/uploadsets/internal/images"
)

// imageProcessor is the server's one libvips pool, started the first time a set with
// an image block needs it (libvips cannot be restarted, so reloads keep it, and its
// image_workers).
func (s *Server) imageProcessor(workers int) (*images.Processor, error) {
	if s.images == nil {
		p, err := images.Start(workers, s.log.Named("images"))
		if err != nil {
			return nil, err
		}
		s.images = p
	}
	return s.images, nil
}

// processImages is the hooks.Process of an image set. Its outputs get names derived
// from the upload (<id>.out.main.jpg, <id>.out.t-small.jpg) beside the data, renamed
// there once synced, the main one last: after a crash, an upload whose main output
// exists is placed from its outputs as they are, so placement finds what an earlier
// attempt placed (the same inode) instead of placing a second copy.
func (s *Server) processImages(us *uploadSet, p *images.Processor, spec images.Spec) func(ctx context.Context, id, src, name string) (*hooks.Processed, error) {
	return func(ctx context.Context, id, src, name string) (*hooks.Processed, error) {
		dir := us.scratch
		if src != "" {
			dir = filepath.Dir(src)
		}
		prefix := filepath.Join(dir, id+".out.")
		if proc, ok := earlierOutputs(prefix, name, spec); ok {
			return proc, nil
		}
		if src == "" {
			// The bytes are in S3: libvips reads a local copy, which goes once
			// the outputs are made. The outputs stay this instance's; another
			// instance retrying makes the same ones, placed under the names
			// these would have had (s3dest knows them by the upload).
			local, err := localCopy(us, id, dir)
			if err != nil {
				return nil, err
			}
			defer os.Remove(local)
			src = local
		}
		// The wait for a worker counts toward the request's time; a job that has
		// started runs to its end (images.Processor.Process).
		wait, cancel := context.WithTimeout(ctx, s.current.Load().cfg.NetworkTimeout)
		defer cancel()
		spec.Dir = dir
		t0 := time.Now()
		res, err := p.Process(wait, src, spec)
		s.metrics.images.WithLabelValues(us.set.Name).Observe(time.Since(t0).Seconds())
		var re *images.RejectError
		switch {
		case errors.As(err, &re):
			us.hooks.Log.Info("ImageRejected", "id", id, "detail", re.Detail)
			return nil, us.set.ImageRejected(name, errors.Is(err, images.ErrTooLarge), re.Msg)
		case errors.Is(err, context.DeadlineExceeded):
			return nil, handler.NewError("ERR_IMAGES_BUSY", fmt.Sprintf(
				"set %q: every image worker is busy; the upload is complete, retry it in a moment to have it processed", us.set.Name), http.StatusServiceUnavailable)
		case err != nil:
			return nil, err
		}
		for label, t := range res.Thumbs {
			if err := os.Rename(t.Path, prefix+"t-"+label+t.Ext); err != nil {
				res.Remove()
				return nil, err
			}
		}
		if err := os.Rename(res.Main.Path, prefix+"main"+res.Main.Ext); err != nil {
			res.Remove()
			return nil, err
		}
		if err := durable.SyncDir(dir); err != nil {
			return nil, err
		}
		proc, _ := earlierOutputs(prefix, name, spec)
		return proc, nil
	}
}

// earlierOutputs are the outputs an attempt left under prefix, if its main one is
// there.
func earlierOutputs(prefix, name string, spec images.Spec) (*hooks.Processed, bool) {
	mains, _ := filepath.Glob(globEscape(prefix) + "main.*")
	if len(mains) != 1 {
		return nil, false
	}
	ext := filepath.Ext(mains[0])
	proc := &hooks.Processed{Main: mains[0], Name: images.Output{Ext: ext}.Name(name)}
	for _, t := range spec.Thumbnails {
		found, _ := filepath.Glob(globEscape(prefix) + "t-" + t.Label + ".*")
		if len(found) != 1 {
			return nil, false
		}
		proc.Thumbs = append(proc.Thumbs, hooks.Thumb{Label: t.Label, Path: found[0], Ext: filepath.Ext(found[0])})
	}
	proc.Done = func() {
		all, _ := filepath.Glob(globEscape(prefix) + "*")
		for _, f := range all {
			os.Remove(f)
		}
	}
	return proc, true
}

func globEscape(s string) string {
	return strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`).Replace(s)
}

// localCopy copies a complete upload's bytes out of its store into dir.
func localCopy(us *uploadSet, id, dir string) (string, error) {
	rec, data, err := us.store.Open(id)
	if err != nil {
		return "", err
	}
	if data == nil {
		return "", fmt.Errorf("upload %s has no data to process", id)
	}
	defer data.Close()
	f, err := os.CreateTemp(dir, id+".src-*")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, io.NewSectionReader(data, 0, rec.Size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
