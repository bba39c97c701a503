#!/usr/bin/env bash
# The benchmark harness keeps working: bench/run.sh in its quick mode
# (BENCH_QUICK=1: one run of tiny sizes, with the bench_e2e of this build,
# BullMQ only where bench/anchors/node_modules is installed) runs every
# measure, prints the table and the targets, and writes a results file
# that holds every comfyq figure, each with the facts that must hold
# whatever the machine: the sim saw the jobs, 2 slots hide the gap that 1
# slot leaves, functions run more commands than clients send, the loads
# are between one per sim and one per job. The committed results
# (bench/results.json, bench/README.md) are left alone, and a quick run
# without BENCH_OUT is refused.
#   bench.sh BENCH_E2E
set -u
E2E=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/lib/check.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
OUT=$tmp/results.json

sums() { cat "$ROOT/bench/README.md" "$ROOT/bench/results.json" 2>/dev/null | cksum; }
before=$(sums)
check "quick run" 0 env BENCH_QUICK=1 BENCH_OUT="$OUT" BENCH_E2E="$E2E" \
	"$ROOT/bench/run.sh"
cp "$tmp/out" "$tmp/table"
hasf "table" "enqueue -> POST /prompt (BullMQ: handler starts) p50"
hasf "table" "kill -9 -> claimed again, short leases (2 s), ms"
hasf "targets" "targets (issue 14)"
has "targets" "socket round trips/job <= 2 +(met|NOT met) +comfyq [0-9.]+"
has "model-aware" "model-aware makespan <= 0.6x FIFO +(not built|met|NOT met)"
eq "committed results untouched" "$(sums)" "$before"

num() { jq -r ".comfyq.$1.median // \"missing\"" "$OUT"; }
# every comfyq figure is there and positive
for k in dispatch_p50_us dispatch_p99_us terminal_p50_us terminal_p99_us \
	gap1_us gap2_us tp1_jobs_s tp1_worker_cpu_us tp1_sim_cpu_us \
	tp1_redis_cpu_us tpbest_jobs_s redis_cmds enqueue_cmds \
	redis_cmds_client redis_cmds_inside redis_round_trips redis_cpu_us \
	fleet_jobs_s rss_idle_kb rss_load_kb cancel_p50_us reclaim_short_ms \
	fifo_makespan_ms fifo_loads; do
	v=$(num "$k")
	if awk -v v="$v" 'BEGIN { exit !(v + 0 > 0) }'; then ok; else
		bad "results: comfyq $k is $v, want a positive number"
	fi
done
gt() {	# gt NAME A B: A > B
	if awk -v a="$2" -v b="$3" 'BEGIN { exit !(a + 0 > b + 0) }'; then ok
	else bad "$1: $2 is not above $3"; fi
}
gt "terminal after POST /prompt" "$(num terminal_p50_us)" "$(num dispatch_p50_us)"
gt "1 slot leaves a gap 2 slots hide" "$(num gap1_us)" "$(num gap2_us)"
gt "functions run more than clients send" "$(num redis_cmds_inside)" \
	"$(num redis_cmds_client)"
gt "every job is at least a claim and a complete" "$(num redis_cmds)" 2
gt "the enqueue is part of it" "$(num redis_cmds)" "$(num enqueue_cmds)"
gt "a round trip a job at least" "$(num redis_round_trips)" 0.99
gt "the worker runs idle in megabytes" "$(num rss_idle_kb)" 1024
loads=$(num fifo_loads)
if awk -v v="$loads" 'BEGIN { exit !(v >= 2 && v <= 6) }'; then ok; else
	bad "FIFO loads $loads: want one per sim (2) to one per job (6)"
fi
eq "model-aware" "$(jq -r '.model_aware' "$OUT")" \
	"$(if "$(dirname "$E2E")/comfyq-worker" --help | grep -q '^  --model-aware '; then
		echo built; else echo "not built"; fi)"
eq "one run" "$(jq -r '.runs' "$OUT")" 1
eq "the machine" "$(jq -r '.machine.nproc' "$OUT")" "$(nproc)"
if [ -d "$ROOT/bench/anchors/node_modules/bullmq" ]; then
	eq "BullMQ ran" "$(jq -r '.bullmq.redis_cmds.median > 0' "$OUT")" true
	eq "a ratio" "$(jq -r '.ratios.redis_cmds > 0' "$OUT")" true
fi

check "quick without BENCH_OUT" 2 env -u BENCH_OUT BENCH_QUICK=1 \
	BENCH_E2E="$E2E" "$ROOT/bench/run.sh"
hasf "quick without BENCH_OUT" "BENCH_QUICK=1 needs BENCH_OUT"
finish
