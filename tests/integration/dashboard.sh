#!/usr/bin/env bash
# The dashboard (GET /) in headless Chromium against a real stack:
# redis-server, comfyq-sim, a worker and the scheduler. Jobs are made to
# stand still (some ended, one running for minutes on the only slot, some
# queued behind it), then the page's DOM is checked against the API read
# at the same moment: every number of /v1/stats, the jobs with their
# states, the worker's current job, the pool's slots, the chart's total,
# the thumbnails (JPEG), user text shown as text. Then: no jobs and no
# workers, Redis down (503 shown), a token asked for, admin-listen. The
# screenshot is kept in ARTIFACT_DIR.
#   dashboard.sh BIN_DIR ARTIFACT_DIR
# Installs chromium (deploy/lib/packages.sh PKGS_BROWSER) where missing;
# when it cannot, fails under CI=true and skips (exit 77) otherwise.
set -u
BIN=$1
ART=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-dash.XXXXXX")
. "$ROOT/tests/lib/stack.sh"
trap stack_cleanup EXIT

. "$ROOT/deploy/lib/packages.sh"
. "$ROOT/deploy/lib/deps.sh"
# shellcheck disable=SC2086
if ! command -v chromium >/dev/null &&
	! { deps_install $PKGS_BROWSER >"$T/deps.log" 2>&1 &&
		command -v chromium >/dev/null; }; then
	cannot "chromium is missing and could not be installed: $(tail -2 "$T/deps.log")"
fi

# chrome ARGS... URL: headless Chromium, 8 s of page time (4 polls).
chrome() {
	timeout 120 chromium --headless --no-sandbox --disable-gpu \
		--disable-dev-shm-usage --no-first-run \
		--user-data-dir="$T/chrome" --virtual-time-budget=8000 "$@" \
		2>>"$T/chrome.log"
}
dom() { chrome --dump-dom "$1/" >"$T/dom.html"; }
# in_dom NAME TEXT / not_in_dom NAME TEXT: the last DOM holds TEXT or not.
in_dom() {
	if grep -qF -- "$2" "$T/dom.html"; then ok; else
		bad "$1: the page lacks '$2'"; fi
}
not_in_dom() {
	if grep -qF -- "$2" "$T/dom.html"; then
		bad "$1: the page holds '$2'"; else ok; fi
}

# sched_start NAME [ARGS...]: a scheduler on a free port: $SPID, $S (its
# URL) and, with --admin-listen, $SA.
sched_start() {
	local name=$1
	shift
	"$BIN/comfyq-scheduler" --redis-url "$COMFYQ_TEST_REDIS_URL" \
		--queue "$Q" --listen 127.0.0.1:0 --output-dir "$T/out" \
		--workflows-dir "$ROOT/workflows" --log-level verbose "$@" \
		>>"$T/$name.log" 2>&1 &
	SPID=$!
	PIDS+=("$SPID")
	if ! wait_until 20 grep -q "listening on" "$T/$name.log"; then
		bad "$name did not start"
		exit 1
	fi
	S="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$T/$name.log" | head -1)"
	SA="http://127.0.0.1:$(sed -n 's/.*admin port \([0-9]*\).*/\1/p' "$T/$name.log" | head -1)"
}
get() { curl -s "$S$1"; }

# stat_of JSON PATH: the number at PATH (a.b: one level down) in JSON.
stat_of() {
	local json=$1 key=$2
	case "$key" in
	*.*)
		json=$(printf '%s' "$json" |
			sed -E "s/.*\"${key%%.*}\":\\{([^}]*)\\}.*/\\1/")
		key=${key#*.}
		;;
	*) json=$(printf '%s' "$json" | sed -E 's/"[a-z_]+":\{[^}]*\}//g') ;;
	esac
	printf '%s' "$json" | grep -oF "\"$key\":" >/dev/null || return 1
	printf '%s' "$json" | grep -oE "\"$key\":-?[0-9.]+" | head -1 |
		sed 's/.*://'
}

# The stack: one slot, and a sim whose sampler steps take 2 s, so a
# 60-step job holds the slot while the page is read.
sim_start sim --step-ms 2000 --model-load-ms 0 || exit 1
PIDS+=("$SIM_PID")
worker_start w1
PIDS+=("$WPID")
wait_until 20 sh -c "[ \"\$(redis-cli -p $RPORT ZCARD '${P}workers')\" -ge 1 ]" ||
	bad "the worker did not register"
sched_start sched

# Ended jobs: two pictures (one through the API, one with a tenant that
# is markup), a failure whose tenant is markup too, a cancel.
evil='<img src=x onerror=alert(1)>'
j1=$(submit --workflow smoke_invert --param width=256 --param height=128 \
	--tenant "$evil")
j2=$(curl -s -H 'Content-Type: application/json' -d \
	'{"workflow":"smoke_invert","params":{"width":128,"height":256},"tenant":"web:1"}' \
	"$S/v1/jobs" | sed -n 's/.*"id":"\([0-9a-z]*\)".*/\1/p')
j3=$(RC FCALL comfyq_enqueue 1 "$P" \
	'{"workflow":"no_such_flow","tenant":"tg:<b>bold</b>"}' | head -1)
for j in "$j1" "$j2"; do await "$j" succeeded 60; done
await "$j3" failed 60
# The long job, then jobs queued behind it (it holds the only slot).
jl=$(submit --workflow sdxl_txt2img --param prompt=fox --param steps=60)
wait_until 60 sh -c "[ -n \"\$(redis-cli -p $RPORT HGET '${P}job:$jl' progress)\" ]" ||
	bad "the long job made no progress (state $(state "$jl"))"
q1=$(submit --workflow smoke_invert --param width=64 --param height=64)
q2=$(submit --workflow smoke_invert --param width=64 --param height=64)
q3=$(submit --workflow smoke_invert --param width=64 --param height=64 \
	--priority high)
eq "cancel a queued job" "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$S/v1/jobs/$q2")" 200
await "$q2" canceled 10
for j in "$q1" "$q3"; do eq "queued behind the long job" "$(state "$j")" queued; done

# The page, between two identical reads of /v1/stats (else again).
for try in 1 2 3; do
	before=$(get /v1/stats)
	hist=$(get /v1/stats/history)
	dom "$S"
	after=$(get /v1/stats)
	[ "$before" = "$after" ] && break
done
eq "stats stood still while the page was read" "$after" "$before"
in_dom "the page is live" '<span id="status" data-status="ok">live</span>'
grep -oE 'data-stat="[^"]+">[^<]*<' "$T/dom.html" |
	sed -E 's/data-stat="([^"]+)">([^<]*)</\1 \2/' >"$T/stats.txt"
eq "one element per number of /v1/stats" "$(wc -l <"$T/stats.txt")" \
	"$(printf '%s' "$after" | grep -oE '":-?[0-9]' | wc -l)"
while read -r path shown; do
	eq "data-stat $path" "$shown" "$(stat_of "$after" "$path")"
done <"$T/stats.txt"
for path in ready.normal ready.high active counters.succeeded \
	counters.failed counters.canceled; do
	grep -q "^$path " "$T/stats.txt" || bad "the page shows no $path"
done
eq "ready normal" "$(stat_of "$after" ready.normal)" 1
eq "ready high" "$(stat_of "$after" ready.high)" 1
eq "active" "$(stat_of "$after" active)" 1

# Jobs with their states, the worker's current job, the pool's slots.
for j in "$j1" "$j2" "$j3" "$jl" "$q1" "$q2" "$q3"; do
	in_dom "job $j" "data-job=\"$j\" data-state=\"$(state "$j")\""
done
in_dom "the failure's code" 'data-error="unknown_workflow"'
in_dom "worker w1" 'data-worker="w1" data-state="up"'
in_dom "w1 runs the long job" "data-current=\"$jl\""
pool=$(get /v1/pools | sed -n 's/.*"pool":"\([^"]*\)".*/\1/p')
in_dom "pool $pool" "data-pool=\"$pool\" data-used=\"1\" data-capacity=\"1\""
total=$(printf '%s' "$hist" | grep -oE '"done":[0-9]+' | cut -d: -f2 |
	awk '{ n += $1 } END { print n + 0 }')
in_dom "the chart's total" "data-history-total=\"$total\""
[ "$total" -ge 4 ] && ok || bad "history counts $total ended jobs, want >= 4"
# User text is text: the markup shows escaped and is nowhere live.
in_dom "a tenant of markup, as text" '&lt;img src=x onerror=alert(1)&gt;'
in_dom "a tenant of markup, as text" 'tg:&lt;b&gt;bold&lt;/b&gt;'
not_in_dom "no live markup from a tenant" '<img src="x"'
not_in_dom "no live markup from a tenant" '<b>bold</b>'

# Thumbnails: the succeeded pictures, URLs that answer with a JPEG.
grep -oE '<img [^>]*data-thumb="[^"]+"[^>]*>' "$T/dom.html" >"$T/thumbs.txt"
eq "thumbnails" "$(wc -l <"$T/thumbs.txt")" 2
for j in "$j1" "$j2"; do
	url="/v1/jobs/$j/outputs/0?thumb=128"
	grep -F "data-thumb=\"$url\"" "$T/thumbs.txt" | grep -qF "src=\"$url\"" ||
		bad "no thumbnail of $j at $url"
	ct=$(curl -s -o "$T/thumb.jpg" -w '%{http_code} %{content_type}' "$S$url")
	eq "thumbnail of $j" "$ct" "200 image/jpeg"
	eq "thumbnail of $j is a JPEG" "$(od -An -tx1 -N3 "$T/thumb.jpg" | tr -d ' ')" ffd8ff
done

# The screenshot, kept.
mkdir -p "$ART"
rm -f "$ART/dashboard.png"
chrome --screenshot="$ART/dashboard.png" --window-size=1280,900 "$S/" >/dev/null
eq "screenshot is a PNG" "$(od -An -c -j1 -N3 "$ART/dashboard.png" 2>/dev/null | tr -d ' ')" PNG
echo "dashboard.sh: screenshot at $ART/dashboard.png"

# No jobs, no workers, on a queue of its own; / on admin-listen only,
# with the API's GET routes there for the page.
Q0=$Q
Q="$Q-empty"
sched_start empty --admin-listen 127.0.0.1:0
eq "/ not on the public listener" "$(curl -s -o /dev/null -w '%{http_code}' "$S/")" 404
eq "/ on the admin listener" "$(curl -s -o /dev/null -w '%{http_code} %{content_type}' "$SA/")" \
	"200 text/html; charset=utf-8"
eq "/ is not cached" "$(curl -s -D - -o /dev/null "$SA/" | grep -i '^cache-control:' | tr -d '\r')" \
	"Cache-Control: no-store"
dom "$SA"
in_dom "empty: live" '<span id="status" data-status="ok">live</span>'
in_dom "empty: nothing queued" '<b data-stat="ready.normal">0</b>'
in_dom "empty: no workers" 'no workers'
in_dom "empty: no jobs" 'no jobs'
in_dom "empty: no pools" 'no pools'
Q=$Q0

# Redis down: the page shows the 503.
sched_start down --redis-url redis://127.0.0.1:1
dom "$S"
in_dom "Redis down: an error" '<span id="status" data-status="error">error 503</span>'
in_dom "Redis down: the 503" 'HTTP 503 unavailable:'

# Tokens: the page itself is open and asks for one.
sched_start tokens --tokens "bot:*:dashboard-secret-0123456789"
eq "the page needs no token" "$(curl -s -o /dev/null -w '%{http_code}' "$S/")" 200
dom "$S"
in_dom "tokens: asks for one" '<span id="status" data-status="auth">token needed</span>'
in_dom "tokens: the form shows" '<section id="login" class="wide">'
in_dom "tokens: 401 shown" 'HTTP 401 unauthorized:'

finish
