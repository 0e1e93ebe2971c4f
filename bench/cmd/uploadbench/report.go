package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// A row of the table: one metric, how to print it and, if it has one, its target.
type row struct {
	key, label string
	prec       int
	// target is printed as is; pass judges the uploadsets median (us)
	// against it, given tusd's median; nil means "for information".
	target string
	pass   func(us, tusd float64) bool
	// rel is the target restated as a ratio to tusd, from the tusd figure
	// the issue measured (e.g. 0.7 ms against tusd's 1.0 ms): it judges the
	// same claim on a machine that is slower or busier than the issue's.
	rel float64
	// flag rows (1 = yes) are summed over runs and printed as k/n.
	flag bool
	// count rows are summed over runs, out of the sum of `of`.
	of string
}

func rows(sz sizes) []row {
	large, flat := humanSize(sz.large), humanSize(sz.flat)
	return []row{
		{key: "large.mibps", label: "large: " + large + " in one PATCH, MiB/s", prec: 0, target: "≥ 1.5 × tusd", pass: func(u, t float64) bool { return u >= 1.5*t }},
		{key: "large.cpu_s_gib", label: "large: server CPU-s per GiB", prec: 2, target: "≤ 1.2", pass: func(u, _ float64) bool { return u <= 1.2 }, rel: 1.2 / 2.15},
		{key: "large.rss_growth", label: "large: RSS peak − idle, MiB", prec: 1},
		{key: "large.sha_ok", label: "large: SHA-256 of stored file", flag: true, target: "all", pass: nil},
		{key: "s3large.mibps", label: "s3-large: " + humanSize(sz.s3Large) + " in one PATCH on versitygw (uploadsets with its redis block), MiB/s", prec: 0, target: "≥ tusd", pass: func(u, t float64) bool { return u >= t }},
		{key: "s3large.cpu_s_gib", label: "s3-large: server CPU-s per GiB", prec: 2},
		{key: "s3large.gw_cpu_s_gib", label: "s3-large: versitygw's CPU-s per GiB (not the server's)", prec: 2},
		{key: "s3large.redis_cpu_s_gib", label: "s3-large: redis-server's CPU-s per GiB", prec: 3},
		{key: "s3large.rss_growth", label: "s3-large: server RSS peak − idle, MiB", prec: 1},
		{key: "s3large.s3_requests", label: "s3-large: S3 requests during the PATCH (versitygw's log)", prec: 0},
		{key: "s3large.sha_ok", label: "s3-large: SHA-256 of the stored object", flag: true, target: "all"},
		{key: "sum.mibps", label: "large-sha256: the same with Upload-Checksum sha256 (tusd ignores it), MiB/s", prec: 0},
		{key: "sum.cpu_s_gib", label: "large-sha256: server CPU-s per GiB", prec: 2},
		{key: "sum.sha_ok", label: "large-sha256: SHA-256 of stored file", flag: true, target: "all"},
		{key: "small.cpu_ms", label: fmt.Sprintf("small: %d × %s, %d conc., POST+PATCH: server CPU-ms/upload", sz.smallN, humanSize(sz.smallSize), sz.workers), prec: 3, target: "≤ 0.7", pass: func(u, _ float64) bool { return u <= 0.7 }, rel: 0.7 / 1.0},
		{key: "small.ups", label: "small: uploads/s", prec: 0},
		{key: "small.cs", label: "small: the server's context switches per upload", prec: 1},
		{key: "small.lone_p50_ms", label: "small: one upload at a time (POST+PATCH, 100 of them): p50 ms", prec: 2},
		{key: "s3small.cpu_ms", label: fmt.Sprintf("s3-small: %d × %s, %d conc., POST+PATCH on versitygw: server CPU-ms/upload", sz.s3SmallN, humanSize(sz.smallSize), sz.s3Workers), prec: 3},
		{key: "s3small.gw_cpu_ms", label: "s3-small: versitygw's CPU-ms/upload (not the server's)", prec: 3},
		{key: "s3small.redis_cpu_ms", label: "s3-small: redis-server's CPU-ms/upload", prec: 3},
		{key: "s3small.redis_cmds", label: "s3-small: Redis commands per upload", prec: 1},
		{key: "s3small.ups", label: "s3-small: uploads/s", prec: 0, target: "≥ tusd", pass: func(u, t float64) bool { return u >= t }},
		{key: "s3small.s3_req", label: "s3-small: S3 requests per upload (versitygw's log)", prec: 1},
		{key: "s3small.patch_p50_ms", label: "s3-small: PATCH latency in the client, p50 ms", prec: 2},
		{key: "s3small.patch_p99_ms", label: "s3-small: PATCH latency, p99 ms", prec: 2},
		{key: "cwu.cpu_ms", label: "small-cwu (creation-with-upload): server CPU-ms/upload", prec: 3, target: "≤ 0.5", pass: func(u, _ float64) bool { return u <= 0.5 }, rel: 0.5 / 0.7},
		{key: "cwu.ups", label: "small-cwu: uploads/s", prec: 0},
		{key: "cwu.cs", label: "small-cwu: context switches per upload", prec: 1},
		{key: "cwu.lone_p50_ms", label: "small-cwu: one upload at a time: p50 ms", prec: 2},
		{key: "tiny.cpu_ms", label: fmt.Sprintf("tiny: %d × 4 KiB, %d conc., POST+PATCH: server CPU-ms/upload", sz.smallN/2, sz.workers), prec: 3},
		{key: "tiny.ups", label: "tiny: uploads/s", prec: 0},
		{key: "notify.cpu_ms", label: "small-notify: the small case with a notify block (tusd: none), CPU-ms/upload", prec: 3},
		{key: "notify.ups", label: "small-notify: uploads/s", prec: 0},
		{key: "notify.events_per_s", label: "small-notify: events delivered per second", prec: 0},
		{key: "notify.latency_p50_ms", label: "small-notify: completing response → event at the app, p50 ms", prec: 1},
		{key: "notify.latency_p99_ms", label: "small-notify: the same, p99 ms", prec: 1},
		{key: "auth.cpu_ms", label: "small-auth: the small case with an upload token on every request (tusd: none), CPU-ms/upload", prec: 3},
		{key: "auth.ups", label: "small-auth: uploads/s", prec: 0},
		{key: "hold.kib_per_upload", label: fmt.Sprintf("hold: %d held uploads, RSS KiB per upload", sz.holdN), prec: 1, target: "≤ 32", pass: func(u, _ float64) bool { return u <= 32 }, rel: 32.0 / 45},
		{key: "hold.ok", label: "hold: server fine after release", flag: true, target: "all"},
		{key: "burst.kib_per_upload", label: fmt.Sprintf("burst: %d uploads stalled after %s, RSS KiB per upload", sz.burstN, humanSize(sz.burstSent)), prec: 1},
		{key: "burst.ok", label: "burst: server fine after release", flag: true, target: "all"},
		{key: "flat.rss_growth", label: "flat: " + flat + " in one PATCH, RSS peak − idle, MiB", prec: 1, target: "≤ 16 (flat)", pass: func(u, _ float64) bool { return u <= 16 }},
		{key: "flat.mibps", label: "flat: MiB/s", prec: 0},
		{key: "flat.cpu_s_gib", label: "flat: server CPU-s per GiB", prec: 2},
		{key: "flat.sha_ok", label: "flat: SHA-256 of stored file", flag: true, target: "all"},
		{key: "resume.p50_ms", label: fmt.Sprintf("resume: %s, %d cuts: dial → first new byte stored, p50 ms", humanSize(sz.resumeSize), sz.resumeCuts), prec: 1, target: "≤ 50", pass: func(u, _ float64) bool { return u <= 50 }},
		{key: "resume.max_ms", label: "resume: worst cut, ms", prec: 1},
		{key: "resume.head_p50_ms", label: "resume: dial + HEAD round trip, p50 ms", prec: 1},
		{key: "resume.recovered", label: "resume: cuts recovered", of: "resume.cuts", target: "all"},
		{key: "resume.sha_ok", label: "resume: SHA-256 of stored file", flag: true, target: "all"},
	}
}

func humanSize(n int64) string {
	switch {
	case n >= gib && n%gib == 0:
		return fmt.Sprintf("%d GiB", n/gib)
	case n >= mib && n%mib == 0:
		return fmt.Sprintf("%d MiB", n/mib)
	default:
		return fmt.Sprintf("%d KiB", n/kib)
	}
}

type failure struct {
	server, cs string
	run        int
	err        error
}

// recorder keeps every run's metrics per server.
type recorder struct {
	runs     int
	vals     map[string]map[string][]float64 // server → key → one value per run that produced it
	failures []failure
	calib    []float64 // ms of the calibration work, one per run
}

// calibrate times a fixed CPU-bound job in the bench process.
func (r *recorder) calibrate() {
	t0 := time.Now()
	h := sha256.New()
	for range 256 {
		h.Write(block)
	}
	h.Sum(nil)
	r.calib = append(r.calib, float64(time.Since(t0).Microseconds())/1000)
}

func newRecorder(runs int) *recorder {
	return &recorder{runs: runs, vals: map[string]map[string][]float64{uploadsetsName: {}, tusdName: {}, limitName: {}}}
}

func (r *recorder) add(server string, _ int, m metrics) {
	for k, v := range m {
		r.vals[server][k] = append(r.vals[server][k], v)
	}
}

func (r *recorder) fail(server, cs string, run int, err error) {
	r.failures = append(r.failures, failure{server, cs, run, err})
}

// anyFailure: uploadsets failing a case is a failure of the bench run; tusd
// failing one is reported but expected to be looked into, not to fail CI.
func (r *recorder) anyFailure() bool {
	for _, f := range r.failures {
		if strings.HasPrefix(f.server, uploadsetsName) { // also uploadsets/redis, uploadsets/mem
			return true
		}
	}
	return false
}

func medianf(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func sum(xs []float64) float64 {
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t
}

func caseOf(key string) string {
	c, _, _ := strings.Cut(key, ".")
	switch c {
	case "cwu":
		return "small-cwu"
	case "sum":
		return "large-sha256"
	case "notify":
		return "small-notify"
	case "auth":
		return "small-auth"
	case "s3large":
		return "s3-large"
	case "s3small":
		return "s3-small"
	case "s3lock":
		return "s3-lock"
	}
	return c
}

func (r *recorder) render(w io.Writer, sz sizes, cases []string, quickRun bool) {
	mode := "full"
	if quickRun {
		mode = "quick"
	}
	fmt.Fprintf(w, "## uploadsets vs tusd v2.10.1 (defaults), %s sizes, medians of %d run(s)\n\n", mode, r.runs)
	if len(r.calib) > 0 {
		fmt.Fprintf(w, "Machine check: SHA-256 of 256 MiB in the bench process took %s ms (each run; a busy or throttled host shows as larger numbers, and inflates every CPU figure).\n\n",
			nums(r.calib, 0))
	}
	fmt.Fprintln(w, "| metric | uploadsets | tusd v2.10.1 | uploadsets ÷ tusd | target (uploadsets) | verdict | as ratio to tusd (issue's tusd figure) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---|---|---|")
	for _, rw := range rows(sz) {
		if !contains(cases, caseOf(rw.key)) {
			continue
		}
		us, td := r.vals[uploadsetsName][rw.key], r.vals[tusdName][rw.key]
		var cu, ct, ratio, verdict, relv string
		switch {
		case rw.flag:
			cu, ct = fmt.Sprintf("%d/%d", int(sum(us)), r.runs), fmt.Sprintf("%d/%d", int(sum(td)), r.runs)
			verdict = passMiss(int(sum(us)) == r.runs)
		case rw.of != "":
			nu, nt := r.vals[uploadsetsName][rw.of], r.vals[tusdName][rw.of]
			cu, ct = fmt.Sprintf("%d/%d", int(sum(us)), int(sum(nu))), fmt.Sprintf("%d/%d", int(sum(td)), int(sum(nt)))
			verdict = passMiss(len(us) == r.runs && sum(us) == sum(nu))
		default:
			mu, mt := medianf(us), medianf(td)
			cu, ct = num(mu, rw.prec), num(mt, rw.prec)
			if !math.IsNaN(mu) && !math.IsNaN(mt) && mt != 0 {
				ratio = fmt.Sprintf("%.3g×", mu/mt)
			}
			if rw.pass != nil {
				if len(us) < r.runs || math.IsNaN(mu) || (math.IsNaN(mt) && strings.Contains(rw.target, "tusd")) {
					verdict = "n/a"
				} else {
					verdict = passMiss(rw.pass(mu, mt))
				}
			}
			if rw.rel > 0 && !math.IsNaN(mu) && !math.IsNaN(mt) && mt != 0 {
				relv = fmt.Sprintf("≤ %.2f×: %s", rw.rel, passMiss(mu/mt <= rw.rel))
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", rw.label, cu, ct, ratio, rw.target, verdict, relv)
	}

	fmt.Fprintf(w, "\n### Every run\n\n| metric | uploadsets | tusd v2.10.1 |\n|---|---|---|\n")
	for _, rw := range rows(sz) {
		if !contains(cases, caseOf(rw.key)) || rw.flag || rw.of != "" {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", rw.key, nums(r.vals[uploadsetsName][rw.key], rw.prec), nums(r.vals[tusdName][rw.key], rw.prec))
	}
	if contains(cases, "s3-lock") {
		r.renderLock(w, sz)
	}
	if lim := r.vals[limitName]; len(lim["floor.durable_cpu_ms"]) > 0 {
		r.renderFloor(w, sz)
	}
	if lim := r.vals[limitName]; len(lim["limit.put"]) > 0 {
		fmt.Fprintf(w, "\n### This machine's limits for the large case (bench process, no upload server)\n\n")
		fmt.Fprintf(w, "| limit | MiB/s, median | every run | uploadsets large ÷ limit |\n|---|---:|---|---:|\n")
		us := medianf(r.vals[uploadsetsName]["large.mibps"])
		for _, l := range limitKeys {
			v := medianf(lim[l.key])
			share := ""
			if v > 0 && !math.IsNaN(us) {
				share = fmt.Sprintf("%.0f%%", 100*us/v)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", l.label, num(v, 0), nums(lim[l.key], 0), share)
		}
	}
	if len(r.failures) > 0 {
		fmt.Fprintf(w, "\n### Failures\n\n")
		for _, f := range r.failures {
			fmt.Fprintf(w, "- run %d, %s, %s: %s\n", f.run+1, f.cs, f.server, oneLine(f.err.Error()))
		}
	}
}

// renderFloor shows the small case's floor (floor.go) beside the servers' figures:
// what durability alone costs per file, and the least a durable server's CPU could
// be if it did all tusd does and nothing else but the syncs.
func (r *recorder) renderFloor(w io.Writer, sz sizes) {
	lim := r.vals[limitName]
	fmt.Fprintf(w, "\n### The small case's floor: %d files of %s, %d at a time, in the bench process (no HTTP, no server)\n\n", sz.smallN, humanSize(sz.smallSize), sz.workers)
	fmt.Fprintf(w, "| floor | median | every run |\n|---|---:|---|\n")
	for _, k := range floorKeys {
		prec := 3
		if strings.HasSuffix(k.key, "_fps") {
			prec = 0
		} else if strings.HasSuffix(k.key, "_cs") {
			prec = 1
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", k.label, num(medianf(lim[k.key]), prec), nums(lim[k.key], prec))
	}
	cost := medianf(lim["floor.durable_cpu_ms"]) - medianf(lim["floor.page_cpu_ms"])
	tusd, us := medianf(r.vals[tusdName]["small.cpu_ms"]), medianf(r.vals[uploadsetsName]["small.cpu_ms"])
	if math.IsNaN(cost) || math.IsNaN(tusd) || tusd == 0 {
		return
	}
	fmt.Fprintf(w, "\nDurability alone costs %.3f CPU-ms per file here; tusd's small upload plus that is %.3f CPU-ms, %.2f× tusd: "+
		"the least a durable server could reach. uploadsets is at %.3f, %.3f above that floor.\n", cost, tusd+cost, (tusd+cost)/tusd, us, us-tusd-cost)
}

func passMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "**MISS**"
}

func num(v float64, prec int) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

func nums(vs []float64, prec int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = num(v, prec)
	}
	return strings.Join(s, ", ")
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ⏎ ")
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}

// brief is the progress line of one case.
func (m metrics) brief() string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%.3g", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// lockRows are the s3-lock figures: s3lock.{redis,mem,diff}.<key>.
var lockRows = []struct {
	key, label string
	prec       int
	target     float64 // the difference must be below it; 0: for information
}{
	{"patch_p50_ms", "concurrent: PATCH p50 ms", 2, 0},
	{"patch_p99_ms", "concurrent: PATCH p99 ms", 2, 0},
	{"head_p50_ms", "concurrent: HEAD p50 ms", 2, 0},
	{"head_p99_ms", "concurrent: HEAD p99 ms", 2, 0},
	{"serial_patch_p50_ms", "one at a time: PATCH p50 ms", 2, 1},
	{"serial_patch_p99_ms", "one at a time: PATCH p99 ms", 2, 0},
	{"serial_head_p50_ms", "one at a time: HEAD p50 ms", 2, 1},
	{"serial_head_p99_ms", "one at a time: HEAD p99 ms", 2, 0},
	{"cpu_ms", "concurrent: server CPU-ms/upload (POST+HEAD+PATCH)", 3, 0},
	{"redis_cpu_ms", "concurrent: redis-server's CPU-ms/upload", 3, 0},
	{"redis_cmds", "concurrent: Redis commands per upload", 1, 0},
}

// renderLock prints the lock's cost: two uploadsets on one versitygw, with the
// redis block and without it, taking turns request by request (caseS3Lock).
func (r *recorder) renderLock(w io.Writer, sz sizes) {
	us := r.vals[uploadsetsName]
	fmt.Fprintf(w, "\n### s3-lock: the lock's cost, uploadsets on versitygw with the redis block and without it (memory locker)\n\n")
	fmt.Fprintf(w, "Two servers at once on one versitygw, taking turns upload by upload: %d × %s each by %d concurrent clients (POST, HEAD, PATCH), "+
		"then %d each one at a time (POST, 3 HEADs, PATCH). Latency of each request in the client. Difference: with − without in the same run, median over runs.\n\n",
		sz.s3LockN, humanSize(sz.smallSize), sz.s3Workers, sz.s3Serial)
	fmt.Fprintln(w, "| metric | with redis | without (memory) | difference | target (difference) | verdict | every run: with; without; difference |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---|---|---|")
	for _, lr := range lockRows {
		with, without, diff := us["s3lock.redis."+lr.key], us["s3lock.mem."+lr.key], us["s3lock.diff."+lr.key]
		md := medianf(diff)
		target, verdict := "", ""
		if lr.target > 0 {
			target = fmt.Sprintf("< %g ms", lr.target)
			verdict = "n/a"
			if len(diff) == r.runs {
				verdict = passMiss(md < lr.target)
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s; %s; %s |\n", lr.label,
			num(medianf(with), lr.prec), num(medianf(without), lr.prec), num(md, lr.prec), target, verdict,
			nums(with, lr.prec), nums(without, lr.prec), nums(diff, lr.prec))
	}
	fmt.Fprintf(w, "\nBoth servers together (medians, then every run): %s uploads/s (%s); versitygw's CPU-ms per upload %s (%s); S3 requests per upload %s (%s).\n",
		num(medianf(us["s3lock.ups"]), 0), nums(us["s3lock.ups"], 0),
		num(medianf(us["s3lock.gw_cpu_ms"]), 3), nums(us["s3lock.gw_cpu_ms"], 3),
		num(medianf(us["s3lock.s3_req"]), 1), nums(us["s3lock.s3_req"], 1))
}
