//go:build !crashpoints

// Package crashpoint lets the e2e tests stop the server at a named step, as a crash or
// a slow disk would, to test windows too narrow to hit from outside. Only a binary
// built with -tags crashpoints has them; in any other build the calls are empty.
package crashpoint

// At kills the process when UPLOADSETS_CRASH_AT names this step.
func At(step string) {}

// Pause waits UPLOADSETS_PAUSE_FOR (default 1s) when UPLOADSETS_PAUSE_AT names this step.
func Pause(step string) {}
