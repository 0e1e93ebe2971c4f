// Command uploadbench measures uploadsets against tusd v2.10.1 on loopback:
// throughput and server CPU of one large upload, server CPU per small upload
// (POST + PATCH, and creation-with-upload), memory per held upload, RSS during
// a very large upload, and the stall of a resume after a cut connection; and,
// on S3 (versitygw, with Redis for uploadsets' locks), one large upload, small
// uploads, and the cost of the Redis lock per request.
// Each server is a fresh process in fresh temp dirs for every case of every
// run; the table shows medians over the runs. See bench/README.md.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// sizes of one bench configuration (full or -quick).
type sizes struct {
	large       int64
	smallN      int
	smallSize   int64
	workers     int
	holdN       int
	holdDecl    int64
	holdSent    int64
	holdFor     time.Duration
	burstN      int
	burstDecl   int64
	burstSent   int64
	flat        int64
	resumeSize  int64
	resumeCuts  int
	caseTimeout time.Duration
	// The S3 cases: one upload of s3Large; s3SmallN of smallSize by s3Workers;
	// s3-lock: s3LockN per server by s3Workers, then s3Serial per server one at
	// a time.
	s3Large   int64
	s3SmallN  int
	s3Workers int
	s3LockN   int
	s3Serial  int
}

var (
	full = sizes{
		large: 1 * gib, smallN: 2000, smallSize: 64 * kib, workers: 32,
		holdN: 500, holdDecl: 1 * mib, holdSent: 4 * kib, holdFor: 1 * time.Second,
		burstN: 400, burstDecl: 8 * mib, burstSent: 4 * mib,
		flat: 4 * gib, resumeSize: 64 * mib, resumeCuts: 10, caseTimeout: 5 * time.Minute,
		s3Large: 256 * mib, s3SmallN: 300, s3Workers: 16, s3LockN: 200, s3Serial: 150,
	}
	quick = sizes{
		large: 64 * mib, smallN: 200, smallSize: 64 * kib, workers: 32,
		holdN: 50, holdDecl: 1 * mib, holdSent: 4 * kib, holdFor: 300 * time.Millisecond,
		burstN: 40, burstDecl: 8 * mib, burstSent: 4 * mib,
		flat: 256 * mib, resumeSize: 16 * mib, resumeCuts: 3, caseTimeout: 1 * time.Minute,
		s3Large: 16 * mib, s3SmallN: 48, s3Workers: 16, s3LockN: 32, s3Serial: 16,
	}
)

var allCases = []string{"large", "large-sha256", "small", "small-cwu", "tiny", "small-notify", "small-auth", "hold", "burst", "flat", "resume",
	"s3-large", "s3-small", "s3-lock"}

// s3Cases run on versitygw (and Redis): they need the tools findS3Tools locates.
var s3Cases = []string{"s3-large", "s3-small", "s3-lock"}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("uploadbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runs := fs.Int("runs", 3, "runs of every case on every server; the table shows medians")
	quickFlag := fs.Bool("quick", false, "tiny sizes for a smoke run (< 45 s once built)")
	out := fs.String("out", "", "also write the table as Markdown to this file")
	repo := fs.String("repo", "", "the uploadsets module (default: found above the working directory)")
	usBin := fs.String("uploadsets-bin", "", "use this uploadsets binary instead of building one")
	tusdBin := fs.String("tusd-bin", "", "use this tusd binary instead of building v2.10.1 from the bench module")
	gwBin := fs.String("versitygw-bin", "", "use this versitygw binary for the S3 cases instead of the one .ci/versitygw/build prints")
	only := fs.String("cases", strings.Join(allCases, ","), "comma-separated cases to run")
	tmpFlag := fs.String("tmp", "", "parent of the temp dirs (default $TMPDIR)")
	perfDir := fs.String("perf", "", "record each server with `perf record -g` into this dir (<case>-<server>-<run>.data)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *runs < 1 || *runs > 20 {
		fmt.Fprintln(stderr, "uploadbench: -runs must be 1..20")
		return 2
	}
	sz := full
	if *quickFlag {
		sz = quick
	}
	cases := strings.Split(*only, ",")
	for _, c := range cases {
		if !contains(allCases, c) {
			fmt.Fprintf(stderr, "uploadbench: unknown case %q (have %s)\n", c, strings.Join(allCases, ", "))
			return 2
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	tmp, err := os.MkdirTemp(*tmpFlag, "uploadbench-")
	if err != nil {
		fmt.Fprintln(stderr, "uploadbench:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	needS3 := slices.ContainsFunc(cases, func(c string) bool { return contains(s3Cases, c) })
	repoDir := *repo
	if repoDir == "" && (*usBin == "" || *tusdBin == "" || (needS3 && *gwBin == "")) {
		if repoDir, err = findRepo(); err != nil {
			fmt.Fprintln(stderr, "uploadbench:", err)
			return 1
		}
	}
	fls, err := buildServers(ctx, tmp, repoDir, *usBin, *tusdBin, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "uploadbench:", err)
		return 1
	}
	var tools s3Tools
	if needS3 {
		if tools = findS3Tools(ctx, repoDir, *gwBin, stderr); tools.err != nil {
			fmt.Fprintln(stderr, "uploadbench:", tools.err)
		}
	}

	rec := newRecorder(*runs)
	start := time.Now()
	for r := range *runs {
		rec.calibrate()
		for _, cs := range cases {
			order := fls
			if r%2 == 1 { // alternate which server goes first
				order = []flavor{fls[1], fls[0]}
			}
			if cs == "s3-lock" {
				// uploadsets alone, two servers at once (caseS3Lock), taking
				// turns request by request.
				order = []flavor{fls[1]}
			}
			for _, fl := range order {
				if ctx.Err() != nil {
					fmt.Fprintln(stderr, "uploadbench: interrupted")
					return 1
				}
				t0 := time.Now()
				perfOut := ""
				if *perfDir != "" {
					perfOut = filepath.Join(*perfDir, fmt.Sprintf("%s-%s-%d.data", cs, fl.name, r+1))
				}
				m, err := runCase(ctx, cs, fl, tmp, sz, perfOut, tools, r)
				rec.add(fl.name, r, m)
				status := "ok"
				if err != nil {
					status = "ERROR: " + err.Error()
					rec.fail(fl.name, cs, r, err)
				}
				fmt.Fprintf(stderr, "run %d/%d  %-10s %-10s %6.1fs  %s  %s\n", r+1, *runs, cs, fl.name,
					time.Since(t0).Seconds(), m.brief(), status)
			}
			if cs == "small" {
				t0 := time.Now()
				m, err := measureFloor(tmp, sz.smallN, sz.workers, sz.smallSize)
				rec.add(limitName, r, m)
				status := "ok"
				if err != nil {
					status = "ERROR: " + err.Error()
					rec.fail(limitName, cs, r, err)
				}
				fmt.Fprintf(stderr, "run %d/%d  %-10s %-10s %6.1fs  %s  %s\n", r+1, *runs, "floor", "-",
					time.Since(t0).Seconds(), m.brief(), status)
			}
			if cs == "large" {
				t0 := time.Now()
				m, err := measureLimits(ctx, tmp, sz.large)
				rec.add(limitName, r, m)
				status := "ok"
				if err != nil {
					status = "ERROR: " + err.Error()
					rec.fail(limitName, cs, r, err)
				}
				fmt.Fprintf(stderr, "run %d/%d  %-10s %-10s %6.1fs  %s  %s\n", r+1, *runs, "limits", "-",
					time.Since(t0).Seconds(), m.brief(), status)
			}
		}
	}
	fmt.Fprintf(stderr, "all runs: %.0fs\n", time.Since(start).Seconds())

	var buf bytes.Buffer
	rec.render(&buf, sz, cases, *quickFlag)
	stdout.Write(buf.Bytes())
	if *out != "" {
		if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
			fmt.Fprintln(stderr, "uploadbench:", err)
			return 1
		}
	}
	if rec.anyFailure() {
		return 1
	}
	return 0
}

func runCase(ctx context.Context, cs string, fl flavor, tmp string, sz sizes, perfOut string, tools s3Tools, run int) (metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, sz.caseTimeout)
	defer cancel()
	if cs == "s3-lock" {
		return caseS3Lock(ctx, fl, tmp, sz, tools, run)
	}
	if cs == "flat" {
		if err := checkDisk(tmp, sz.flat); err != nil {
			return nil, err
		}
	}
	var feat features
	var rc *receiver
	var err error
	if fl.name == uploadsetsName {
		switch cs {
		case "small-notify":
			if rc, err = startReceiver(); err != nil {
				return nil, err
			}
			defer rc.stop()
			feat.notifyURL = rc.url
		case "small-auth":
			feat.auth = true
		}
	}
	if contains(s3Cases, cs) {
		// uploadsets with its redis block; tusd's s3store has its memorylocker.
		side, err := startS3(ctx, tools, tmp, fl.name == uploadsetsName, s3Bucket)
		if err != nil {
			return nil, err
		}
		defer side.stop() // after the server's stop, deferred below
		feat.s3, feat.s3Bucket = side, s3Bucket
	}
	s, err2 := startServer(ctx, fl, tmp, feat)
	err = err2
	if err != nil {
		return nil, err
	}
	defer s.stop()
	if perfOut != "" {
		p := exec.Command("perf", "record", "-F", "999", "-g", "-p", fmt.Sprint(s.pid), "-o", perfOut)
		if err := p.Start(); err != nil {
			return nil, fmt.Errorf("perf: %w", err)
		}
		time.Sleep(300 * time.Millisecond) // let perf attach
		defer func() { _ = p.Process.Signal(os.Interrupt); _ = p.Wait() }()
	}
	var m metrics
	switch cs {
	case "large":
		m, err = caseLarge(ctx, s, sz.large, "large")
	case "large-sha256":
		m, err = caseLarge(ctx, s, sz.large, "sum")
	case "small":
		m, err = caseSmall(ctx, s, sz.smallN, sz.workers, sz.smallSize, false, "small")
	case "small-cwu":
		m, err = caseSmall(ctx, s, sz.smallN, sz.workers, sz.smallSize, true, "cwu")
	case "tiny":
		// Avatars and chat attachments: 1000 (quick: 100) of 4 KiB, POST + PATCH.
		m, err = caseSmall(ctx, s, sz.smallN/2, sz.workers, 4*kib, false, "tiny")
	case "small-notify":
		m, err = caseNotify(ctx, s, rc, sz.smallN, sz.workers, sz.smallSize)
	case "small-auth":
		m, err = caseAuth(ctx, s, sz.smallN, sz.workers, sz.smallSize, feat.auth)
	case "hold":
		m, err = caseHold(ctx, s, sz.holdN, sz.holdDecl, sz.holdSent, sz.holdFor, "hold")
	case "burst":
		m, err = caseHold(ctx, s, sz.burstN, sz.burstDecl, sz.burstSent, sz.holdFor, "burst")
	case "flat":
		m, err = caseLarge(ctx, s, sz.flat, "flat")
	case "resume":
		m, err = caseResume(ctx, s, sz.resumeSize, sz.resumeCuts)
	case "s3-large":
		m, err = caseLarge(ctx, s, sz.s3Large, "s3large")
	case "s3-small":
		m, err = caseS3Small(ctx, []*server{s}, s3Small{n: sz.s3SmallN, workers: sz.s3Workers, size: sz.smallSize}, []string{"s3small"})
	}
	if err == nil && !s.alive() {
		err = fmt.Errorf("server exited: %s", s.logTail())
	}
	if err == nil && s.s3 != nil {
		err = s.s3.alive()
	}
	return m, err
}

// checkDisk refuses a case whose upload would not fit with 1 GiB to spare.
func checkDisk(dir string, need int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return err
	}
	if free := int64(st.Bavail) * st.Bsize; free < need+gib {
		return fmt.Errorf("%s has %d MiB free, the case needs %d MiB + 1 GiB", dir, free/mib, need/mib)
	}
	return nil
}

// buildServers builds uploadsets from the main module and tusd v2.10.1 from
// the bench module (whose go.mod pins it) into tmp, unless given binaries.
func buildServers(ctx context.Context, tmp, repo, usBin, tusdBin string, stderr io.Writer) ([]flavor, error) {
	if usBin == "" {
		usBin = filepath.Join(tmp, "uploadsets")
		fmt.Fprintln(stderr, "building uploadsets from", repo)
		if err := goBuild(ctx, repo, usBin, "./cmd/uploadsets", stderr); err != nil {
			return nil, err
		}
	}
	if tusdBin == "" {
		tusdBin = filepath.Join(tmp, "tusd")
		fmt.Fprintln(stderr, "building tusd from the bench module (github.com/tus/tusd/v2 v2.10.1)")
		if err := goBuild(ctx, filepath.Join(repo, "bench"), tusdBin, "github.com/tus/tusd/v2/cmd/tusd", stderr); err != nil {
			return nil, err
		}
	}
	return []flavor{{name: tusdName, bin: tusdBin}, {name: uploadsetsName, bin: usBin}}, nil
}

func goBuild(ctx context.Context, dir, out, pkg string, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s in %s: %w", pkg, dir, err)
	}
	return nil
}

// findRepo walks up from the working directory to the uploadsets module.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/uploadsets/uploadsets\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no github.com/uploadsets/uploadsets module above the working directory; pass -repo")
		}
		dir = parent
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}
