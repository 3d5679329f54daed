#!/bin/sh
# Run every fuzz target (the repository-object decoders, the NBD client's and
# server's decoders) for a while each.
#
#   scripts/fuzz.sh            # 10 seconds per target
#   scripts/fuzz.sh 5m         # five minutes per target
#   FUZZ=FuzzImage scripts/fuzz.sh 1m
#
# `go test` (and so `make test`) runs the same targets over their seeds
# only. A crash the fuzzer finds is saved under the package's testdata/fuzz/,
# where `go test` then runs it as a seed: fix the decoder, keep the file.
set -eu
cd "$(dirname "$0")/.."
time=${1:-10s}
case $time in *[a-z]) ;; *) time=${time}s ;; esac
for pkg in ./pkg/engine ./pkg/nbd ./pkg/crypt ./pkg/key; do
	for t in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz'); do
		case " ${FUZZ:-$t} " in *" $t "*) ;; *) continue ;; esac
		echo "== $t ($time)"
		go test -run '^$' -fuzz "^$t\$" -fuzztime "$time" "$pkg"
	done
done
