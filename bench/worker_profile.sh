#!/usr/bin/env bash
# worker_profile.sh BIN_DIR MODE [JOBS]   (run under tests/lib/with-redis.sh)
# The worker's own work per no-op job (smoke_invert 8x8 through comfyq-sim,
# outputs on tmpfs where /dev/shm is writable), one job after another as a
# full queue gives them. MODE:
#   cpu        utime+stime of the worker over JOBS jobs, per job (us)
#   callgrind  the worker under valgrind --tool=callgrind; counters zeroed
#              after a warm-up of 50 jobs and dumped after JOBS more, so
#              start-up is not in them: Ir per job, and the profile's top
#              entries (callgrind_annotate --inclusive=no) in OUT_DIR
#   perf       perf record -g of the worker over JOBS jobs (perf report
#              --no-children -i OUT_DIR/perf.data)
#   strace     strace -c -f of the worker over JOBS jobs: system calls per
#              job, by name (OUT_DIR/strace.txt)
# Extra worker options go in WORKER_ARGS (e.g. "--output-fsync true"),
# another worker binary in WORKER_BIN (to compare two builds);
# results and logs in OUT_DIR (default: a fresh folder, printed).
set -u
BIN=$1 MODE=$2 JOBS=${3:-1000}
WARM=50
ROOT=$(cd "$(dirname "$0")/.." && pwd)
base=/tmp
[ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
T=$(mktemp -d "${TMPDIR:-$base}/worker_profile.XXXXXX")
OUT_DIR=${OUT_DIR:-$T}
Q=prof P="cq:{prof}:"
RC() { redis-cli -u "$COMFYQ_TEST_REDIS_URL" "$@"; }
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T/out" "$T/sim"
	[ "$OUT_DIR" != "$T" ] && rm -rf "$T"	# the logs went with it
}
trap cleanup EXIT
done_n() { RC ZCARD "${P}done" 2>/dev/null || echo 0; }
enqueue() {	# enqueue N: N jobs in one pipeline
	local i spec='{"workflow":"smoke_invert","params":{"width":8,"height":8}}'
	for ((i = 0; i < $1; i++)); do
		printf "FCALL comfyq_enqueue 1 %s '%s'\n" "$P" "$spec"
	done | RC >/dev/null
}
wait_done() {	# wait_done N: until N jobs are done
	local t=0
	while [ "$(done_n)" -lt "$1" ]; do
		sleep 0.05
		t=$((t + 1))
		[ $t -gt 12000 ] && { echo "stuck at $(done_n) of $1" >&2; exit 1; }
	done
}
cpu_us() {	# utime+stime of a pid, in us
	awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) * 1e6 / hz }' \
		"/proc/$1/stat"
}

"$BIN/comfyq" --redis "$COMFYQ_TEST_REDIS_URL" --queue $Q init >/dev/null
"$BIN/comfyq-sim" --port 0 --port-file "$T/sim.port" --base-directory \
	"$T/sim" --step-ms 0 --model-load-ms 0 --log-level warning \
	>"$T/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do [ -s "$T/sim.port" ] && break; sleep 0.05; done
wrap=()
case "$MODE" in
cpu) ;;
callgrind) wrap=(valgrind --tool=callgrind --callgrind-out-file="$OUT_DIR/callgrind.out.%p"
	--collect-atstart=yes) ;;
perf | strace) ;;
*) echo "mode: cpu, callgrind, perf or strace" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086
"${wrap[@]}" "${WORKER_BIN:-$BIN/comfyq-worker}" --redis-url "$COMFYQ_TEST_REDIS_URL" \
	--queue $Q --comfyui-url "http://127.0.0.1:$(cat "$T/sim.port")" \
	--worker-id prof-w --output-dir "$T/out" \
	--workflows-dir "$ROOT/workflows" --output-fsync false \
	--log-level warning ${WORKER_ARGS:-} >"$T/worker.log" 2>&1 &
W=$!
pids+=($W)
enqueue $WARM
wait_done $WARM
# traced CMD...: the jobs run while CMD (a tracer attached to the worker)
# records; SIGINT ends it, which writes what it recorded.
traced() {
	"$@" >/dev/null 2>&1 &
	local tp=$!
	sleep 0.5
	enqueue "$JOBS"
	wait_done $((WARM + JOBS))
	kill -INT $tp
	wait $tp 2>/dev/null || true
}
case "$MODE" in
cpu)
	c0=$(cpu_us $W)
	enqueue "$JOBS"
	wait_done $((WARM + JOBS))
	c1=$(cpu_us $W)
	echo "worker CPU per job: $(awk -v a="$c0" -v b="$c1" -v n="$JOBS" \
		'BEGIN { printf "%.1f", (b - a) / n }') us ($JOBS jobs)"
	;;
callgrind)
	callgrind_control -z $W >/dev/null
	enqueue "$JOBS"
	wait_done $((WARM + JOBS))
	callgrind_control -d $W >/dev/null
	sleep 1
	f="$OUT_DIR/callgrind.out.$W.1"	# the dump; .$W is what came after
	ir=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
	echo "worker Ir per job: $((ir / JOBS)) ($JOBS jobs; profile $f)"
	callgrind_annotate --inclusive=no "$f" 2>/dev/null | sed -n '/Ir .*file:function/,$p' |
		head -40 >"$OUT_DIR/top-self.txt"
	callgrind_annotate --inclusive=yes "$f" 2>/dev/null | sed -n '/Ir .*file:function/,$p' |
		head -60 >"$OUT_DIR/top-inclusive.txt"
	echo "top entries: $OUT_DIR/top-self.txt, $OUT_DIR/top-inclusive.txt"
	;;
perf)
	traced perf record -g -o "$OUT_DIR/perf.data" -p $W
	perf report --no-children -i "$OUT_DIR/perf.data" --stdio 2>/dev/null |
		grep -v '^$' | head -80 >"$OUT_DIR/perf-top.txt"
	echo "perf: $OUT_DIR/perf-top.txt"
	;;
strace)
	traced strace -c -f -o "$OUT_DIR/strace.txt" -p $W
	awk -v n="$JOBS" '$NF == "total" { printf "system calls per job: %.1f\n", $(NF-2) / n }' \
		"$OUT_DIR/strace.txt"
	echo "by name: $OUT_DIR/strace.txt"
	;;
esac
