package sets

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// errorAt is a semantic error. The whole message goes in Summary: it is already a
// sentence, and WriteDiagnostics prints Summary first.
func errorAt(rng hcl.Range, msg string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: msg, Subject: rng.Ptr()}
}

func warningAt(rng hcl.Range, msg string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: msg, Subject: rng.Ptr()}
}

// WriteDiagnostics prints each diagnostic on its own line as `file:line,col: message`.
// hcl.Diagnostics.Error() would print only the first, and its text writer prints source
// snippets over several lines, which suits neither logs nor golden files.
func WriteDiagnostics(w io.Writer, diags hcl.Diagnostics) {
	for _, d := range diags {
		var b strings.Builder
		if d.Subject != nil {
			fmt.Fprintf(&b, "%s:%d,%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		if d.Severity == hcl.DiagWarning {
			b.WriteString("warning: ")
		}
		b.WriteString(oneLine(d.Summary))
		if detail := oneLine(d.Detail); detail != "" && !strings.Contains(d.Summary, detail) {
			b.WriteString("; ")
			b.WriteString(detail)
		}
		b.WriteByte('\n')
		io.WriteString(w, b.String())
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// sortDiags orders diagnostics as they appear in the file, which is how an operator
// fixes them; the decoder finds them in a different order (syntax, then structure,
// then cross-checks).
func sortDiags(diags hcl.Diagnostics) {
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		return cmp.Compare(a.Subject.Start.Byte, b.Subject.Start.Byte)
	})
}
