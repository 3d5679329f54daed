# dropback build, test and benchmark entry points. See README.md.

GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/dropback/dropback/commands.Version=$(VERSION)
BIN     := bin/dropback
PREFIX  ?= /usr/local
DESTDIR ?=

# Where install puts the binary and each shell's completion, under
# $(DESTDIR)$(PREFIX): the places bash-completion, zsh and fish look by
# default for a PREFIX of /usr or /usr/local.
BINDIR  := $(DESTDIR)$(PREFIX)/bin
BASHDIR := $(DESTDIR)$(PREFIX)/share/bash-completion/completions
ZSHDIR  := $(DESTDIR)$(PREFIX)/share/zsh/site-functions
FISHDIR := $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d

.PHONY: all build install uninstall test bench bench-retention bench-s3 bench-export bench-vm bench-scale demo mutants clean

all: build

## build: compile bin/dropback, stamped with the git version
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/dropback

## install: build, then install the binary and the bash, zsh and fish
## completions under $(DESTDIR)$(PREFIX) (PREFIX=/usr/local by default)
install: build
	install -d $(BINDIR) $(BASHDIR) $(ZSHDIR) $(FISHDIR)
	install -m 0755 $(BIN) $(BINDIR)/dropback
	$(BIN) completion bash > $(BASHDIR)/dropback
	$(BIN) completion zsh > $(ZSHDIR)/_dropback
	$(BIN) completion fish > $(FISHDIR)/dropback.fish
	chmod 0644 $(BASHDIR)/dropback $(ZSHDIR)/_dropback $(FISHDIR)/dropback.fish

## uninstall: remove what install put under $(DESTDIR)$(PREFIX)
uninstall:
	rm -f $(BINDIR)/dropback $(BASHDIR)/dropback $(ZSHDIR)/_dropback $(FISHDIR)/dropback.fish

## test: install missing test tools, vet, and run every package's tests
test:
	scripts/deps.sh
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

## bench: compare dropback with restic and borg (SIZE=4G by default), then
## their retention and gc (see bench-retention), then dropback and restic on
## S3 (see bench-s3), then the ways out of a backup (see bench-export)
bench: build
	scripts/bench.sh && scripts/bench-retention.sh && scripts/bench-s3.sh && scripts/bench-export.sh

## bench-export: restore, export to qcow2 and raw, and qemu-img convert from
## the NBD export side by side, and random reads through NBD (SIZE=4G)
bench-export: build
	scripts/bench-export.sh

## bench-retention: 30 daily backups of a 2 GiB image, then retention and gc,
## against restic and borg (SIZE=2G, DAYS=30 by default)
bench-retention: build
	scripts/bench-retention.sh

## bench-s3: dropback and restic on one MinIO on loopback (started by the
## script), with request counts
bench-s3: build
	scripts/bench-s3.sh

## bench-vm: backups of a running QEMU guest (SIZE=4G by default): a full
## one, then incrementals after the guest wrote 1% and 5% of its disk beside
## the same read whole, and the guest's longest write meanwhile
bench-vm: build
	scripts/bench-vm.sh

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

## bench-scale: metadata at fleet scale: 500 hosts x 20 backups on the local
## store and on MinIO, directly and through a 20 ms latency proxy
bench-scale: build
	scripts/bench-scale.sh
