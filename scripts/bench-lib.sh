# Shared parts of the benchmarks: scripts/bench.sh (backup, restore, verify
# against restic and borg), scripts/bench-retention.sh (30 days of backups,
# then retention and gc) and scripts/bench-s3.sh (dropback and restic on S3).
# Sourced, not run. bench-s3.sh takes only the settings, say, die, ratio and
# active from here, and defines its own preflight, workdir, drop_caches, run,
# setup and check.
#
# The sourcing script sets SIZE's default and fills step_title; it may set
# bench_name (the prefix of say's lines, default "bench") and the defaults of
# BENCH_DIR and TOOLS first. This file sets the other defaults:
#   BENCH_DIR  work directory (default /tmp/dropback-bench)
#   TOOLS      tools to run (default "dropback restic borg")
#   DROPBACK   the dropback binary (default bin/dropback)
#   KEEP       1 keeps the restored images (default: removed once compared)
#
# The synthetic disk image comes from internal/cmd/mkimage, which
# build_mkimage (called by every preflight) builds once into bin/mkimage.
#
# After workdir, $work is the directory holding logs/, image/ and one
# directory per tool with its repository in repo/.

say() { echo "${bench_name:-bench}: $*" >&2; }
die() {
	say "$*"
	exit 1
}

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel 2>/dev/null) ||
	root=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/dropback-bench}
TOOLS=${TOOLS:-dropback restic borg}
DROPBACK=${DROPBACK:-$root/bin/dropback}
# dropback's repositories are encrypted, as users get them, with the
# default key derivation: every command opens the repository with it.
export DROPBACK_PASSWORD=${DROPBACK_PASSWORD:-dropback bench password}
KEEP=${KEEP:-0}
mkimage=$root/bin/mkimage
gnutime=/usr/bin/time
declare -A step_title=()
work=

# ---- preflight -------------------------------------------------------------

# build_mkimage builds the image generator into bin/mkimage and sets
# size_bytes to SIZE in bytes, as the generator reads it.
build_mkimage() {
	command -v go >/dev/null || die "go is missing; the image generator is built from internal/cmd/mkimage"
	(cd "$root" && go build -o "$mkimage" ./internal/cmd/mkimage) || die "cannot build $mkimage"
	size_bytes=$("$mkimage" size "$SIZE") || die "bad SIZE $SIZE"
}

preflight() {
	build_mkimage
	"$gnutime" --version 2>&1 | grep -q GNU ||
		die "GNU time is missing at $gnutime (scripts/deps.sh installs it)"
	local tool
	for tool in $TOOLS; do
		case $tool in
		dropback | plain | xchacha) [ -x "$DROPBACK" ] || die "no dropback binary at $DROPBACK; run make build" ;;
		restic) command -v restic >/dev/null || die "restic is missing (scripts/deps.sh installs it)" ;;
		borg) command -v borg >/dev/null || die "borg is missing (scripts/deps.sh installs it)" ;;
		*) die "unknown tool $tool in TOOLS (dropback, plain, xchacha, restic, borg)" ;;
		esac
	done
	[ $((size_bytes % 1048576)) -eq 0 ] && [ "$size_bytes" -gt 0 ] ||
		die "SIZE must be a positive whole number of MiB, not $SIZE"
}

# workdir SUB NEED: empty the work directory, refusing a BENCH_DIR this
# script did not make, and check that NEED bytes fit. With SUB empty the work
# directory is BENCH_DIR itself, emptied whole; otherwise it is BENCH_DIR/SUB,
# and only that is emptied, so the other benchmark's results stay.
workdir() {
	local sub=$1 need=$2
	if [ -e "$BENCH_DIR" ]; then
		if [ ! -f "$BENCH_DIR/.dropback-bench" ] && [ -n "$(ls -A "$BENCH_DIR")" ]; then
			die "$BENCH_DIR holds files this script did not make; remove it or set BENCH_DIR"
		fi
		rm -rf "$BENCH_DIR${sub:+/$sub}"
	fi
	mkdir -p "$BENCH_DIR${sub:+/$sub}/logs"
	BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
	work=$BENCH_DIR${sub:+/$sub}
	touch "$BENCH_DIR/.dropback-bench"
	local avail
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
	settle
}

# settle waits (up to 30 s) until the disks have been idle for a second, so
# that one tool's writes still draining do not slow the next tool's step.
settle() {
	local before after i
	before=$(awk '{r += $6; w += $10} END {print r + w}' /proc/diskstats 2>/dev/null) || return 0
	for i in $(seq 60); do
		sleep 0.5
		after=$(awk '{r += $6; w += $10} END {print r + w}' /proc/diskstats)
		if [ "$after" = "$before" ]; then
			sleep 0.5
			before=$after
			after=$(awk '{r += $6; w += $10} END {print r + w}' /proc/diskstats)
			[ "$after" = "$before" ] && return 0
		fi
		before=$after
	done
}

# ---- running and measuring -------------------------------------------------

declare -A secs rss repo_mb repo_bytes failed

# run STEP TOOL CMD...: time CMD (with stdin from $STDIN and in directory
# $CWD if set), logging its output; record its seconds and peak RSS.
run() {
	local step=$1 tool=$2
	shift 2
	local log=$work/logs/$tool-$step.log
	local tf=$work/logs/$tool-$step.time
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

# run_median N STEP TOOL CMD...: run CMD N times (calling $BEFORE, if set,
# before each), and record the median time and the largest peak RSS.
run_median() {
	local n=$1 step=$2 tool=$3 i times=() peak=0
	shift 3
	for i in $(seq "$n"); do
		[ -z "${BEFORE:-}" ] || eval "$BEFORE"
		run "$step" "$tool" "$@" || return 1
		times+=("${secs[$step/$tool]}")
		[ "${rss[$step/$tool]}" -gt "$peak" ] && peak=${rss[$step/$tool]}
	done
	secs[$step/$tool]=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
	say "${step_title[$step]}: $tool: ${times[*]} s, median ${secs[$step/$tool]} s"
	rss[$step/$tool]=$peak
}

# setup STEP TOOL CMD...: run an untimed command, logging its output.
setup() {
	local step=$1 tool=$2
	shift 2
	if ! (cd "${CWD:-.}" && exec "$@" </dev/null >>"$work/logs/$tool-$step.log" 2>&1); then
		fail "$step" "$tool" "$*"
		return 1
	fi
}

fail() {
	failed[$2]=$1
	say "$2 failed in ${step_title[$1]}: $3"
	say "last lines of $work/logs/$2-$1.log:"
	tail -n 15 "$work/logs/$2-$1.log" | sed 's/^/    /' >&2
}

active() { [ -z "${failed[$1]-}" ]; }

# repo_size KEY TOOL: record the size of TOOL's repository under KEY, in
# bytes and in MB (MiB, rounded down).
repo_size() {
	local b
	b=$(du -sb "$work/$2/repo" | cut -f1)
	repo_bytes[$1/$2]=$b
	repo_mb[$1/$2]=$((b >> 20))
}

# ---- the tools ---------------------------------------------------------------

img=
setup_env() {
	img=$work/image/disk.img
	export RESTIC_PASSWORD=dropback-bench
	export RESTIC_CACHE_DIR=$work/restic/cache
	export BORG_BASE_DIR=$work/borg/home
	export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
	export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
	export BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=NO
	unset RESTIC_REPOSITORY BORG_REPO BORG_PASSPHRASE DROPBACK_REPO DROPBACK_CONTEXT
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

# check WHAT VALUE LIMIT UNIT: one target line, PASS when VALUE <= LIMIT,
# also appended to $targets_tsv.
targets_tsv=
check() {
	local verdict=n/a unit=$4
	if [ "$2" != n/a ]; then
		verdict=$(awk -v v="$2" -v l="$3" 'BEGIN { print (v <= l) ? "PASS" : "MISS" }')
	else
		unit=
	fi
	printf '  %-42s %9s%-3s %4s\n' "$1" "$2" "$unit" "$verdict"
	printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$verdict" >>"$targets_tsv"
}
