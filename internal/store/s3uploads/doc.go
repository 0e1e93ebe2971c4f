// Package s3uploads keeps a set's partial uploads and their records in an S3 bucket,
// as a tusd DataStore that wraps tusd's s3store: s3store holds the bytes, this
// package a record beside them, and every instance of the server reads both back
// from the bucket, so any instance can serve any request for any upload.
//
// # Object layout
//
// Under the store's prefix (one set's own: Sweep treats everything under it as the
// store's), for an upload <id> (32 hex digits, as uploads.NewID makes them):
//
//	<id>.record  the record (this package): JSON, created with If-None-Match "*",
//	             replaced only with If-Match of the version read
//	<id>.info    s3store's FileInfo, written at creation (and again when a deferred
//	             length is declared); its ID is s3store's, <id>+<multipart upload ID>
//	<id>.part    s3store's bytes short of S3's 5 MiB part minimum, rewritten by
//	             every PATCH that leaves some
//	<id>         while receiving: the key of s3store's multipart upload (not an
//	             object yet); once every byte is in: the final object s3store
//	             assembled, which an S3 destination copies server-side (Object)
//
// tusd and the server see the store's <id>, not s3store's ID: the server's routes
// only admit 32 hex digits, and the record names the multipart upload. The record
// holds the uploads.Record (the FileInfo as created, the creation hook's hints, the
// outcome: state, name, intended name, reason, thumbnails), s3store's ID, whether the
// final object is assembled, and when its bytes and its state last changed. The
// client's metadata live in the record only: s3store would make them the S3
// metadata of the object, which mangles non-ASCII, refuses more than 2 KiB and keys
// that are not HTTP tokens, and turns the client's filetype into its Content-Type.
//
// A placed upload is its record alone; a rejected one too (its reason kept). Both
// records go after the expiry time, like unfinished uploads, which go with their data.
//
// # Where the truth is
//
// The offset is what s3store reads back from the bucket (its parts plus .part),
// never a number one instance remembers: what reached S3 counts, on every instance
// alike. The length is .info's while bytes arrive, the record's once they are in.
// The state is the record's. Redis (the Locker several instances share) holds
// nothing that must survive: it only orders the requests of one upload. Restarted
// empty, it loses no upload, no record and no outcome; the worst it can do is let
// two requests for one upload overlap until tusd's release requests sort them out,
// and even then no change to a record is lost: every update is a conditional write,
// re-read and re-applied when another instance wrote in between (412).
//
// An upload's activity (for expiry) is written to the record at creation, after a
// write when the recorded one is older than a sixteenth of the expiry time (at most
// 15 minutes), and with the first change of state after completion: one record
// write per step rather than per PATCH. Expiry allows for that step, so no upload expires early, and none more than
// a step late.
//
// # Writes
//
// A PATCH without a checksum goes to s3store as it arrives. One with an expected
// checksum (Options.Checksum) is spooled to Options.TempDir and verified before
// s3store sees a byte, because s3store cannot take bytes back: a mismatch, or a body
// that ended early, stores nothing (460). An upload of unknown length stores no byte
// past its limit: the body is cut there and the request answered 413. A complete
// upload that is not placed reports one byte less than it holds (see
// uploads.Record.ReportedOffset); the client's copy of that byte is read, checked
// against its checksum if any, and thrown away: the final object is never written
// again, and the PATCH runs placement once more.
//
// # Reads
//
// Head and Open read the final object with ranged GETs. The bytes of an upload still
// receiving are parts of a multipart upload, which S3 cannot read back: Open and a
// tusd GET answer 409 ERR_INCOMPLETE_UPLOAD until every byte is in.
//
// # Crashes
//
// What a crash between two steps leaves, and what recovers from it:
//
//   - NewUpload: s3store creates the multipart upload, then .info; the store then
//     writes the record, then tells Options.Changed. A crash before .info leaves a
//     multipart upload nothing names, and one before the record an .info: the
//     client never got the upload's URL, and Sweep removes both (through s3store,
//     which .info names the multipart upload to) once they are older than the
//     expiry time, at least an hour. A crash after the record leaves an upload the
//     client may not know of: it expires like any other.
//   - WriteChunk: s3store's own order. Parts uploaded are the upload's; the next
//     HEAD says how far it got, wherever it is asked. s3store deletes .part before
//     it writes the new one: a crash in between loses those bytes (under 5 MiB),
//     although they were acknowledged; HEAD then reports less and the client sends
//     them again. A spooled body is a local temp file that Sweep removes. A crash
//     before the activity is recorded can make the upload expire up to that
//     PATCH's length early.
//   - FinishUpload: s3store completes the multipart upload. The record says the
//     object is assembled with the next change of state, which the finish hook
//     makes in the same request (Intend, MarkPlaced, MarkFailed or Reject, over
//     the version the request read: no write of its own). Before the completion,
//     every byte is in parts: the last is withheld, and its retry completes it.
//     After it, until the record says so, a load finds the final object by a HEAD
//     and takes it as assembled.
//   - DeclareLength: .info first, then the record; the length of an upload still
//     receiving is read from .info, and the record gets it at the latest when the
//     upload is assembled.
//   - Placement: an S3 destination copies the final object, then the hooks record
//     it (MarkPlaced), then the data is removed through s3store. Before the record,
//     the upload is still unplaced and its next attempt places it (Intend lets the
//     destination find the copy). After the record, the leftover data goes when
//     Sweep removes the record. Reject likewise: the reason first, then the data.
//   - Terminate: Changed is told, then s3store removes the data, then the record
//     goes. A record without data reads as not found and Sweep removes it, judged
//     by the record's own times.
//   - Sweep: Changed is told of the expiry, then the data goes, then the record. A
//     crash after telling tells again on the next sweep (the event's ID is the
//     same); one after the data leaves a record without data, as above.
//
// Sweep takes each upload's lock in Options.Locker before it removes it, so that
// no instance removes an upload another one is writing to; tusd asks the request
// holding the lock to stop, and the upload is judged on what it then holds.
//
// # Reads of the record
//
// Every request reads the record from the bucket once, under the upload's lock
// (tusd's GetUpload), and never trusts a copy from an earlier request: another
// instance may have changed it since. The PATCH that completes an upload keeps what
// it read for its finish hook (WithRequest, RecordIn), which would otherwise read it
// again. A change writes over the version this instance last read or wrote, with
// If-Match, and reads the record again when another instance wrote in between.
//
// # What it needs of S3
//
// Strong read-after-write consistency, and conditional PutObject (If-None-Match "*"
// and If-Match), as AWS S3 has had since 2020 and 2024 and versitygw v1.8.0 has.
package s3uploads
