#!/usr/bin/env bash
# Benchmark dropback against restic and borg on the same synthetic disk.
#
# In one run, for each tool: (1) first backup of a fresh image made by
# internal/cmd/mkimage (built into bin/mkimage), (2) second backup after a day of churn,
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
#   SIZE       image size: bytes, or a number with K, M, G or T (default 4G)
#   BENCH_DIR  work directory, emptied at start (default /tmp/dropback-bench)
#   TOOLS      tools to run (default "dropback plain restic borg"; plain is
#              dropback on a repository made with --insecure-no-encryption,
#              xchacha dropback on one sealed with XChaCha20-Poly1305
#              instead of the default XAES-256-GCM)
#   DROPBACK   the dropback binary (default bin/dropback)
#   KEEP       1 keeps the restored images (default: removed once compared)
#   REPEAT     restores and verifies run this many times, and so do
#              dropback's backups (encrypted and plain), each from the same
#              repository state; the median counts (default 3)
#
# Each timed step starts with the page cache dropped and the disks idle, so
# one tool's writes still draining do not slow the next tool.
#
# It exits non-zero if a step fails or a restore differs from the image; a
# missed target is a finding, not a failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SIZE=${SIZE:-4G}
REPEAT=${REPEAT:-3}
TOOLS=${TOOLS:-dropback plain restic borg}
# shellcheck source=scripts/bench-lib.sh
. "$here/bench-lib.sh"
steps=(backup1 backup2 restore verify)
step_title=(
	[backup1]="first backup"
	[backup2]="second backup"
	[restore]="restore"
	[verify]="full verify"
	[open]="open the repository"
)
declare -A identical

# ---- the tools ---------------------------------------------------------------

backup() {
	local step=$1 tool=$2 r=$BENCH_DIR/$2/repo
	case $tool in
	dropback | plain | xchacha)
		# Each run starts from the same repository: a new one for the
		# first backup, the one the first backup left for the second.
		local opt=() BEFORE
		[ "$tool" = plain ] && opt=(--insecure-no-encryption)
		[ "$tool" = xchacha ] && opt=(--encryption xchacha20-poly1305)
		if [ "$step" = backup1 ]; then
			BEFORE="rm -rf '$r' && setup $step $tool '$DROPBACK' --repo '$r' repo init ${opt[*]} &&
				setup $step $tool '$DROPBACK' --repo '$r' hosts add bench --disk '$img'"
		else
			BEFORE="rm -rf '$r' && cp -a '$r.first' '$r'"
		fi
		run_median "$REPEAT" "$step" "$tool" "$DROPBACK" --repo "$r" backups create bench || return 0
		if [ "$step" = backup1 ]; then
			rm -rf "$r.first" && cp -a "$r" "$r.first"
		else
			rm -rf "$r.first"
		fi
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
	local BEFORE="rm -rf '$out' && mkdir -p '$out'"
	mkdir -p "$out"
	case $tool in
	dropback | plain | xchacha) run_median "$REPEAT" restore "$tool" "$DROPBACK" --repo "$r" backups restore bench latest --to "$out/disk.img" --force || return 0 ;;
	restic) run_median "$REPEAT" restore restic restic -r "$r" restore latest --target "$out" || return 0 ;;
	borg) CWD=$out run_median "$REPEAT" restore borg borg extract --sparse "$r::backup2" || return 0 ;;
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
	dropback | plain | xchacha) run_median "$REPEAT" verify "$tool" "$DROPBACK" --repo "$r" backups verify || true ;;
	restic) run_median "$REPEAT" verify restic restic -r "$r" check --read-data || true ;;
	borg) run_median "$REPEAT" verify borg borg check --verify-data "$r" || true ;;
	esac
}

# ---- report ----------------------------------------------------------------

report() {
	local tsv=$BENCH_DIR/results.tsv step tool
	printf 'step\ttool\tseconds\tpeak_rss_mb\trepo_mb\trestored_identical\ttime_vs_restic\ttime_vs_borg\n' >"$tsv"
	targets_tsv=$BENCH_DIR/targets.tsv
	printf 'target\tvalue\tlimit\tresult\n' >"$targets_tsv"
	echo
	echo "dropback benchmark: $SIZE image ($((alloc_bytes >> 20)) MiB allocated), one day of churn"
	echo "tools: $(versions)"
	echo "page cache dropped before each step: $cache_dropped"
	echo "GB/s is the image's logical size over the step's wall time; /restic and /borg are time ratios"
	echo "work directory: $BENCH_DIR"
	echo
	printf '%-14s %-9s %9s %6s %12s %8s %9s %8s %8s %8s\n' \
		step tool seconds GB/s "peak RSS MB" "repo MB" identical "/restic" "/borg" "/plain"
	for step in "${steps[@]}"; do
		for tool in $TOOLS; do
			local s=${secs[$step/$tool]-} m=${rss[$step/$tool]-} rp=${repo_mb[$step/$tool]-}
			local same=-
			[ "$step" = restore ] && same=${identical[$tool]-n/a}
			local vr=- vb=- vp=-
			if [ "$tool" = dropback ]; then
				vr=$(ratio "$s" "${secs[$step/restic]-}")
				vb=$(ratio "$s" "${secs[$step/borg]-}")
				vp=$(ratio "$s" "${secs[$step/plain]-}")
			elif [ "$tool" = xchacha ]; then
				vp=$(ratio "$s" "${secs[$step/plain]-}")
			fi
			local gbs=-
			[ -n "$s" ] && gbs=$(awk -v b="$size_bytes" -v s="$s" 'BEGIN { if (s > 0) printf "%.2f", b / s / 1e9; else print "-" }')
			if [ -z "$s" ]; then
				s=skipped
				[ "${failed[$tool]-}" = "$step" ] && s=failed
			fi
			printf '%-14s %-9s %9s %6s %12s %8s %9s %8s %8s %8s\n' \
				"${step_title[$step]}" "$tool" "$s" "$gbs" "${m:--}" "${rp:--}" "$same" "$vr" "$vb" "$vp"
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$step" "$tool" "$s" "${m:--}" "${rp:--}" "$same" "$vr" "$vb" >>"$tsv"
		done
	done
	echo
	echo "repository size after both backups, MB: $(for tool in $TOOLS; do printf '%s %s  ' "$tool" "${repo_mb[backup2/$tool]:-n/a}"; done)"
	echo "opening the encrypted repository (repo key list, Argon2id at the default parameters): ${secs[open/dropback]:-n/a} s"
	echo
	echo "targets (dropback against the others):"
	check "first backup time <= 0.3x restic's" "$(ratio "${secs[backup1/dropback]-}" "${secs[backup1/restic]-}")" 0.3 x
	check "first backup time <= 0.6x borg's" "$(ratio "${secs[backup1/dropback]-}" "${secs[backup1/borg]-}")" 0.6 x
	check "second backup time <= 0.2x restic's" "$(ratio "${secs[backup2/dropback]-}" "${secs[backup2/restic]-}")" 0.2 x
	check "restore time <= 0.5x restic's" "$(ratio "${secs[restore/dropback]-}" "${secs[restore/restic]-}")" 0.5 x
	check "repository size <= restic's" "$(ratio "${repo_mb[backup2/dropback]-}" "${repo_mb[backup2/restic]-}")" 1 x
	check "encrypted first backup <= 1.10x unencrypted" "$(ratio "${secs[backup1/dropback]-}" "${secs[backup1/plain]-}")" 1.10 x
	check "encrypted second backup <= 1.10x unencrypted" "$(ratio "${secs[backup2/dropback]-}" "${secs[backup2/plain]-}")" 1.10 x
	check "encrypted restore <= 1.10x unencrypted" "$(ratio "${secs[restore/dropback]-}" "${secs[restore/plain]-}")" 1.10 x
	check "opening an encrypted repository < 1 s" "${secs[open/dropback]:-n/a}" 1 " s"
	local peak
	peak=$(for step in "${steps[@]}"; do echo "${rss[$step/dropback]-}"; done | sort -n | tail -n 1)
	check "dropback peak RSS <= 150 MB (all steps)" "${peak:-n/a}" 150 " MB"
	echo
	echo "results: $tsv, targets: $BENCH_DIR/targets.tsv, logs: $BENCH_DIR/logs/"
}

# ---- main --------------------------------------------------------------------

main() {
	preflight
	# The image, four repositories, a copy of dropback's two after the
	# first backup, and one restored copy at a time.
	workdir "" $((size_bytes * 5))
	setup_env
	local tool start=$SECONDS
	mkdir -p "$(dirname "$img")"
	for tool in $TOOLS; do mkdir -p "$BENCH_DIR/$tool"; done
	mkdir -p "$BORG_BASE_DIR"

	say "making a $SIZE image with mkimage"
	"$mkimage" create "$img" --size "$SIZE"
	alloc_bytes=$(($(du -sB1 "$img" | cut -f1)))

	for tool in $TOOLS; do backup backup1 "$tool"; done
	say "ageing the image by one day (mkimage churn --day 1)"
	"$mkimage" churn "$img" --day 1
	for tool in $TOOLS; do if active "$tool"; then backup backup2 "$tool"; fi; done
	for tool in $TOOLS; do if active "$tool"; then restore "$tool"; fi; done
	for tool in $TOOLS; do if active "$tool"; then verify "$tool"; fi; done
	if [[ " $TOOLS " == *" dropback "* ]] && active dropback; then
		"$DROPBACK" --repo "$BENCH_DIR/dropback/repo" repo stats >"$BENCH_DIR/logs/dropback-stats.log" 2>&1 || true
		# Opening the repository: Argon2id at the default parameters, then
		# the config and keys; repo stats of the repository does little else.
		run_median "$REPEAT" open dropback "$DROPBACK" --repo "$BENCH_DIR/dropback/repo" repo key list || true
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
