#!/usr/bin/env bash
# Redis over TLS end to end: a redis-server with a TLS port and no plain
# one (the test looks at it through its unix socket), a CA and
# certificates made here with the openssl CLI, comfyq-sim, workers, the
# janitor, the scheduler and the CLI on rediss:// URLs, verification on.
#   tls.sh BIN_DIR TEST_BIN      (TEST_BIN: test_rq_tls, the bridge's own)
# Checks: a job delivered over TLS; a CA that did not sign the server's
# certificate, and a name the certificate is not for, refused with the
# reason and exit 3, quickly, by the CLI, a worker and the janitor;
# tls-insecure lets them through with a warning; bad tls-* files stop a
# program at --check; a server that asks for client certificates refuses
# a client without one and takes one with tls-cert-file/tls-key-file; the
# server shut down and started again in the middle of a job: the worker
# reconnects and the job ends exactly once. A sentinel on TLS only names
# the server to the CLI and a worker on rediss+sentinel://.
set -u
BIN=$1
TEST_BIN=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-tls.XXXXXX")
. "$ROOT/deploy/lib/redis.sh"
. "$ROOT/tests/lib/tls.sh"
mkdir -p "$T/tls" "$T/redis"
tls_certs "$T/tls" || exit 1
REDIS_TLS_DIR=$T/tls REDIS_TLS_ONLY=1 redis_start "$T/redis" || exit 1
export COMFYQ_TEST_REDIS_URL=$REDIS_URL
. "$ROOT/tests/lib/stack.sh"
trap 'redis_stop; stack_cleanup' EXIT
tmp=$T/check	# check's output; $T/out is the workers' output-dir
mkdir -p "$tmp"
RC() { redis-cli -s "$T/redis/redis.sock" "$@"; }
# Every program reads its tls-* settings from the environment too.
export COMFYQ_TLS_CA_FILE=$T/tls/ca.crt
OTHER_CA=$T/tls/other-ca.crt

rfield() { [ "$(RC HGET "$1" "$2")" = "$3" ]; }	# rfield KEY FIELD VALUE
rexists() { [ "$(RC EXISTS "$1")" = 1 ]; }

# refused NAME REASON CMD...: exit 3 within 10 s, the reason said.
refused() {
	local name=$1 reason=$2 t0
	shift 2
	t0=$(date +%s)
	check "$name: exit 3" 3 timeout 20 "$@"
	hasf "$name: the reason" "$reason"
	[ $(($(date +%s) - t0)) -le 10 ] && ok || bad "$name: took $(($(date +%s) - t0)) s"
}

# --- verification on: a job over TLS --------------------------------
check "init over rediss" 0 CQ init
hasf "init" "loaded the comfyq functions library"
eq "no plain port" "$(RC CONFIG GET port | tail -1)" 0
sim_start sim --step-ms 50 --model-load-ms 0 || exit 1
PIDS+=("$SIM_PID")
worker_start w1
W1=$WPID
PIDS+=("$W1")
janitor_start
J1=$JPID
PIDS+=("$J1")
check "submit --wait over rediss" 0 timeout 60 "$BIN/comfyq" submit --workflow smoke_invert \
	--param width=64 --param height=64 --wait
j=$(grep -oE 'job [0-9a-z]{28}' "$tmp/out" | head -1 | cut -c5-)
eq "job state" "$(state "$j")" succeeded
eq "succeeded events" "$(events "$j" succeeded)" 1
eq "one output on disk" "$(ls "$T/out/$j" | wc -l | tr -d ' ')" 1
eq "worker registered" "$(RC HGET "${P}worker:w1" health)" ok
wait_until 10 rexists "${P}reaper" && ok ||
	bad "the janitor did not reap over rediss"

: >"$T/sched.log"
"$BIN/comfyq-scheduler" --queue "$Q" --listen 127.0.0.1:0 \
	--output-dir "$T/out" --workflows-dir "$ROOT/workflows" \
	>>"$T/sched.log" 2>&1 &
SPID=$!
PIDS+=("$SPID")
wait_until 20 grep -q "listening on" "$T/sched.log" || bad "scheduler did not start"
S="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$T/sched.log" | head -1)"
wait_until 20 curl -sf "$S/readyz" && ok || bad "scheduler not ready over rediss"
eq "scheduler reads the job" \
	"$(curl -s "$S/v1/jobs/$j" | grep -oE '"state":"[a-z]+"' | head -1)" \
	'"state":"succeeded"'
stop "$SPID"

# --- refusals ----------------------------------------------------------
refused "another CA" "TLS: certificate verify failed: " \
	"$BIN/comfyq" --tls-ca-file "$OTHER_CA" stats
refused "wrong name" \
	"TLS: certificate verify failed: hostname mismatch (the certificate is not for wrong.example)" \
	"$BIN/comfyq" --tls-server-name wrong.example stats
check "the certificate's DNS name" 0 "$BIN/comfyq" \
	--redis "rediss://localhost:$REDIS_PORT" stats

# --- rediss+sentinel://: a sentinel on TLS only, watching this server --
SPORT=$(free_port)
mkdir -p "$T/sentinel"
cat >"$T/sentinel/conf" <<CONF
port 0
tls-port $SPORT
bind 127.0.0.1
dir $T/sentinel
pidfile $T/sentinel/pid
logfile $T/sentinel/log
tls-cert-file $T/tls/server.crt
tls-key-file $T/tls/server.key
tls-ca-cert-file $T/tls/ca.crt
tls-replication yes
tls-auth-clients no
sentinel monitor tlsm 127.0.0.1 $REDIS_PORT 1
CONF
redis-server "$T/sentinel/conf" --sentinel --daemonize yes
wait_until 10 test -s "$T/sentinel/pid" || bad "the sentinel did not start"
SENT_PID=$(cat "$T/sentinel/pid")
PIDS+=("$SENT_PID")
SENT_URL="rediss+sentinel://localhost:$SPORT/tlsm"
check "a sentinel over TLS names the master" 0 timeout 20 "$BIN/comfyq" \
	--redis "$SENT_URL" stats
refused "a sentinel over TLS with another CA" "localhost:$SPORT: TLS: certificate verify failed: " \
	"$BIN/comfyq" --redis "$SENT_URL" --tls-ca-file "$OTHER_CA" stats
worker_start ws --redis-url "$SENT_URL"
PIDS+=("$WPID")
wait_until 20 rfield "${P}worker:ws" health ok && ok ||
	bad "a worker on rediss+sentinel:// did not register"
grep -q "the sentinels name 127.0.0.1:$REDIS_PORT as master tlsm" "$T/ws.log" &&
	ok || bad "the worker did not log the sentinels' answer"
stop "$WPID" "$SENT_PID"
refused "no CA given: the system's store" "TLS: certificate verify failed: " \
	env -u COMFYQ_TLS_CA_FILE "$BIN/comfyq" stats
check "tls-insecure" 0 "$BIN/comfyq" --tls-insecure --tls-ca-file "$OTHER_CA" \
	--tls-server-name wrong.example stats
hasf "tls-insecure warns" "tls-insecure is set: the server's certificate and name are not checked"
check "plain redis:// to the TLS port" 3 timeout 20 "$BIN/comfyq" \
	--redis "redis://127.0.0.1:$REDIS_PORT" stats

worker_start bad --tls-ca-file "$OTHER_CA"
BADW=$WPID
PIDS+=("$BADW")
wait_until 10 grep -q "TLS: certificate verify failed" "$T/bad.log" && ok ||
	bad "the worker did not say why it cannot connect"
eq "the untrusting worker never registered" "$(RC EXISTS "${P}worker:bad")" 0
"$BIN/comfyq-janitor" --queue "$Q" --tick-ms 200 --tls-ca-file "$OTHER_CA" \
	>>"$T/badjan.log" 2>&1 &
BADJ=$!
PIDS+=("$BADJ")
wait_until 10 grep -q "TLS: certificate verify failed" "$T/badjan.log" && ok ||
	bad "the janitor did not say why it cannot connect"
stop "$BADW" "$BADJ"

check "worker --check: a certificate without its key" 2 \
	"$BIN/comfyq-worker" --check --tls-cert-file "$T/tls/client.crt"
hasf "the pair" "tls-cert-file and tls-key-file go together"
check "janitor --check: no such CA file" 2 \
	"$BIN/comfyq-janitor" --check --tls-ca-file "$T/nope.crt"
hasf "the missing file" "tls-ca-file: $T/nope.crt: No such file or directory"
check "scheduler --check: a key of another certificate" 2 \
	"$BIN/comfyq-scheduler" --check --tls-cert-file "$T/tls/client.crt" \
	--tls-key-file "$T/tls/server.key"
hasf "the mismatch" "tls-key-file: $T/tls/server.key: key values mismatch"
stop "$W1" "$J1"

# --- client certificates -------------------------------------------------
RC CONFIG SET tls-auth-clients yes >/dev/null
sed -i 's/^tls-auth-clients .*/tls-auth-clients yes/' "$REDIS_CONF"
refused "no client certificate" "TLS: tlsv13 alert certificate required" \
	"$BIN/comfyq" stats
export COMFYQ_TLS_CERT_FILE=$T/tls/client.crt COMFYQ_TLS_KEY_FILE=$T/tls/client.key
check "with a client certificate" 0 CQ stats

# --- the server restarts in the middle of a job -------------------------
# The lease outlasts the outage: the attempt in flight is the one that ends.
worker_start w2 --lease-ms 20000
W2=$WPID
PIDS+=("$W2")
janitor_start
PIDS+=("$JPID")
wait_until 20 rfield "${P}worker:w2" health ok && ok ||
	bad "w2 did not register with its client certificate"
j=$(submit --workflow sdxl_txt2img --param prompt="a fox" --param steps=60)
wait_until 20 is_state "$j" active || bad "job $j not claimed"
sleep 0.5
RC SHUTDOWN SAVE >/dev/null 2>&1
wait_until 10 sh -c "! kill -0 $REDIS_PID" || bad "redis did not stop"
sleep 0.5
redis-server "$REDIS_CONF" >/dev/null 2>&1
REDIS_PID=$(cat "$T/redis/redis.pid")
wait_until 10 RC ping || bad "redis did not come back"
await "$j" succeeded 60
n=0
for t in succeeded failed canceled; do n=$((n + $(events "$j" "$t"))); done
eq "terminal events after the restart" "$n" 1
eq "started events" "$(events "$j" started)" 1
n=$(grep -c "redis: connected" "$T/w2.log")
[ "$n" -ge 2 ] && ok || bad "w2 connected $n times, want a reconnect"
grep -qE "redis 127.0.0.1:$REDIS_PORT: (disconnected: TLS: |connect: )" "$T/w2.log" &&
	ok || bad "w2 did not log why its connections dropped"

# --- the bridge itself ------------------------------------------------
COMFYQ_TEST_TLS_OTHER_CA=$OTHER_CA \
	COMFYQ_TEST_REDIS_PLAIN_URL="unix://$T/redis/redis.sock" \
	"$TEST_BIN" >"$T/bridge.log" 2>&1 && ok ||
	{ bad "test_rq_tls failed"; cat "$T/bridge.log"; }
finish
