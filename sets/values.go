package sets

import (
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Each decoder method below reads one optional attribute into *dst, leaving the default
// when the attribute is absent or null, and reports problems at the attribute's value.
// They return whether *dst now holds a value from the file.

// value evaluates a scalar attribute. Scalars get no variables or functions: presets
// mean nothing there, and "Variables not allowed" is the clearest answer.
func (d *decoder) value(attr *hcl.Attribute) (cty.Value, bool) {
	if attr == nil || !d.parsed(attr) {
		return cty.NilVal, false
	}
	val, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		// `naming = uuid` is a forgotten pair of quotes, not a variable.
		if word := hcl.ExprAsKeyword(attr.Expr); word != "" {
			d.add(errorAt(attr.Expr.Range(), fmt.Sprintf(`%s must be a string in quotes: %s = %q`, attr.Name, attr.Name, word)))
			return cty.NilVal, false
		}
		d.add(diags...)
		return cty.NilVal, false
	}
	val, _ = val.UnmarkDeep()
	if val.IsNull() || !val.IsWhollyKnown() {
		return cty.NilVal, false
	}
	return val, true
}

func (d *decoder) str(attr *hcl.Attribute) (string, bool) {
	val, ok := d.value(attr)
	if !ok {
		return "", false
	}
	if val.Type() != cty.String {
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("%s must be a string in quotes", attr.Name)))
		return "", false
	}
	return val.AsString(), true
}

func (d *decoder) listen(attr *hcl.Attribute, dst *string) bool {
	s, ok := d.str(attr)
	if !ok {
		return false
	}
	_, port, err := net.SplitHostPort(s)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf(`invalid listen %q: must be host:port with a numeric port, like "127.0.0.1:8080" or ":8080"`, s)))
		return false
	}
	*dst = s
	return true
}

// baseURL reads a URL under which files or endpoints are published. "" is allowed and
// means "this server, at the address the client used".
func (d *decoder) baseURL(attr *hcl.Attribute, dst *string) bool {
	s, ok := d.str(attr)
	if !ok {
		return false
	}
	if s != "" {
		if why := checkURL(s); why != "" {
			d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("invalid %s %q: %s", attr.Name, s, why)))
			return false
		}
	}
	*dst = s
	return true
}

func checkURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil, u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Opaque != "":
		return `must be an absolute http or https URL, like "https://files.example.com/photos/"`
	case u.User != nil:
		return "must not contain a user name or password"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return "must not have a query or a fragment: file names are appended to it"
	}
	return ""
}

func trimSlash(s string) string { return strings.TrimRight(s, "/") }

func (d *decoder) path(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(d.base, p)
}

// size reads "16MiB"-style strings or a whole number of bytes.
func (d *decoder) size(attr *hcl.Attribute, dst *int64) bool {
	val, ok := d.value(attr)
	if !ok {
		return false
	}
	var n int64
	switch val.Type() {
	case cty.String:
		var err error
		if n, err = parseSize(val.AsString()); err != nil {
			d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("invalid %s %q: %v", attr.Name, val.AsString(), err)))
			return false
		}
	case cty.Number:
		bf := val.AsBigFloat()
		i, acc := bf.Int64()
		if !bf.IsInt() || acc != big.Exact {
			// Shown through float64: bf.Text on 1e99999999 takes seconds.
			f, _ := bf.Float64()
			d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("invalid %s %s: must be a whole number of bytes up to 9223372036854775807, or a string with a unit like \"16MiB\"", attr.Name, strconv.FormatFloat(f, 'g', -1, 64))))
			return false
		}
		n = i
	default:
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf(`%s must be a size, like "16MiB", or a number of bytes`, attr.Name)))
		return false
	}
	if n <= 0 {
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("%s must be more than 0 bytes", attr.Name)))
		return false
	}
	*dst = n
	return true
}

func (d *decoder) duration(attr *hcl.Attribute, dst *time.Duration) bool {
	val, ok := d.value(attr)
	if !ok {
		return false
	}
	if val.Type() != cty.String {
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf(`%s must be a duration in quotes, like "24h", "90m" or "30s"`, attr.Name)))
		return false
	}
	s := val.AsString()
	t, err := time.ParseDuration(s)
	switch {
	case err != nil:
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf(`invalid %s %q: write a duration like "24h", "90m" or "30s"`, attr.Name, s)))
		return false
	case t <= 0:
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("invalid %s %q: must be more than 0", attr.Name, s)))
		return false
	}
	*dst = t
	return true
}

func (d *decoder) naming(attr *hcl.Attribute, dst *Naming) bool {
	s, ok := d.str(attr)
	if !ok {
		return false
	}
	switch n := Naming(s); n {
	case NamingOriginal, NamingUUID:
		*dst = n
		return true
	}
	d.add(errorAt(attr.Expr.Range(), fmt.Sprintf(`invalid naming %q: must be "original" or "uuid"`, s)))
	return false
}

// mode reads a permission like "0644". It must keep need for the owner: the server
// reads, writes and lists what it creates.
func (d *decoder) mode(attr *hcl.Attribute, need os.FileMode, dst *os.FileMode) bool {
	s, ok := d.str(attr)
	if !ok {
		return false
	}
	m, err := strconv.ParseUint(s, 8, 32)
	switch {
	case err != nil || m > 0o777:
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf(`invalid %s %q: write octal permissions in quotes, like "0644"`, attr.Name, s)))
		return false
	case os.FileMode(m)&need != need:
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("invalid %s %q: the owner (the server) needs at least %#o", attr.Name, s, need)))
		return false
	}
	*dst = os.FileMode(m)
	return true
}

// prefixes reads a list of IP addresses and CIDR ranges.
func (d *decoder) prefixes(attr *hcl.Attribute, dst *[]netip.Prefix) bool {
	val, ok := d.value(attr)
	if !ok {
		return false
	}
	if !val.Type().IsListType() && !val.Type().IsTupleType() {
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf(`%s must be a list of addresses or CIDR ranges, like ["10.0.0.0/8", "127.0.0.1"]`, attr.Name)))
		return false
	}
	var out []netip.Prefix
	good := true
	for _, v := range val.AsValueSlice() {
		if v.IsNull() || v.Type() != cty.String {
			d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("%s must hold strings", attr.Name)))
			return false
		}
		s := v.AsString()
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				d.add(errorAt(attr.Expr.Range(), fmt.Sprintf(`invalid %s entry %q: write an address ("10.0.0.7") or a CIDR range ("10.0.0.0/8")`, attr.Name, s)))
				good = false
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	if good {
		*dst = out
	}
	return good
}

func (d *decoder) boolean(attr *hcl.Attribute, dst *bool) bool {
	val, ok := d.value(attr)
	if !ok {
		return false
	}
	if val.Type() != cty.Bool {
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("%s must be true or false, without quotes", attr.Name)))
		return false
	}
	*dst = val.True()
	return true
}
