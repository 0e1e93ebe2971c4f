package sets

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLeftovers(t *testing.T) {
	const (
		id1 = "0123456789abcdef0123456789abcdef"
		id2 = "fedcba9876543210fedcba9876543210"
	)
	tests := map[string]struct {
		config string
		files  []string // under the config's directory; a trailing / makes a directory
		want   []Leftover
		diags  string // WriteDiagnostics output, $DIR for the config's directory
	}{
		"no data_dir yet": {
			config: `set "photos" {}`,
		},
		"only configured sets": {
			config: `set "photos" {}`,
			files:  []string{"data/photos/" + id1, "data/photos/" + id1 + ".info"},
		},
		"a removed set, data_dir written": {
			config: "listen = \":0\"\ndata_dir = \"./data\"\nset \"photos\" {}\n",
			files: []string{
				"data/photos/" + id1 + ".info",
				"data/old/" + id1, "data/old/" + id1 + ".info", // one upload, two files
				"data/old/" + id2, // its record not written yet
				"data/old/notes.txt",
			},
			want:  []Leftover{{Set: "old", Uploads: 2}},
			diags: `$DIR/config.hcl:2,12: warning: set "old" is not in the config, but data_dir holds 2 uploads of it in $DIR/data/old: nothing resumes or expires them; put the set back to finish them, or remove the directory` + "\n",
		},
		"removed sets, data_dir by default": {
			config: `set "photos" {}`,
			files:  []string{"data/a/" + id1 + ".info", "data/b/" + id2},
			want:   []Leftover{{Set: "a", Uploads: 1}, {Set: "b", Uploads: 1}},
			diags: `$DIR/config.hcl:1,1: warning: set "a" is not in the config, but data_dir holds 1 upload of it in $DIR/data/a: nothing resumes or expires them; put the set back to finish them, or remove the directory` + "\n" +
				`$DIR/config.hcl:1,1: warning: set "b" is not in the config, but data_dir holds 1 upload of it in $DIR/data/b: nothing resumes or expires them; put the set back to finish them, or remove the directory` + "\n",
		},
		"directories without uploads are not sets": {
			config: `set "photos" {}`,
			files: []string{
				"data/empty/", "data/outbox/events.db", "data/upper/" + strings.ToUpper(id1),
				"data/nested/" + id1 + "/", "data/" + id1 + ".info",
			},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				p := filepath.Join(dir, f)
				if strings.HasSuffix(f, "/") {
					if err := os.MkdirAll(p, 0o755); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg, diags := Parse([]byte(tt.config), filepath.Join(dir, "config.hcl"))
			if len(diags) > 0 {
				t.Fatal(diags)
			}
			found, diags := Leftovers(cfg)
			var want []Leftover
			for _, l := range tt.want {
				l.Dir = filepath.Join(dir, "data", l.Set)
				want = append(want, l)
			}
			if !reflect.DeepEqual(found, want) {
				t.Errorf("leftovers = %+v, want %+v", found, want)
			}
			if diags.HasErrors() {
				t.Errorf("leftovers are warnings, got an error: %v", diags)
			}
			var out bytes.Buffer
			WriteDiagnostics(&out, diags)
			if got := strings.ReplaceAll(out.String(), dir, "$DIR"); got != tt.diags {
				t.Errorf("diagnostics:\n%s\nwant\n%s", got, tt.diags)
			}
		})
	}
}
