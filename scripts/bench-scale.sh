#!/usr/bin/env bash
# Benchmark dropback's metadata at fleet scale: one repository of
# HOSTS hosts x BACKUPS daily backups of a small disk (128 KiB, 64 KiB
# chunks), on the local store and on MinIO reached directly and through a
# proxy that adds DELAY to every request (internal/cmd/latencyproxy), as an
# object store in another building would. It times the commands a fleet
# runs all day, with peak memory (GNU time) and, on MinIO, the requests
# made (counted by the proxy; with DELAY=0 for the direct runs):
#
#   backups list (cold, then with the local cache warm), backups list HOST,
#   hosts list, repo stats, run --due twice (the first finds nothing due and
#   nothing to expire, the second is the idle pass after it), repo gc, and a
#   whole-repository verify
#
# and the index segments left after gc. Before the measured commands each
# fleet is collected once (repo gc, not measured, on MinIO without the
# proxy), as the daily gc of a fleet would have: that compacts its index
# and writes the catalog of manifests and host records (docs/format.md,
# "catalog/") that listings read; the measured gc is the one after it.
# The fleet is written by the
# generator in pkg/engine/fleet_gen_test.go (the objects a backup writes,
# through the engine's encoders, many at once): taking 10,000 backups through
# the command line would take hours.
#
#   make bench-scale
#   HOSTS=100 BACKUPS=10 scripts/bench-scale.sh     # a quick run
#
# Environment:
#   HOSTS, BACKUPS  the fleet (default 500 x 20)
#   DELAY           latency the proxy adds (default 20ms)
#   TARGETS         which to run, of "local minio proxy" (default all three)
#   LIMIT           seconds a command may take before it is stopped and
#                   reported as such (default 600)
#   BENCH_DIR       work directory, emptied at start (default /tmp/dropback-bench-scale)
#   DROPBACK        the binary (default bin/dropback)
#   DROPBACK_ARGS   more global flags for every command measured
#   DROPBACK_PASSWORD  the repositories' password (default bench-scale)
#   DROPBACK_S3_LIST_LAG  how long S3 listings are taken to lag (default
#                   here 0s: MinIO lists every object written at once, as
#                   AWS S3 does, and a deployment on either may say so)
#
# MinIO runs from $BENCH_DIR/minio through scripts/minio.sh and is stopped
# at the end. Results: a table on stdout and $BENCH_DIR/results.tsv.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
HOSTS=${HOSTS:-500}
BACKUPS=${BACKUPS:-20}
DELAY=${DELAY:-20ms}
TARGETS=${TARGETS:-local minio proxy}
LIMIT=${LIMIT:-600}
BENCH_DIR=${BENCH_DIR:-/tmp/dropback-bench-scale}
DROPBACK=${DROPBACK:-$root/bin/dropback}
DROPBACK_ARGS=${DROPBACK_ARGS:-}
gnutime=/usr/bin/time
# The repositories are encrypted, as a fleet's would be; the generator and
# every command take the password from here.
export DROPBACK_PASSWORD=${DROPBACK_PASSWORD:-bench-scale}
export DROPBACK_S3_LIST_LAG=${DROPBACK_S3_LIST_LAG:-0s}

say() { echo "bench-scale: $*" >&2; }
die() {
	say "$*"
	exit 1
}

[ -x "$DROPBACK" ] || die "no dropback binary at $DROPBACK; run make build"
"$gnutime" --version 2>&1 | grep -q GNU || die "GNU time is missing at $gnutime (scripts/deps.sh installs it)"
if [ -e "$BENCH_DIR" ]; then
	[ -f "$BENCH_DIR/.dropback-bench-scale" ] || [ -z "$(ls -A "$BENCH_DIR")" ] ||
		die "$BENCH_DIR holds files this script did not make; remove it or set BENCH_DIR"
	MINIO_STATE_DIR=$BENCH_DIR/minio "$root/scripts/minio.sh" stop
	rm -rf "$BENCH_DIR"
fi
mkdir -p "$BENCH_DIR/logs"
touch "$BENCH_DIR/.dropback-bench-scale"
proxy_bin=$BENCH_DIR/latencyproxy
gen_bin=$BENCH_DIR/fleetgen.test
(cd "$root" && go build -o "$proxy_bin" ./internal/cmd/latencyproxy &&
	go test -c -tags benchscale -o "$gen_bin" ./pkg/engine) || die "cannot build the proxy or the generator"

proxies=()
cleanup() {
	local pid
	for pid in "${proxies[@]}"; do kill "$pid" 2>/dev/null || true; done
	if [[ " $TARGETS " == *" minio "* || " $TARGETS " == *" proxy "* ]]; then
		MINIO_STATE_DIR=$BENCH_DIR/minio "$root/scripts/minio.sh" stop || true
	fi
}
trap cleanup EXIT

# start_proxy NAME DELAY: a proxy in front of MinIO; sets proxy_url.
start_proxy() {
	local f=$BENCH_DIR/$1.addr
	"$proxy_bin" -target "$AWS_ENDPOINT_URL" -delay "$2" -addr-file "$f" 2>>"$BENCH_DIR/logs/$1.log" &
	proxies+=($!)
	for _ in $(seq 1 100); do [ -s "$f" ] && break; sleep 0.05; done
	proxy_url=http://$(cat "$f")
}

requests() { if [ -n "${count_url:-}" ]; then curl -fsS "$count_url/-/requests"; else echo 0; fi; }

results=$BENCH_DIR/results.tsv
printf 'target\tstep\tseconds\tpeak_rss_mib\trequests\tstatus\n' >"$results"

# measure TARGET STEP ARGS...: time one command, with its peak memory and
# the requests it made.
measure() {
	local target=$1 step=$2
	shift 2
	local tf=$BENCH_DIR/logs/time.$target.$step log=$BENCH_DIR/logs/$target.$step.log
	local before after status=ok
	before=$(requests)
	# shellcheck disable=SC2086
	if ! timeout "$LIMIT" "$gnutime" -f '%e %M' -o "$tf" "$DROPBACK" --repo "$repo" $DROPBACK_ARGS "$@" >"$log" 2>&1; then
		status="failed (exit $(tail -n 1 "$tf" | sed -n 's/.*exit status \([0-9]*\).*/\1/p'))"
		[ -s "$tf" ] && grep -q '^[0-9.]* [0-9]*$' "$tf" || status="stopped after ${LIMIT}s"
	fi
	after=$(requests)
	local secs rss
	read -r secs rss < <(grep '^[0-9.]* [0-9]*$' "$tf" || echo "$LIMIT 0")
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$step" "$secs" "$((rss / 1024))" "$((after - before))" "$status" >>"$results"
	say "$target $step: ${secs}s, $((rss / 1024)) MiB, $((after - before)) requests, $status"
}

# suite TARGET: the measured commands, on $repo.
suite() {
	local t=$1
	# A cache of this target's own, empty at first: the first list is cold.
	export XDG_CACHE_HOME=$BENCH_DIR/cache/$t
	measure "$t" "backups list" backups list -o json
	measure "$t" "backups list (again: warm cache)" backups list -o json
	measure "$t" "backups list HOST" backups list host-0001 -o json
	measure "$t" "hosts list" hosts list -o json
	measure "$t" "repo stats" repo stats -o json
	measure "$t" "run --due (first)" run --due -o json
	measure "$t" "run --due (idle)" run --due -o json
	measure "$t" "repo gc" repo gc --min-age 0
	measure "$t" "backups verify (whole)" backups verify
	local segs
	segs=$(list_segments)
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "index segments after gc" "$segs" "" "" "" >>"$results"
	say "$t: $segs index segments after gc"
}

make_fleet() {
	say "$1: writing $HOSTS hosts x $BACKUPS backups"
	"$DROPBACK" --repo "$repo" repo init --chunk-size 64KiB $2 >/dev/null
	local start=$SECONDS
	(cd "$root/pkg/engine" && "$gen_bin" -test.run '^TestMakeFleet$' -test.count=1 \
		-fleet.repo "$repo" -fleet.hosts "$HOSTS" -fleet.backups "$BACKUPS") >"$BENCH_DIR/logs/$1.fleet.log" 2>&1 ||
		die "the generator failed: $BENCH_DIR/logs/$1.fleet.log"
	say "$1: fleet written in $((SECONDS - start))s"
	start=$SECONDS
	# shellcheck disable=SC2086
	"$DROPBACK" --repo "$repo" $DROPBACK_ARGS repo gc --min-age 0 >"$BENCH_DIR/logs/$1.first-gc.log" 2>&1 ||
		die "the first gc failed: $BENCH_DIR/logs/$1.first-gc.log"
	say "$1: first gc (compacts the index, writes the catalog) in $((SECONDS - start))s"
}

# count_objects PREFIX: how many objects $repo holds under PREFIX.
count_objects() {
	(cd "$root/pkg/engine" && "$gen_bin" -test.run '^TestCountObjects$' -test.count=1 -test.v \
		-fleet.repo "$repo" -fleet.count "$1") 2>&1 | sed -n 's/^objects: //p'
}

for target in $TARGETS; do
	case $target in
	local)
		repo=$BENCH_DIR/local-repo
		count_url=
		list_segments() { count_objects index/; }
		make_fleet local ""
		suite local
		;;
	minio | proxy)
		if [ -z "${AWS_ENDPOINT_URL:-}" ] || [ "${minio_started:-}" != 1 ]; then
			MINIO_STATE_DIR=$BENCH_DIR/minio "$root/scripts/minio.sh" start
			eval "$(MINIO_STATE_DIR=$BENCH_DIR/minio "$root/scripts/minio.sh" env)"
			minio_started=1
			direct=$AWS_ENDPOINT_URL
		fi
		repo=s3://fleet-$target/repo
		[ "$target" = minio ] && d=0s || d=$DELAY
		AWS_ENDPOINT_URL=$direct start_proxy "$target" "$d"
		export AWS_ENDPOINT_URL=$direct
		make_fleet "$target" --create-bucket
		export AWS_ENDPOINT_URL=$proxy_url
		count_url=$proxy_url
		list_segments() { AWS_ENDPOINT_URL=$direct count_objects index/; }
		suite "$target"
		export AWS_ENDPOINT_URL=$direct
		;;
	*) die "unknown target $target in TARGETS (local, minio, proxy)" ;;
	esac
done

echo
echo "$HOSTS hosts x $BACKUPS backups; proxy delay $DELAY; $(nproc) CPUs"
column -t -s $'\t' "$results"
