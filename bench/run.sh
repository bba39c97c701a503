#!/usr/bin/env bash
# bench/run.sh: comfyq against BullMQ on this machine, side by side in one
# run (bench/README.md says what each figure is). It installs what is
# missing (the Debian packages of tests/run.sh, Node and npm for the
# anchor), builds a Release tree of its own (build-bench, never the tests'
# build), installs BullMQ from the npm registry into bench/anchors (npm ci:
# package-lock.json pins it), starts a private redis-server, then runs
# bench_e2e (comfyq through comfyq-sim) and bench/anchors/bullmq.js in
# turn, BENCH_RUNS times each, then the default-lease reclaim of both at
# once (it is mostly waiting), and prints one table of median (min-max)
# with the ratios comfyq/BullMQ and the issue's targets
# (bench/report.py). It writes BENCH_OUT (bench/results.json) and puts the
# markdown table into bench/README.md (BENCH_README=0: not).
# Environment (defaults; BENCH_QUICK=1 gives the small ones in brackets):
#   BENCH_RUNS 3 [1]            runs of each system
#   BENCH_SAMPLES 500 [20]      latency samples, one job at a time
#   BENCH_JOBS 20000 [200]      throughput jobs per configuration
#   BENCH_MONITOR_JOBS 1000 [100] jobs of the MONITOR run (command split)
#   BENCH_GAP_JOBS 40 [6]       jobs per idle-gap configuration
#   BENCH_CANCEL_RUNS 5 [1]     cancels of a running job
#   BENCH_RECLAIM_RUNS 3 [1]    kill -9 with short leases
#   BENCH_MIX_JOBS 90 [6]       jobs of the model-aware workload
#   BENCH_DEFAULT_LEASE 1 [0]   also kill -9 with default leases (one each)
#   BENCH_BEST_SLOTS 1, BENCH_BEST_WORKERS 1     comfyq's best configuration
#                               (1 and 1: the 1-worker run, not run again)
#   BENCH_BULLMQ_CONCURRENCY 64, BENCH_BULLMQ_PROCS 1   BullMQ's
#   BENCH_BULLMQ auto           1: run BullMQ (installing it), 0: skip it;
#                               auto: run it, but in quick mode only when
#                               bench/anchors/node_modules is there already
#   BENCH_E2E                   a bench_e2e to use instead of building one
#                               (the smoke test passes the ASan build's)
#   BENCH_OUT bench/results.json [required]   the results file
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
quick=${BENCH_QUICK:-0}
q() { if [ "$quick" = 1 ]; then echo "$2"; else echo "$1"; fi; }
runs=${BENCH_RUNS:-$(q 3 1)}
sizes=(--samples "${BENCH_SAMPLES:-$(q 500 20)}"
	--jobs "${BENCH_JOBS:-$(q 20000 200)}"
	--monitor-jobs "${BENCH_MONITOR_JOBS:-$(q 1000 100)}"
	--gap-jobs "${BENCH_GAP_JOBS:-$(q 40 6)}"
	--cancel-runs "${BENCH_CANCEL_RUNS:-$(q 5 1)}"
	--reclaim-runs "${BENCH_RECLAIM_RUNS:-$(q 3 1)}")
csizes=("${sizes[@]}" --mix-jobs "${BENCH_MIX_JOBS:-$(q 90 6)}"
	--best-slots "${BENCH_BEST_SLOTS:-1}"
	--best-workers "${BENCH_BEST_WORKERS:-1}")
bsizes=("${sizes[@]}" --best-concurrency "${BENCH_BULLMQ_CONCURRENCY:-64}"
	--best-procs "${BENCH_BULLMQ_PROCS:-1}")
default_lease=${BENCH_DEFAULT_LEASE:-$(q 1 0)}
if [ "$quick" = 1 ] && [ -z "${BENCH_OUT:-}" ]; then
	echo "bench/run.sh: BENCH_QUICK=1 needs BENCH_OUT (the results of a" \
		"quick run are no results)" >&2
	exit 2
fi
out=${BENCH_OUT:-$root/bench/results.json}
readme=$root/bench/README.md
[ "$quick" = 1 ] || [ "${BENCH_README:-1}" = 0 ] && readme=

bullmq=${BENCH_BULLMQ:-auto}
if [ "$bullmq" = auto ]; then
	bullmq=1
	[ "$quick" = 1 ] && [ ! -d bench/anchors/node_modules/bullmq ] && bullmq=0
fi

. "$root/deploy/lib/packages.sh"
. "$root/deploy/lib/deps.sh"
if [ -z "${BENCH_E2E:-}" ]; then
	# shellcheck disable=SC2086
	deps_install $PKGS_BUILD $PKGS_RUN $PKGS_TEST
fi
if [ "$bullmq" = 1 ] && { ! command -v node >/dev/null ||
	! command -v npm >/dev/null; }; then
	# shellcheck disable=SC2086
	deps_install $PKGS_EXAMPLES_NODE
fi

t_start=$(date +%s)
e2e=${BENCH_E2E:-}
if [ -z "$e2e" ]; then
	build=${BENCH_BUILD_DIR:-build-bench}
	mkdir -p "$build"
	blog=$build/bench-build.log
	cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DASAN=OFF \
		-DUBSAN=OFF >"$blog" 2>&1 || { tail -20 "$blog"; exit 1; }
	cmake --build "$build" -j "$(nproc)" --target bench_e2e >>"$blog" 2>&1 ||
		{ tail -40 "$blog"; exit 1; }
	e2e=$root/$build/bin/bench_e2e
	echo "bench/run.sh: built $build in $(($(date +%s) - t_start)) s"
fi
if [ "$bullmq" = 1 ]; then
	lock=bench/anchors/package-lock.json
	if [ ! -f bench/anchors/node_modules/.package-lock.json ] ||
		[ "$lock" -nt bench/anchors/node_modules/.package-lock.json ]; then
		(cd bench/anchors && npm ci --no-audit --no-fund --loglevel=error)
	fi
fi

. "$root/deploy/lib/redis.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-bench.XXXXXX")
# The programs' files (outputs, the sims' files, logs) on tmpfs where
# /dev/shm is writable and TMPDIR is not set: a throughput run writes tens
# of thousands of small files, and on a disk's file system their inodes
# would cost more than the queue (bench/README.md, Worker CPU per job).
files=$work
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	files=$(mktemp -d /dev/shm/comfyq-bench.XXXXXX)
fi
cleanup() { redis_stop; rm -rf "$work" "$files"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
redis_start "$work"
export COMFYQ_TEST_REDIS_URL=$REDIS_URL
export TMPDIR=$files

node_v=-
bull_v=-
if [ "$bullmq" = 1 ]; then
	node_v=$(node --version)
	bull_v=$(cd bench/anchors && node -p 'require("bullmq/package.json").version')
fi
cat >"$work/machine.json" <<EOF
{"date": "$(date -u +%Y-%m-%dT%H:%MZ)", "nproc": $(nproc),
 "cpu": "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)",
 "kernel": "$(uname -r)",
 "redis": "$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')",
 "node": "$node_v", "bullmq": "$bull_v",
 "commit": "$(git describe --always --dirty 2>/dev/null || echo unknown)",
 "quick": $quick}
EOF

flush() { redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null; }
cfiles=() bfiles=() once=()
for r in $(seq 1 "$runs"); do
	echo "bench/run.sh: run $r of $runs: comfyq ($(($(date +%s) - t_start)) s)"
	"$e2e" --out "$work/comfyq-$r.json" "${csizes[@]}"
	cfiles+=("$work/comfyq-$r.json")
	flush
	if [ "$bullmq" = 1 ]; then
		echo "bench/run.sh: run $r of $runs: BullMQ ($(($(date +%s) - t_start)) s)"
		node bench/anchors/bullmq.js --redis "$REDIS_URL" \
			--out "$work/bullmq-$r.json" "${bsizes[@]}"
		bfiles+=("$work/bullmq-$r.json")
		flush
	fi
done
if [ "$default_lease" = 1 ]; then
	echo "bench/run.sh: kill -9 with default leases, both at once ($(($(date +%s) - t_start)) s)"
	"$e2e" --out "$work/comfyq-dl.json" --measures reclaim_default &
	cpid=$!
	bpid=
	if [ "$bullmq" = 1 ]; then
		node bench/anchors/bullmq.js --redis "$REDIS_URL" \
			--out "$work/bullmq-dl.json" --measures reclaim_default &
		bpid=$!
	fi
	wait "$cpid"
	once+=(--comfyq-once "$work/comfyq-dl.json")
	if [ -n "$bpid" ]; then
		wait "$bpid"
		once+=(--bullmq-once "$work/bullmq-dl.json")
	fi
fi
echo "bench/run.sh: done in $(($(date +%s) - t_start)) s"
echo
args=(--machine "$work/machine.json" --out "$out" --comfyq "${cfiles[@]}"
	--seconds "$(($(date +%s) - t_start))")
[ -n "$readme" ] && args+=(--readme "$readme")
[ ${#bfiles[@]} -gt 0 ] && args+=(--bullmq "${bfiles[@]}")
python3 bench/report.py "${args[@]}" "${once[@]}"
