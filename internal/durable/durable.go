// Package durable holds the one fsync helper that both the store and placement need:
// a rename or link is only durable once its directory is synced.
package durable

import "os"

// SyncDir fsyncs a directory, making the entries created, renamed or removed in it
// survive a power cut.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
