package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/uploadsets/uploadsets/internal/server"
	"github.com/uploadsets/uploadsets/sets"
)

const usage = `usage: uploadsets <command> [flags]

commands:
  serve   [-config config.hcl]   run the server
  check   [-config config.hcl]   validate the config and print a summary of its sets
  token   -set NAME [-sub ID] [-ttl 1h] [-max-size 10MiB] [-folder F] [-name N] [-config config.hcl]
                                 print an upload token for a set with an auth block
  version                        print the version
`

// run is the whole program; main only wires signals and the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "token":
		return token(args[1:], stdout, stderr)
	case "version":
		return versionCmd(args[1:], stdout, stderr)
	case "-version", "--version":
		fmt.Fprintln(stdout, "uploadsets", version())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "uploadsets: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// newFlags is a subcommand's flag set; synopsis is its usage line after the command.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("uploadsets "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, strings.TrimSpace("usage: uploadsets "+name+" "+synopsis))
		fs.PrintDefaults()
	}
	return fs
}

// parse parses a subcommand's flags, which take no arguments after them. When it
// returns false the command is over and code is its exit status: 0 when -h asked for
// the usage (the flag package has printed it), 2 for a bad flag or an argument.
func parse(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, false
	}
	return 0, true
}

// configFlag parses the one flag serve and check share.
func configFlag(name string, args []string, stderr io.Writer) (path string, code int, ok bool) {
	fs := newFlags(name, "[-config config.hcl]", stderr)
	cfgPath := fs.String("config", "config.hcl", "path of the config file")
	code, ok = parse(fs, args)
	return *cfgPath, code, ok
}

func check(args []string, stdout, stderr io.Writer) int {
	path, code, ok := configFlag("check", args, stderr)
	if !ok {
		return code
	}
	cfg, diags := sets.Load(path)
	if !diags.HasErrors() {
		diags = append(diags, cfg.ProbeDirs(false)...)
	}
	if diags.HasErrors() {
		sets.WriteDiagnostics(stderr, diags)
		return 1
	}
	_, leftovers := sets.Leftovers(cfg)
	sets.WriteDiagnostics(stderr, append(diags, leftovers...)) // warnings, if any
	cfg.WriteSummary(stdout)
	return 0
}

func serve(ctx context.Context, args []string, stderr io.Writer) int {
	path, code, ok := configFlag("serve", args, stderr)
	if !ok {
		return code
	}
	cfg, diags := sets.Load(path)
	if !diags.HasErrors() {
		// Probed without creating anything first, so that a refused start leaves
		// no directories of the sets that were fine behind.
		if diags = append(diags, cfg.ProbeDirs(false)...); !diags.HasErrors() {
			diags = append(diags, cfg.ProbeDirs(true)...)
		}
	}
	sets.WriteDiagnostics(stderr, diags)
	if diags.HasErrors() {
		fmt.Fprintf(stderr, "uploadsets: not starting: %s has errors\n", path)
		return 1
	}
	log := hclog.New(&hclog.LoggerOptions{
		Name: "uploadsets", Output: stderr,
		Level: hclog.LevelFromString(cfg.LogLevel), JSONFormat: cfg.LogFormat == "json",
	})
	// Looked at once, before the stores open: the server never touches these
	// directories, so they stay as they are until the operator acts.
	leftovers, _ := sets.Leftovers(cfg)
	for _, l := range leftovers {
		log.Warn("LeftoverSet", "dir", l.Dir, "uploads", l.Uploads)
	}
	srv, err := server.New(cfg, log)
	if err != nil {
		log.Error("StartFailed", "error", err)
		return 1
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		log.Error("ListenFailed", "addr", cfg.Listen, "error", err)
		return 1
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go reloadOn(ctx, hup, path, srv, log)
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error("ServeFailed", "error", err)
		return 1
	}
	log.Info("Stopped")
	return 0
}

// reloadOn re-reads the config at path on every signal from hup and swaps it in, or
// keeps the running one and logs why.
func reloadOn(ctx context.Context, hup <-chan os.Signal, path string, srv *server.Server, log hclog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		log.Info("Reloading", "config", path)
		cfg, diags := sets.Load(path)
		if diags.HasErrors() {
			srv.ReloadFailed(diags)
			continue
		}
		srv.Reload(cfg) // logs what it did, or why not
	}
}

func versionCmd(args []string, stdout, stderr io.Writer) int {
	if code, ok := parse(newFlags("version", "", stderr), args); !ok {
		return code
	}
	fmt.Fprintln(stdout, "uploadsets", version())
	return 0
}

func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	return formatVersion(bi)
}

// formatVersion shows the module version and, when the build recorded them, the VCS
// revision, its time and whether the tree had changes: a pseudo-version alone does
// not say whether the binary was built from uncommitted code.
func formatVersion(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var vcs []string
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && s.Value != "":
			vcs = append(vcs, "rev "+s.Value[:min(len(s.Value), 7)])
		case s.Key == "vcs.time" && s.Value != "":
			vcs = append(vcs, s.Value)
		case s.Key == "vcs.modified" && s.Value == "true":
			vcs = append(vcs, "modified")
		}
	}
	if len(vcs) > 0 {
		v += " (" + strings.Join(vcs, ", ") + ")"
	}
	return v
}
