// Package testsrv starts servers on loopback for tests: Redis, S3. Each helper
// runs the real server as a child process on a free port of 127.0.0.1, waits
// until it answers, and stops it by PID when the test ends. A server missing from
// the machine fails the test with how to install it: CI must run these tests, so
// they are never skipped.
package testsrv
