package placement

import (
	"context"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
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
	dest, err := OpenDir(destPath)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	if err := os.WriteFile(filepath.Join(destPath, "photo.png"), []byte("older"), 0o644); err != nil {
		t.Fatal(err)
	}
	name, err := dest.Place(context.Background(), writeSrc(t, data, "a", "new"), names("photo", 10))
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
	dest, _ := OpenDir(destPath)
	defer dest.Close()
	src := writeSrc(t, data, "a", "bytes")
	first, err := dest.Place(context.Background(), src, names("photo", 10))
	if err != nil {
		t.Fatal(err)
	}
	// A crash after linking but before the caller recorded it: the retry finds
	// the same file instead of placing a second copy.
	again, err := dest.Place(context.Background(), src, names("photo", 10))
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
	dest, _ := OpenDir(destPath)
	defer dest.Close()
	const n = 20
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		src := writeSrc(t, data, fmt.Sprint(i), fmt.Sprint("content ", i))
		wg.Go(func() {
			name, err := dest.Place(context.Background(), src, names("photo", 100))
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
	dest, _ := OpenDir(destPath)
	defer dest.Close()
	for _, bad := range []string{"../x.png", "a/b.png", ".hidden", "", "..", `a\b`} {
		src := writeSrc(t, data, "s", "x")
		one := func(yield func(string) bool) { yield(bad) }
		if name, err := dest.Place(context.Background(), src, one); err == nil {
			t.Errorf("Place(%q) = %q, want an error", bad, name)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(destPath), "x.png")); err == nil {
		t.Error("a file was written outside the destination")
	}
}

func TestPlaceNoFreeName(t *testing.T) {
	data, destPath := t.TempDir(), t.TempDir()
	dest, _ := OpenDir(destPath)
	defer dest.Close()
	os.WriteFile(filepath.Join(destPath, "photo.png"), nil, 0o644)
	_, err := dest.Place(context.Background(), writeSrc(t, data, "s", "x"), names("photo", 1))
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
	dest, _ := OpenDir(destPath)
	defer dest.Close()
	name, err := dest.Place(context.Background(), src, names("photo", 3))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(destPath, name))
	entries, _ := os.ReadDir(destPath)
	if string(b) != "across" || len(entries) != 1 {
		t.Errorf("placed %q holding %q; destination has %d entries, want 1 (no temp left)", name, b, len(entries))
	}
}
