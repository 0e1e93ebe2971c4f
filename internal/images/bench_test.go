//go:build cgo

package images

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/uploadsets/uploadsets/sets"
)

// The work of a phone photo in a set with max 2048 and one 300 px thumbnail, by
// Process and, as the anchor, by libvips's own command-line tool doing the same
// (`vips thumbnail` twice, with the same threads per job as the Processor):
//
//	go test -run '^$' -bench . -benchtime 20x ./internal/images/
//	make bench-images
//
// Reported besides ns/op: CPU per op (user + system) and the peak RSS the work added
// (for Process: VmHWM over the base; for the CLI: the largest child's maxrss).

var (
	benchDir     string
	benchSources = map[string]string{}
	benchOnce    sync.Once
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

func benchSource(b *testing.B, format string) string {
	b.Helper()
	benchOnce.Do(func() {
		var err error
		if benchDir, err = os.MkdirTemp("", "images-bench-"); err != nil {
			b.Fatal(err)
		}
		for _, f := range []string{"jpeg", "heic"} {
			benchSources[f] = photoFile(b, benchDir, 4032, 3024, f)
			fi, _ := os.Stat(benchSources[f])
			b.Logf("12 MP %s fixture: %.1f MB", f, float64(fi.Size())/1e6)
		}
	})
	return benchSources[format]
}

func benchSpec(dir string) Spec {
	spec := defaultSpec()
	spec.MaxWidth, spec.MaxHeight, spec.Format = 2048, 2048, sets.FormatJPEG
	spec.Thumbnails = []Thumb{{Label: "small", Width: 300, Height: 300}}
	spec.Dir = dir
	return spec
}

func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkProcess(b *testing.B) {
	for _, format := range []string{"jpeg", "heic"} {
		b.Run("12MP-"+format, func(b *testing.B) {
			p := processor(b)
			src := benchSource(b, format)
			fi, _ := os.Stat(src)
			b.SetBytes(fi.Size())
			out := b.TempDir()
			spec := benchSpec(out)
			resetPeakRSS(b)
			base := rss(b, "VmRSS")
			cpu0 := cpuTime(syscall.RUSAGE_SELF)
			for b.Loop() {
				res, err := p.Process(context.Background(), src, spec)
				if err != nil {
					b.Fatal(err)
				}
				res.Remove()
			}
			b.ReportMetric(float64(cpuTime(syscall.RUSAGE_SELF)-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(rss(b, "VmHWM")-base)/(1<<20), "peak-MiB")
		})
	}
}

func BenchmarkCLI(b *testing.B) {
	vipsBin, err := exec.LookPath("vips")
	if err != nil {
		b.Skip("no vips command (Debian: libvips-tools)")
	}
	for _, format := range []string{"jpeg", "heic"} {
		b.Run("12MP-"+format, func(b *testing.B) {
			src := benchSource(b, format)
			fi, _ := os.Stat(src)
			b.SetBytes(fi.Size())
			out := b.TempDir()
			env := append(os.Environ(), "VIPS_CONCURRENCY=1")
			// A child's maxrss starts from this process's own peak (exec keeps the
			// high-water mark of the memory it replaces, and Go starts children
			// sharing its memory), so the peak is read by GNU time, a small process
			// in between, when there is one.
			timeBin, _ := exec.LookPath("time")
			rssFile := filepath.Join(out, "maxrss")
			var peak int64
			run := func(args ...string) {
				cmd := exec.Command(vipsBin, args...)
				if timeBin != "" {
					cmd = exec.Command(timeBin, append([]string{"-f", "%M", "-o", rssFile, vipsBin}, args...)...)
				}
				cmd.Env = env
				if msg, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("vips %v: %v\n%s", args, err, msg)
				}
				if timeBin != "" {
					kb, _ := os.ReadFile(rssFile)
					n, _ := strconv.ParseInt(strings.TrimSpace(string(kb)), 10, 64)
					peak = max(peak, n<<10)
				}
			}
			cpu0 := cpuTime(syscall.RUSAGE_CHILDREN)
			for b.Loop() {
				run("thumbnail", src, filepath.Join(out, "main.jpg[Q=85,strip]"), "2048", "--height", "2048", "--size", "down")
				run("thumbnail", src, filepath.Join(out, "small.jpg[Q=85,strip]"), "300", "--height", "300", "--size", "down")
			}
			b.ReportMetric(float64(cpuTime(syscall.RUSAGE_CHILDREN)-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
			if timeBin != "" {
				b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
			}
		})
	}
}
