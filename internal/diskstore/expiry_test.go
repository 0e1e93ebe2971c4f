package diskstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
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
	_, done, err := s.openForWrite(busy)
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
	if len(names) != 2 {
		t.Errorf("left %v; want only the upload being written (data and record)", names)
	}
	done()
	if n, _ := s.Sweep(); n != 1 {
		t.Errorf("once its write ended, the idle upload was not swept")
	}
}

func TestTornRecordIsSweptWhenOld(t *testing.T) {
	s := newStore(t)
	clock := time.Now()
	s.now = func() time.Time { return clock }
	// A crash while creating an upload left half a record and its empty data file.
	const id = "00112233445566778899aabbccddeeff"
	os.WriteFile(filepath.Join(s.dir, id+".info"), []byte(`{"ID":"0011`), 0o600)
	os.WriteFile(filepath.Join(s.dir, id), nil, 0o600)
	if _, err := s.Record(id); err == nil || errors.Is(err, ErrExpired) {
		t.Errorf("Record of a torn record = %v, want an internal error", err)
	}
	if n, _ := s.Sweep(); n != 0 {
		t.Fatal("a fresh torn record was swept")
	}
	clock = clock.Add(2 * time.Hour)
	if n, _ := s.Sweep(); n != 1 {
		t.Fatal("an old torn record was not swept")
	}
	if left, _ := os.ReadDir(s.dir); len(left) != 0 {
		t.Errorf("left %d entries", len(left))
	}
}
