//go:build tools

// Package bench pins tusd so that its binary can be built from this module:
// go build github.com/tus/tusd/v2/cmd/tusd
package bench

import _ "github.com/tus/tusd/v2/cmd/tusd"
