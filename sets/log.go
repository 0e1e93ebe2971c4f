package sets

import (
	"fmt"
	"slices"

	"github.com/hashicorp/hcl/v2"
)

var logSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "level"}, {Name: "format"}}}

var (
	logLevels  = []string{"trace", "debug", "info", "warn", "error"}
	logFormats = []string{"text", "json"}
)

// logBlock decodes the one log block, if any, into cfg.
func (d *decoder) logBlock(blocks hcl.Blocks, cfg *Config) {
	for i, b := range blocks {
		if i > 0 {
			first := blocks[0].DefRange
			d.add(errorAt(b.DefRange, fmt.Sprintf("duplicate log block; the first is at %s:%d,%d", first.Filename, first.Start.Line, first.Start.Column)))
			continue
		}
		content, diags := b.Body.Content(logSchema)
		d.add(diags...)
		d.oneOf(content.Attributes["level"], logLevels, &cfg.LogLevel)
		d.oneOf(content.Attributes["format"], logFormats, &cfg.LogFormat)
	}
}

// oneOf reads a string that must be one of choices.
func (d *decoder) oneOf(attr *hcl.Attribute, choices []string, dst *string) bool {
	s, ok := d.str(attr)
	if !ok {
		return false
	}
	if !slices.Contains(choices, s) {
		d.add(errorAt(attr.Expr.Range(), fmt.Sprintf("invalid %s %q: must be one of %q", attr.Name, s, choices)))
		return false
	}
	*dst = s
	return true
}
