#!/usr/bin/env bash
# Benchmark dropback against restic and borg on the same synthetic disk.
#
# In one run, for each tool: (1) first backup of a fresh image made by
# ../shared/bench/mkimage.py, (2) second backup after a day of churn,
# (3) restore of the latest backup to a new file, compared byte for byte with
# the image, (4) full verify of the repository. Each step's wall time and peak
# RSS come from GNU time, repository sizes from du. It prints a table, the
# ratios dropback/restic and dropback/borg, and the targets of the performance
# issue with PASS or MISS, and writes the figures to $BENCH_DIR/results.tsv.
#
#   make bench                          # builds bin/dropback first
#   SIZE=256M scripts/bench.sh          # a quick run
#   TOOLS="restic borg" scripts/bench.sh
#
# Environment:
#   SIZE       image size, as mkimage.py takes it (default 4G)
#   BENCH_DIR  work directory, emptied at start (default /tmp/dropback-bench)
#   SHARED     the shared folder holding bench/mkimage.py (default: beside the
#              repository)
#   TOOLS      tools to run (default "dropback restic borg")
#   DROPBACK   the dropback binary (default bin/dropback)
#   KEEP       1 keeps the restored images (default: removed once compared)
#
# It exits non-zero if a step fails or a restore differs from the image; a
# missed target is a finding, not a failure.
set -euo pipefail

say() { echo "bench: $*" >&2; }
die() {
	say "$*"
	exit 1
}

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel 2>/dev/null) ||
	root=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$root/../shared}
SIZE=${SIZE:-4G}
BENCH_DIR=${BENCH_DIR:-/tmp/dropback-bench}
TOOLS=${TOOLS:-dropback restic borg}
DROPBACK=${DROPBACK:-$root/bin/dropback}
KEEP=${KEEP:-0}
mkimage=$SHARED/bench/mkimage.py
gnutime=/usr/bin/time
steps=(backup1 backup2 restore verify)
declare -A step_title=(
	[backup1]="first backup"
	[backup2]="second backup"
	[restore]="restore"
	[verify]="full verify"
)

# ---- preflight -------------------------------------------------------------

preflight() {
	[ -f "$mkimage" ] || die "no $mkimage; set SHARED to the folder holding bench/mkimage.py"
	command -v python3 >/dev/null || die "python3 is missing (scripts/deps.sh installs it)"
	"$gnutime" --version 2>&1 | grep -q GNU ||
		die "GNU time is missing at $gnutime (scripts/deps.sh installs it)"
	local tool
	for tool in $TOOLS; do
		case $tool in
		dropback) [ -x "$DROPBACK" ] || die "no dropback binary at $DROPBACK; run make build" ;;
		restic) command -v restic >/dev/null || die "restic is missing (scripts/deps.sh installs it)" ;;
		borg) command -v borg >/dev/null || die "borg is missing (scripts/deps.sh installs it)" ;;
		*) die "unknown tool $tool in TOOLS (dropback, restic, borg)" ;;
		esac
	done
	size_bytes=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import mkimage; print(mkimage.parse_size(sys.argv[2]))' \
		"$SHARED/bench" "$SIZE") || die "bad SIZE $SIZE"
	[ $((size_bytes % 1048576)) -eq 0 ] && [ "$size_bytes" -gt 0 ] ||
		die "SIZE must be a positive whole number of MiB, not $SIZE"
}

# workdir empties BENCH_DIR, refusing a directory this script did not make,
# and checks that the run fits.
workdir() {
	if [ -e "$BENCH_DIR" ]; then
		if [ ! -f "$BENCH_DIR/.dropback-bench" ] && [ -n "$(ls -A "$BENCH_DIR")" ]; then
			die "$BENCH_DIR holds files this script did not make; remove it or set BENCH_DIR"
		fi
		rm -rf "$BENCH_DIR"
	fi
	mkdir -p "$BENCH_DIR/logs"
	BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
	touch "$BENCH_DIR/.dropback-bench"
	# The image, three repositories and one restored copy at a time.
	local need avail
	need=$((size_bytes * 4))
	avail=$(df -PB1 "$BENCH_DIR" | awk 'NR == 2 { print $4 }')
	[ "$avail" -ge "$need" ] ||
		die "$BENCH_DIR has $((avail >> 20)) MiB free, the run needs about $((need >> 20)) MiB; set BENCH_DIR or SIZE"
}

cache_dropped=unknown
# drop_caches empties the page cache so that every step reads from disk.
drop_caches() {
	sync
	if [ "$cache_dropped" != no ] && { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
		cache_dropped=yes
	else
		cache_dropped=no
	fi
}

# ---- running and measuring -------------------------------------------------

declare -A secs rss repo_mb identical failed

# run STEP TOOL CMD...: time CMD (with stdin from $STDIN and in directory
# $CWD if set), logging its output; record its seconds and peak RSS.
run() {
	local step=$1 tool=$2
	shift 2
	local log=$BENCH_DIR/logs/$tool-$step.log
	local tf=$BENCH_DIR/logs/$tool-$step.time
	drop_caches
	say "${step_title[$step]}: $tool"
	if ! (cd "${CWD:-.}" && exec "$gnutime" -f '%e %M' -o "$tf" "$@" <"${STDIN:-/dev/null}" >>"$log" 2>&1); then
		fail "$step" "$tool" "$*"
		return 1
	fi
	local e m
	read -r e m < <(tail -n 1 "$tf")
	secs[$step/$tool]=$e
	rss[$step/$tool]=$((m / 1024))
}

# setup STEP TOOL CMD...: run an untimed command, logging its output.
setup() {
	local step=$1 tool=$2
	shift 2
	if ! (cd "${CWD:-.}" && exec "$@" </dev/null >>"$BENCH_DIR/logs/$tool-$step.log" 2>&1); then
		fail "$step" "$tool" "$*"
		return 1
	fi
}

fail() {
	failed[$2]=$1
	say "$2 failed in ${step_title[$1]}: $3"
	say "last lines of $BENCH_DIR/logs/$2-$1.log:"
	tail -n 15 "$BENCH_DIR/logs/$2-$1.log" | sed 's/^/    /' >&2
}

active() { [ -z "${failed[$1]-}" ]; }

repo_size() { repo_mb[$1/$2]=$(($(du -sb "$BENCH_DIR/$2/repo" | cut -f1) >> 20)); }

# ---- the tools ---------------------------------------------------------------

img=
setup_env() {
	img=$BENCH_DIR/image/disk.img
	export RESTIC_PASSWORD=dropback-bench
	export RESTIC_CACHE_DIR=$BENCH_DIR/restic/cache
	export BORG_BASE_DIR=$BENCH_DIR/borg/home
	export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
	export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
	export BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=NO
	unset RESTIC_REPOSITORY BORG_REPO BORG_PASSPHRASE DROPBACK_REPO DROPBACK_CONTEXT
}

backup() {
	local step=$1 tool=$2 r=$BENCH_DIR/$2/repo
	case $tool in
	dropback)
		if [ "$step" = backup1 ]; then
			setup "$step" dropback "$DROPBACK" --repo "$r" repo init &&
				setup "$step" dropback "$DROPBACK" --repo "$r" hosts add bench --disk "$img" || return 0
		fi
		run "$step" dropback "$DROPBACK" --repo "$r" backups create bench || return 0
		;;
	restic)
		if [ "$step" = backup1 ]; then setup "$step" restic restic -r "$r" init || return 0; fi
		STDIN=$img run "$step" restic restic -r "$r" backup --stdin --stdin-filename disk.img || return 0
		;;
	borg)
		if [ "$step" = backup1 ]; then setup "$step" borg borg init -e none "$r" || return 0; fi
		CWD=$(dirname "$img") run "$step" borg borg create --chunker-params fixed,1048576 --sparse \
			-C zstd,1 "$r::$step" disk.img || return 0
		;;
	esac
	repo_size "$step" "$tool"
}

restore() {
	local tool=$1 r=$BENCH_DIR/$1/repo out=$BENCH_DIR/$1/out
	mkdir -p "$out"
	case $tool in
	dropback) run restore dropback "$DROPBACK" --repo "$r" backups restore bench latest --to "$out/disk.img" --force || return 0 ;;
	restic) run restore restic restic -r "$r" restore latest --target "$out" || return 0 ;;
	borg) CWD=$out run restore borg borg extract --sparse "$r::backup2" || return 0 ;;
	esac
	say "comparing the $tool restore with the image"
	if cmp -s "$img" "$out/disk.img"; then
		identical[$tool]=yes
	else
		identical[$tool]=no
		say "$tool restored an image that differs from the source"
	fi
	[ "$KEEP" = 1 ] || rm -rf "$out"
}

verify() {
	local tool=$1 r=$BENCH_DIR/$1/repo
	case $tool in
	dropback) run verify dropback "$DROPBACK" --repo "$r" backups verify || true ;;
	restic) run verify restic restic -r "$r" check --read-data || true ;;
	borg) run verify borg borg check --verify-data "$r" || true ;;
	esac
}

versions() {
	local tool
	for tool in $TOOLS; do
		case $tool in
		dropback) echo "dropback $("$DROPBACK" version 2>/dev/null | head -n 1 || echo unknown)" ;;
		restic) restic version | cut -d' ' -f1-2 ;;
		borg) borg --version ;;
		esac
	done | paste -sd, - | sed 's/,/, /g'
}

# ---- report ----------------------------------------------------------------

# ratio A B: A/B to two places, or n/a.
ratio() {
	if [ -n "$1" ] && [ -n "$2" ]; then
		awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
	else
		echo n/a
	fi
}

# check WHAT VALUE LIMIT UNIT: one target line, PASS when VALUE <= LIMIT.
check() {
	local verdict=n/a unit=$4
	if [ "$2" != n/a ]; then
		verdict=$(awk -v v="$2" -v l="$3" 'BEGIN { print (v <= l) ? "PASS" : "MISS" }')
	else
		unit=
	fi
	printf '  %-42s %9s%-3s %4s\n' "$1" "$2" "$unit" "$verdict"
	printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$verdict" >>"$BENCH_DIR/targets.tsv"
}

report() {
	local tsv=$BENCH_DIR/results.tsv step tool
	printf 'step\ttool\tseconds\tpeak_rss_mb\trepo_mb\trestored_identical\ttime_vs_restic\ttime_vs_borg\n' >"$tsv"
	printf 'target\tvalue\tlimit\tresult\n' >"$BENCH_DIR/targets.tsv"
	echo
	echo "dropback benchmark: $SIZE image ($((alloc_bytes >> 20)) MiB allocated), one day of churn"
	echo "tools: $(versions)"
	echo "page cache dropped before each step: $cache_dropped"
	echo "GB/s is the image's logical size over the step's wall time; /restic and /borg are time ratios"
	echo "work directory: $BENCH_DIR"
	echo
	printf '%-14s %-9s %9s %6s %12s %8s %9s %8s %8s\n' \
		step tool seconds GB/s "peak RSS MB" "repo MB" identical "/restic" "/borg"
	for step in "${steps[@]}"; do
		for tool in $TOOLS; do
			local s=${secs[$step/$tool]-} m=${rss[$step/$tool]-} rp=${repo_mb[$step/$tool]-}
			local same=-
			[ "$step" = restore ] && same=${identical[$tool]-n/a}
			local vr=- vb=-
			if [ "$tool" = dropback ]; then
				vr=$(ratio "$s" "${secs[$step/restic]-}")
				vb=$(ratio "$s" "${secs[$step/borg]-}")
			fi
			local gbs=-
			[ -n "$s" ] && gbs=$(awk -v b="$size_bytes" -v s="$s" 'BEGIN { if (s > 0) printf "%.2f", b / s / 1e9; else print "-" }')
			if [ -z "$s" ]; then
				s=skipped
				[ "${failed[$tool]-}" = "$step" ] && s=failed
			fi
			printf '%-14s %-9s %9s %6s %12s %8s %9s %8s %8s\n' \
				"${step_title[$step]}" "$tool" "$s" "$gbs" "${m:--}" "${rp:--}" "$same" "$vr" "$vb"
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$step" "$tool" "$s" "${m:--}" "${rp:--}" "$same" "$vr" "$vb" >>"$tsv"
		done
	done
	echo
	echo "repository size after both backups, MB: $(for tool in $TOOLS; do printf '%s %s  ' "$tool" "${repo_mb[backup2/$tool]:-n/a}"; done)"
	echo
	echo "targets (dropback against the others):"
	check "first backup time <= 0.3x restic's" "$(ratio "${secs[backup1/dropback]-}" "${secs[backup1/restic]-}")" 0.3 x
	check "first backup time <= 0.6x borg's" "$(ratio "${secs[backup1/dropback]-}" "${secs[backup1/borg]-}")" 0.6 x
	check "second backup time <= 0.2x restic's" "$(ratio "${secs[backup2/dropback]-}" "${secs[backup2/restic]-}")" 0.2 x
	check "restore time <= 0.5x restic's" "$(ratio "${secs[restore/dropback]-}" "${secs[restore/restic]-}")" 0.5 x
	check "repository size <= restic's" "$(ratio "${repo_mb[backup2/dropback]-}" "${repo_mb[backup2/restic]-}")" 1 x
	local peak
	peak=$(for step in "${steps[@]}"; do echo "${rss[$step/dropback]-}"; done | sort -n | tail -n 1)
	check "dropback peak RSS <= 150 MB (all steps)" "${peak:-n/a}" 150 " MB"
	echo
	echo "results: $tsv, targets: $BENCH_DIR/targets.tsv, logs: $BENCH_DIR/logs/"
}

# ---- main --------------------------------------------------------------------

main() {
	preflight
	workdir
	setup_env
	local tool start=$SECONDS
	mkdir -p "$(dirname "$img")"
	for tool in $TOOLS; do mkdir -p "$BENCH_DIR/$tool"; done
	mkdir -p "$BORG_BASE_DIR"

	say "making a $SIZE image with mkimage.py"
	python3 "$mkimage" create "$img" --size "$SIZE"
	alloc_bytes=$(($(du -sB1 "$img" | cut -f1)))

	for tool in $TOOLS; do backup backup1 "$tool"; done
	say "ageing the image by one day (mkimage.py churn --day 1)"
	python3 "$mkimage" churn "$img" --day 1
	for tool in $TOOLS; do if active "$tool"; then backup backup2 "$tool"; fi; done
	for tool in $TOOLS; do if active "$tool"; then restore "$tool"; fi; done
	for tool in $TOOLS; do if active "$tool"; then verify "$tool"; fi; done
	if [[ " $TOOLS " == *" dropback "* ]] && active dropback; then
		"$DROPBACK" --repo "$BENCH_DIR/dropback/repo" repo stats >"$BENCH_DIR/logs/dropback-stats.log" 2>&1 || true
	fi

	report
	if [ -s "$BENCH_DIR/logs/dropback-stats.log" ]; then
		echo
		echo "dropback repo stats:"
		sed 's/^/  /' "$BENCH_DIR/logs/dropback-stats.log"
	fi
	say "done in $((SECONDS - start)) s"

	local bad=0
	for tool in $TOOLS; do
		if ! active "$tool"; then
			say "$tool failed in ${step_title[${failed[$tool]}]}"
			bad=1
		elif [ "${identical[$tool]-}" != yes ]; then
			say "$tool: restored image not byte-identical"
			bad=1
		fi
	done
	return $bad
}

main "$@"
