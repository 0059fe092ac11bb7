# wspush — make run starts the server, make test runs everything CI runs.
# bash for pipefail: a recipe that pipes go test into grep must fail when
# go test does.
SHELL       := /bin/bash
GO          ?= go
BIN         := $(CURDIR)/bin
STATICCHECK := $(BIN)/staticcheck
STATICCHECK_VERSION := v0.8.2
# Flags for make run, e.g. make run ARGS="-listen :9000 -log-level debug".
ARGS ?=

.PHONY: all run build deps test test-js test-allocs test-all conformance test-short lint vet fmt-check staticcheck tools fuzz peers-test clean

all: build

## run: build and start wspushd on its defaults (ws :8080, API 127.0.0.1:8081)
run: build
	$(BIN)/wspushd $(ARGS)

## build: compile bin/wspushd
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/wspushd ./cmd/wspushd

## deps: install missing test dependencies (redis-server, redis-cli, node, npm, chromium) from Debian packages; as root, else says what to install
deps:
	./scripts/deps.sh

## test: deps, lint, the allocation tests without -race, then every test under the race detector in shuffled order
test: deps lint test-allocs test-js
	$(GO) test -race -shuffle=on -count=1 -timeout 20m ./...
	@if [ -f bench/peers/go.mod ]; then cd bench/peers && $(GO) test -race -count=1 -timeout 10m ./...; fi

## test-js: the browser client's tests (clients/js, node --test) against bin/wspushd; npm installs ws into clients/js/node_modules when it is not there
# Without node or npm (scripts/deps.sh could not install them) it skips
# with a message, except in CI (CI=true), where that is a failure.
test-js: deps build
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	  if [ "$${CI:-}" = true ]; then echo "test-js: node/npm missing (scripts/deps.sh)" >&2; exit 1; fi; \
	  echo "test-js: SKIP: node/npm missing; run scripts/deps.sh as root" >&2; exit 0; fi; \
	cd clients/js && if [ ! -f node_modules/ws/package.json ]; then \
	  npm install --no-save --no-package-lock --no-audit --no-fund ws@8; fi && \
	WSPUSHD_BIN=$(BIN)/wspushd node --test

# Under -race sync.Pool drops Puts at random, so the zero-allocation tests
# of pooled paths live in allocs_test.go files built only without -race (no
# test skips). test-allocs runs them, and the hot-path
# benchmarks briefly, without -race: a test that asserts 0 allocs fails the
# target. ALLOC_TESTS names those tests (top-level names).
ALLOC_PKGS  := ./hub ./protocol ./internal/bpool ./internal/wsframe ./wsconn ./dispatch
ALLOC_TESTS := ^(TestDeflateAllocs|TestPublishAllocs|TestEncodersDoNotAllocate|TestNewDeliveryFrameAllocs|TestGetPutAllocs|TestFrameAllocs|TestAppendHeaderAllocatesNothing|TestSendToSocketAllocs|TestConflatedPushAllocs)$$

## test-allocs: the zero-allocation tests and hot-path benchmarks (-benchtime 100x), without -race
test-allocs:
	$(GO) test -count=1 -run '$(ALLOC_TESTS)' -bench . -benchtime 100x $(ALLOC_PKGS)

## test-all: everything CI runs: make test, then every fuzz target for FUZZTIME
test-all: test fuzz

## conformance: the RFC 6455 suite against a freshly built wspushd, one line per case
conformance:
	set -o pipefail; $(GO) test -count=1 -v -run '^TestConformance$$' ./conformance/ | grep -E '^ +(PASS|FAIL|KNOWN)|passed, '

## test-short: the quick subset (skips the 5,000-connection tests)
test-short:
	$(GO) test -short -count=1 ./...

## lint: gofmt, go vet and staticcheck must all be clean
lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

## tools: install the pinned staticcheck into bin/
tools: $(STATICCHECK)

$(STATICCHECK):
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## fuzz: run each fuzz target for FUZZTIME (CI: 20s each); crashers land in testdata/fuzz
FUZZTIME ?= 20s
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) ./scripts/fuzz.sh

clean:
	rm -rf $(BIN)

# Benchmarks (bench/README.md, BENCHMARKS.md). Results go to bench/results/
# (git-ignored); BENCH_FLAGS adds suite flags, e.g. BENCH_FLAGS=--quick.
BENCH_ROUNDS ?= 3
BENCH_FLAGS  ?=
.PHONY: bench bench-compare bench-compression bench-cluster bench-million

## bench: the standard suite against wspush only (both writer modes), medians of BENCH_ROUNDS rounds
bench:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/wspushd ./cmd/wspushd
	$(GO) build -o $(BIN)/bench ./bench/cmd/bench
	rm -rf bench/results/bench.raw
	bin/bench suite --server wspush=bin/wspushd --rounds $(BENCH_ROUNDS) \
	  --out-md bench/results/bench.md --json bench/results/bench.json $(BENCH_FLAGS)

## bench-compare: the standard suite against wspush and every peer in bench/peers (floor in both modes: coalesce, the yardstick, and write-per-delivery), rounds alternating
bench-compare:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/wspushd ./cmd/wspushd
	$(GO) build -o $(BIN)/bench ./bench/cmd/bench
	cd bench/peers && $(GO) build -o ../../bin/peer-gorilla ./gorilla
	cd bench/peers && $(GO) build -o ../../bin/peer-nbio ./nbio
	cd bench/peers && $(GO) build -o ../../bin/peer-floor ./floor
	rm -rf bench/results/compare.raw
	bin/bench suite --server wspush=bin/wspushd --server gorilla=bin/peer-gorilla \
	  --server nbio=bin/peer-nbio --server floor=bin/peer-floor \
	  --server 'floor-write=bin/peer-floor -mode write-per-delivery' --rounds $(BENCH_ROUNDS) \
	  --out-md bench/results/compare.md --json bench/results/compare.json $(BENCH_FLAGS)

## bench-compression: permessage-deflate on and off, wspush and gorilla, 10,000 subscribers, 1 KiB and 4 KiB JSON (issue 10), BENCH_ROUNDS rounds
# Two suite runs (connect only in the first): the same four servers, the
# clients of the -z ones offering permessage-deflate (--client-args).
ZIP_SERVERS := --server wspush=bin/wspushd --server 'wspush-z=bin/wspushd --compression' \
  --server gorilla=bin/peer-gorilla --server 'gorilla-z=bin/peer-gorilla -compression' \
  --client-args wspush-z=--compression --client-args gorilla-z=--compression --persistent off --rounds $(BENCH_ROUNDS)
bench-compression:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/wspushd ./cmd/wspushd
	$(GO) build -o $(BIN)/bench ./bench/cmd/bench
	cd bench/peers && $(GO) build -o ../../bin/peer-gorilla ./gorilla
	rm -rf bench/results/compression-1k.raw bench/results/compression-4k.raw
	bin/bench suite $(ZIP_SERVERS) --only connect,broadcast-large,throughput \
	  --extra 'connect=-n 10000' --extra 'broadcast-large=-n 10000 -m 40 --rate 4 --payload json -s 1024' \
	  --extra 'throughput=--duration 10s --payload json -s 1024' \
	  --out-md bench/results/compression-1k.md --json bench/results/compression-1k.json $(BENCH_FLAGS)
	bin/bench suite $(ZIP_SERVERS) --only broadcast-large,throughput \
	  --extra 'broadcast-large=-n 10000 -m 40 --rate 4 --payload json -s 4096' \
	  --extra 'throughput=--duration 10s --payload json -s 4096' \
	  --out-md bench/results/compression-4k.md --json bench/results/compression-4k.json $(BENCH_FLAGS)

## bench-cluster: broadcast and throughput against 3 wspushd nodes on one Redis and against one node, BENCH_ROUNDS rounds
bench-cluster:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/wspushd ./cmd/wspushd
	$(GO) build -o $(BIN)/bench ./bench/cmd/bench
	rm -rf bench/results/cluster.raw
	bin/bench cluster --wspushd bin/wspushd --nodes 3 --rounds $(BENCH_ROUNDS) \
	  --out-md bench/results/cluster.md --json bench/results/cluster.json $(BENCH_FLAGS)

## bench-million: 1,000,000 clients on ceil(N/19000)+1 wspushd nodes sharing one port (--reuseport) and one Redis (run as root: it raises the kernel settings it needs and restores them)
SCALE_FLAGS ?=
bench-million:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/wspushd ./cmd/wspushd
	$(GO) build -o $(BIN)/bench ./bench/cmd/bench
	mkdir -p bench/results
	bin/bench scale -n 1000000 --rate 5000 --wspushd bin/wspushd --json bench/results/million.json $(SCALE_FLAGS)
