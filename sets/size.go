package sets

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
)

// sizeUnits is ordered largest first, so FormatSize picks the biggest unit that shows a
// value exactly. Decimal units are listed because an operator who writes "1GB" should see
// "1 GB" back, not "953.67 MiB".
var sizeUnits = []struct {
	name   string
	n      int64
	binary bool
}{
	{"GiB", 1 << 30, true},
	{"GB", 1e9, false},
	{"MiB", 1 << 20, true},
	{"MB", 1e6, false},
	{"KiB", 1 << 10, true},
	{"KB", 1e3, false},
}

const unitsHint = "units: B, KB, MB, GB, KiB, MiB, GiB"

var sizeSyntax = regexp.MustCompile(`^([0-9]+)(?:\.([0-9]+))?[ \t]*([A-Za-z]*)$`)

// ParseSize parses a size such as "16MiB", "1.5 GB" or "100" (bytes). Fractions of a byte
// are dropped, since a limit is never meant to be that precise.
func ParseSize(s string) (int64, error) {
	n, err := parseSize(s)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %w", s, err)
	}
	return n, nil
}

// errSizeOverflow is told apart so the fuzz test can accept it for huge but valid input.
var errSizeOverflow = errors.New("too large: the most is 9223372036854775807 bytes (8 EiB)")

// parseSize returns the reason without the input, so the config decoder can name the
// attribute instead.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty; write a number with a unit, like \"16MiB\"; " + unitsHint)
	}
	if s[0] == '-' {
		return 0, errors.New("must not be negative")
	}
	m := sizeSyntax.FindStringSubmatch(s)
	if m == nil {
		return 0, errors.New("not a number with a unit, like \"16MiB\"; " + unitsHint)
	}
	whole, frac, unitName := m[1], m[2], m[3]
	unit := int64(1)
	if unitName != "" && !strings.EqualFold(unitName, "B") {
		unit = 0
		for _, u := range sizeUnits {
			if strings.EqualFold(unitName, u.name) {
				unit = u.n
				break
			}
		}
		if unit == 0 {
			return 0, fmt.Errorf("unknown unit %q; %s", unitName, unitsHint)
		}
	}
	// Leading zeros would only make the digit count below misleading.
	whole = strings.TrimLeft(whole, "0")
	if len(whole) > 19 {
		return 0, errSizeOverflow
	}
	// Exact arithmetic: (whole + frac/10^k) * unit, rounded down.
	num, _ := new(big.Int).SetString(whole+frac, 10)
	if num == nil {
		num = new(big.Int)
	}
	num.Mul(num, big.NewInt(unit))
	num.Quo(num, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil))
	if !num.IsInt64() {
		return 0, errSizeOverflow
	}
	return num.Int64(), nil
}

// FormatSize renders bytes for people. It shows at most two decimals and prefers a unit
// in which the value is exact, so what it prints reads back with ParseSize as the same
// number whenever that is possible; otherwise it rounds down, never overstating a limit.
func FormatSize(n int64) string {
	if n < 0 {
		return strconv.FormatInt(n, 10) + " B"
	}
	for _, u := range sizeUnits {
		if n >= u.n && (n%u.n)*100%u.n == 0 {
			return formatUnits(n, u.n) + " " + u.name
		}
	}
	for _, u := range sizeUnits {
		if u.binary && n >= u.n {
			return formatUnits(n, u.n) + " " + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " B"
}

// formatUnits prints n/unit with up to two decimals, rounded down, trailing zeros dropped.
func formatUnits(n, unit int64) string {
	whole, rest := n/unit, n%unit
	// rest < unit <= 2^30, so rest*100 cannot overflow.
	cents := rest * 100 / unit
	s := strconv.FormatInt(whole, 10)
	if cents == 0 {
		return s
	}
	d := fmt.Sprintf("%02d", cents)
	return s + "." + strings.TrimRight(d, "0")
}
