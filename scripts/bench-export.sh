#!/usr/bin/env bash
# Benchmark the ways out of a dropback backup, side by side in one run, on
# the synthetic disk image of scripts/bench.sh:
#   restore   backups restore bench latest --to FILE          (the yardstick)
#   qcow2     backups export --image-format qcow2 --to FILE
#   raw       backups export --image-format raw --to FILE
#   convert   qemu-img convert from the NBD export of backups serve to a raw
#             file (-t none -W -m 8: around the page cache, out of order, 8
#             coroutines, as a restore writes)
# each REPEAT times with the page cache dropped, the median counted, with
# the CPU seconds (user and system) of dropback beside the time, which a
# busy machine inflates less (for convert, the serve's over all the runs,
# divided by REPEAT); every output is compared with the image (qemu-img
# compare for qcow2). Then, on a
# fresh serve, random 4 KiB reads through NBD with qemu-io, one at a time:
# COLD reads spread over the whole disk, each the first of its chunk, with
# the page cache dropped; then WARM reads within 16 MiB whose chunks are in
# the serve's cache. It prints their latency percentiles, and the peak RSS of
# each serve (GNU time), and writes $BENCH_DIR/export/results.tsv.
#
#   make bench                         # builds bin/dropback first
#   SIZE=512M scripts/bench-export.sh  # a quick run
#
# Environment, besides BENCH_DIR and DROPBACK as in bench.sh:
#   SIZE    image size (default 4G)
#   REPEAT  runs of each copy; the median counts (default 3)
#   READS   random reads of each kind (default 500)
#
# It exits non-zero if a step fails or an output differs from the image; a
# missed target is a finding, not a failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SIZE=${SIZE:-4G}
REPEAT=${REPEAT:-3}
READS=${READS:-500}
TOOLS=dropback
bench_name=bench-export
# shellcheck source=scripts/bench-lib.sh
. "$here/bench-lib.sh"
steps=(restore qcow2 raw convert)
step_title=(
	[setup]="setup"
	[restore]="restore --to"
	[qcow2]="export qcow2"
	[raw]="export raw"
	[convert]="qemu-img convert from NBD"
	[serve]="serve"
)
declare -A lat same cpu
cputime=()

repo=
sock=
serve_pid=

# start_serve starts backups serve under GNU time, and waits for its socket.
start_serve() {
	rm -f "$sock"
	"$gnutime" -f '%e %M %U %S' -o "$work/logs/serve-$1.time" \
		"$DROPBACK" --repo "$repo" backups serve bench latest --socket "$sock" 2>>"$work/logs/serve-$1.log" &
	serve_pid=$!
	local i
	for i in $(seq 600); do
		[ -S "$sock" ] && return 0
		kill -0 "$serve_pid" 2>/dev/null || die "serve ended: $(tail -n 5 "$work/logs/serve-$1.log")"
		sleep 0.1
	done
	die "serve did not listen on $sock"
}

# stop_serve stops the serve (the child of GNU time, which passes no
# signal on) and records its peak RSS and CPU seconds under serve/NAME.
stop_serve() {
	kill -TERM "$(pgrep -P "$serve_pid")"
	wait "$serve_pid" || die "serve exited non-zero: $(tail -n 5 "$work/logs/serve-$1.log")"
	local e m u s
	read -r e m u s < <(tail -n 1 "$work/logs/serve-$1.time")
	rss[serve/$1]=$((m / 1024))
	cpu[serve/$1]=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
}

# cputime STEP: the words that, before a command, append its CPU seconds
# (user + system) to logs/STEP.cpu: GNU time under run_median's.
cputime() { cputime=("$gnutime" -a -o "$work/logs/$1.cpu" -f '%U %S'); }

# median_cpu STEP: the median of the CPU seconds in logs/STEP.cpu.
median_cpu() {
	awk '{ print $1 + $2 }' "$work/logs/$1.cpu" | sort -n |
		awk '{ a[NR] = $1 } END { if (NR) printf "%.2f", a[int((NR + 1) / 2)] }'
}

# compare STEP FILE FORMAT: record whether FILE holds the image.
compare() {
	if [ "$3" = qcow2 ]; then
		if qemu-img check -q "$2" >/dev/null && qemu-img compare -q -f raw -F qcow2 "$img" "$2"; then
			same[$1]=yes
		else
			same[$1]=no
		fi
	elif cmp -s "$img" "$2"; then
		same[$1]=yes
	else
		same[$1]=no
	fi
	rm -f "$2"
}

copies() {
	local out=$work/out BEFORE="rm -f '$work/out'"
	cputime restore
	run_median "$REPEAT" restore dropback "${cputime[@]}" "$DROPBACK" --repo "$repo" backups restore bench latest --to "$out" --force
	compare restore "$out" raw
	cputime qcow2
	run_median "$REPEAT" qcow2 dropback "${cputime[@]}" "$DROPBACK" --repo "$repo" backups export bench latest --image-format qcow2 --to "$out" --force
	compare qcow2 "$out" qcow2
	cputime raw
	run_median "$REPEAT" raw dropback "${cputime[@]}" "$DROPBACK" --repo "$repo" backups export bench latest --to "$out" --force
	compare raw "$out" raw
	local step
	for step in restore qcow2 raw; do
		cpu[$step]=$(median_cpu "$step")
	done
	start_serve convert
	run_median "$REPEAT" convert dropback qemu-img convert -t none -W -m 8 -f raw -O raw \
		"nbd+unix:///disk.img?socket=$sock" "$out"
	stop_serve convert
	cpu[convert]=$(awk -v c="${cpu[serve/convert]}" -v n="$REPEAT" 'BEGIN { printf "%.2f", c / n }')
	compare convert "$out" raw
}

# reads KIND N SPAN: N random 4 KiB reads within the first SPAN bytes, one
# qemu-io command each; their latencies in microseconds go to logs/KIND.us.
reads() {
	local kind=$1 n=$2 span=$3 args=() i
	for i in $(seq "$n"); do
		args+=(-c "read $(((RANDOM * 32768 + RANDOM) % (span / 4096) * 4096)) 4k")
	done
	qemu-io -r -f raw "${args[@]}" "nbd+unix:///disk.img?socket=$sock" >"$work/logs/$kind.log" 2>&1 ||
		die "qemu-io: $(tail -n 3 "$work/logs/$kind.log")"
	# "4 KiB, 1 ops; 0.0001 sec (... and 9043.8 ops/sec)": the latency is
	# the inverse of the rate, which keeps more digits than the seconds.
	sed -n 's/.* and \([0-9.]*\) ops\/sec.*/\1/p' "$work/logs/$kind.log" |
		awk '{ printf "%.0f\n", 1e6 / $1 }' | sort -n >"$work/logs/$kind.us"
	[ "$(wc -l <"$work/logs/$kind.us")" -eq "$n" ] || die "qemu-io reported $(wc -l <"$work/logs/$kind.us") of $n reads"
	lat[$kind]=$(awk '{ a[NR] = $1 } END {
		printf "%d %d %d %d %d", a[int(NR * 0.5 + 0.5)], a[int(NR * 0.9 + 0.5)], a[int(NR * 0.99 + 0.5)], a[NR], NR }' "$work/logs/$kind.us")
}

latencies() {
	RANDOM=42
	start_serve reads
	drop_caches
	reads cold "$READS" "$size_bytes"
	reads prime 8 $((16 << 20)) # bring the window's chunks into the cache
	for i in $(seq 0 15); do qemu-io -r -f raw -c "read $((i << 20)) 4k" "nbd+unix:///disk.img?socket=$sock" >/dev/null; done
	reads warm "$READS" $((16 << 20))
	stop_serve reads
}

report() {
	local tsv=$work/results.tsv step
	targets_tsv=$work/targets.tsv
	printf 'step\tseconds\tpeak_rss_mb\tidentical\ttime_vs_restore\tcpu_seconds\tcpu_vs_restore\n' >"$tsv"
	printf 'target\tvalue\tlimit\tresult\n' >"$targets_tsv"
	echo
	echo "dropback export benchmark: $SIZE image ($((alloc_bytes >> 20)) MiB allocated), median of $REPEAT"
	echo "page cache dropped before each step: $cache_dropped"
	echo
	printf '%-28s %9s %6s %12s %10s %10s %7s %10s\n' step seconds GB/s "peak RSS MB" identical "/restore" "CPU s" "CPU/restore"
	for step in "${steps[@]}"; do
		local s=${secs[$step/dropback]-} m=${rss[$step/dropback]-} gbs=- v c=${cpu[$step]-} cv
		[ "$step" = convert ] && m="${rss[serve/convert]-} (serve)"
		[ -n "$s" ] && gbs=$(awk -v b="$size_bytes" -v s="$s" 'BEGIN { printf "%.2f", b / s / 1e9 }')
		v=$(ratio "$s" "${secs[restore/dropback]-}")
		cv=$(ratio "$c" "${cpu[restore]-}")
		printf '%-28s %9s %6s %12s %10s %10s %7s %10s\n' "${step_title[$step]}" "${s:-failed}" "$gbs" "${m:--}" "${same[$step]:-n/a}" "$v" "${c:--}" "$cv"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$step" "${s:-}" "${m:-}" "${same[$step]:-}" "$v" "${c:-}" "$cv" >>"$tsv"
	done
	echo
	echo "random 4 KiB reads through NBD (qemu-io, one at a time), microseconds:"
	printf '  %-40s %8s %8s %8s %8s %6s\n' kind p50 p90 p99 max reads
	local k
	for k in cold warm; do
		# shellcheck disable=SC2086
		printf '  %-40s %8s %8s %8s %8s %6s\n' "$k$([ $k = cold ] && echo ' (whole disk, page cache dropped)' || echo ' (16 MiB in the cache)')" ${lat[$k]}
		printf 'read_%s\t%s\n' "$k" "${lat[$k]}" >>"$tsv"
	done
	echo
	echo "targets:"
	check "export qcow2 time <= 1.3x restore's" "$(ratio "${secs[qcow2/dropback]-}" "${secs[restore/dropback]-}")" 1.3 x
	check "export raw time <= 1.3x restore's" "$(ratio "${secs[raw/dropback]-}" "${secs[restore/dropback]-}")" 1.3 x
	check "qemu-img convert from NBD <= 1.3x restore's" "$(ratio "${secs[convert/dropback]-}" "${secs[restore/dropback]-}")" 1.3 x
	local peak
	peak=$(printf '%s\n' "${rss[serve/convert]-0}" "${rss[serve/reads]-0}" | sort -n | tail -n 1)
	check "serve peak RSS <= 150 MB" "$peak" 150 " MB"
	echo
	echo "results: $tsv, targets: $targets_tsv, logs: $work/logs/"
}

main() {
	build_mkimage
	"$gnutime" --version 2>&1 | grep -q GNU || die "GNU time is missing at $gnutime (scripts/deps.sh installs it)"
	[ -x "$DROPBACK" ] || die "no dropback binary at $DROPBACK; run make build"
	command -v qemu-img >/dev/null && command -v qemu-io >/dev/null || die "qemu-img and qemu-io are missing (scripts/deps.sh installs qemu-utils)"
	workdir export $((size_bytes * 3))
	setup_env
	repo=$work/dropback/repo
	sock=$work/serve.sock
	mkdir -p "$(dirname "$img")" "$work/dropback"
	say "making a $SIZE image with mkimage and backing it up"
	"$mkimage" create "$img" --size "$SIZE"
	alloc_bytes=$(($(du -sB1 "$img" | cut -f1)))
	setup setup dropback "$DROPBACK" --repo "$repo" repo init
	setup setup dropback "$DROPBACK" --repo "$repo" hosts add bench --disk "$img"
	setup setup dropback "$DROPBACK" --repo "$repo" backups create bench
	copies
	latencies
	report
	local step bad=0
	for step in "${steps[@]}"; do
		if [ "${same[$step]-}" != yes ]; then
			say "${step_title[$step]}: the output differs from the image"
			bad=1
		fi
	done
	return $bad
}

main "$@"
