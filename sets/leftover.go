package sets

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Leftover is a directory of data_dir that holds uploads of a set no longer in the
// config: nothing resumes, serves or expires them any more.
type Leftover struct {
	Set     string // the directory's name: the set it belonged to
	Dir     string // absolute
	Uploads int    // uploads with a data file or a record in it
}

// uploadFile is a file the store keeps per upload: <id> (the bytes) or <id>.info (its
// record). The pattern is the store's own; sets cannot import the store.
var uploadFile = regexp.MustCompile(`^[0-9a-f]{32}(\.info)?$`)

// Leftovers looks in cfg's data_dir for directories of sets that are not in cfg, and
// returns them with one warning each, at the data_dir attribute (or the start of the
// file when data_dir is not written).
//
// A directory counts only if it holds upload files, so that whatever else comes to
// live in data_dir is not taken for a set. A data_dir that cannot be read yields
// nothing: it may not exist yet, and serve reports one it cannot use when it opens
// the stores. A data_dir on S3 yields nothing either: its uploads are not directories.
func Leftovers(cfg *Config) ([]Leftover, hcl.Diagnostics) {
	if cfg.DataDir.IsS3() {
		return nil, nil
	}
	entries, err := os.ReadDir(cfg.DataDir.Path)
	if err != nil {
		return nil, nil
	}
	configured := map[string]bool{}
	for _, s := range cfg.Sets {
		configured[s.Name] = true
	}
	var found []Leftover
	var diags hcl.Diagnostics
	for _, e := range entries {
		if !e.IsDir() || configured[e.Name()] {
			continue
		}
		dir := filepath.Join(cfg.DataDir.Path, e.Name())
		n := countUploads(dir)
		if n == 0 {
			continue
		}
		found = append(found, Leftover{Set: e.Name(), Dir: dir, Uploads: n})
		uploads := "uploads"
		if n == 1 {
			uploads = "upload"
		}
		diags = append(diags, warningAt(cfg.DataDirAt, fmt.Sprintf(
			"set %q is not in the config, but data_dir holds %d %s of it in %s: nothing resumes or expires them; put the set back to finish them, or remove the directory",
			e.Name(), n, uploads, dir)))
	}
	return found, diags
}

func countUploads(dir string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	ids := map[string]bool{}
	for _, e := range entries {
		if e.Type().IsRegular() && uploadFile.MatchString(e.Name()) {
			ids[strings.TrimSuffix(e.Name(), ".info")] = true
		}
	}
	return len(ids)
}
