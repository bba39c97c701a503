# Processes for end-to-end tests: comfyq-sim, comfyq-worker, comfyq-janitor,
# each started on private ports and files under $T, stopped by PID; and
# short assertions that print what they saw when they fail.
# Source it after setting BIN (build/bin), ROOT (the source tree), T (a
# temp dir) and COMFYQ_TEST_REDIS_URL; it sets Q (a fresh queue name).

Q="e2e$$-${RANDOM}"
P="cq:{$Q}:"
RPORT=${COMFYQ_TEST_REDIS_URL##*:}
export COMFYQ_REDIS_URL=$COMFYQ_TEST_REDIS_URL COMFYQ_QUEUE=$Q
tmp=$T
. "$ROOT/tests/lib/check.sh"

RC() { redis-cli -p "$RPORT" "$@"; }
CQ() { "$BIN/comfyq" "$@"; }

# The processes a test started (stack_cleanup stops them) and its cleanup:
# stop them, print the tail of every log when a check failed, keep the
# folder where KEEP_LOGS says, remove $T. A test calls trap stack_cleanup
# EXIT itself.
PIDS=()
stack_cleanup() {
	stop "${PIDS[@]}" 2>/dev/null
	if [ "$fails" -gt 0 ]; then
		for f in "$T"/*.log; do
			echo "---- $f"
			tail -40 "$f"
		done
	fi
	[ -n "${KEEP_LOGS:-}" ] && cp -r "$T" "$KEEP_LOGS"
	rm -rf "$T"
}

# cannot WHY: something the test needs cannot be had here: a failure
# under CI=true, a skip (exit 77: ctest's SKIP_RETURN_CODE) otherwise.
cannot() {
	if [ "${CI:-}" = true ]; then
		bad "$1"
		exit 1
	fi
	echo "SKIP: $1"
	exit 77
}

# py_with MODULE: prints a python3 that imports MODULE: the one on PATH,
# or Debian's, where the python3-* packages put it; 1 when neither does.
py_with() {
	local p
	for p in python3 /usr/bin/python3; do
		if "$p" -c "import $1" 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# need_node MAJOR WHY: node and npm on PATH, PKGS_EXAMPLES_NODE installed
# where either is missing (source deploy/lib/packages.sh and deps.sh
# first), and node at least MAJOR (WHY says what needs it); else cannot.
need_node() {
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		# shellcheck disable=SC2086
		deps_install $PKGS_EXAMPLES_NODE >"$T/deps.log" 2>&1 ||
			cannot "node or npm is missing and could not be installed: $(tail -2 "$T/deps.log")"
	fi
	[ "$(node -p 'process.versions.node.split(".")[0]')" -ge "$1" ] ||
		cannot "node $(node --version) is older than $1 ($2)"
}

# submit ARGS...: comfyq submit, failing the test loudly if it refuses;
# prints the job id.
submit() {
	local out
	if ! out=$(CQ submit "$@" 2>&1); then
		bad "submit $*: $out" >&2
		return 1
	fi
	echo "$out"
}

# wait_until SECONDS COMMAND...: polls every 0.1 s; 1 when it timed out.
wait_until() {
	local limit=$1 i
	shift
	for i in $(seq 1 $((limit * 10))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# sim_start NAME [ARGS...]: SIM_PID, SIM_PORT, SIM_URL. Keeps its port on
# a restart (sim_start again with SIM_PORT set).
sim_start() {
	local name=$1 port=${SIM_PORT:-0}
	shift
	rm -f "$T/$name.port"
	"$BIN/comfyq-sim" --port "$port" --port-file "$T/$name.port" \
		--base-directory "$T/$name" --log-level verbose "$@" \
		>>"$T/$name.log" 2>&1 &
	SIM_PID=$!
	if ! wait_until 20 test -s "$T/$name.port"; then
		echo "sim_start: $name did not start; its log:" >&2
		tail -20 "$T/$name.log" >&2
		return 1
	fi
	SIM_PORT=$(cat "$T/$name.port")
	SIM_URL="http://127.0.0.1:$SIM_PORT"
}

# sim_faults JSON: sets faults at run time.
sim_faults() {
	curl -sf -X POST -H 'Content-Type: application/json' -d "$1" \
		"$SIM_URL/sim/faults" >/dev/null
}

# worker_start NAME [ARGS...]: the worker's PID in $WPID; log in $T/NAME.log.
worker_start() {
	local name=$1
	shift
	"$BIN/comfyq-worker" --redis-url "$COMFYQ_TEST_REDIS_URL" \
		--queue "$Q" --comfyui-url "$SIM_URL" --worker-id "$name" \
		--output-dir "$T/out" --workflows-dir "$ROOT/workflows" \
		--log-level verbose --heartbeat-ms 500 --lease-ms 3000 \
		--health-interval-ms 200 --retry-base-ms 100 \
		--retry-max-ms 400 "$@" >>"$T/$name.log" 2>&1 &
	WPID=$!
}

# janitor_start [ARGS...]: a janitor on the queue ($JPID), ticking fast.
janitor_start() {
	"$BIN/comfyq-janitor" --redis-url "$COMFYQ_TEST_REDIS_URL" \
		--queue "$Q" --tick-ms 200 --log-level verbose "$@" \
		>>"$T/janitor.log" 2>&1 &
	JPID=$!
}

# sched_start NAME [ARGS...]: a scheduler on the queue on a free port:
# SPID, S (its base URL); log in $T/NAME.log.
sched_start() {
	local name=$1
	shift
	"$BIN/comfyq-scheduler" --redis-url "$COMFYQ_TEST_REDIS_URL" \
		--queue "$Q" --listen 127.0.0.1:0 --output-dir "$T/out" \
		--workflows-dir "$ROOT/workflows" "$@" >>"$T/$name.log" 2>&1 &
	SPID=$!
	if ! wait_until 20 grep -q "listening on" "$T/$name.log"; then
		echo "sched_start: $name did not start; its log:" >&2
		tail -20 "$T/$name.log" >&2
		return 1
	fi
	S="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$T/$name.log" | head -1)"
}

# api_state JOB: the "state":"..." of GET $S/v1/jobs/JOB; api_is JOB
# WANT: it is WANT.
api_state() {
	curl -s "$S/v1/jobs/$1" | grep -oE '"state":"[a-z]+"' | head -1
}
api_is() { [ "$(api_state "$1")" = "$2" ]; }

# sse_ended FILE JOB: FILE (a /v1/events stream) has JOB's terminal event.
sse_ended() {
	grep -F "\"job\":\"$2\"" "$1" |
		grep -qE '"type":"(succeeded|failed|canceled)"'
}

# stop PID...: SIGTERM, then SIGKILL after 10 s; waits until gone.
stop() {
	local p
	for p in "$@"; do
		kill "$p" 2>/dev/null
		wait_until 10 sh -c "! kill -0 $p" || kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	return 0
}

state() { RC HGET "${P}job:$1" state; }
field() { RC HGET "${P}job:$1" "$2"; }
is_state() { [ "$(state "$1")" = "$2" ]; }
terminal() { case "$(state "$1")" in succeeded|failed|canceled) return 0;; esac; return 1; }

# events JOB TYPE: how many events of TYPE the job has.
events() {
	CQ events --from 0-0 --job "$1" --json | grep -c "\"type\":\"$2\""
}

# await JOB STATE SECONDS: waits for a terminal state and checks it.
await() {
	if ! wait_until "$3" terminal "$1"; then
		bad "job $1: not ended within $3 s (state $(state "$1"))"
		return 1
	fi
	eq "job $1 state" "$(state "$1")" "$2"
}

# png_size FILE: "WIDTHxHEIGHT" from the PNG header.
png_size() {
	od -An -tu1 -j16 -N8 "$1" | awk '{ printf "%dx%d", \
		$1*16777216 + $2*65536 + $3*256 + $4, \
		$5*16777216 + $6*65536 + $7*256 + $8 }'
}
