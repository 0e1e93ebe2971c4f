package disk

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"
)

func TestExpiry(t *testing.T) {
	s := newStore(t)
	clock := time.Now()
	s.now = func() time.Time { return clock }

	stale := create(t, s, 10)
	write(t, s, stale, 0, []byte("abc"))
	placed := create(t, s, 3)
	write(t, s, placed, 0, []byte("abc"))
	s.MarkPlaced(placed, "a.txt", nil)
	busy := create(t, s, 10)
	// Leftovers of crashes: a data file without a record, a temp record.
	os.WriteFile(filepath.Join(s.dir, "0123456789abcdef0123456789abcdef"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(s.dir, "."+stale+".info-123"), []byte("{"), 0o600)

	if n, _ := s.Sweep(); n != 0 {
		t.Fatalf("swept %d uploads before anything expired", n)
	}
	clock = clock.Add(2 * time.Hour) // the store expires after an hour
	if _, err := s.GetUpload(context.Background(), stale); !errors.Is(err, ErrExpired) {
		t.Errorf("GetUpload of a stale upload = %v, want ErrExpired", err)
	}
	_, done, err := s.openForWrite(busy, true)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Sweep()
	if err != nil || n != 2 {
		t.Errorf("Sweep = %d, %v; want the stale upload and the placed record", n, err)
	}
	left, _ := os.ReadDir(s.dir)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != busy {
		t.Errorf("left %v; want only the data of the upload being written", names)
	}
	done()
	if n, _ := s.Sweep(); n != 1 {
		t.Errorf("once its write ended, the idle upload was not swept")
	}
}

// A crash between a data file's creation and its record's commit leaves a data file
// of an upload whose creation was never answered: swept once old.
func TestDataWithoutARecordIsSweptWhenOld(t *testing.T) {
	s := newStore(t)
	clock := time.Now()
	s.now = func() time.Time { return clock }
	const id = "00112233445566778899aabbccddeeff"
	os.WriteFile(filepath.Join(s.dir, id), nil, 0o600)
	if _, err := s.Record(id); !errors.Is(err, handler.ErrNotFound) {
		t.Errorf("Record of data without a record = %v, want not found", err)
	}
	s.Sweep()
	if _, err := os.Stat(filepath.Join(s.dir, id)); err != nil {
		t.Fatal("fresh data without a record was swept")
	}
	clock = clock.Add(2 * time.Hour)
	s.Sweep()
	if left, _ := os.ReadDir(s.dir); len(left) != 0 {
		t.Errorf("left %d entries", len(left))
	}
}
