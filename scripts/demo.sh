#!/usr/bin/env bash
# Run dropback's main job end to end on the embedded engine, with no account
# and no server: make a sample disk, register it, back it up, change it, back
# it up again, list the backups, restore both to new files and compare them
# with what the disk held at each backup.
#
#   make demo            # builds bin/dropback, then runs this
#   DEMO_DIR=/tmp/x scripts/demo.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dropback=${DROPBACK:-$root/bin/dropback}
dir=${DEMO_DIR:-$(mktemp -d /tmp/dropback-demo.XXXXXX)}
mkdir -p "$dir"
export DROPBACK_REPO=$dir/repo
export DROPBACK_CONTEXT=local
# The demo's repository is encrypted, as every new one is; it sets its own
# password so that nothing asks for one. Keep yours out of the environment
# of other processes: DROPBACK_PASSWORD_FILE or DROPBACK_PASSWORD_COMMAND.
export DROPBACK_PASSWORD=${DROPBACK_PASSWORD:-dropback demo password}

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

# A 512 MiB sparse disk holding an ext4 filesystem with some files.
rm -rf "$dir/repo" "$dir/files" "$dir"/*.img
mkdir -p "$dir/files/etc" "$dir/files/var/log"
head -c 8000000 /dev/urandom >"$dir/files/var/random.bin"
seq 1 400000 >"$dir/files/var/log/syslog"
echo "web-1" >"$dir/files/etc/hostname"
disk=$dir/web-1.img
truncate -s 512M "$disk"
if command -v mkfs.ext4 >/dev/null; then
	mkfs.ext4 -q -F -d "$dir/files" "$disk"
else
	dd if="$dir/files/var/random.bin" of="$disk" conv=notrunc status=none
fi
cp --sparse=always "$disk" "$dir/day1.img"

step "$dropback" repo init
step "$dropback" hosts add web-1 --disk "$disk"
step "$dropback" backups create web-1

# A day of work: overwrite 4 MiB in the middle of the disk.
head -c 4194304 /dev/urandom | dd of="$disk" bs=1M seek=200 conv=notrunc status=none
step "$dropback" backups create web-1
step "$dropback" backups list web-1
step "$dropback" repo stats

first=$("$dropback" backups list web-1 --format ID --no-header | sed -n 1p)
step "$dropback" backups restore web-1 "$first" --to "$dir/restored-day1.img"
step "$dropback" backups restore web-1 latest --to "$dir/restored-latest.img"
step "$dropback" backups verify

cmp "$dir/day1.img" "$dir/restored-day1.img"
cmp "$disk" "$dir/restored-latest.img"
echo
echo "demo: both restores are byte-identical to the disk as it was backed up"
echo "demo: restored sizes on disk (sparse): $(du -h "$dir/restored-latest.img" | cut -f1) of $(du -h --apparent-size "$dir/restored-latest.img" | cut -f1)"
echo "demo: files in $dir"
