package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/uploadsets/uploadsets/internal/auth"
	"github.com/uploadsets/uploadsets/sets"
)

const tokenSynopsis = "-set NAME [-sub ID] [-ttl 1h] [-max-size 10MiB] [-folder F] [-name N] [-config config.hcl]"

// token prints an upload token for a set with an auth block, signed with the set's key
// as the app would sign it: for tests, scripts and trying a set out with curl.
func token(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("token", tokenSynopsis, stderr)
	cfgPath := fs.String("config", "config.hcl", "path of the config file")
	set := fs.String("set", "", "the set the token opens (required)")
	sub := fs.String("sub", "", "the uploader's identity (sub claim)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	maxSize := fs.String("max-size", "", `a lower size limit for uploads made with the token, like "10MiB"`)
	folder := fs.String("folder", "", `the folder inside the set's destination the file goes to, like "2026/june"`)
	name := fs.String("name", "", "the file name to use instead of the client's")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	// Flag mistakes are usage errors (2), found before the config is read.
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "uploadsets token: "+format+"\n", a...)
		return 2
	}
	if *set == "" {
		return usageErr("-set is required: name the set the token is for")
	}
	if *ttl <= 0 {
		return usageErr("-ttl must be more than 0, like 1h or 15m")
	}
	claims := auth.Claims{Subject: *sub, Folder: *folder, Name: *name}
	if *maxSize != "" {
		n, err := sets.ParseSize(*maxSize)
		if err != nil {
			return usageErr("-max-size: %v", err)
		}
		if n <= 0 {
			return usageErr("-max-size must be more than 0 bytes")
		}
		claims.MaxSize = n
	}

	cfg, diags := sets.Load(*cfgPath)
	if diags.HasErrors() {
		sets.WriteDiagnostics(stderr, diags)
		return 1
	}
	var s *sets.Set
	var names []string
	for _, cs := range cfg.Sets {
		names = append(names, cs.Name)
		if cs.Name == *set {
			s = cs
		}
	}
	switch {
	case s == nil:
		fmt.Fprintf(stderr, "uploadsets token: %s has no set %q (its sets: %s)\n", *cfgPath, *set, strings.Join(names, ", "))
		return 1
	case s.Auth == nil:
		fmt.Fprintf(stderr, "uploadsets token: set %q in %s has no auth block: its uploads need no token\n", *set, *cfgPath)
		return 1
	}
	tok, err := auth.Mint(s.Auth.Key, s.Name, claims, *ttl, time.Now())
	if err != nil {
		return usageErr("%v", err)
	}
	sets.WriteDiagnostics(stderr, diags) // warnings, such as a short key
	if claims.MaxSize > s.MaxSize {
		fmt.Fprintf(stderr, "uploadsets token: warning: -max-size %s is above the max_size of set %q (%s), which still applies\n",
			sets.FormatSize(claims.MaxSize), s.Name, sets.FormatSize(s.MaxSize))
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
