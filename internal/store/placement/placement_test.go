package placement

import (
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/uploadsets/uploadsets/internal/store"
)

func names(base string, n int) iter.Seq[string] {
	return func(yield func(string) bool) {
		if !yield(base + ".png") {
			return
		}
		for i := 1; i < n; i++ {
			if !yield(fmt.Sprintf("%s_%d.png", base, i)) {
				return
			}
		}
	}
}

func open(t *testing.T, path string) *Dir {
	t.Helper()
	d, err := OpenDir(path, 0o644, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// place is Place without a record: the intended name is only remembered in *intended.
func place(d *Dir, src string, names iter.Seq[string], intended *string) (string, error) {
	return d.Place(Request{Src: store.Source{Path: src}, Names: names, Intended: *intended, Intend: func(n string) error { *intended = n; return nil }})
}

func writeSrc(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPlaceNeverOverwrites(t *testing.T) {
	data, destPath := t.TempDir(), t.TempDir()
	dest := open(t, destPath)
	if err := os.WriteFile(filepath.Join(destPath, "photo.png"), []byte("older"), 0o644); err != nil {
		t.Fatal(err)
	}
	name, err := place(dest, writeSrc(t, data, "a", "new"), names("photo", 10), new(string))
	if err != nil {
		t.Fatal(err)
	}
	if name != "photo_1.png" {
		t.Errorf("name = %q, want photo_1.png", name)
	}
	for file, want := range map[string]string{"photo.png": "older", "photo_1.png": "new"} {
		got, err := os.ReadFile(filepath.Join(destPath, file))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", file, got, err, want)
		}
	}
}

func TestPlaceIsIdempotent(t *testing.T) {
	data, destPath := t.TempDir(), t.TempDir()
	dest := open(t, destPath)
	src := writeSrc(t, data, "a", "bytes")
	first, err := place(dest, src, names("photo", 10), new(string))
	if err != nil {
		t.Fatal(err)
	}
	// A crash after linking but before the caller recorded it: the retry finds
	// the same file instead of placing a second copy.
	again, err := place(dest, src, names("photo", 10), new(string))
	if err != nil || again != first {
		t.Fatalf("second Place = %q, %v; want %q", again, err, first)
	}
	entries, _ := os.ReadDir(destPath)
	if len(entries) != 1 {
		t.Errorf("destination holds %d files, want 1", len(entries))
	}
}

func TestPlaceConcurrentSameName(t *testing.T) {
	data, destPath := t.TempDir(), t.TempDir()
	dest := open(t, destPath)
	const n = 20
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		src := writeSrc(t, data, fmt.Sprint(i), fmt.Sprint("content ", i))
		wg.Go(func() {
			name, err := place(dest, src, names("photo", 100), new(string))
			if err != nil {
				t.Error(err)
			}
			got[i] = name
		})
	}
	wg.Wait()
	for i, name := range got {
		b, err := os.ReadFile(filepath.Join(destPath, name))
		if err != nil || string(b) != fmt.Sprint("content ", i) {
			t.Errorf("upload %d placed as %q holds %q, %v", i, name, b, err)
		}
	}
	slices.Sort(got)
	if len(slices.Compact(got)) != n {
		t.Errorf("names not distinct: %v", got)
	}
}

func TestPlaceRefusesUnsafeNames(t *testing.T) {
	data, destPath := t.TempDir(), t.TempDir()
	dest := open(t, destPath)
	for _, bad := range []string{"../x.png", "a/b.png", ".hidden", "", "..", `a\b`} {
		src := writeSrc(t, data, "s", "x")
		one := func(yield func(string) bool) { yield(bad) }
		if name, err := place(dest, src, one, new(string)); err == nil {
			t.Errorf("Place(%q) = %q, want an error", bad, name)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(destPath), "x.png")); err == nil {
		t.Error("a file was written outside the destination")
	}
}

func TestPlaceNoFreeName(t *testing.T) {
	data, destPath := t.TempDir(), t.TempDir()
	dest := open(t, destPath)
	os.WriteFile(filepath.Join(destPath, "photo.png"), nil, 0o644)
	_, err := place(dest, writeSrc(t, data, "s", "x"), names("photo", 1), new(string))
	if err != ErrNoFreeName {
		t.Errorf("err = %v, want ErrNoFreeName", err)
	}
}

// The cross-filesystem path runs where /dev/shm is a different filesystem from the
// test's temp dir, as it is on most Linux machines.
func TestPlaceAcrossFilesystems(t *testing.T) {
	shm, err := os.MkdirTemp("/dev/shm", "placement-")
	if err != nil {
		t.Skip("no /dev/shm:", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	destPath := t.TempDir()
	src := writeSrc(t, shm, "a", "across")
	if err := os.Link(src, filepath.Join(destPath, "probe")); err == nil {
		t.Skip("/dev/shm and the temp dir share a filesystem")
	}
	dest := open(t, destPath)
	name, err := place(dest, src, names("photo", 3), new(string))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(destPath, name))
	entries, _ := os.ReadDir(destPath)
	if string(b) != "across" || len(entries) != 1 {
		t.Errorf("placed %q holding %q; destination has %d entries, want 1 (no temp left)", name, b, len(entries))
	}
}

// otherFS returns a directory on another file system than t.TempDir(): /dev/shm is
// tmpfs on most Linux machines.
func otherFS(t *testing.T) string {
	t.Helper()
	shm, err := os.MkdirTemp("/dev/shm", "placement-")
	if err != nil {
		t.Skip("no /dev/shm:", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	probe := filepath.Join(shm, "probe")
	os.WriteFile(probe, nil, 0o600)
	defer os.Remove(probe)
	if err := os.Link(probe, filepath.Join(t.TempDir(), "probe")); err == nil {
		t.Skip("/dev/shm and the temp dir share a file system")
	}
	return shm
}

func TestCopyAfterACrashIsFoundByItsIntendedName(t *testing.T) {
	destPath := t.TempDir()
	dest := open(t, destPath)
	src := writeSrc(t, otherFS(t), "a", "across")
	var intended string
	first, err := place(dest, src, names("photo", 3), &intended)
	if err != nil || intended != first {
		t.Fatalf("Place = %q, %v; announced %q", first, err, intended)
	}
	// A crash came before the caller recorded the placement: the retry must find
	// the copy by the announced name, not place a second one.
	again, err := place(dest, src, names("photo", 3), &intended)
	if err != nil || again != first {
		t.Fatalf("retry = %q, %v; want %q", again, err, first)
	}
	if entries, _ := os.ReadDir(destPath); len(entries) != 1 {
		t.Errorf("destination holds %d entries, want 1", len(entries))
	}

	// An announced name that holds something else (another upload took it) is not
	// taken for this one.
	other := writeSrc(t, filepath.Dir(src), "b", "different")
	intended = first
	name, err := place(dest, other, names("photo", 3), &intended)
	if err != nil || name == first {
		t.Fatalf("Place of other bytes announced as %q = %q, %v", first, name, err)
	}
}

func TestCrashBetweenLinkAndTempRemovalNeverRewritesThePlacedFile(t *testing.T) {
	destPath := t.TempDir()
	dest := open(t, destPath)
	src := writeSrc(t, otherFS(t), "a", "the upload")
	// The state a crash leaves: the temp copy linked into place and still there.
	placed := filepath.Join(destPath, "photo.png")
	os.WriteFile(placed, []byte("the upload"), 0o644)
	// Rewriting it with the same bytes would leave it looking the same, but a reader
	// would meet it empty or half-written meanwhile: its mtime tells.
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	os.Chtimes(placed, past, past)

	for _, intended := range []string{"photo.png", ""} {
		os.Link(placed, filepath.Join(destPath, tempName(src)))
		name, err := place(dest, src, names("photo", 3), &intended)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(placed); string(got) != "the upload" {
			t.Fatalf("intended %q: the placed file now holds %q", intended, got)
		}
		if st, _ := os.Stat(placed); !st.ModTime().Equal(past) {
			t.Fatalf("intended %q: the placed file was written to", intended)
		}
		if _, err := os.Lstat(filepath.Join(destPath, tempName(src))); err == nil {
			t.Errorf("intended %q: temp file left", intended)
		}
		t.Logf("intended %q: placed as %s", intended, name)
	}
}

func TestPlacedFilesGetFileModeOnEveryPath(t *testing.T) {
	old := syscall.Umask(0o027)
	t.Cleanup(func() { syscall.Umask(old) })
	for name, dataDir := range map[string]string{"link": t.TempDir(), "copy": otherFS(t)} {
		t.Run(name, func(t *testing.T) {
			destPath := t.TempDir()
			dest, err := OpenDir(filepath.Join(destPath, "made", "here"), 0o664, 0o775)
			if err != nil {
				t.Fatal(err)
			}
			defer dest.Close()
			src := writeSrc(t, dataDir, "a", "x") // 0600, as a data file might be
			got, err := place(dest, src, names("photo", 3), new(string))
			if err != nil {
				t.Fatal(err)
			}
			st, _ := os.Stat(filepath.Join(destPath, "made", "here", got))
			if st.Mode().Perm() != 0o664 {
				t.Errorf("placed file mode %v, want 0664", st.Mode().Perm())
			}
			for _, d := range []string{"made", "made/here"} {
				if st, _ := os.Stat(filepath.Join(destPath, d)); st.Mode().Perm() != 0o775 {
					t.Errorf("%s: mode %v, want dir_mode 0775", d, st.Mode().Perm())
				}
			}
		})
	}
}

func TestUnplaceAndRemoveTemps(t *testing.T) {
	destPath := t.TempDir()
	dest := open(t, destPath)
	src := writeSrc(t, t.TempDir(), "a", "x")
	name, _ := place(dest, src, names("photo", 3), new(string))
	os.WriteFile(filepath.Join(destPath, tempName(filepath.Join("x", "0123"))), nil, 0o644)
	if err := dest.Unplace(name); err != nil {
		t.Fatal(err)
	}
	if err := dest.RemoveTemps(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(destPath); len(entries) != 0 {
		t.Errorf("left: %v", entries)
	}
	if _, err := os.Stat(src); err != nil {
		t.Error("Unplace removed the data file too")
	}
	if links, err := dest.Links(filepath.Dir(src)); err != nil || !links {
		t.Errorf("Links(same file system) = %v, %v", links, err)
	}
}

func TestNamesAreReservedWhateverTheirCase(t *testing.T) {
	data, destPath := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(destPath, "Straße.png"), nil, 0o644) // there before the server
	dest := open(t, destPath)
	for _, tc := range []struct{ base, want string }{
		{"cat", "cat.png"},
		{"CAT", "CAT_1.png"},         // cat.png is taken, whatever the case
		{"Cat", "Cat_2.png"},         // and so is CAT_1.png
		{"STRASSE", "STRASSE_1.png"}, // Unicode folding: ß is ss
	} {
		name, err := place(dest, writeSrc(t, data, tc.base, tc.base), names(tc.base, 5), new(string))
		if err != nil || name != tc.want {
			t.Errorf("%s: placed as %q (%v), want %q", tc.base, name, err, tc.want)
		}
	}
	// A name taken back is free again.
	if err := dest.Unplace("CAT_1.png"); err != nil {
		t.Fatal(err)
	}
	if name, _ := place(dest, writeSrc(t, data, "cAt", "x"), names("cAt", 5), new(string)); name != "cAt_1.png" {
		t.Errorf("after Unplace: %q, want cAt_1.png", name)
	}

	// Many at once, differing only in case: every folded name distinct.
	var wg sync.WaitGroup
	got := make([]string, 16)
	for i := range got {
		base := ""
		for b := range 4 {
			if i&(1<<b) != 0 {
				base += string("dogs"[b] - 32)
			} else {
				base += string("dogs"[b])
			}
		}
		src := writeSrc(t, data, "c"+base, base)
		wg.Go(func() {
			got[i], _ = place(dest, src, names(base, 20), new(string))
		})
	}
	wg.Wait()
	seen := map[string]string{}
	for _, n := range got {
		f := strings.ToLower(n)
		if prev, dup := seen[f]; dup || n == "" {
			t.Errorf("%q and %q differ only in case", prev, n)
		}
		seen[f] = n
	}
}

func TestPlaceIntoAFolder(t *testing.T) {
	data, destPath := t.TempDir(), t.TempDir()
	dest, err := OpenDir(destPath, 0o644, 0o751)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	inFolder := func(folder, base string) (string, error) {
		return dest.Place(Request{Src: store.Source{Path: writeSrc(t, data, base+folder[:1], base)}, Names: names(base, 5), Folder: folder})
	}
	for _, tc := range []struct{ folder, base, want string }{
		{"alice/2026", "cat", "alice/2026/cat.png"},
		{"alice/2026", "CAT", "alice/2026/CAT_1.png"}, // names are per folder, whatever the case
		{"bob", "cat", "bob/cat.png"},
	} {
		got, err := inFolder(tc.folder, tc.base)
		if err != nil || got != tc.want {
			t.Errorf("%s/%s: %q, %v; want %q", tc.folder, tc.base, got, err, tc.want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(destPath, "alice", "2026", "CAT_1.png")); string(b) != "CAT" {
		t.Errorf("alice/2026/CAT_1.png holds %q", b)
	}
	for _, d := range []string{"alice", "alice/2026", "bob"} {
		if st, _ := os.Stat(filepath.Join(destPath, d)); st.Mode().Perm() != 0o751 {
			t.Errorf("%s: mode %v, want dir_mode 0751", d, st.Mode().Perm())
		}
	}
	for _, bad := range []string{"../x", "a/../../x", ".hidden", "a//b", "/abs"} {
		if got, err := inFolder(bad, "x"); err == nil {
			t.Errorf("folder %q placed as %q", bad, got)
		}
	}
	if err := dest.Unplace("bob/cat.png"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(destPath, "bob", "cat.png")); err == nil {
		t.Error("Unplace left bob/cat.png")
	}
}
