# The README's two commands are `make run` and `make test`; .ci/run calls `make test`.
GO      ?= go
BIN     := bin/uploadsets
CHROMIUM ?= /usr/bin/chromium

.PHONY: run build test test-go test-web deps vips-deps versitygw vet fmt-check web web-check bench bench-smoke bench-images soak fuzz clean

# run needs libvips only for cgo (internal/images); vips-deps installs it when missing.
run: vips-deps
	$(GO) run ./cmd/uploadsets serve -config config.hcl

# cgo links libvips (internal/images), so the binary needs the libvips runtime.
build: vips-deps
	$(GO) build -trimpath -o $(BIN) ./cmd/uploadsets

# Everything CI runs: static checks, the Go suite (unit, HTTP tables, e2e of the built
# binary with the race detector, fuzz seed corpora) and the browser test of the page.
test: deps fmt-check vet test-go bench-smoke test-web

# Node packages from the lockfiles, Debian's Chromium for the browser test (the
# test drives it with playwright-core; no browser is ever downloaded), redis-server
# (the tests of several instances start their own), and libvips.
deps: vips-deps
	cd e2e/js && npm ci --no-audit --no-fund
	cd web && npm ci --no-audit --no-fund
	@test -x $(CHROMIUM) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || { echo "Chromium is missing and could not be installed: apt-get install -y chromium"; exit 1; }
	@command -v redis-server >/dev/null || { echo "redis-server is missing (the tests start their own): installing it (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; } \
	  || { echo "redis-server is missing and could not be installed: apt-get install -y redis-server"; exit 1; }

# libvips (headers and pkg-config file, for cgo) and its command-line tools (the
# anchor of bench-images), from Debian, when pkg-config cannot find it.
vips-deps:
	@pkg-config --exists 'vips >= 8.13' 2>/dev/null || { echo "libvips is missing: installing libvips-dev and libvips-tools (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pkg-config libvips-dev libvips-tools >/dev/null && pkg-config --exists 'vips >= 8.13'; } \
	  || { echo "libvips 8.13 or later is missing and could not be installed: apt-get install -y libvips-dev libvips-tools (macOS: brew install vips pkg-config)"; exit 1; }

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$out" || { echo "gofmt needed: $$out"; exit 1; }
	cd bench && $(GO) vet ./...

vet:
	$(GO) vet ./...

# versitygw, the S3 server internal/testsrv starts: built once per machine into the
# user's cache (1-2 min), ahead of go test so that no test's timeout pays for it.
versitygw:
	@.ci/versitygw/build >/dev/null

test-go: versitygw
	$(GO) test -race -count=1 -timeout 10m ./...

test-web: build
	cd web && UPLOADSETS_BIN=$(CURDIR)/$(BIN) node --test test/

# Rebuild the page's bundle from the lockfile; web-check fails if the committed one
# differs from a fresh build (and changes nothing).
web:
	cd web && npm ci --no-audit --no-fund && node build.mjs

web-check:
	cd web && npm ci --no-audit --no-fund && node build.mjs --check

# uploadsets against tusd v2.10.1 on loopback, fresh servers, medians of 3 runs
# (bench/README.md). bench-smoke is a tiny version that `make test` runs.
bench:
	cd bench && $(GO) run ./cmd/uploadbench -runs 3

bench-smoke:
	cd bench && $(GO) run ./cmd/uploadbench -quick -runs 1

# Image processing of a 12 MP JPEG and HEIC (fit to 2048 + a 300 px thumbnail) against
# the vips command-line tool doing the same (internal/images/bench_test.go).
bench-images: vips-deps
	$(GO) test -run '^$$' -bench . -benchtime 20x ./internal/images/

# Long fault soaks: 25 kill -9 in one upload; 60 MiB through a connection cut every 512 KiB.
soak:
	$(GO) test -race -count=1 -run Soak -v ./e2e/ -args -soak

# A minute of each fuzz target beyond the seed corpora that `make test` runs.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzSafeName -fuzztime 60s ./sets/
	$(GO) test -run '^$$' -fuzz FuzzParseSize -fuzztime 60s ./sets/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./sets/
	$(GO) test -run '^$$' -fuzz FuzzMetadata -fuzztime 60s ./hooks/

clean:
	rm -rf bin data uploads
