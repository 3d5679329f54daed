#!/usr/bin/env bash
# Install the tools dropback's tests and benchmark need, from Debian packages.
#
# Idempotent: it installs only what is missing, and runs `apt-get update` once,
# only if something is. It needs no terminal. As root it uses apt-get directly,
# otherwise passwordless sudo; when it can do neither, it names what is missing
# and leaves the tests that need it to say so.
set -euo pipefail

# command  package  what needs it
deps=(
	"mkfs.ext4    e2fsprogs   ext4 round-trip tests"
	"e2fsck       e2fsprogs   ext4 round-trip tests"
	"restic       restic      benchmark"
	"borg         borgbackup  benchmark"
	"/usr/bin/time time       benchmark"
	"curl         curl        MinIO health checks and the S3 benchmark's request counts"
	"qemu-img     qemu-utils  qcow2 and NBD tests (qemu-img, qemu-nbd, qemu-io)"
	"nbdinfo      libnbd-bin  NBD tests (nbdinfo, nbdcopy)"
	"qemu-system-x86_64 qemu-system-x86 live VM backup tests"
	"libvirtd     libvirt-daemon-system libvirt tests (libvirtd, virtlogd)"
	"virsh        libvirt-clients libvirt tests"
	"fusermount3  fuse3       backups mount tests"
)

have() {
	case "$1" in
	/*) [ -x "$1" ] ;;
	*) PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1 ;;
	esac
}

missing=() # packages
notes=()   # one line per package: what it provides and why
for dep in "${deps[@]}"; do
	read -r cmd pkg why <<<"$dep"
	if ! have "$cmd"; then
		case " ${missing[*]-} " in
		*" $pkg "*) ;;
		*)
			missing+=("$pkg")
			notes+=("$pkg (provides $cmd, for $why)")
			;;
		esac
	fi
done
# /dev/kvm as Debian's udev leaves it (group kvm, mode 0660) where no udev
# ran (a container leaves it root's alone). Otherwise libvirtd probes QEMU,
# finds KVM, then finds that its QEMU user (in group kvm) cannot open
# /dev/kvm, calls the capabilities it cached stale and probes QEMU again at
# every start and every new domain: measured, 97 s instead of 11 s for the
# libvirt test on two busy cores. The tests' domains run TCG all the same.
kvm_node() {
	[ -c /dev/kvm ] && getent group kvm >/dev/null 2>&1 || return 0
	[ "$(stat -c %G /dev/kvm)" = root ] || return 0
	local s=()
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null || return 0
		s=(sudo -n)
	fi
	"${s[@]}" chgrp kvm /dev/kvm && "${s[@]}" chmod 0660 /dev/kvm ||
		echo "deps: could not give /dev/kvm to group kvm; libvirt tests will be slow" >&2
}
trap kvm_node EXIT

[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: no apt-get here; install these yourself: ${missing[*]}" >&2
	exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
	sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	sudo=(sudo -n)
else
	echo "deps: not root and no passwordless sudo; install these yourself: ${missing[*]}" >&2
	exit 0
fi

for note in "${notes[@]}"; do
	echo "deps: installing $note"
done
log=$(mktemp "${TMPDIR:-/tmp}/dropback-deps.XXXXXX")
trap 'rm -f "$log"; kvm_node' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { "${sudo[@]}" apt-get update -q &&
	"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1 </dev/null; then
	tail -n 20 "$log" >&2
	echo "deps: apt-get failed installing: ${missing[*]}" >&2
	exit 1
fi
