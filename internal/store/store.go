// Package store is what the hooks and the server need of the places a set's uploads
// live, whatever holds their bytes: the partial uploads and their records (Uploads),
// and the destination finished files are placed in and served from (Destination).
// One upload's path reads the same on every backend: tusd writes it through the
// Uploads' DataStore; the hooks read its first bytes to check them, place it with
// Destination.Place, and record the outcome with Uploads.MarkPlaced or Reject.
//
// The implementations live beside this package: disk (partial uploads and records on
// local disk) and placement (a local destination directory); s3uploads and s3dest (the
// same in S3, for several instances).
package store

import (
	"io"
	"io/fs"
	"iter"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/uploadsets/uploadsets/internal/uploads"
)

// Records is what the hooks read and write of an upload's record.
type Records interface {
	Record(id string) (uploads.Record, error)
	// Intend durably records the name a copy is about to be placed under (see
	// Request.Intend).
	Intend(id, name string) error
	// MarkPlaced records that the upload now lives in the destination under name
	// (and its thumbnails under thumbs, by label), and lets its partial data go.
	MarkPlaced(id, name string, thumbs map[string]string) error
	// MarkFailed records that the client was told its upload's placement failed.
	MarkFailed(id string) error
	// Reject removes the upload's data and keeps the reason.
	Reject(id, reason string) error
}

// Bytes is what the hooks read of a finished upload's data.
type Bytes interface {
	// Source is an upload's complete data, as Destination.Place takes it.
	Source(id string) Source
	// Head returns up to n first bytes of an upload's data, for a content check.
	Head(id string, n int) ([]byte, error)
}

// Uploads is one set's partial uploads: a tusd DataStore, their records and bytes,
// and the upkeep of both.
type Uploads interface {
	Records
	Bytes
	// UseIn composes the store into tusd, with the extensions it polices.
	UseIn(*handler.StoreComposer)
	// Open returns the record and, unless the upload is placed, its data, of which
	// the first rec.ReportedOffset() bytes are the upload's. It takes no lock.
	Open(id string) (uploads.Record, Data, error)
	// Offset is the offset a HEAD would report.
	Offset(id string) (int64, error)
	// IDs lists the uploads with a record, for the placement of those a crash
	// interrupted.
	IDs() ([]string, error)
	// Sweep removes expired uploads and leftovers of crashes; Interval is how often
	// it should run.
	Sweep() (int, error)
	Interval() time.Duration
}

// Data is an upload's bytes as received so far.
type Data interface {
	io.ReaderAt
	io.Closer
}

// Source is the data a placement puts into place: an upload's own bytes, or a file
// made from them (an image step's output).
type Source struct {
	// Path is a local file. A local destination on its file system links it: it
	// becomes the placed file itself.
	Path string
	// Bucket and Key name an S3 object instead (an upload assembled in S3), which an
	// S3 destination copies server-side.
	Bucket, Key string
}

// Request is one upload to place.
type Request struct {
	Src Source
	// Names are the candidates, in order of preference; the same on every attempt.
	Names iter.Seq[string]
	// Folder, when not empty, is a relative path of safe components inside the
	// destination (an upload token's folder): the file goes there, and the names
	// returned are relative to the destination ("2026/cat.png").
	Folder string
	// Intended is the name an earlier copy announced through Intend, if any.
	Intended string
	// Intend durably records, before a copy is put into place, the name it is
	// about to get: a crash right after leaves a file that nothing ties to Src, and
	// the next attempt must find it by that name rather than place a second copy.
	Intend func(name string) error
}

// Placer puts finished data into a destination. Names are relative to it,
// "/"-separated.
type Placer interface {
	// Place puts req's data into place under the first free candidate name and
	// returns that name; a name once placed is never replaced.
	Place(req Request) (string, error)
	// Unplace takes back a file placed by a step whose outcome could not be
	// recorded.
	Unplace(name string) error
}

// Destination is where a set's finished files are placed and served from.
type Destination interface {
	Placer
	// Open opens a placed file for serving.
	Open(name string) (File, error)
	// RemoveTemps removes what interrupted placements left behind.
	RemoveTemps() error
	Close() error
}

// File is a placed file as served.
type File interface {
	io.ReadSeeker
	io.Closer
	Stat() (fs.FileInfo, error)
}
