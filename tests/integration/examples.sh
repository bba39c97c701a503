#!/usr/bin/env bash
# The client examples of deploy/examples/ in one language, run against a
# real stack: redis-server, comfyq-sim, a worker, the scheduler (with a
# whsec_ webhook secret) and the example webhook receiver. One scenario
# for both languages:
#   - bot_http for a job that succeeds: progress lines from SSE, the saved
#     file a PNG equal to the store's file, exit 0;
#   - bot_http for a job that fails at run time (a checkpoint the sim does
#     not have): the error code and the refund noted, exit 1;
#   - refunds: the group is created after that refund entry was written
#     (id 0 finds it); a consumer that dies after crediting, before XACK,
#     re-reads its pending entry at restart and does not credit it again;
#   - submit_redis (FCALL comfyq_enqueue) for a second failing job; a
#     consumer that dies after reading it, before crediting: another one
#     takes it over with XAUTOCLAIM and credits it once; a run with
#     nothing left credits nothing;
#   - the receiver stored one accepted event per webhook job, and answers
#     401 to a forged signature, missing headers and an old timestamp, and
#     200 without storing to a repeated webhook-id.
#   examples.sh BIN_DIR python|node
# Installs what the language needs where missing (deploy/lib/packages.sh
# PKGS_EXAMPLES_PY, PKGS_EXAMPLES_NODE; ioredis with npm ci from the
# pinned package-lock.json); when it cannot, fails under CI=true and skips
# (exit 77) otherwise.
set -u
BIN=$1
XLANG=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
EX=$ROOT/deploy/examples
T=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-examples.XXXXXX")
. "$ROOT/tests/lib/stack.sh"
trap stack_cleanup EXIT
tmp=$T/check	# check's output ($T/out is the workers' store)
mkdir -p "$tmp"
. "$ROOT/deploy/lib/packages.sh"
. "$ROOT/deploy/lib/deps.sh"

case "$XLANG" in
python)
	# shellcheck disable=SC2086
	PY=$(py_with redis) || { deps_install $PKGS_EXAMPLES_PY >"$T/deps.log" 2>&1 &&
		PY=$(py_with redis); } ||
		cannot "no python3 with redis-py, and $PKGS_EXAMPLES_PY could not be installed: $(tail -2 "$T/deps.log")"
	ex_prog() { EXPROG=("$PY" "$EX/python/$1.py"); }
	;;
node)
	need_node 18 "built-in fetch"
	if ! (cd "$EX/node" && npm ci --no-audit --no-fund --loglevel=error) >"$T/npm.log" 2>&1; then
		cannot "npm ci in deploy/examples/node failed (is the npm registry reachable?): $(grep -m1 -E 'request to|code E' "$T/npm.log" || tail -1 "$T/npm.log")"
	fi
	ex_prog() { EXPROG=(node "$EX/node/$1.mjs"); }
	;;
*)
	echo "unknown language $XLANG" >&2
	exit 2
	;;
esac

TG_SECRET=tg-secret-0123456789
secret="whsec_$(head -c 24 /dev/urandom | base64)"
R="${P}refunds"
L="billing:$Q:"

# ex NAME ARGS...: runs the example NAME. In the background, ex_exec, which
# execs it, so that $! is the example itself (a function run with & is a
# subshell of its own: killing it would leave the example running).
ex() {
	ex_prog "$1"
	shift
	"${EXPROG[@]}" "$@"
}
ex_exec() {
	ex_prog "$1"
	shift
	exec "${EXPROG[@]}" "$@"
}

# The receiver, the sim, a worker, the scheduler.
ex_exec webhook_receiver --secret "$secret" --port 0 --port-file "$T/recv.port" \
	--dir "$T/hooks" >"$T/recv.log" 2>&1 &
PIDS+=("$!")
wait_until 10 test -s "$T/recv.port" || { bad "the receiver did not start"; exit 1; }
H="http://127.0.0.1:$(cat "$T/recv.port")"
sim_start sim --step-ms 20 --model-load-ms 0 || exit 1
PIDS+=("$SIM_PID")
worker_start w1
PIDS+=("$WPID")
"$BIN/comfyq-scheduler" --redis-url "$COMFYQ_TEST_REDIS_URL" --queue "$Q" \
	--listen 127.0.0.1:0 --output-dir "$T/out" --workflows-dir "$ROOT/workflows" \
	--tokens "bot:tg::$TG_SECRET" --webhook-secret "$secret" \
	--webhook-allow-private true --log-level verbose >"$T/sched.log" 2>&1 &
PIDS+=("$!")
wait_until 20 grep -q "listening on" "$T/sched.log" || { bad "the scheduler did not start"; exit 1; }
S="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$T/sched.log" | head -1)"
wait_until 20 curl -sf "$S/readyz" || bad "the scheduler is not ready"
wait_until 20 grep -q "registered as" "$T/w1.log" || bad "the worker is not up"

bot() {
	ex bot_http --api "$S" --token "$TG_SECRET" --out "$T/pics" \
		--webhook "$H/hook" "$@"
}
out_field() { sed -n "s/^$1 \\([^ ]*\\).*/\\1/p" "$tmp/out" | head -1; }
missing=(--param prompt=x --param steps=2 --param checkpoint=no_such_model.safetensors)

# A picture.
check "bot_http: a job that succeeds" 0 bot --user 42 --charge 10 \
	--param prompt="a red fox" --param steps=8 --param width=512 --param height=512
has "bot_http: the job" '^job [0-9a-z]{28} (queued|active)$'
has "bot_http: progress from the events stream" '^progress [1-8]/8$'
j=$(out_field job)
saved=$(out_field saved)
store=$(CQ status "$j" --json | jq -r '.outputs[0].path')
[ -n "$saved" ] && cmp -s "$saved" "$store" && ok ||
	bad "bot_http: the saved file '$saved' differs from the store's '$store'"
eq "bot_http: a PNG" "$(head -c 8 "$saved" | od -An -tx1 | tr -d ' \n')" 89504e470d0a1a0a

# A job that fails on the worker.
check "bot_http: a job that fails" 1 bot --user 43 --charge 7 "${missing[@]}"
has "bot_http: the error code" '^failed invalid_input: '
hasf "bot_http: the refund noted" "refund: the 7 credits come back"
f1=$(out_field job)
eq "one refund entry" "$(RC XLEN "$R")" 1

# Refunds: a crash after crediting, before XACK; the restart re-reads it.
rf() {
	ex refunds --redis "$COMFYQ_TEST_REDIS_URL" --queue "$Q" --group billing \
		--ledger "$L" --block-ms 200 "$@"
}
pending() { RC XPENDING "$R" billing | head -1; }
check "refunds: a crash after crediting" 4 rf --consumer A --crash-after credit
hasf "refunds: the group at 0 reads the older entry" "credited $f1 tg:43 +7 (invalid_input)"
eq "refunds: credited" "$(RC HGET "${L}credits" tg:43)" 7
eq "refunds: not acknowledged" "$(pending)" 1
check "refunds: the restart" 0 rf --consumer A --drain
hasf "refunds: its pending entry re-read" "already credited $f1"
eq "refunds: credited once" "$(RC HGET "${L}credits" tg:43)" 7
eq "refunds: acknowledged" "$(pending)" 0

# The Redis path, then a crash after reading, before crediting: XAUTOCLAIM.
check "submit_redis: a job that fails" 1 ex submit_redis \
	--redis "$COMFYQ_TEST_REDIS_URL" --queue "$Q" --user 44 --charge 5 "${missing[@]}"
has "submit_redis: enqueued" '^job [0-9a-z]{28} created (queued|active)$'
has "submit_redis: the error code" '^failed invalid_input: '
f2=$(out_field job)
eq "submit_redis: the spec as sent" "$(field "$f2" meta | jq -S -c .)" '{"charge":5,"user":"44"}'
check "refunds: a crash after reading" 4 rf --consumer A --crash-after read
eq "refunds: pending on the dead consumer" \
	"$(RC XPENDING "$R" billing - + 10 A | head -1)" "$(RC XREVRANGE "$R" + - COUNT 1 | head -1)"
eq "refunds: not credited yet" "$(RC HGET "${L}credits" tg:44)" ""
sleep 0.5
check "refunds: another consumer takes over" 0 rf --consumer B --claim-idle-ms 300 --drain
hasf "refunds: claimed" "claimed 1 from a dead consumer"
hasf "refunds: credited by B" "credited $f2 tg:44 +5 (invalid_input)"
eq "refunds: B credited once" "$(RC HGET "${L}credits" tg:44)" 5
eq "refunds: all acknowledged" "$(pending)" 0
check "refunds: nothing left" 0 rf --consumer B --claim-idle-ms 0 --drain
[ ! -s "$tmp/out" ] && ok || bad "refunds: a run with nothing left printed: $(cat "$tmp/out")"
eq "refunds: the ledger" "$(RC SMEMBERS "${L}refunded" | sort | tr '\n' ' ')" \
	"$(printf '%s\n' "$f1" "$f2" | sort | tr '\n' ' ')"
eq "refunds: the credits" "$(RC HGET "${L}credits" tg:43) $(RC HGET "${L}credits" tg:44)" "7 5"

# The receiver: one accepted event per webhook job.
hooks() { find "$T/hooks" -name 'wh_*.json' | wc -l; }
wait_until 20 sh -c "[ \$(find '$T/hooks' -name 'wh_*.json' | wc -l) -ge 2 ]" ||
	bad "the receiver has $(hooks) events, want 2"
eq "receiver: the success" "$(jq -r '.type + " " + .job' "$T/hooks/wh_$j.json")" "succeeded $j"
eq "receiver: the failure" "$(jq -r '.type + " " + .job + " " + (.meta.charge|tostring)' \
	"$T/hooks/wh_$f1.json")" "failed $f1 7"
eq "receiver: accepted two" "$(grep -c '^accepted ' "$T/recv.log")" 2
eq "delivered" "$(field "$j" wh_state) $(field "$f1" wh_state)" "delivered delivered"

# sign ID TS BODY: a valid signature with the secret.
sign() {
	python3 - "$secret" "$1" "$2" "$3" <<'PY'
import base64, hashlib, hmac, sys
s, wid, ts, body = sys.argv[1:]
key = base64.b64decode(s[6:])
mac = hmac.new(key, ("%s.%s.%s" % (wid, ts, body)).encode(), hashlib.sha256)
print("v1," + base64.b64encode(mac.digest()).decode())
PY
}
# send ID TS SIGNATURE BODY: $CODE of a hand-made delivery.
send() {
	CODE=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
		-H "webhook-id: $1" -H "webhook-timestamp: $2" -H "webhook-signature: $3" \
		--data-binary "$4" "$H/hook")
}
now=$(date +%s)
body='{"type":"succeeded","job":"forged","meta":{"charge":1000}}'
send wh_forged "$now" "v1,$(printf 'forged' | base64)" "$body"
eq "receiver: a forged signature" "$CODE" 401
send wh_forged "$now" "$(sign wh_forged "$now" '{"other":1}')" "$body"
eq "receiver: a signature of another body" "$CODE" 401
CODE=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
	--data-binary "$body" "$H/hook")
eq "receiver: no signature" "$CODE" 401
old=$((now - 600))
send wh_forged "$old" "$(sign wh_forged "$old" "$body")" "$body"
eq "receiver: an old timestamp" "$CODE" 401
[ ! -e "$T/hooks/wh_forged.json" ] && ok || bad "receiver: stored a rejected event"
eq "receiver: the rejections logged" "$(grep -c '^rejected: ' "$T/recv.log")" 4
again=$(cat "$T/hooks/wh_$j.json")
send "wh_$j" "$now" "$(sign "wh_$j" "$now" "$again")" "$again"
eq "receiver: a repeated id" "$CODE" 200
grep -q "^duplicate wh_$j$" "$T/recv.log" && ok || bad "receiver: the repeat not seen as one"
eq "receiver: still two events" "$(hooks)" 2
finish
