//go:build !cgo

package images

import (
	"context"
	"errors"

	"github.com/hashicorp/go-hclog"
)

// ErrNoLibvips is Start's answer in a binary built without cgo: it links no libvips,
// so a set with an image block cannot be served; every other set works as ever.
var ErrNoLibvips = errors.New("image processing needs libvips, and this binary was built with CGO_ENABLED=0: build it with cgo (make build)")

// Processor stands in for the libvips pool of a cgo build.
type Processor struct{}

// Start fails: see ErrNoLibvips.
func Start(workers int, log hclog.Logger) (*Processor, error) { return nil, ErrNoLibvips }

// Process is never called: Start returned no Processor.
func (p *Processor) Process(ctx context.Context, src string, spec Spec) (Result, error) {
	return Result{}, ErrNoLibvips
}
