#!/usr/bin/env bash
# Benchmark dropback against restic on S3: one MinIO on loopback, four drive
# folders (erasure-coded), both tools in the same run.
#
# Steps, for each tool: (1) first backup of a fresh image made by
# internal/cmd/mkimage (built into bin/mkimage), (2) second backup after a day of churn,
# (3) restore of the latest backup to a new file, compared byte for byte with
# the image. dropback also backs the fresh image up to a local path, to
# compare its S3 throughput with its local one. Wall time and peak RSS come
# from GNU time; the S3 requests of each step, by type, from MinIO's own
# request counters (its v3 metrics, made public for this server only). It
# prints a table, the requests, and the targets of the S3 issue with PASS or
# MISS, and writes the figures to $BENCH_DIR/results.tsv and requests.tsv.
#
#   make build && scripts/bench-s3.sh
#   SIZE=512M scripts/bench-s3.sh                  # a quick run
#
# Environment:
#   SIZE       image size: bytes, or a number with K, M, G or T (default 2G)
#   BENCH_DIR  work directory, emptied at start (default /tmp/dropback-bench-s3)
#   TOOLS      tools to run (default "dropback restic")
#   DROPBACK   the dropback binary (default bin/dropback)
#   BENCH_S3_ENDPOINT
#              an S3 server to use instead of a MinIO on loopback, for
#              example one on a machine of its own
#              (http://10.0.0.5:9000); credentials from AWS_ACCESS_KEY_ID
#              and AWS_SECRET_ACCESS_KEY. The run makes two buckets named
#              after it. Request counts need that server's v3 metrics to be
#              public (MINIO_PROMETHEUS_AUTH_TYPE=public); its CPU time is
#              not measured.
#
# Without BENCH_S3_ENDPOINT, MinIO runs from $BENCH_DIR/minio through
# scripts/minio.sh (built once if missing) and is stopped at the end; it
# shares this machine's CPUs and disk with the tools. It exits non-zero if a step fails or a
# restore differs from the image; a missed target is a finding, not a
# failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_name=bench-s3
SIZE=${SIZE:-2G}
BENCH_DIR=${BENCH_DIR:-/tmp/dropback-bench-s3}
TOOLS=${TOOLS:-dropback restic}
# shellcheck source=scripts/bench-lib.sh
. "$here/bench-lib.sh"
steps=(local1 backup1 backup2 restore)
step_title=(
	[local1]="first backup, local path"
	[backup1]="first backup"
	[backup2]="second backup"
	[restore]="restore"
)

# ---- preflight -------------------------------------------------------------

# preflight, workdir, drop_caches, run, setup and check replace bench-lib.sh's.
preflight() {
	build_mkimage
	command -v curl >/dev/null || die "curl is missing"
	"$gnutime" --version 2>&1 | grep -q GNU ||
		die "GNU time is missing at $gnutime (scripts/deps.sh installs it)"
	local tool
	for tool in $TOOLS; do
		case $tool in
		dropback) [ -x "$DROPBACK" ] || die "no dropback binary at $DROPBACK; run make build" ;;
		restic) command -v restic >/dev/null || die "restic is missing (scripts/deps.sh installs it)" ;;
		*) die "unknown tool $tool in TOOLS (dropback, restic)" ;;
		esac
	done
	[ $((size_bytes % 1048576)) -eq 0 ] && [ "$size_bytes" -gt 0 ] ||
		die "SIZE must be a positive whole number of MiB, not $SIZE"
}

workdir() {
	if [ -e "$BENCH_DIR" ]; then
		if [ ! -f "$BENCH_DIR/.dropback-bench-s3" ] && [ -n "$(ls -A "$BENCH_DIR")" ]; then
			die "$BENCH_DIR holds files this script did not make; remove it or set BENCH_DIR"
		fi
		MINIO_STATE_DIR=$BENCH_DIR/minio "$root/scripts/minio.sh" stop
		rm -rf "$BENCH_DIR"
	fi
	mkdir -p "$BENCH_DIR/logs"
	BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
	touch "$BENCH_DIR/.dropback-bench-s3"
	# The image, a local repository, MinIO's drives holding both S3
	# repositories twice over (two parity shards), one restored copy.
	local need avail
	need=$((size_bytes * 7))
	avail=$(df -PB1 "$BENCH_DIR" | awk 'NR == 2 { print $4 }')
	[ "$avail" -ge "$need" ] ||
		die "$BENCH_DIR has $((avail >> 20)) MiB free, the run needs about $((need >> 20)) MiB; set BENCH_DIR or SIZE"
}

# ---- MinIO and its request counters ----------------------------------------

endpoint=
start_minio() {
	if [ -n "${BENCH_S3_ENDPOINT:-}" ]; then
		[ -n "${AWS_ACCESS_KEY_ID:-}" ] && [ -n "${AWS_SECRET_ACCESS_KEY:-}" ] ||
			die "BENCH_S3_ENDPOINT needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
		export AWS_ENDPOINT_URL=${BENCH_S3_ENDPOINT%/} AWS_REGION=${AWS_REGION:-us-east-1}
	else
		export MINIO_STATE_DIR=$BENCH_DIR/minio MINIO_PROMETHEUS_AUTH_TYPE=public
		"$root/scripts/minio.sh" start
		trap stop_minio EXIT
		eval "$("$root/scripts/minio.sh" env)"
	fi
	endpoint=$AWS_ENDPOINT_URL
	export RESTIC_PASSWORD=dropback-bench RESTIC_CACHE_DIR=$BENCH_DIR/restic-cache
	unset RESTIC_REPOSITORY DROPBACK_REPO DROPBACK_CONTEXT
}

stop_minio() { MINIO_STATE_DIR=$BENCH_DIR/minio "$root/scripts/minio.sh" stop || true; }

# counters prints "API count" lines of MinIO's S3 request counters.
counters() {
	{ curl -fsS --max-time 5 "$endpoint/minio/metrics/v3/api/requests" 2>/dev/null || true; } |
		sed -n 's/^minio_api_requests_total{name="\([^"]*\)".*type="s3"} \([0-9.e+]*\)$/\1 \2/p' |
		awk '{ printf "%s %d\n", $1, $2 }' | sort
}

declare -A requests
# count_requests STEP TOOL BEFORE: the requests since BEFORE (a counters
# snapshot), as "API=n API=n …".
count_requests() {
	local after
	after=$(counters)
	requests[$1/$2]=$(join -a 2 -e 0 -o 0,1.2,2.2 <(echo "$3") <(echo "$after") |
		awk '$3 - $2 > 0 { printf "%s%s=%d", sep, $1, $3 - $2; sep = " " }')
}

# ---- running and measuring -------------------------------------------------

declare -A secs rss cpu minio_cpu identical failed

# minio_ticks prints the CPU time the MinIO on this machine has used so far,
# in clock ticks; nothing for a server elsewhere.
minio_ticks() {
	[ -z "${BENCH_S3_ENDPOINT:-}" ] || return 0
	awk '{ print $14 + $15 }' "/proc/$(cat "$BENCH_DIR/minio/pid")/stat" 2>/dev/null || echo 0
}

# drop_caches empties the page cache; unlike bench-lib.sh's it does not wait
# for the disks to be idle.
drop_caches() {
	sync
	{ echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null || true
}

# run STEP TOOL CMD...: time CMD with stdin from $STDIN, log its output, and
# count the S3 requests it made.
run() {
	local step=$1 tool=$2
	shift 2
	local log=$BENCH_DIR/logs/$tool-$step.log tf=$BENCH_DIR/logs/$tool-$step.time before ticks
	drop_caches
	before=$(counters)
	ticks=$(minio_ticks)
	say "${step_title[$step]}: $tool"
	if ! "$gnutime" -f '%e %M %U %S' -o "$tf" "$@" <"${STDIN:-/dev/null}" >>"$log" 2>&1; then
		failed[$tool]=$step
		say "$tool failed in ${step_title[$step]}; last lines of $log:"
		tail -n 15 "$log" | sed 's/^/    /' >&2
		return 1
	fi
	local e m u k
	read -r e m u k < <(tail -n 1 "$tf")
	secs[$step/$tool]=$e
	rss[$step/$tool]=$((m / 1024))
	cpu[$step/$tool]=$(awk -v u="$u" -v k="$k" 'BEGIN { printf "%.2f", u + k }')
	if [ -n "$ticks" ]; then
		minio_cpu[$step/$tool]=$(awk -v a="$ticks" -v b="$(minio_ticks)" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }')
	fi
	count_requests "$step" "$tool" "$before"
}

setup() {
	local tool=$1
	shift
	"$@" </dev/null >>"$BENCH_DIR/logs/$tool-setup.log" 2>&1 || {
		failed[$tool]=setup
		say "$tool setup failed: $*"
		tail -n 15 "$BENCH_DIR/logs/$tool-setup.log" | sed 's/^/    /' >&2
		return 1
	}
}

img=
s3repo=
resticrepo=
bucket_dropback=
bucket_restic=

backup() {
	local step=$1 tool=$2
	case $tool in
	dropback)
		if [ "$step" = backup1 ]; then
			setup dropback "$DROPBACK" --repo "$BENCH_DIR/local-repo" repo init &&
				setup dropback "$DROPBACK" --repo "$BENCH_DIR/local-repo" hosts add bench --disk "$img" &&
				run local1 dropback "$DROPBACK" --repo "$BENCH_DIR/local-repo" backups create bench &&
				setup dropback rm -rf "$BENCH_DIR/local-repo" &&
				setup dropback "$DROPBACK" --repo "$s3repo" repo init --create-bucket &&
				setup dropback "$DROPBACK" --repo "$s3repo" hosts add bench --disk "$img" || return 0
		fi
		run "$step" dropback "$DROPBACK" --repo "$s3repo" backups create bench || return 0
		;;
	restic)
		if [ "$step" = backup1 ]; then setup restic restic -r "$resticrepo" init || return 0; fi
		STDIN=$img run "$step" restic restic -r "$resticrepo" backup --stdin --stdin-filename disk.img || return 0
		;;
	esac
}

restore() {
	local tool=$1 out=$BENCH_DIR/out-$1
	mkdir -p "$out"
	case $tool in
	dropback) run restore dropback "$DROPBACK" --repo "$s3repo" backups restore bench latest --to "$out/disk.img" --force || return 0 ;;
	restic) run restore restic restic -r "$resticrepo" restore latest --target "$out" || return 0 ;;
	esac
	if cmp -s "$img" "$out/disk.img"; then
		identical[$tool]=yes
	else
		identical[$tool]=no
		say "$tool restored an image that differs from the source"
	fi
	rm -rf "$out"
}

# ---- report ----------------------------------------------------------------

# check WHAT VALUE LIMIT OP: one target line; OP is <= or >=.
check() {
	local verdict=n/a
	if [ "$2" != n/a ]; then
		verdict=$(awk -v v="$2" -v l="$3" -v op="$4" 'BEGIN { ok = (op == "<=") ? v <= l : v >= l; print ok ? "PASS" : "MISS" }')
	fi
	printf '  %-52s %6s  %4s\n' "$1" "$2" "$verdict"
	printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$verdict" >>"$BENCH_DIR/targets.tsv"
}

report() {
	local step tool tsv=$BENCH_DIR/results.tsv
	printf 'step\ttool\tseconds\tgb_per_s\tpeak_rss_mb\tcpu_s\tminio_cpu_s\trestored_identical\ttime_vs_restic\n' >"$tsv"
	printf 'step\ttool\trequests\n' >"$BENCH_DIR/requests.tsv"
	printf 'target\tvalue\tlimit\tresult\n' >"$BENCH_DIR/targets.tsv"
	echo
	echo "dropback S3 benchmark: $SIZE image ($((alloc_bytes >> 20)) MiB allocated), one day of churn"
	if [ -n "${BENCH_S3_ENDPOINT:-}" ]; then
		echo "S3 server $endpoint, not on this machine; buckets $bucket_dropback and $bucket_restic"
	else
		echo "MinIO at $endpoint, four drive folders (erasure-coded), on this machine"
	fi
	echo "$(restic version 2>/dev/null | cut -d' ' -f1-2), dropback $("$DROPBACK" version 2>/dev/null | awk 'NR == 1 { print $2 }')"
	echo "GB/s is the image's logical size over the step's wall time; /restic is the time ratio;"
	echo "CPU s is the tool's user+system time, MinIO CPU s MinIO's during the step ($(nproc) CPUs in all)"
	echo
	printf '%-26s %-9s %9s %6s %12s %6s %11s %9s %8s\n' step tool seconds GB/s "peak RSS MB" "CPU s" "MinIO CPU s" identical /restic
	for step in "${steps[@]}"; do
		for tool in $TOOLS; do
			[ "$step" = local1 ] && [ "$tool" != dropback ] && continue
			local s=${secs[$step/$tool]-} m=${rss[$step/$tool]-} same=- vr=- gbs=-
			[ "$step" = restore ] && same=${identical[$tool]-n/a}
			[ "$tool" = dropback ] && [ "$step" != local1 ] && vr=$(ratio "$s" "${secs[$step/restic]-}")
			[ -n "$s" ] && gbs=$(awk -v b="$size_bytes" -v s="$s" 'BEGIN { if (s > 0) printf "%.2f", b / s / 1e9; else print "-" }')
			[ -z "$s" ] && s=skipped
			local c=${cpu[$step/$tool]:--} mc=${minio_cpu[$step/$tool]:--}
			printf '%-26s %-9s %9s %6s %12s %6s %11s %9s %8s\n' "${step_title[$step]}" "$tool" "$s" "$gbs" "${m:--}" "$c" "$mc" "$same" "$vr"
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$step" "$tool" "$s" "$gbs" "${m:--}" "$c" "$mc" "$same" "$vr" >>"$tsv"
		done
	done
	echo
	echo "S3 requests by type:"
	[ ${#requests[@]} -gt 0 ] || echo "  not counted: $endpoint/minio/metrics/v3 did not answer (MINIO_PROMETHEUS_AUTH_TYPE=public makes it)"
	for step in backup1 backup2 restore; do
		for tool in $TOOLS; do
			local req=${requests[$step/$tool]-}
			[ -n "$req" ] || continue
			local total
			total=$(echo "$req" | tr ' ' '\n' | awk -F= '{ n += $2 } END { print n }')
			printf '  %-14s %-9s %6d  %s\n' "${step_title[$step]}" "$tool" "$total" "$req"
			printf '%s\t%s\t%s\n' "$step" "$tool" "$req" >>"$BENCH_DIR/requests.tsv"
		done
	done
	echo
	echo "targets:"
	check "first backup time <= 0.3x restic's" "$(ratio "${secs[backup1/dropback]-}" "${secs[backup1/restic]-}")" 0.3 "<="
	check "restore time <= 0.5x restic's" "$(ratio "${secs[restore/dropback]-}" "${secs[restore/restic]-}")" 0.5 "<="
	check "S3 first backup throughput >= 0.7x local path's" "$(ratio "${secs[local1/dropback]-}" "${secs[backup1/dropback]-}")" 0.7 ">="
	local c=${cpu[backup1/dropback]-} mc=${minio_cpu[backup1/dropback]-}
	if [ -n "$c" ] && [ -n "$mc" ]; then
		echo
		awk -v c="$c" -v mc="$mc" -v n="$(nproc)" -v l="${secs[local1/dropback]-0}" 'BEGIN {
			floor = (c + mc) / n
			printf "the S3 first backup used %.2f s of dropback CPU and %.2f s of MinIO CPU on %d CPUs:\n", c, mc, n
			printf "it cannot take less than %.2f s here, %.2fx the local path'"'"'s throughput\n", floor, (floor > 0 ? l / floor : 0)
		}'
	fi
	echo
	echo "results: $tsv, requests: $BENCH_DIR/requests.tsv, targets: $BENCH_DIR/targets.tsv, logs: $BENCH_DIR/logs/"
}

# ---- main --------------------------------------------------------------------

main() {
	preflight
	workdir
	start_minio
	# The MinIO on this machine is emptied with each run; a server elsewhere
	# keeps earlier runs, so each run has buckets of its own there.
	local suffix=""
	[ -z "${BENCH_S3_ENDPOINT:-}" ] || suffix=-$(date -u +%Y%m%d-%H%M%S)
	bucket_dropback=dropback-bench$suffix bucket_restic=restic-bench$suffix
	s3repo=s3://$bucket_dropback/repo
	resticrepo=s3:$endpoint/$bucket_restic
	local start=$SECONDS tool
	img=$BENCH_DIR/image/disk.img
	mkdir -p "$(dirname "$img")"
	say "making a $SIZE image with mkimage"
	"$mkimage" create "$img" --size "$SIZE"
	alloc_bytes=$(($(du -sB1 "$img" | cut -f1)))

	for tool in $TOOLS; do backup backup1 "$tool"; done
	say "ageing the image by one day (mkimage churn --day 1)"
	"$mkimage" churn "$img" --day 1
	for tool in $TOOLS; do if active "$tool"; then backup backup2 "$tool"; fi; done
	for tool in $TOOLS; do if active "$tool"; then restore "$tool"; fi; done

	report
	say "done in $((SECONDS - start)) s"
	local bad=0
	for tool in $TOOLS; do
		if ! active "$tool"; then
			say "$tool failed in ${failed[$tool]}"
			bad=1
		elif [ "${identical[$tool]-}" != yes ]; then
			say "$tool: restored image not byte-identical"
			bad=1
		fi
	done
	return $bad
}

main "$@"
