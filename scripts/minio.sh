#!/usr/bin/env bash
# Run a local, erasure-coded MinIO for dropback's S3 tests and benchmark.
#
#   scripts/minio.sh start    build MinIO if missing, start it (or reuse the
#                             one already running from this state dir)
#   scripts/minio.sh stop     stop it; its data stays for the next start
#   scripts/minio.sh env      print the AWS_* exports that reach it:
#                             eval "$(scripts/minio.sh env)"
#   scripts/minio.sh status   exit 0 if it answers, 1 otherwise
#   scripts/minio.sh mc ARGS  run MinIO's client on it as root, alias "local"
#                             (built once with go install, like the server):
#                             scripts/minio.sh mc admin user add local rouser rosecret123
#                             (an access key of 3-20 characters, a secret of
#                             8-40; docs/s3.md gives the policy of a user
#                             that may only read)
#
# MinIO listens on 127.0.0.1 only, on a free port chosen at the first start
# and kept for later starts, with four drive folders (DIR/data/d{1...4}), so
# it runs erasure-coded (two data and two parity shards) as it would across
# machines; MINIO_CI_CD=1 lets the drives share one filesystem. The binary is
# built once with `go install` (about two minutes) into $(go env GOPATH)/bin
# and reused. Starting is idempotent and safe from several processes at once
# (a lock in the state dir), and needs no terminal.
#
# Environment:
#   MINIO_STATE_DIR   state dir: pid, port, credentials, log, data
#                     (default /tmp/dropback-minio)
#   MINIO_BIN         the minio binary (default: the one go install puts in
#                     GOBIN or GOPATH/bin, built if missing)
#   MINIO_IDLE_STOP   seconds: stop the server once `start` has not been run
#                     for that long (default 0: never). The tests set it, so
#                     a server they started does not outlive them for long.
#   MINIO_START_WAIT  seconds to wait for it to answer (default 60)
set -euo pipefail

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MC_VERSION=v0.0.0-20250313080218-cf909e1063a9
STATE=${MINIO_STATE_DIR:-/tmp/dropback-minio}
IDLE_STOP=${MINIO_IDLE_STOP:-0}
START_WAIT=${MINIO_START_WAIT:-60}

say() { echo "minio.sh: $*" >&2; }
die() {
	say "$*"
	exit 1
}

# alive PID: the process exists and is a minio server (not a reused PID).
alive() {
	local pid=$1
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "minio server"
}

readstate() { cat "$STATE/$1" 2>/dev/null || true; }

# healthy: the server answers with write quorum.
healthy() {
	local port
	port=$(readstate port)
	[ -n "$port" ] && curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/minio/health/cluster" 2>/dev/null
}

running() { alive "$(readstate pid)" && healthy; }

# port_free PORT: nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
	local port
	for _ in $(seq 1 200); do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		if port_free "$port"; then
			echo "$port"
			return
		fi
	done
	die "found no free port"
}

# find_bin: $MINIO_BIN, else the pinned build where go install puts it
# (a minio found on PATH could be any release).
find_bin() {
	if [ -n "${MINIO_BIN:-}" ]; then
		echo "$MINIO_BIN"
		return
	fi
	command -v go >/dev/null || die "go is missing: it builds MinIO (or set MINIO_BIN)"
	local dir
	dir=$(go env GOBIN)
	[ -n "$dir" ] || dir=$(go env GOPATH | cut -d: -f1)/bin
	echo "$dir/minio"
}

build() {
	local bin=$1
	[ -x "$bin" ] && return
	[ -z "${MINIO_BIN:-}" ] || die "no minio at MINIO_BIN=$MINIO_BIN"
	say "building MinIO $MINIO_VERSION (about two minutes; log in $STATE/build.log)"
	if ! (cd / && GOFLAGS=-buildvcs=false go install "github.com/minio/minio@$MINIO_VERSION") >"$STATE/build.log" 2>&1; then
		tail -n 5 "$STATE/build.log" >&2
		die "go install github.com/minio/minio@$MINIO_VERSION failed (full log in $STATE/build.log)"
	fi
	[ -x "$bin" ] || die "go install did not leave minio at $bin"
}

stop_pid() {
	local pid=$1
	alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do
		alive "$pid" || return 0
		sleep 0.2
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# watchdog stops the server once the lease file is older than IDLE_STOP.
watchdog() {
	local pid=$1 now age
	while alive "$pid"; do
		sleep 15
		now=$(date +%s)
		age=$((now - $(stat -c %Y "$STATE/lease" 2>/dev/null || echo 0)))
		if [ "$age" -gt "$IDLE_STOP" ]; then
			stop_pid "$pid"
			rm -f "$STATE/pid"
			break
		fi
	done
	rm -f "$STATE/watchdog.pid"
}

start() {
	mkdir -p "$STATE"
	chmod 700 "$STATE"
	exec 9>"$STATE/lock"
	flock -w 900 9 || die "timed out waiting for another start"
	touch "$STATE/lease"
	if running; then
		return
	fi
	stop_pid "$(readstate pid)"
	local bin
	bin=$(find_bin)
	build "$bin"

	local port user pass
	port=$(readstate port)
	if [ -z "$port" ] || ! port_free "$port"; then
		port=$(free_port)
	fi
	user=$(readstate user)
	pass=$(readstate password)
	if [ -z "$user" ] || [ -z "$pass" ]; then
		user=dropback
		pass=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
		(umask 077 && echo "$user" >"$STATE/user" && echo "$pass" >"$STATE/password")
	fi
	echo "$port" >"$STATE/port"
	mkdir -p "$STATE"/data/d1 "$STATE"/data/d2 "$STATE"/data/d3 "$STATE"/data/d4

	# setsid and closed descriptors: the server outlives this script and
	# holds no pipe of whoever ran it (go test waits for those).
	MINIO_ROOT_USER=$user MINIO_ROOT_PASSWORD=$pass MINIO_CI_CD=1 \
		MINIO_BROWSER=off MINIO_UPDATE=off \
		setsid "$bin" server --quiet --address "127.0.0.1:$port" "$STATE/data/d{1...4}" \
		</dev/null >>"$STATE/minio.log" 2>&1 9>&- &
	local pid=$!
	echo "$pid" >"$STATE/pid"

	local deadline=$((SECONDS + START_WAIT))
	until healthy; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 5 "$STATE/minio.log" >&2
			rm -f "$STATE/pid"
			die "minio exited at start (log in $STATE/minio.log)"
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			stop_pid "$pid"
			rm -f "$STATE/pid"
			die "minio did not answer on 127.0.0.1:$port within ${START_WAIT}s (log in $STATE/minio.log)"
		fi
		sleep 0.2
	done

	if [ "$IDLE_STOP" -gt 0 ] && ! kill -0 "$(readstate watchdog.pid)" 2>/dev/null; then
		(watchdog "$pid" </dev/null >/dev/null 2>&1 9>&- &
			echo $! >"$STATE/watchdog.pid")
	fi
	say "MinIO running on http://127.0.0.1:$port (pid $pid, state in $STATE)"
}

stop() {
	[ -d "$STATE" ] || return 0
	local wd
	wd=$(readstate watchdog.pid)
	if [ -n "$wd" ] && kill -0 "$wd" 2>/dev/null &&
		tr '\0' ' ' <"/proc/$wd/cmdline" 2>/dev/null | grep -q minio.sh; then
		kill "$wd" 2>/dev/null || true
	fi
	rm -f "$STATE/watchdog.pid"
	stop_pid "$(readstate pid)"
	rm -f "$STATE/pid"
}

env_exports() {
	running || die "MinIO is not running from $STATE; run scripts/minio.sh start"
	cat <<EOF
export AWS_ENDPOINT_URL=http://127.0.0.1:$(readstate port)
export AWS_ACCESS_KEY_ID=$(readstate user)
export AWS_SECRET_ACCESS_KEY=$(readstate password)
export AWS_REGION=us-east-1
EOF
}

# mc ARGS: MinIO's client against the running server, as root.
run_mc() {
	running || die "MinIO is not running from $STATE; run scripts/minio.sh start"
	local bin
	bin="$(dirname "$(find_bin)")/mc"
	if [ ! -x "$bin" ]; then
		say "building mc $MC_VERSION (about two minutes; log in $STATE/build-mc.log)"
		if ! (cd / && GOFLAGS=-buildvcs=false go install "github.com/minio/mc@$MC_VERSION") >"$STATE/build-mc.log" 2>&1; then
			tail -n 5 "$STATE/build-mc.log" >&2
			die "go install github.com/minio/mc@$MC_VERSION failed (full log in $STATE/build-mc.log)"
		fi
	fi
	MC_HOST_local="http://$(readstate user):$(readstate password)@127.0.0.1:$(readstate port)" \
		MC_CONFIG_DIR="$STATE/mc" "$bin" --quiet --no-color "$@"
}

case "${1:-}" in
start) start ;;
mc)
	shift
	run_mc "$@"
	;;
stop) stop ;;
env) env_exports ;;
status) running ;;
*)
	echo "usage: $0 start|stop|env|status|mc ARGS" >&2
	exit 2
	;;
esac
