package main

import (
	"context"
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
