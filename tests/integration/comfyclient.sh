#!/usr/bin/env bash
# One ComfyUI client, unchanged, against one ComfyUI and against the fleet:
# deploy/examples/python/comfy_client.py runs (a) against comfyq-sim
# directly and (b) against comfyq-scheduler's /comfy/ (a token, a worker,
# a second comfyq-sim with the same settings behind it). Both runs must
# pass the script's own checks (upload, prompt, socket until executing
# null, history, view, queue, system_stats, object_info, interrupt), and
# what they saw must be the same, but for what the front documents
# (README, ComfyUI-compatible front):
#   - the socket: per prompt the same messages in the same order, with the
#     same nodes (executing, executed, execution_cached's list,
#     execution_error/interrupted's node_id and executed), once the
#     progress_state messages of (a) are left out (the front sends none)
#     and each run of progress messages counts as one (the worker
#     reports progress at most every progress-min-ms);
#   - history: the same keys, outputs per node, status_str, completed,
#     message names and cached nodes (file names and subfolders differ:
#     the fleet's are the job's);
#   - /view: the same bytes for every output;
#   - system_stats and /object_info/KSampler: the same keys.
#   comfyclient.sh BIN_DIR
# Needs a python3 with websocket-client (deploy/lib/packages.sh
# PKGS_EXAMPLES_PY); installs it where missing, and when it cannot, fails
# under CI=true and skips (exit 77) otherwise.
set -u
BIN=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-comfyclient.XXXXXX")
. "$ROOT/tests/lib/stack.sh"
trap stack_cleanup EXIT
tmp=$T/check
mkdir -p "$tmp"
. "$ROOT/deploy/lib/packages.sh"
. "$ROOT/deploy/lib/deps.sh"

# shellcheck disable=SC2086
PY=$(py_with websocket) || { deps_install $PKGS_EXAMPLES_PY >"$T/deps.log" 2>&1 &&
	PY=$(py_with websocket); } ||
	cannot "no python3 with websocket-client, and $PKGS_EXAMPLES_PY could not be installed: $(tail -2 "$T/deps.log")"
CLIENT=$ROOT/deploy/examples/python/comfy_client.py
SECRET=tg-secret-0123456789
SIMARGS=(--step-ms 20 --model-load-ms 0)

# (a) one ComfyUI.
sim_start simA "${SIMARGS[@]}" || exit 1
PIDS+=("$SIM_PID")
check "the client against comfyq-sim" 0 "$PY" "$CLIENT" --url "$SIM_URL" \
	--report "$T/a.json" --out "$T/a" --timeout 60
has "(a) done" '^done$'

# (b) the fleet: a fresh sim with the same settings, a worker, the
# scheduler with a token.
unset SIM_PORT
sim_start simB "${SIMARGS[@]}" || exit 1
PIDS+=("$SIM_PID")
worker_start w1
PIDS+=("$WPID")
"$BIN/comfyq-scheduler" --redis-url "$COMFYQ_TEST_REDIS_URL" --queue "$Q" \
	--listen 127.0.0.1:0 --output-dir "$T/out" --workflows-dir "$ROOT/workflows" \
	--tokens "bot:tg::$SECRET" --log-level verbose >"$T/sched.log" 2>&1 &
PIDS+=("$!")
wait_until 20 grep -q "listening on" "$T/sched.log" || { bad "the scheduler did not start"; exit 1; }
S="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$T/sched.log" | head -1)"
wait_until 20 curl -sf "$S/readyz" || bad "the scheduler is not ready"
wait_until 20 grep -q "registered as" "$T/w1.log" || bad "the worker is not up"
wait_until 20 sh -c "curl -sf -H 'Authorization: Bearer $SECRET' '$S/comfy/object_info' >/dev/null" ||
	bad "the worker never published its node list"
check "the client against the fleet" 0 "$PY" "$CLIENT" --url "$S/comfy" \
	--token "$SECRET" --report "$T/b.json" --out "$T/b" --timeout 60
has "(b) done" '^done$'
check "the fleet without the token" 1 "$PY" "$CLIENT" --url "$S/comfy" --timeout 10
has "401 without the token" 'HTTP 401'

# What each saw, with the documented differences taken out.
norm() {
	"$PY" - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for name, p in sorted(r.get("prompts", {}).items()):
    ws = []
    for m in p["ws"]:
        if m[0] == "progress_state":
            continue
        if m[0] == "progress" and ws and ws[-1][0] == "progress":
            continue
        ws.append(m)
    print(name, "ws", json.dumps(ws))
    print(name, "history", json.dumps(p["history"], sort_keys=True))
    print(name, "views", json.dumps([[v["node"], v["key"], v["bytes"], v["sha256"]]
                                     for v in p["views"]]))
for k in ("system_stats", "object_info", "upload", "queue_after"):
    print(k, json.dumps(r.get(k), sort_keys=True))
PY
}
norm "$T/a.json" >"$T/a.norm"
norm "$T/b.json" >"$T/b.norm"
eq "four prompts seen" "$(grep -c ' ws ' "$T/a.norm")" 4
if diff "$T/a.norm" "$T/b.norm" >"$T/diff"; then ok; else
	bad "the fleet's answers differ from comfyq-sim's:"
	sed 's/^/    /' "$T/diff"
fi
# What the comparison rests on, spelled out.
ws_of() { sed -n "s/^$1 ws //p" "$T/b.norm"; }
eq "invert: ComfyUI's messages, one executing per node" "$(ws_of invert)" \
	'[["execution_start"], ["execution_cached", []], ["executing", "1"], ["executing", "2"], ["executing", "3"], ["executed", "3"], ["execution_success"], ["executing", null]]'
eq "cached_b: the cached nodes listed, only the rest executed" "$(ws_of cached_b)" \
	'[["execution_start"], ["execution_cached", ["3", "4", "5", "6", "7", "8"]], ["executing", "9"], ["executed", "9"], ["execution_success"], ["executing", null]]'
eq "long: interrupted at the sampler" "$(ws_of long | "$PY" -c 'import json,sys; w = json.load(sys.stdin); print(json.dumps(w[-2]))')" \
	'["execution_interrupted", "3", ["6"]]'
eq "long: progress before the interrupt" "$(ws_of long | grep -c '\["progress"\]')" 1
eq "history messages" "$(sed -n 's/^cached_b history //p' "$T/b.norm" | jq -c '[.messages, .cached]')" \
	'[["execution_start","execution_cached","execution_success"],["3","4","5","6","7","8"]]'
for f in "$T"/b/*; do
	[ -s "$f" ] && ok || bad "empty output $f"
done
eq "outputs saved" "$(find "$T/b" -type f | wc -l)" 3
# The uploaded image went to the input store, the prompts ran as the
# token's tenant.
eq "the upload in the input store" "$(RC EXISTS "${P}comfy:upload:tg::comfy_client/comfy_client.png")" 1
eq "four prompts of tg:" "$(RC ZCARD "${P}comfy:jobs:tg:")" 4
finish
