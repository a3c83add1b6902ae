#!/usr/bin/env bash
# scripts/test.sh: the project's one test command (CI runs it through .ci/run).
#
#   ./scripts/test.sh [go test flags...]    e.g. ./scripts/test.sh -run TestGet -v
#
# Starts throw-away servers on free 127.0.0.1 ports:
#   - one standalone redis-server            -> REDIS_ADDR=127.0.0.1:P
#   - a 3-master Redis Cluster (no replicas)  -> REDIS_CLUSTER_ADDRS=127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3
#   - two memcached servers                   -> MEMCACHED_ADDRS=127.0.0.1:M1,127.0.0.1:M2
# exports those variables, runs `go vet ./...`, gofmt and staticcheck, then
# `go test -race -count=1 -timeout 15m [flags...] ./...`, then go vet and
# `go test -race -count=1 ./...` in the otel module (otel/, a module of its
# own), stops every server it started (also when the tests fail or the script
# is interrupted) and exits with the first failure's status: the root's go
# test, else the otel module's, else 1 when a static check failed.
#
# If one of the three variables is already set (your own servers), it is used
# as is and nothing is started for it.
#
# Missing redis-server / redis-cli / memcached binaries are installed with
# apt-get when running as root; otherwise the script says what to install and
# exits 1.
#
#   ./scripts/test.sh --servers-only
#
# only starts the servers, prints the `export ...` lines on stdout (progress goes
# to stderr) and stays in the foreground until killed (Ctrl-C / SIGTERM), then
# stops the servers. Paste the export lines into another shell and run
# `go test ./...` by hand.
set -euo pipefail

cd "$(dirname "$0")/.."

SERVERS_ONLY=0
if [[ ${1:-} == --servers-only ]]; then
	SERVERS_ONLY=1
	shift
	if (($# > 0)); then
		echo "test.sh: --servers-only takes no other arguments" >&2
		exit 2
	fi
fi

log() { echo "test.sh: $*" >&2; }

WORK=""        # temp dir: server working dirs, configs and logs
PIDS=()        # servers started by this script
GO_PID=""      # process group of the running `go test`
HOLD_PID=""    # `sleep` keeping --servers-only in the foreground
USED_PORTS=" " # ports handed out by pick_port, space separated

cleanup() {
	local status=$?
	set +e
	trap - EXIT INT TERM HUP
	if [[ -n $GO_PID ]]; then
		kill -TERM -- "-$GO_PID" 2>/dev/null
		wait "$GO_PID" 2>/dev/null
	fi
	if [[ -n $HOLD_PID ]]; then
		kill "$HOLD_PID" 2>/dev/null
		wait "$HOLD_PID" 2>/dev/null
	fi
	local pid i
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [[ -n $WORK ]]; then
		rm -rf "$WORK"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

die() {
	log "$*"
	exit 1
}

# show_log FILE: prints a server log to stderr.
show_log() {
	echo "----- $1 -----" >&2
	cat "$1" >&2 2>/dev/null || true
	echo "-----" >&2
}

# ---------------------------------------------------------------------------
# Binaries.

if ((!SERVERS_ONLY)) && ! command -v go >/dev/null; then
	die "go not found in PATH"
fi

need_redis=0
need_memcached=0
[[ -z ${REDIS_ADDR:-} || -z ${REDIS_CLUSTER_ADDRS:-} ]] && need_redis=1
[[ -z ${MEMCACHED_ADDRS:-} ]] && need_memcached=1

missing=()
if ((need_redis)); then
	command -v redis-server >/dev/null || missing+=(redis-server)
	command -v redis-cli >/dev/null || missing+=(redis-cli)
fi
if ((need_memcached)); then
	command -v memcached >/dev/null || missing+=(memcached)
fi
if ((${#missing[@]} > 0)); then
	pkgs=(redis-server redis-tools memcached)
	if [[ $(id -u) -ne 0 ]]; then
		log "missing ${missing[*]}; install them, e.g.:"
		log "  sudo apt-get install -y ${pkgs[*]}    (Debian/Ubuntu)"
		log "  brew install redis memcached                                (macOS)"
		log "or point REDIS_ADDR, REDIS_CLUSTER_ADDRS and MEMCACHED_ADDRS at your own servers"
		exit 1
	fi
	if ! command -v apt-get >/dev/null; then
		die "missing ${missing[*]} and no apt-get: install ${pkgs[*]} by hand"
	fi
	log "missing ${missing[*]}: apt-get install ${pkgs[*]}"
	apt_log=$(mktemp)
	if ! {
		apt-get -o DPkg::Lock::Timeout=300 update -q &&
			DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q "${pkgs[@]}"
	} >"$apt_log" 2>&1; then
		show_log "$apt_log"
		rm -f "$apt_log"
		die "apt-get failed"
	fi
	rm -f "$apt_log"
	hash -r
	for b in "${missing[@]}"; do
		command -v "$b" >/dev/null || die "$b still missing after apt-get install"
	done
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/typedcache-test.XXXXXX")

# ---------------------------------------------------------------------------
# Ports.

# port_busy PORT: true when something accepts connections on 127.0.0.1:PORT.
port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pick_port [bus]: sets PORT to a free, not yet handed out loopback port. With
# "bus", PORT+10000 (the Redis Cluster bus port) must be free too. Ports come
# from 12000-21999 so that bus ports stay below Linux's ephemeral range
# (32768+).
pick_port() {
	local p tries
	for ((tries = 0; tries < 500; tries++)); do
		p=$((12000 + RANDOM % 10000))
		[[ $USED_PORTS == *" $p "* || $USED_PORTS == *" $((p + 10000)) "* ]] && continue
		port_busy "$p" && continue
		if [[ ${1:-} == bus ]] && port_busy $((p + 10000)); then
			continue
		fi
		USED_PORTS+="$p $((p + 10000)) "
		PORT=$p
		return 0
	done
	die "no free port found"
}

# ---------------------------------------------------------------------------
# Servers. Each start_* function sets PORT; a server that exits while starting
# (another process took the port in the meantime) is retried on another port.

# redis_ready PORT PID: true once redis-server PID answers PING on PORT.
redis_ready() {
	[[ $(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]] &&
		redis-cli -h 127.0.0.1 -p "$1" info server 2>/dev/null | tr -d '\r' | grep -x "process_id:$2" >/dev/null
}

# memcached_pid PORT: prints the pid reported by `stats` of the memcached on PORT.
memcached_pid() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'stats\r\n' >&3
		while IFS= read -r -t 2 line <&3; do
			line=${line%$'\r'}
			case $line in
			"STAT pid "*) echo "${line#STAT pid }" ;;
			END | ERROR*) break ;;
			esac
		done
	) 2>/dev/null
}

memcached_ready() {
	[[ $(memcached_pid "$1") == "$2" ]]
}

# wait_ready KIND PORT PID LOG: waits up to 10s for the server to answer.
# Returns 1 when the process died (caller retries); fails loudly on timeout.
wait_ready() {
	local kind=$1 port=$2 pid=$3 logf=$4 i
	for ((i = 0; i < 200; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		if "${kind}_ready" "$port" "$pid"; then
			return 0
		fi
		sleep 0.05
	done
	show_log "$logf"
	die "$kind on 127.0.0.1:$port (pid $pid) did not answer within 10s"
}

# start_redis [cluster]
start_redis() {
	local mode=${1:-} attempt pid logf args
	for ((attempt = 1; attempt <= 3; attempt++)); do
		if [[ $mode == cluster ]]; then pick_port bus; else pick_port; fi
		logf="$WORK/redis-$PORT.log"
		args=(--port "$PORT" --bind 127.0.0.1 --daemonize no --save "" --appendonly no
			--dir "$WORK" --logfile "")
		if [[ $mode == cluster ]]; then
			args+=(--cluster-enabled yes --cluster-config-file "$WORK/nodes-$PORT.conf")
		fi
		redis-server "${args[@]}" </dev/null >"$logf" 2>&1 &
		pid=$!
		PIDS+=("$pid")
		if wait_ready redis "$PORT" "$pid" "$logf"; then
			return 0
		fi
		wait "$pid" 2>/dev/null || true
		log "redis-server on 127.0.0.1:$PORT exited while starting (attempt $attempt)"
	done
	show_log "$logf"
	die "could not start redis-server"
}

start_memcached() {
	local attempt pid logf args
	for ((attempt = 1; attempt <= 3; attempt++)); do
		pick_port
		logf="$WORK/memcached-$PORT.log"
		args=(-l 127.0.0.1 -p "$PORT" -U 0 -m 64)
		# memcached refuses to run as root unless told which user to be.
		[[ $(id -u) -eq 0 ]] && args+=(-u root)
		memcached "${args[@]}" </dev/null >"$logf" 2>&1 &
		pid=$!
		PIDS+=("$pid")
		if wait_ready memcached "$PORT" "$pid" "$logf"; then
			return 0
		fi
		wait "$pid" 2>/dev/null || true
		log "memcached on 127.0.0.1:$PORT exited while starting (attempt $attempt)"
	done
	show_log "$logf"
	die "could not start memcached"
}

start_cluster() {
	local ports=() addrs=() p i ok
	for i in 1 2 3; do
		start_redis cluster
		ports+=("$PORT")
		addrs+=("127.0.0.1:$PORT")
		log "redis-cluster 127.0.0.1:$PORT"
	done
	if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
		</dev/null >"$WORK/cluster-create.log" 2>&1; then
		show_log "$WORK/cluster-create.log"
		die "redis-cli --cluster create failed"
	fi
	for ((i = 0; i < 300; i++)); do
		ok=1
		for p in "${ports[@]}"; do
			if ! redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null | tr -d '\r' | grep -x 'cluster_state:ok' >/dev/null; then
				ok=0
				break
			fi
		done
		if ((ok)); then
			CLUSTER_ADDRS=$(IFS=,; echo "${addrs[*]}")
			return 0
		fi
		sleep 0.1
	done
	show_log "$WORK/cluster-create.log"
	for p in "${ports[@]}"; do
		redis-cli -h 127.0.0.1 -p "$p" cluster info >&2 2>&1 || true
		show_log "$WORK/redis-$p.log"
	done
	die "redis cluster did not reach cluster_state:ok within 30s"
}

if [[ -z ${REDIS_ADDR:-} ]]; then
	start_redis
	log "redis 127.0.0.1:$PORT"
	export REDIS_ADDR="127.0.0.1:$PORT"
fi
if [[ -z ${REDIS_CLUSTER_ADDRS:-} ]]; then
	start_cluster
	export REDIS_CLUSTER_ADDRS="$CLUSTER_ADDRS"
fi
if [[ -z ${MEMCACHED_ADDRS:-} ]]; then
	mc=()
	for i in 1 2; do
		start_memcached
		log "memcached 127.0.0.1:$PORT"
		mc+=("127.0.0.1:$PORT")
	done
	MEMCACHED_ADDRS=$(IFS=,; echo "${mc[*]}")
	export MEMCACHED_ADDRS
fi

# ---------------------------------------------------------------------------
# Run.

if ((SERVERS_ONLY)); then
	echo "export REDIS_ADDR=$REDIS_ADDR"
	echo "export REDIS_CLUSTER_ADDRS=$REDIS_CLUSTER_ADDRS"
	echo "export MEMCACHED_ADDRS=$MEMCACHED_ADDRS"
	log "servers running; Ctrl-C or SIGTERM stops them"
	sleep 2147483647 </dev/null &
	HOLD_PID=$!
	wait "$HOLD_PID" || true
	HOLD_PID=""
	exit 0
fi

set +e
# Static checks: go vet, gofmt and staticcheck (pinned; `go run pkg@version`
# leaves go.mod alone). Their failures fail the script after the tests ran.
vet_status=0
go vet ./... || vet_status=$?
unformatted=$(gofmt -l . 2>&1)
if [[ -n $unformatted ]]; then
	log "gofmt would change:"
	echo "$unformatted" >&2
	vet_status=1
fi
# staticcheck v0.8.2 needs Go 1.26 to build; the module itself needs only
# 1.24, so on an older toolchain the check is skipped, saying so.
go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
if [[ $go_minor =~ ^[0-9]+$ ]] && ((go_minor >= 26)); then
	go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./... || vet_status=$?
	(cd otel && go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...) || vet_status=$?
else
	log "staticcheck skipped: it needs Go 1.26 or newer (this is $(go env GOVERSION))"
fi

# go test runs in its own process group (set -m) so that an interrupted script
# can stop it together with the test binaries it started.
set -m
go test -race -count=1 -timeout 15m "$@" ./... </dev/null &
GO_PID=$!
set +m
wait "$GO_PID"
test_status=$?
GO_PID=""

# The otel module (its own go.mod, so that the core never requires
# OpenTelemetry): the root's ./... does not reach it.
set -m
(cd otel && go vet ./... && go test -race -count=1 ./...) </dev/null &
GO_PID=$!
set +m
wait "$GO_PID"
otel_status=$?
GO_PID=""
if ((otel_status != 0)); then
	log "otel module: go vet or go test failed"
	((test_status == 0)) && test_status=$otel_status
fi

if ((vet_status != 0)); then
	log "static checks (go vet, gofmt, staticcheck) failed"
	((test_status == 0)) && test_status=$vet_status
fi
exit "$test_status"
