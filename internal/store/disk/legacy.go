package disk

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Before the record log, each upload's record was a file <id>.info beside its data:
// the record as created, then each state change appended as one more JSON value.
// adoptLegacy moves such records into the log when a store opens, so that uploads in
// progress and outcomes already told survive the upgrade. A file is removed only once
// the log holding its record is synced: a crash in between adopts it again, which
// changes nothing.
func (s *Store) adoptLegacy() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	var adopted []entry
	var files []string
	for _, de := range entries {
		id, ok := strings.CutSuffix(de.Name(), ".info")
		if !ok || !ValidID(id) {
			continue
		}
		path := filepath.Join(s.dir, de.Name())
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		files = append(files, path)
		rec, err := parseLegacy(data)
		if err != nil {
			// Torn by a crash during its creation, whose answer was never sent.
			s.log.Warn("LegacyRecordUnreadable", "id", id, "error", err)
			continue
		}
		changed := rec.Created
		if st, err := de.Info(); err == nil {
			changed = st.ModTime().UTC()
		}
		adopted = append(adopted, entry{Record: rec, Changed: changed})
	}
	if len(files) == 0 {
		return nil
	}
	if err := s.records.adopt(s.set, adopted); err != nil {
		return err
	}
	for _, path := range files {
		s.remove(path)
	}
	s.log.Info("LegacyRecordsAdopted", "count", len(adopted))
	return nil
}

// parseLegacy decodes a legacy record file; a torn last value, never synced and so
// never reported, is ignored.
func parseLegacy(data []byte) (rec Record, err error) {
	done := make(chan struct{})
	go func() { // see decode
		defer close(done)
		d := json.NewDecoder(bytes.NewReader(data))
		if err = d.Decode(&rec); err != nil {
			return
		}
		for {
			var c stateChange
			if d.Decode(&c) != nil {
				return
			}
			var e entry
			e.Record = rec
			c.apply(&e, e.Changed)
			rec = e.Record
		}
	}()
	<-done
	return rec, err
}
