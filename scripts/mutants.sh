#!/usr/bin/env bash
# Put back, one at a time, each bug the deletion-safety protocol fixed, and
# check that the interleaving test (pkg/engine/interleave_test.go) finds it.
# Each scripts/mutants/NAME.patch undoes one fix; the test must fail with a
# seed that names a lost backup, a broken restore or a damaged repository.
#
#   scripts/mutants.sh              every mutant: 40 seeds of each staged
#                                   race, then 1000 random seeds
#   SEEDS=1000 scripts/mutants.sh restore-unannounced
#
# gc-unguarded puts back two gcs at once (no lease, no settled rule, no
# recheck of the packs to keep) together with readers that take the first
# place an index names for a chunk: a reader that ranks places in packs the
# listing does not show below the others outlasts the gcs' overlap alone.
#
# It needs a clean work tree under pkg/, and leaves it as it found it.
set -euo pipefail
cd "$(dirname "$0")/.."
# On encrypted repositories (the test's default) markers-fail-open was first
# found at seed 629, so 300 seeds were not enough.
seeds=${SEEDS:-1000}
staged=9                            # the staged races of the test: -scenario 0..8
staged_seeds=${STAGED_SEEDS:-40}
if ! git diff --quiet -- pkg/; then
	echo "mutants: pkg/ has uncommitted changes; commit or stash them first" >&2
	exit 2
fi
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for p in scripts/mutants/*.patch; do names+=("$(basename "$p" .patch)"); done
fi
survived=0
for name in "${names[@]}"; do
	patch=scripts/mutants/$name.patch
	if ! git apply "$patch"; then
		echo "$name: the patch no longer applies; bring it up to date with the code" >&2
		survived=1
		continue
	fi
	log=$(mktemp)
	# Each staged race first (a few seeds each), then the random mixes: the
	# test's scheduler waits on real time for a moment before each choice,
	# so on a loaded machine a race is met less often among random runs.
	result=survived
	for run in $(seq 0 $((staged - 1))) random; do
		if [ "$run" = random ]; then
			args=(-seeds "$seeds")
		else
			args=(-scenario "$run" -seeds "$staged_seeds")
		fi
		if ! go test ./pkg/engine/ -run Interleav "${args[@]}" -timeout 30m >"$log" 2>&1; then
			result=failed
			break
		fi
	done
	if [ "$result" = survived ]; then
		echo "$name: SURVIVED $staged_seeds seeds of each staged race and $seeds random ones: the test does not find this bug"
		survived=1
	elif grep -q "rerun with" "$log"; then
		echo "$name: found; $(grep -m1 'rerun with' "$log" | sed 's/^ *//; s/ (rerun.*//') ${args[*]}: $(grep -m1 -A1 'rerun with' "$log" | tail -1 | sed 's/^ *//' | cut -c1-140)"
	else
		echo "$name: the test failed without naming a seed:" >&2
		tail -5 "$log" >&2
		survived=1
	fi
	rm -f "$log"
	git apply -R "$patch"
done
exit $survived
