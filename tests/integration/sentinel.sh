#!/usr/bin/env bash
# Redis Sentinel end to end: a master, one replica and three sentinels on
# loopback (redis-server --sentinel), two workers, a janitor and the CLI on
# a redis+sentinel:// URL, comfyq-sim failing some of the jobs; SENTINEL
# FAILOVER while the workers run them.
#   sentinel.sh BIN_DIR
# Checks: the programs find the master through the sentinels (a dead first
# sentinel is passed over; a wrong master name or sentinel password is
# refused with the sentinels' reasons, exit 3); after the failover every
# job submitted before and after it is terminal, with exactly one terminal
# event and, for a failure or a cancel, exactly one refund entry (and none
# for a success); the old master is a replica now, and the workers, the
# janitor, the scheduler (its event stream too) and the CLI use the new
# one; no password reaches a log. Both servers run with
# min-replicas-to-write 1, as README asks for exactly once across a
# failover.
set -u
BIN=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-sentinel.XXXXXX")
. "$ROOT/tests/lib/check.sh"
MPORT=$(free_port)
REPL=$(free_port)
SPORTS="$(free_port) $(free_port) $(free_port)"
DEAD=$(free_port) # a sentinel that is not there, listed first
S1=${SPORTS%% *}
MPW=master-secret SPW=sentinel-secret
HOSTS=127.0.0.1:$DEAD
for p in $SPORTS; do HOSTS="$HOSTS,127.0.0.1:$p"; done
# sentinel URL [NAME [SENTINEL-PASSWORD]]
surl() { echo "redis+sentinel://:$MPW@$HOSTS/${1:-mymaster}?sentinel-password=${2:-$SPW}"; }
URL=$(surl)
export COMFYQ_TEST_REDIS_URL=$URL
. "$ROOT/tests/lib/stack.sh"
tmp=$T/check # check's output; $T/out is the workers' output-dir
mkdir -p "$tmp"
. "$ROOT/tests/lib/ha.sh"

# server NAME PORT [CONFIG LINES...]: a redis-server (or, with
# "sentinel" as NAME's prefix, a sentinel) with its files in $T/NAME.
server() {
	local name=$1 port=$2 d=$T/$1 line
	shift 2
	mkdir -p "$d"
	{
		echo "port $port"
		echo "bind 127.0.0.1"
		echo "dir $d"
		echo "pidfile $d/pid"
		echo "logfile $d/log"
		echo 'save ""'
		echo "appendonly no"
		for line in "$@"; do echo "$line"; done
	} >"$d/conf"
	case "$name" in
	sentinel*) redis-server "$d/conf" --sentinel --daemonize yes ;;
	*) redis-server "$d/conf" --daemonize yes ;;
	esac
	wait_until 10 sh -c "redis-cli -p $port ping 2>&1 | grep -qE 'PONG|NOAUTH'" || {
		bad "$name did not start: $(tail -5 "$d/log")"
		exit 1
	}
	SRV_PIDS+=("$(cat "$d/pid")")
}

trap ha_cleanup EXIT

# Passwords everywhere: the servers' in the URL, the sentinels' as
# sentinel-password.
HA="min-replicas-to-write 1
min-replicas-max-lag 5
requirepass $MPW
masterauth $MPW"
server master "$MPORT" "$HA"
server replica "$REPL" "$HA" "replicaof 127.0.0.1 $MPORT"
for p in $SPORTS; do
	server "sentinel$p" "$p" "requirepass $SPW" \
		"sentinel monitor mymaster 127.0.0.1 $MPORT 2" \
		"sentinel auth-pass mymaster $MPW" \
		"sentinel down-after-milliseconds mymaster 2000" \
		"sentinel failover-timeout mymaster 20000"
done
# RS ARGS: the first sentinel; RP PORT ARGS: a server.
RS() { REDISCLI_AUTH=$SPW redis-cli -p "$S1" "$@"; }
RP() {
	local port=$1
	shift
	REDISCLI_AUTH=$MPW redis-cli -p "$port" "$@"
}

# master: the port the sentinels name now.
master() { RS SENTINEL get-master-addr-by-name mymaster | tail -1; }
linked() { RP "$REPL" INFO replication | grep -q 'master_link_status:up'; }
sentinels_see() {
	[ "$(RS SENTINEL master mymaster |
		awk 'p { print; exit } $0 == "num-other-sentinels" { p = 1 }')" = 2 ] &&
		[ "$(RS SENTINEL replicas mymaster | grep -c '^ip$')" = 1 ]
}
wait_until 20 linked || bad "the replica did not sync"
wait_until 30 sentinels_see || bad "the sentinels did not find each other and the replica"

RC() { RP "$(master)" "$@"; }

# --- discovery and its errors ------------------------------------------
check "init through the sentinels" 0 CQ init
hasf "init" "loaded the comfyq functions library"
eq "library on the master" "$(RP "$MPORT" FCALL_RO comfyq_version 0)" "$LIBV"
check "a master they do not know" 3 timeout 20 "$BIN/comfyq" \
	--redis "$(surl nosuch)" stats
hasf "every sentinel's reason" "no sentinel named master 'nosuch': 127.0.0.1:$DEAD: Connection refused; 127.0.0.1:$S1: it monitors no master of that name"
check "a wrong sentinel password" 3 timeout 20 "$BIN/comfyq" \
	--redis "$(surl mymaster wrong)" stats
hasf "the sentinels refuse it" "127.0.0.1:$S1: AUTH: WRONGPASS"
check "no sentinel at all" 3 timeout 20 "$BIN/comfyq" \
	--redis "redis+sentinel://127.0.0.1:$DEAD/mymaster" stats
hasf "the dead one" "no sentinel named master 'mymaster': 127.0.0.1:$DEAD: Connection refused"

# --- jobs flowing, some failing, then a failover ---------------------------
sim_start sim --step-ms 40 --model-load-ms 0 \
	--faults '{"seed":7,"execution_error":{"p":0.25,"node":"KSampler","exception_type":"RuntimeError","message":"boom"}}' ||
	exit 1
PIDS+=("$SIM_PID")
# Leases outlast the failover's pause in writes (the new master takes
# writes once the old one has rejoined as its replica).
for w in w1 w2; do
	worker_start "$w" --lease-ms 60000 --heartbeat-ms 500
	PIDS+=("$WPID")
done
janitor_start
PIDS+=("$JPID")
sched_start sched || exit 1
PIDS+=("$SPID")
wait_until 20 curl -sf "$S/readyz" || bad "the scheduler is not ready"
curl -sN "$S/v1/events" >"$T/sse.txt" 2>&1 &
PIDS+=("$!")
jobs=()
for i in $(seq 1 30); do
	jobs+=("$(submit --workflow sdxl_txt2img --param prompt="fox $i" \
		--param steps=5 --max-attempts 1)")
done
# The last two wait behind the others: canceled while queued.
canceled=("${jobs[28]}" "${jobs[29]}")
for j in "${canceled[@]}"; do check "cancel $j" 0 CQ cancel "$j"; done
# done_count: how many of the jobs are terminal (one redis-cli call).
done_count() {
	local j
	for j in "${jobs[@]}"; do echo "HGET ${P}job:$j state"; done |
		RC | grep -cxE 'succeeded|failed|canceled'
}
started() { [ "$(RP "$MPORT" XLEN "${P}events")" -gt 20 ]; }
wait_until 30 started || bad "the jobs did not start"
before=$(done_count)
[ "$before" -lt 30 ] && ok || bad "all jobs ended before the failover"
t0=$(date +%s)
check "SENTINEL FAILOVER" 0 RS SENTINEL FAILOVER mymaster
switched() { [ "$(master)" = "$REPL" ]; }
wait_until 20 switched && ok || bad "the sentinels did not switch to the replica"
# The CLI follows at once: it retries what the old master refuses, and
# what the new one refuses until the old one has rejoined as its replica.
for i in $(seq 1 8); do
	jobs+=("$(submit --workflow sdxl_txt2img --param prompt="after $i" \
		--param steps=5 --max-attempts 1)")
done
check "cancel a job after the switch" 0 CQ cancel "${jobs[37]}"
canceled+=("${jobs[37]}")
demoted() { [ "$(RP "$MPORT" ROLE | head -1)" = slave ]; }
wait_until 60 demoted && ok || bad "the old master did not become a replica"
all_ended() { [ "$(done_count)" = "${#jobs[@]}" ]; }
wait_until 90 all_ended || for j in "${jobs[@]}"; do
	terminal "$j" || bad "job $j: not ended (state $(state "$j"))"
done
echo "sentinel.sh: $before of 30 jobs ended before the failover; all ended $(($(date +%s) - t0)) s after it"

# --- exactly once --------------------------------------------------------
RC XRANGE "${P}events" - + >"$T/events.txt"
RC XRANGE "${P}refunds" - + >"$T/refunds.txt"
nfail=0 nok=0
for j in "${jobs[@]}"; do
	s=$(state "$j")
	eq "job $j: terminal events" "$(xr_ends "$T/events.txt" "$j")" 1
	case "$s" in
	succeeded)
		nok=$((nok + 1))
		eq "job $j: no refund" "$(xr_refunds "$T/refunds.txt" "$j")" 0 ;;
	failed | canceled)
		nfail=$((nfail + 1))
		eq "job $j ($s): one refund" "$(xr_refunds "$T/refunds.txt" "$j")" 1 ;;
	*) bad "job $j: state $s" ;;
	esac
done
for j in "${canceled[@]}"; do eq "job $j canceled" "$(state "$j")" canceled; done
[ "$nok" -gt 0 ] && [ "$nfail" -gt "${#canceled[@]}" ] && ok ||
	bad "want successes and failures: $nok succeeded, $nfail failed or canceled"
eq "refund entries, one per failure" "$(RC XLEN "${P}refunds")" "$nfail"
# The scheduler's event reader followed the master too.
for j in "${jobs[@]:30}"; do
	wait_until 10 sse_ended "$T/sse.txt" "$j" && ok ||
		bad "job $j: no terminal event on the scheduler's /v1/events"
done
check "the scheduler's /readyz" 0 curl -sf "$S/readyz"
last=${jobs[${#jobs[@]} - 1]}
want="\"state\":\"$(state "$last")\""
wait_until 10 api_is "$last" "$want" && ok ||
	bad "the scheduler does not read the new master: $(api_state "$last")"

# --- everyone writes to the new master ----------------------------------
eq "the new master" "$(RP "$REPL" ROLE | head -1)" master
# later KEY FIELD THAN: the new master's KEY FIELD is past THAN.
later() { [ "$(RP "$REPL" HGET "$1" "$2")" -gt "${3:-0}" ]; }
for w in w1 w2; do
	grep -q "the sentinels name 127.0.0.1:$REPL as master mymaster" "$T/$w.log" &&
		ok || bad "$w did not move to the new master"
	b=$(RP "$REPL" HGET "${P}worker:$w" last_beat_ms)
	wait_until 10 later "${P}worker:$w" last_beat_ms "$b" && ok ||
		bad "$w does not heartbeat on the new master"
done
r=$(RP "$REPL" HGET "${P}reaper" last_ms)
wait_until 10 later "${P}reaper" last_ms "$r" && ok ||
	bad "the janitor does not reap on the new master"
grep -qF "config redis-url = redis+sentinel://***@$HOSTS/mymaster?sentinel-password=***" \
	"$T/w1.log" && ok || bad "the worker logged a password: $(grep 'config redis-url' "$T/w1.log")"
j=$(submit --workflow smoke_invert --param width=64 --param height=64)
await "$j" succeeded 30
eq "a job of the CLI's on the new master" \
	"$(RP "$REPL" HGET "${P}job:$j" state)" succeeded
finish
