// Package s3uploads keeps a set's partial uploads and their records in S3, as a tusd
// DataStore that wraps tusd's s3store: s3store holds the bytes, this package the
// record beside them.
package s3uploads
