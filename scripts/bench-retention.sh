#!/usr/bin/env bash
# Benchmark dropback's retention and gc against restic and borg on the same
# history of backups.
#
# In one run: a fresh image made by internal/cmd/mkimage gets one backup
# a day by each tool for DAYS days (dated 2026-10-01 to 2026-10-DAYS at 04:00
# UTC), with `mkimage churn --day N` before the backup of every day N but
# the first. Then the retention step, keeping the newest backup of each of the
# last 7 days and of the last 4 ISO weeks:
#   dropback  backups prune --keep-daily 7 --keep-weekly 4 --force, then repo gc
#   restic    forget --keep-daily 7 --keep-weekly 4 --prune
#   borg      prune --keep-daily 7 --keep-weekly 4, then compact
# Each step's wall time and peak RSS come from GNU time, repository sizes from
# du -sb. It prints the total time of the backups, the retention step's time,
# peak RSS and repository size before and after, the backups each tool kept
# and whether the tools agree, the ratios dropback/restic and dropback/borg,
# and the targets of the retention issue with PASS or MISS. Last it restores
# the oldest and the newest backup dropback kept and compares them with the
# image's sha256 recorded on their day.
#
#   make bench-retention                # builds bin/dropback first
#   SIZE=256M DAYS=15 scripts/bench-retention.sh    # a quick run
#
# Environment, besides BENCH_DIR, TOOLS and DROPBACK as in bench.sh:
#   SIZE       image size: bytes, or a number with K, M, G or T (default 2G)
#   DAYS       daily backups to take, 1 to 31 (default 30)
#   RESTORE    ends (default) restores the oldest and newest backup dropback
#              kept; all restores every one it kept
#   KEEP       1 keeps the image, the repositories and the restored images;
#              by default they are removed at exit and only logs and results
#              stay
#
# The work directory is $BENCH_DIR/retention, emptied at start; the results go
# to $BENCH_DIR/retention.tsv (one line per step and tool),
# $BENCH_DIR/retention-days.tsv (each day's backup by each tool and the
# image's sha256) and $BENCH_DIR/retention-targets.tsv.
#
# It exits non-zero if a step fails or a restored backup differs from the
# image of its day; a missed target, or tools keeping different backups, is a
# finding, not a failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SIZE=${SIZE:-2G}
# shellcheck source=scripts/bench-lib.sh
. "$here/bench-lib.sh"
DAYS=${DAYS:-30}
RESTORE=${RESTORE:-ends}
KEEP_DAILY=7
KEEP_WEEKLY=4
# restic reads --time and borg prune buckets archives in local time; dropback
# works in UTC. One zone for all three puts every backup on the same day.
export TZ=UTC

step_title=(
	[init]="repository init"
	[prune]="prune"
	[gc]="repo gc"
	[forget]="forget --prune"
	[compact]="compact"
	[retention]="retention total"
	[backups]="$DAYS backups"
	[list]="list backups"
)
declare -A day_sha identical restore_secs
declare -a restored_days=()

day_step() { printf 'day%02d' "$1"; }

# ---- the tools ---------------------------------------------------------------

init() {
	local tool=$1 r=$work/$1/repo
	case $tool in
	dropback)
		setup init dropback "$DROPBACK" --repo "$r" repo init &&
			setup init dropback "$DROPBACK" --repo "$r" hosts add bench --disk "$img" || return 0
		;;
	restic) setup init restic restic -r "$r" init || return 0 ;;
	borg) setup init borg borg init -e none "$r" || return 0 ;;
	esac
}

# backup DAY TOOL: TOOL's backup of the image, dated on DAY.
backup() {
	local d=$1 tool=$2 r=$work/$2/repo step dd
	step=$(day_step "$d")
	dd=$(printf '%02d' "$d")
	case $tool in
	dropback)
		run "$step" dropback "$DROPBACK" --repo "$r" backups create bench \
			--time "2026-10-${dd}T04:00:00Z" || return 0
		;;
	restic)
		STDIN=$img run "$step" restic restic -r "$r" backup --stdin --stdin-filename disk.img \
			--time "2026-10-$dd 04:00:00" || return 0
		;;
	borg)
		CWD=$(dirname "$img") run "$step" borg borg create --timestamp "2026-10-${dd}T04:00:00" \
			--chunker-params fixed,1048576 --sparse -C zstd,1 "$r::day-$dd" disk.img || return 0
		;;
	esac
	repo_size "$step" "$tool"
}

# listing TOOL: TOOL's backups, oldest first, one "YYYY-MM-DD ID" a line.
listing() {
	local tool=$1 r=$work/$1/repo
	case $tool in
	dropback)
		"$DROPBACK" --repo "$r" backups list bench --format Created,ID --no-header |
			awk '{ print substr($1, 1, 10), $2 }'
		;;
	restic)
		# The table's rows start with the short ID, then the date (in TZ=UTC).
		restic -r "$r" snapshots | awk 'length($1) == 8 && $1 ~ /^[0-9a-f]+$/ { print $2, $1 }'
		;;
	borg)
		borg list --format '{start:%Y-%m-%d} {name}{NL}' "$r"
		;;
	esac | sort
}

# count_backups KEY TOOL: record how many backups TOOL has under KEY, and list them
# in logs/TOOL-KEY.list.
declare -A count
count_backups() {
	local key=$1 tool=$2 f=$work/logs/$2-$1.list
	if ! listing "$tool" >"$f" 2>>"$work/logs/$tool-list.log"; then
		fail list "$tool" "listing its backups"
		return 1
	fi
	count[$key/$tool]=$(wc -l <"$f")
}

# kept_days TOOL: the days of the month of the backups TOOL kept.
kept_days() { cut -d' ' -f1 "$work/logs/$1-after.list" | cut -d- -f3 | sed 's/^0//' | paste -sd' ' -; }

# retention TOOL: the retention step, timed; its total is the sum of its
# commands' wall times and the largest of their peak RSS.
retention() {
	local tool=$1 r=$work/$1/repo
	local -a parts
	repo_size before "$tool"
	count_backups before "$tool" || return 0
	case $tool in
	dropback)
		parts=(prune gc)
		run prune dropback "$DROPBACK" --repo "$r" backups prune bench \
			--keep-daily "$KEEP_DAILY" --keep-weekly "$KEEP_WEEKLY" --force || return 0
		repo_size prune dropback
		run gc dropback "$DROPBACK" --repo "$r" repo gc || return 0
		repo_size gc dropback
		;;
	restic)
		parts=(forget)
		run forget restic restic -r "$r" forget --keep-daily "$KEEP_DAILY" --keep-weekly "$KEEP_WEEKLY" --prune || return 0
		repo_size forget restic
		;;
	borg)
		parts=(prune compact)
		run prune borg borg prune --keep-daily "$KEEP_DAILY" --keep-weekly "$KEEP_WEEKLY" "$r" || return 0
		repo_size prune borg
		run compact borg borg compact "$r" || return 0
		repo_size compact borg
		;;
	esac
	repo_size after "$tool"
	count_backups after "$tool" || return 0
	local p s=0 m=0
	for p in "${parts[@]}"; do
		s=$(awk -v a="$s" -v b="${secs[$p/$tool]}" 'BEGIN { printf "%.2f", a + b }')
		[ "${rss[$p/$tool]}" -gt "$m" ] && m=${rss[$p/$tool]}
	done
	secs[retention/$tool]=$s
	rss[retention/$tool]=$m
}

# restore_check: restore backups dropback kept and compare each with the
# image's sha256 on its day.
restore_check() {
	local r=$work/dropback/repo out=$work/dropback/out lines=() line date id d step
	mapfile -t lines <"$work/logs/dropback-after.list"
	[ "${#lines[@]}" -gt 0 ] || {
		say "dropback kept no backup to restore"
		return 0
	}
	if [ "$RESTORE" != all ] && [ "${#lines[@]}" -gt 1 ]; then
		lines=("${lines[0]}" "${lines[-1]}")
	fi
	mkdir -p "$out"
	for line in "${lines[@]}"; do
		read -r date id <<<"$line"
		d=$((10#${date:8:2}))
		step=restore$(printf '%02d' "$d")
		step_title[$step]="restore of day $d"
		restored_days+=("$d")
		run "$step" dropback "$DROPBACK" --repo "$r" backups restore bench "$id" \
			--to "$out/disk-$step.img" --force || return 0
		restore_secs[$d]=${secs[$step/dropback]}
		say "comparing the restore of day $d with the image's sha256 on that day"
		if [ "$(sha256sum "$out/disk-$step.img" | cut -d' ' -f1)" = "${day_sha[$d]}" ]; then
			identical[$d]=yes
		else
			identical[$d]=no
			say "dropback's backup of day $d restored an image that differs from that day's"
		fi
		[ "$KEEP" = 1 ] || rm -f "$out/disk-$step.img"
	done
}

# cleanup removes the bulky files at exit unless KEEP=1.
cleanup() {
	[ -n "$work" ] && [ "$KEEP" != 1 ] || return 0
	local tool
	rm -rf "$work/image"
	for tool in dropback restic borg; do rm -rf "${work:?}/$tool"; done
}

# ---- report ----------------------------------------------------------------

# sum_days TOOL: total seconds of TOOL's daily backups and their peak RSS.
sum_days() {
	local tool=$1 d step s=0 m=0
	for d in $(seq 1 "$DAYS"); do
		step=$(day_step "$d")
		[ -n "${secs[$step/$tool]-}" ] || return 0
		s=$(awk -v a="$s" -v b="${secs[$step/$tool]}" 'BEGIN { printf "%.2f", a + b }')
		[ "${rss[$step/$tool]}" -gt "$m" ] && m=${rss[$step/$tool]}
	done
	secs[backups/$tool]=$s
	rss[backups/$tool]=$m
	repo_bytes[backups/$tool]=${repo_bytes[$(day_step "$DAYS")/$tool]}
	repo_mb[backups/$tool]=${repo_mb[$(day_step "$DAYS")/$tool]}
}

# row STEP TOOL BEFORE_KEY AFTER_KEY N_BEFORE N_AFTER COMPARE: one line of the
# table and of the TSV. COMPARE names the restic and borg steps dropback's time
# is compared with, as "restic_step borg_step", or is empty.
row() {
	local step=$1 tool=$2 bk=$3 ak=$4 nb=$5 na=$6 cmp=$7
	local s=${secs[$step/$tool]-} m=${rss[$step/$tool]-}
	local rb=${repo_mb[$bk/$tool]:--} ra=${repo_mb[$ak/$tool]:--}
	local vr=- vb=-
	if [ -n "$cmp" ]; then
		vr=$(ratio "$s" "${secs[${cmp% *}/restic]-}")
		vb=$(ratio "$s" "${secs[${cmp#* }/borg]-}")
	fi
	if [ -z "$s" ]; then
		s=skipped
		active "$tool" || s=failed
	fi
	printf '%-16s %-9s %9s %12s %15s %14s %15s %6s %8s %8s\n' \
		"${step_title[$step]}" "$tool" "$s" "${m:--}" "$rb" "$ra" "$nb" "$na" "$vr" "$vb"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$step" "$tool" "$s" "${m:--}" "$rb" "$ra" "$nb" "$na" "$vr" "$vb" >>"$BENCH_DIR/retention.tsv"
}

report() {
	local tool d step
	for tool in $TOOLS; do sum_days "$tool"; done
	printf 'step\ttool\tseconds\tpeak_rss_mb\trepo_mb_before\trepo_mb_after\tbackups_before\tbackups_after\ttime_vs_restic\ttime_vs_borg\n' \
		>"$BENCH_DIR/retention.tsv"
	targets_tsv=$BENCH_DIR/retention-targets.tsv
	printf 'target\tvalue\tlimit\tresult\n' >"$targets_tsv"
	{
		printf 'day\ttool\tseconds\tpeak_rss_mb\trepo_mb\timage_sha256\n'
		for d in $(seq 1 "$DAYS"); do
			step=$(day_step "$d")
			for tool in $TOOLS; do
				printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$d" "$tool" "${secs[$step/$tool]:--}" \
					"${rss[$step/$tool]:--}" "${repo_mb[$step/$tool]:--}" "${day_sha[$d]:--}"
			done
		done
	} >"$BENCH_DIR/retention-days.tsv"

	echo
	echo "dropback retention benchmark: $SIZE image ($((alloc_bytes >> 20)) MiB allocated), $DAYS daily backups" \
		"with a day of churn between them, then --keep-daily $KEEP_DAILY --keep-weekly $KEEP_WEEKLY"
	echo "tools: $(versions)"
	echo "page cache dropped before each step: $cache_dropped; CPUs: $(nproc), load average at start: $load_at_start"
	echo "backups dated 2026-10-01 to 2026-10-$(printf '%02d' "$DAYS") at 04:00 UTC; TZ=UTC for all tools"
	echo "a total is the sum of its steps' wall times and the largest of their peak RSS; /restic and /borg are time ratios"
	echo "work directory: $work"
	echo
	printf '%-16s %-9s %9s %12s %15s %14s %15s %6s %8s %8s\n' \
		step tool seconds "peak RSS MB" "repo MB before" "repo MB after" "backups before" after "/restic" "/borg"
	for tool in $TOOLS; do
		local cmp=
		[ "$tool" = dropback ] && cmp="backups backups"
		row backups "$tool" - backups 0 "${count[before/$tool]:--}" "$cmp"
	done
	for tool in $TOOLS; do
		local cmp=
		[ "$tool" = dropback ] && cmp="retention retention"
		row retention "$tool" before after "${count[before/$tool]:--}" "${count[after/$tool]:--}" "$cmp"
	done
	echo
	echo "retention steps:"
	for tool in $TOOLS; do
		case $tool in
		dropback)
			row prune dropback before prune "${count[before/$tool]:--}" "${count[after/$tool]:--}" ""
			row gc dropback prune gc - - ""
			;;
		restic) row forget restic before forget "${count[before/$tool]:--}" "${count[after/$tool]:--}" "" ;;
		borg)
			row prune borg before prune "${count[before/$tool]:--}" "${count[after/$tool]:--}" ""
			row compact borg prune compact - - ""
			;;
		esac
	done
	echo
	echo "repository size before and after retention, MB:" \
		"$(for tool in $TOOLS; do printf '%s %s -> %s  ' "$tool" "${repo_mb[before/$tool]:-n/a}" "${repo_mb[after/$tool]:-n/a}"; done)"

	echo
	local kept=() sets=() agree=yes first=
	for tool in $TOOLS; do
		[ -n "${count[after/$tool]-}" ] || continue
		kept+=("$tool ${count[after/$tool]}")
		sets+=("$tool")
		local days
		days=$(kept_days "$tool")
		if [ -z "$first" ]; then
			first=$days
		elif [ "$days" != "$first" ]; then
			agree=no
		fi
	done
	[ "${#sets[@]}" -ge 2 ] || agree="n/a (fewer than two tools)"
	echo "backups kept of $DAYS: $(printf '%s, ' "${kept[@]}" | sed 's/, $//'); the tools agree: $agree"
	for tool in "${sets[@]}"; do
		printf '  %-9s kept October %s\n' "$tool" "$(kept_days "$tool")"
	done
	if [ "$agree" = no ] && [[ " ${sets[*]} " == *" borg "* ]]; then
		echo "  (borg 1.2's prune counts a week only when its newest archive was not already kept by"
		echo "   --keep-daily, and keeps the oldest archive when a rule finds fewer periods than asked;"
		echo "   restic's forget and dropback's prune let one backup count for both rules)"
	fi

	if [ "${#restored_days[@]}" -gt 0 ]; then
		echo
		echo "restores of backups dropback kept, against the image's sha256 on their day:"
		for d in "${restored_days[@]}"; do
			printf '  day %-3s %-10s %8s s\n' "$d" "${identical[$d]:-failed}" "${restore_secs[$d]:--}"
		done
	fi

	echo
	echo "targets (dropback against the others):"
	check "retention + gc time <= 0.5x restic's" "$(ratio "${secs[retention/dropback]-}" "${secs[retention/restic]-}")" 0.5 x
	check "retention + gc peak RSS <= 150 MB" "${rss[retention/dropback]:-n/a}" 150 " MB"
	check "repository size after <= restic's" "$(ratio "${repo_bytes[after/dropback]-}" "${repo_bytes[after/restic]-}")" 1 x
	echo
	echo "results: $BENCH_DIR/retention.tsv, per day: $BENCH_DIR/retention-days.tsv," \
		"targets: $targets_tsv, logs: $work/logs/"
}

# ---- main --------------------------------------------------------------------

main() {
	preflight
	[[ "$DAYS" =~ ^[0-9]+$ ]] && [ "$DAYS" -ge 1 ] && [ "$DAYS" -le 31 ] ||
		die "DAYS must be a whole number from 1 to 31 (the days of October), not $DAYS"
	case $RESTORE in ends | all) ;; *) die "RESTORE must be ends or all, not $RESTORE" ;; esac
	command -v sha256sum >/dev/null || die "sha256sum is missing (coreutils)"
	load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
	# The image, three repositories holding DAYS days of churn and one
	# restored copy at a time.
	workdir retention $((size_bytes * 5))
	trap cleanup EXIT
	setup_env
	local tool d start=$SECONDS
	mkdir -p "$(dirname "$img")"
	for tool in $TOOLS; do mkdir -p "$work/$tool"; done
	mkdir -p "$BORG_BASE_DIR"
	for d in $(seq 1 "$DAYS"); do step_title[$(day_step "$d")]="backup of day $d"; done

	say "making a $SIZE image with mkimage"
	"$mkimage" create "$img" --size "$SIZE"
	alloc_bytes=$(($(du -sB1 "$img" | cut -f1)))

	for tool in $TOOLS; do init "$tool"; done
	for d in $(seq 1 "$DAYS"); do
		if [ "$d" -gt 1 ]; then
			say "ageing the image by one day (mkimage churn --day $d)"
			"$mkimage" churn "$img" --day "$d"
		fi
		day_sha[$d]=$(sha256sum "$img" | cut -d' ' -f1)
		for tool in $TOOLS; do if active "$tool"; then backup "$d" "$tool"; fi; done
	done
	for tool in $TOOLS; do if active "$tool"; then retention "$tool"; fi; done
	if [[ " $TOOLS " == *" dropback "* ]] && active dropback; then
		restore_check
		"$DROPBACK" --repo "$work/dropback/repo" repo stats >"$work/logs/dropback-stats.log" 2>&1 || true
	fi

	report
	if [ -s "$work/logs/dropback-stats.log" ]; then
		echo
		echo "dropback repo stats after gc:"
		sed 's/^/  /' "$work/logs/dropback-stats.log"
	fi
	say "done in $((SECONDS - start)) s"

	local bad=0
	for tool in $TOOLS; do
		if ! active "$tool"; then
			say "$tool failed in ${step_title[${failed[$tool]}]}"
			bad=1
		elif [ "${count[before/$tool]-}" != "$DAYS" ]; then
			say "$tool holds ${count[before/$tool]-no} backups before retention, not $DAYS"
			bad=1
		fi
	done
	if [[ " $TOOLS " == *" dropback "* ]] && active dropback; then
		if [ "${#restored_days[@]}" -eq 0 ]; then
			say "dropback: no kept backup was restored"
			bad=1
		fi
		for d in "${restored_days[@]}"; do
			if [ "${identical[$d]-}" != yes ]; then
				say "dropback: the restore of day $d is not byte-identical"
				bad=1
			fi
		done
	fi
	[ "$KEEP" = 1 ] || say "removing the image and the repositories (KEEP=1 keeps them)"
	return $bad
}

main "$@"
