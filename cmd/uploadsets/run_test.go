package main

import (
	"context"
	"runtime/debug"
	"strings"
	"testing"
)

func TestSubcommandFlags(t *testing.T) {
	tests := map[string]struct {
		args   []string
		code   int
		stderr []string // what stderr must hold
	}{
		"serve -h":           {[]string{"serve", "-h"}, 0, []string{"usage: uploadsets serve", "-config"}},
		"serve --help":       {[]string{"serve", "--help"}, 0, []string{"-config"}},
		"check -h":           {[]string{"check", "-h"}, 0, []string{"usage: uploadsets check", "-config"}},
		"version -h":         {[]string{"version", "-h"}, 0, []string{"usage: uploadsets version\n"}},
		"serve, bad flag":    {[]string{"serve", "-x"}, 2, []string{"-x", "-config"}},
		"check, bad flag":    {[]string{"check", "-config"}, 2, []string{"needs an argument"}},
		"version, bad flag":  {[]string{"version", "-x"}, 2, []string{"-x"}},
		"check, an argument": {[]string{"check", "config.hcl"}, 2, []string{`unexpected argument "config.hcl"`}},
		"version, argument":  {[]string{"version", "now"}, 2, []string{`unexpected argument "now"`}},
		"token -h":           {[]string{"token", "-h"}, 0, []string{"usage: uploadsets token -set NAME", "-max-size", "-folder"}},
		"token, bad flag":    {[]string{"token", "-x"}, 2, []string{"-x", "-set"}},
		"token without -set": {[]string{"token", "-config", "nowhere.hcl"}, 2, []string{"-set is required"}},
		"token, bad ttl":     {[]string{"token", "-set", "a", "-ttl", "-1h"}, 2, []string{"-ttl must be more than 0"}},
		"token, bad size":    {[]string{"token", "-set", "a", "-max-size", "lots"}, 2, []string{`-max-size: invalid size "lots"`}},
		"token, zero size":   {[]string{"token", "-set", "a", "-max-size", "0"}, 2, []string{"-max-size must be more than 0"}},
		"token, argument":    {[]string{"token", "-set", "a", "extra"}, 2, []string{`unexpected argument "extra"`}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			for _, want := range tt.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout: %q", stdout.String())
			}
		})
	}
}

func TestFormatVersion(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	tests := map[string]struct {
		bi   debug.BuildInfo
		want string
	}{
		"no VCS stamp": {debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "(devel)"},
		"no version":   {debug.BuildInfo{}, "(devel)"},
		"a release": {debug.BuildInfo{
			Main:     debug.Module{Version: "v1.2.0"},
			Settings: vcs("-race", "false", "vcs", "git", "vcs.revision", "0123456789abcdef0123456789abcdef01234567", "vcs.time", "2026-12-01T10:00:00Z", "vcs.modified", "false"),
		}, "v1.2.0 (rev 0123456, 2026-12-01T10:00:00Z)"},
		"a modified tree": {debug.BuildInfo{
			Main:     debug.Module{Version: "v0.0.0-20261201100000-0123456789ab+dirty"},
			Settings: vcs("vcs.revision", "0123456789abcdef0123456789abcdef01234567", "vcs.time", "2026-12-01T10:00:00Z", "vcs.modified", "true"),
		}, "v0.0.0-20261201100000-0123456789ab+dirty (rev 0123456, 2026-12-01T10:00:00Z, modified)"},
		"a short revision": {debug.BuildInfo{
			Main:     debug.Module{Version: "(devel)"},
			Settings: vcs("vcs.revision", "abc"),
		}, "(devel) (rev abc)"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := formatVersion(&tt.bi); got != tt.want {
				t.Errorf("formatVersion = %q, want %q", got, tt.want)
			}
		})
	}
}
