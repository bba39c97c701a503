#!/usr/bin/env bash
# Redis Cluster end to end: three masters on loopback made with
# `redis-cli --cluster create`, two queues whose slots are on different
# nodes, a worker, a sim (failing some jobs) and a janitor per queue, and
# the CLI, all on one redis+cluster:// URL of seeds that do not hold the
# queues; then each queue's slot moved to another node while its jobs
# run: queue B's by hand (CLUSTER SETSLOT IMPORTING/MIGRATING, held a
# while, then MIGRATE and SETSLOT NODE), queue A's with
# `redis-cli --cluster reshard`.
#   cluster.sh BIN_DIR
# Checks: the programs reach the node of their queue's slot through MOVED
# and load the library there (and nowhere else); while a slot is
# migrating its calls wait (ASK) and the other queue's go on; after each
# move the worker, the janitor, B's scheduler (its event stream too) and
# the CLI follow to the new node; every job ends, with exactly
# one terminal event and, for a failure, exactly one refund entry; the
# queues' keys are all on their new nodes.
set -u
BIN=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-cluster.XXXXXX")
. "$ROOT/tests/lib/check.sh"
N1=$(free_port) N2=$(free_port) N3=$(free_port)
URL="redis+cluster://127.0.0.1:$N3,127.0.0.1:$N1"
export COMFYQ_TEST_REDIS_URL=$URL
. "$ROOT/tests/lib/stack.sh"
tmp=$T/check # check's output; $T/out is the workers' output-dir
mkdir -p "$tmp"
. "$ROOT/tests/lib/ha.sh"

trap ha_cleanup EXIT

for p in $N1 $N2 $N3; do
	d=$T/node$p
	mkdir -p "$d"
	cat >"$d/conf" <<CONF
port $p
cluster-port $(free_port)
bind 127.0.0.1
cluster-enabled yes
cluster-config-file $d/nodes.conf
cluster-node-timeout 5000
dir $d
pidfile $d/pid
logfile $d/log
save ""
appendonly no
daemonize yes
CONF
	redis-server "$d/conf"
	wait_until 10 redis-cli -p "$p" ping || { bad "node $p did not start"; exit 1; }
	SRV_PIDS+=("$(cat "$d/pid")")
done
check "cluster create" 0 redis-cli --cluster create 127.0.0.1:$N1 \
	127.0.0.1:$N2 127.0.0.1:$N3 --cluster-yes
state_ok() {
	local p
	for p in $N1 $N2 $N3; do
		redis-cli -p "$p" CLUSTER INFO | grep -q 'cluster_state:ok' || return 1
	done
}
wait_until 20 state_ok || bad "the cluster did not come up"
id() { redis-cli -p "$1" CLUSTER MYID; }
ID1=$(id "$N1") ID2=$(id "$N2") ID3=$(id "$N3")

# Queue names by their slot (CRC16 of the hash tag, as Redis computes it):
# A on slot 0, the first one `--cluster reshard` moves off node 1; B on
# one of node 2's. Redis's own CLUSTER KEYSLOT confirms each.
name_in() {
	python3 - "$1" "$2" "$3" <<'PY'
import sys
def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc
pre, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n = 0
while not lo <= crc16(("%s%d" % (pre, n)).encode()) % 16384 <= hi:
    n += 1
print("%s%d" % (pre, n))
PY
}
slot_of() { redis-cli -p "$N1" CLUSTER KEYSLOT "cq:{$1}:"; }
owner() { redis-cli -p "$N1" CLUSTER SHARDS | awk -v s="$1" '
	$0 == "slots" { getline lo; getline hi; mine = (s >= lo && s <= hi) }
	$0 == "port" && mine { getline; print; exit }'; }
QA=$(name_in qa 0 0)
QB=$(name_in qb 5461 10922)
SA=$(slot_of "$QA") SB=$(slot_of "$QB")
eq "queue A's slot" "$SA" 0
eq "queue A on node 1" "$(owner "$SA")" "$N1"
eq "queue B on node 2" "$(owner "$SB")" "$N2"
PA="cq:{$QA}:" PB="cq:{$QB}:"
# RQ Q ARGS: redis-cli to the node that holds queue Q (A or B) now.
RQ() {
	local q=$1
	shift
	redis-cli -p "$(owner "$(eval echo "\$S$q")")" "$@"
}

# --- through MOVED to the queue's node -----------------------------------
check "init for queue B" 0 CQ --queue "$QB" init
hasf "init" "loaded the comfyq functions library"
eq "library on B's node" "$(redis-cli -p "$N2" FCALL_RO comfyq_version 0)" "$LIBV"
eq "none on the seed" "$(redis-cli -p "$N3" FUNCTION LIST | grep -c comfyq)" 0
check "a cluster URL with a db" 3 "$BIN/comfyq" \
	--redis "redis+cluster://127.0.0.1:$N1/2" stats
hasf "db 0 only" "a Redis Cluster has db 0 only"

FAULTS='{"seed":11,"execution_error":{"p":0.25,"node":"KSampler","exception_type":"RuntimeError","message":"boom"}}'
for q in A B; do
	eval "Q=\$Q$q"
	SIM_PORT=0 sim_start "sim$q" --step-ms 40 --model-load-ms 0 \
		--faults "$FAULTS" || exit 1
	PIDS+=("$SIM_PID")
	worker_start "w$q" --lease-ms 60000
	PIDS+=("$WPID")
	"$BIN/comfyq-janitor" --redis-url "$URL" --queue "$Q" --tick-ms 200 \
		--log-level verbose >>"$T/j$q.log" 2>&1 &
	PIDS+=("$!")
done
Q=$QB
sched_start schedB || exit 1
PIDS+=("$SPID")
wait_until 20 curl -sf "$S/readyz" || bad "B's scheduler is not ready"
curl -sN "$S/v1/events" >"$T/sseB.txt" 2>&1 &
PIDS+=("$!")
jobsA=() jobsB=()
# more Q N: N more jobs on queue Q (A or B).
more() {
	local i j
	for i in $(seq 1 "$2"); do
		j=$(CQ --queue "$(eval echo "\$Q$1")" submit --workflow sdxl_txt2img \
			--param prompt="fox $i" --param steps=5 --max-attempts 1) ||
			{ bad "submit to $1: $j"; continue; }
		eval "jobs$1+=(\"\$j\")"
	done
}
more A 10
more B 15
# ended Q: how many of queue Q's jobs are terminal.
ended() {
	local p j
	eval "p=\$P$1"
	eval "for j in \"\${jobs$1[@]}\"; do echo \"HGET \${p}job:\$j state\"; done" |
		RQ "$1" | grep -cxE 'succeeded|failed|canceled'
}
some_ended() { [ "$(ended "$1")" -ge "$2" ]; }
wait_until 30 some_ended A 2 && wait_until 30 some_ended B 2 ||
	bad "the jobs did not start"
grep -q "moving there" "$T/wB.log" && ok || bad "wB did not follow a MOVED at start"

# --- queue B's slot migrates by hand, held a while ------------------------
more A 12 # work for A meanwhile
check "B importing on node 3" 0 redis-cli -p "$N3" CLUSTER SETSLOT "$SB" IMPORTING "$ID2"
check "B migrating on node 2" 0 redis-cli -p "$N2" CLUSTER SETSLOT "$SB" MIGRATING "$ID3"
a0=$(ended A) b0=$(ended B)
# A submission meanwhile waits for the migration to end (ASK), then lands.
CQ --queue "$QB" submit --workflow sdxl_txt2img --param prompt="during" \
	--param steps=5 --max-attempts 1 >"$T/during.out" 2>&1 &
during=$!
sleep 2
a1=$(ended A) b1=$(ended B)
kill -0 "$during" 2>/dev/null && ok || bad "a submission went through mid-migration: $(cat "$T/during.out")"
[ "$a1" -gt "$a0" ] && ok || bad "queue A stopped while B's slot migrated ($a0 -> $a1)"
[ "$b1" -le $((b0 + 2)) ] && ok || bad "queue B ran on while its slot migrated ($b0 -> $b1)"
grep -qE "ASK $SB 127.0.0.1:$N3" "$T/wB.log" && ok || bad "wB was not told ASK"
while keys=$(redis-cli -p "$N2" CLUSTER GETKEYSINSLOT "$SB" 100) && [ -n "$keys" ]; do
	# shellcheck disable=SC2086
	redis-cli -p "$N2" MIGRATE 127.0.0.1 "$N3" "" 0 5000 KEYS $keys >"$tmp/out" 2>&1 ||
		{ bad "MIGRATE: $(cat "$tmp/out")"; break; }
done
for p in $N3 $N2 $N1; do
	check "B's slot to node 3 ($p)" 0 redis-cli -p "$p" CLUSTER SETSLOT "$SB" NODE "$ID3"
done
if wait "$during"; then
	jobsB+=("$(cat "$T/during.out")")
	eq "the waiting submission on node 3" \
		"$(redis-cli -p "$N3" EXISTS "${PB}job:$(cat "$T/during.out")")" 1
else
	bad "the submission made mid-migration failed: $(cat "$T/during.out")"
fi
more B 4

# --- queue A's slot moves with redis-cli --cluster reshard ----------------
agreed() { redis-cli --cluster check 127.0.0.1:$N1 >"$tmp/check" 2>&1; }
wait_until 20 agreed || bad "the nodes do not agree: $(tail -3 "$tmp/check")"
more A 5
check "reshard A's slot to node 2" 0 redis-cli --cluster reshard 127.0.0.1:$N1 \
	--cluster-from "$ID1" --cluster-to "$ID2" --cluster-slots 1 --cluster-yes
eq "queue A on node 2" "$(owner "$SA")" "$N2"
eq "queue B on node 3" "$(owner "$SB")" "$N3"
more A 5

all_ended() {
	[ "$(ended A)" = "${#jobsA[@]}" ] && [ "$(ended B)" = "${#jobsB[@]}" ]
}
wait_until 90 all_ended || bad "not all ended: A $(ended A)/${#jobsA[@]}, B $(ended B)/${#jobsB[@]}"

# --- exactly once, and everything on the new nodes -------------------------
for q in A B; do
	eval "p=\$P$q"
	RQ "$q" XRANGE "${p}events" - + >"$T/events$q.txt"
	RQ "$q" XRANGE "${p}refunds" - + >"$T/refunds$q.txt"
done
for q in A B; do
	eval "p=\$P$q; list=(\"\${jobs$q[@]}\")"
	nfail=0
	for j in "${list[@]}"; do
		s=$(RQ "$q" HGET "${p}job:$j" state)
		eq "$q job $j: terminal events" "$(xr_ends "$T/events$q.txt" "$j")" 1
		if [ "$s" = succeeded ]; then
			eq "$q job $j: no refund" "$(xr_refunds "$T/refunds$q.txt" "$j")" 0
		else
			nfail=$((nfail + 1))
			eq "$q job $j ($s): one refund" "$(xr_refunds "$T/refunds$q.txt" "$j")" 1
		fi
	done
	[ "$nfail" -gt 0 ] && [ "$nfail" -lt "${#list[@]}" ] && ok ||
		bad "queue $q: want successes and failures, $nfail of ${#list[@]} failed"
	eq "queue $q: refund entries" "$(RQ "$q" XLEN "${p}refunds")" "$nfail"
done
# B's scheduler followed its slot too: its event reader and its calls.
for j in "${jobsB[@]:15}"; do
	wait_until 10 sse_ended "$T/sseB.txt" "$j" && ok ||
		bad "B job $j: no terminal event on the scheduler's /v1/events"
done
# (A connection learns of a move from its next reply: a request that
# meets it gets 503, and the client asks again.)
last=${jobsB[${#jobsB[@]} - 1]}
want="\"state\":\"$(RQ B HGET "${PB}job:$last" state)\""
wait_until 10 api_is "$last" "$want" && ok ||
	bad "B's scheduler does not read B's new node: $(api_state "$last")"
eq "A's keys left on node 1" "$(redis-cli -p "$N1" CLUSTER COUNTKEYSINSLOT "$SA")" 0
eq "B's keys left on node 2" "$(redis-cli -p "$N2" CLUSTER COUNTKEYSINSLOT "$SB")" 0
[ "$(redis-cli -p "$N2" CLUSTER COUNTKEYSINSLOT "$SA")" -gt 10 ] && ok ||
	bad "A's keys are not on node 2"
# later PORT KEY FIELD THAN: node PORT's KEY FIELD is past THAN.
later() { [ "$(redis-cli -p "$1" HGET "$2" "$3")" -gt "${4:-0}" ]; }
for q in A:$N2 B:$N3; do
	port=${q#*:} q=${q%%:*}
	eval "p=\$P$q"
	grep -qE "MOVED [0-9]+ 127.0.0.1:$port( \(was [^)]*\))?: moving there" "$T/w$q.log" &&
		ok || bad "w$q did not follow its slot to $port"
	b=$(redis-cli -p "$port" HGET "${p}worker:w$q" last_beat_ms)
	wait_until 10 later "$port" "${p}worker:w$q" last_beat_ms "$b" && ok ||
		bad "w$q does not heartbeat on node $port"
	r=$(redis-cli -p "$port" HGET "${p}reaper" last_ms)
	wait_until 10 later "$port" "${p}reaper" last_ms "$r" && ok ||
		bad "queue $q's janitor does not reap on node $port"
	eq "queue $q: library on its new node" \
		"$(redis-cli -p "$port" FCALL_RO comfyq_version 0)" "$LIBV"
done
check "the CLI on A's new node" 0 CQ --queue "$QA" submit --workflow smoke_invert \
	--param width=64 --param height=64 --wait
finish
