# dropback build, test and benchmark entry points. See README.md.

GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/dropback/dropback/commands.Version=$(VERSION)
BIN     := bin/dropback

.PHONY: all build test bench bench-retention bench-s3 demo mutants clean

all: build

## build: compile bin/dropback, stamped with the git version
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/dropback

## test: install missing test tools, vet, and run every package's tests
test:
	scripts/deps.sh
	$(GO) vet ./...
	$(GO) test -count=1 ./...

## bench: compare dropback with restic and borg (SIZE=4G by default), then
## their retention and gc (see bench-retention), then dropback and restic on
## S3 (see bench-s3)
bench: build
	scripts/bench.sh && scripts/bench-retention.sh && scripts/bench-s3.sh

## bench-retention: 30 daily backups of a 2 GiB image, then retention and gc,
## against restic and borg (SIZE=2G, DAYS=30 by default)
bench-retention: build
	scripts/bench-retention.sh

## bench-s3: dropback and restic on one MinIO on loopback (started by the
## script), with request counts
bench-s3: build
	scripts/bench-s3.sh

## mutants: put back each deletion-safety bug in turn and check that the
## interleaving test finds it (SEEDS=1000 by default)
mutants:
	scripts/mutants.sh

## demo: back up, change, back up, list and restore a sample disk
demo: build
	scripts/demo.sh

## clean: remove build output
clean:
	rm -rf bin dist
