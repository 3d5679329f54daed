#!/usr/bin/env bash
# make bench-vm: backups of a running QEMU guest whose disk is the synthetic
# image (SIZE, default 4G): a full backup, then incremental ones after the
# guest wrote 1% and 5% of its disk, each beside the same backup read whole
# (--full-read), and the guest's longest write while each ran. The guest runs
# with TCG and no OS; internal/cmd/benchvm drives it and prints a Markdown
# table for docs/benchmarks.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
SIZE=${SIZE:-4G}
BENCH_DIR=${BENCH_DIR:-/tmp/dropback-bench}
command -v qemu-system-x86_64 >/dev/null || { echo "bench-vm: qemu-system-x86_64 is missing (scripts/deps.sh installs it)" >&2; exit 1; }
cd "$root"
go build -o bin/mkimage ./internal/cmd/mkimage
go build -o bin/benchvm ./internal/cmd/benchvm
[ -x bin/dropback ] || { echo "bench-vm: no bin/dropback; run make build" >&2; exit 1; }
mkdir -p "$BENCH_DIR"
# First on an encrypted repository, as by default (the password is the
# benchmark's), then on one made with --insecure-no-encryption: every
# command of an encrypted one derives its key first, a fixed cost that
# weighs on the small incremental most.
export DROPBACK_PASSWORD=${DROPBACK_PASSWORD:-dropback bench password}
bin/benchvm -dropback "$root/bin/dropback" -mkimage "$root/bin/mkimage" -size "$SIZE" -dir "$BENCH_DIR/vm"
echo
bin/benchvm -plain -dropback "$root/bin/dropback" -mkimage "$root/bin/mkimage" -size "$SIZE" -dir "$BENCH_DIR/vm"
