package sets

import (
	"math"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := map[string]struct {
		in   string
		want int64
	}{
		"bytes":                 {"100", 100},
		"bytes with unit":       {"100B", 100},
		"zero":                  {"0", 0},
		"KB is 1000":            {"512KB", 512_000},
		"MB":                    {"3MB", 3_000_000},
		"GB":                    {"1GB", 1_000_000_000},
		"KiB is 1024":           {"1KiB", 1024},
		"MiB":                   {"16MiB", 16 << 20},
		"GiB":                   {"1GiB", 1 << 30},
		"space before the unit": {"16 MiB", 16 << 20},
		"surrounding space":     {"  2 GB ", 2e9},
		"unit in any case":      {"16mib", 16 << 20},
		"decimal":               {"1.5GiB", 3 << 29},
		"decimal rounds down":   {"1.0001KB", 1000},
		"sub-byte decimal":      {"0.5", 0},
		"leading zeros":         {"0000000000000000000000001KiB", 1024},
		"largest":               {"9223372036854775807", math.MaxInt64},
		"largest in GiB":        {"8589934591GiB", 8589934591 << 30},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ParseSize(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseSizeErrors(t *testing.T) {
	tests := map[string]struct {
		in   string
		want string
	}{
		"empty":         {"", `invalid size "": empty; write a number with a unit, like "16MiB"; units: B, KB, MB, GB, KiB, MiB, GiB`},
		"negative":      {"-1MB", `invalid size "-1MB": must not be negative`},
		"unknown unit":  {"16 Mebibytes", `invalid size "16 Mebibytes": unknown unit "Mebibytes"; units: B, KB, MB, GB, KiB, MiB, GiB`},
		"TiB":           {"1TiB", `invalid size "1TiB": unknown unit "TiB"; units: B, KB, MB, GB, KiB, MiB, GiB`},
		"unit only":     {"MiB", `invalid size "MiB": not a number with a unit, like "16MiB"; units: B, KB, MB, GB, KiB, MiB, GiB`},
		"exponent":      {"1e6", `invalid size "1e6": not a number with a unit, like "16MiB"; units: B, KB, MB, GB, KiB, MiB, GiB`},
		"two numbers":   {"1 2MB", `invalid size "1 2MB": not a number with a unit, like "16MiB"; units: B, KB, MB, GB, KiB, MiB, GiB`},
		"dot first":     {".5MB", `invalid size ".5MB": not a number with a unit, like "16MiB"; units: B, KB, MB, GB, KiB, MiB, GiB`},
		"overflow":      {"9223372036854775808", `invalid size "9223372036854775808": too large: the most is 9223372036854775807 bytes (8 EiB)`},
		"unit overflow": {"8589934592GiB", `invalid size "8589934592GiB": too large: the most is 9223372036854775807 bytes (8 EiB)`},
		"many digits":   {strings.Repeat("9", 40), `invalid size "` + strings.Repeat("9", 40) + `": too large: the most is 9223372036854775807 bytes (8 EiB)`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			n, err := ParseSize(tt.in)
			if err == nil {
				t.Fatalf("ParseSize(%q) = %d, want an error", tt.in, n)
			}
			if err.Error() != tt.want {
				t.Errorf("got  %s\nwant %s", err, tt.want)
			}
		})
	}
}

func TestFormatSize(t *testing.T) {
	tests := map[string]struct {
		n    int64
		want string
	}{
		"bytes":                         {300, "300 B"},
		"zero":                          {0, "0 B"},
		"just under a KiB":              {1023, "1023 B"},
		"KiB":                           {1024, "1 KiB"},
		"fraction of a KiB":             {1536, "1.5 KiB"},
		"MiB":                           {16 << 20, "16 MiB"},
		"GiB":                           {1 << 30, "1 GiB"},
		"decimal when exact":            {1e9, "1 GB"},
		"KB":                            {1000, "1 KB"},
		"1.5 KB":                        {1500, "1.5 KB"},
		"two decimals":                  {1_250_000, "1.25 MB"},
		"inexact rounds down":           {1<<20 + 1, "1 MiB"},
		"inexact keeps two decimals":    {1_234_567, "1.17 MiB"},
		"large":                         {math.MaxInt64, "8589934591.99 GiB"},
		"negative is shown, not hidden": {-5, "-5 B"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := FormatSize(tt.n); got != tt.want {
				t.Errorf("FormatSize(%d) = %q, want %q", tt.n, got, tt.want)
			}
		})
	}
}
