package sets

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hashicorp/hcl/v2"

	"github.com/uploadsets/uploadsets/internal/durable"
)

// ProbeDirs checks that data_dir and every set's local destination can be written, by
// creating and removing a file in each, and reports each problem at the attribute the
// directory comes from. An unwritable destination would otherwise show first as a
// failed upload, after its whole body arrived.
//
// With create, missing directories are made (with dir_mode), as serve needs them; check
// passes false and probes the nearest existing parent instead, changing nothing.
//
// Locations on S3 are not probed: there is no directory to make, and whether a bucket
// can be written is for the S3 store to find out with its client.
func (c *Config) ProbeDirs(create bool) hcl.Diagnostics {
	var diags hcl.Diagnostics
	probe := func(what string, dir Location, mode os.FileMode, at hcl.Range) {
		if dir.IsS3() {
			return
		}
		if err := probeDir(dir.Path, mode, create); err != nil {
			diags = append(diags, errorAt(at, fmt.Sprintf("%s %s cannot be used: %s", what, dir.Path, describe(err))))
		}
	}
	probe("data_dir", c.DataDir, c.DirMode, c.DataDirAt)
	for _, s := range c.Sets {
		probe(fmt.Sprintf("destination of set %q", s.Name), s.Destination, s.DirMode, s.DestinationAt)
	}
	return diags
}

func probeDir(dir string, mode os.FileMode, create bool) error {
	if create {
		if err := durable.MkdirAll(dir, mode); err != nil {
			return err
		}
	} else {
		// The nearest directory that exists is where the missing ones would be made.
		for {
			st, err := os.Stat(dir)
			if err == nil {
				if !st.IsDir() {
					return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
				}
				break
			}
			if !errors.Is(err, fs.ErrNotExist) || filepath.Dir(dir) == dir {
				return err
			}
			dir = filepath.Dir(dir)
		}
	}
	var b [8]byte
	rand.Read(b[:])
	name := filepath.Join(dir, ".uploadsets-probe-"+hex.EncodeToString(b[:]))
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(name)
}

// describe names the cause in an operator's words; the path is already in the message.
func describe(err error) string {
	var errno syscall.Errno
	switch {
	case errors.Is(err, syscall.EROFS):
		return "the file system is read-only"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "no space left"
	case errors.Is(err, syscall.ENOTDIR):
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return pe.Path + " is not a directory"
		}
		return "a part of the path is not a directory"
	case errors.As(err, &errno):
		return errno.Error()
	}
	return err.Error()
}
