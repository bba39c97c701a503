#!/usr/bin/env bash
# The comfyq CLI as a user runs it: exit codes, messages, what lands in
# Redis. A stand-in worker (redis-cli calling the functions) finishes jobs
# for --wait. Usage: cli.sh PATH-TO-comfyq (COMFYQ_TEST_REDIS_URL set).
set -u
CQ=$1
Q="cli$$"
export COMFYQ_REDIS_URL=$COMFYQ_TEST_REDIS_URL COMFYQ_QUEUE=$Q
P="cq:{$Q}:"
port=${COMFYQ_TEST_REDIS_URL##*:}
RC() { redis-cli -p "$port" "$@"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../lib/check.sh"

check help 0 "$CQ" --help;			has help "comfyq submit"
check no-command 2 "$CQ"
check unknown-command 2 "$CQ" frobnicate;	has unknown-command "unknown command 'frobnicate'"
check bad-queue 2 "$CQ" --queue 'a{b}' stats;	has bad-queue "queue: 'a\{b\}'"
check no-redis 3 "$CQ" --redis redis://127.0.0.1:1 stats
has no-redis "Connection refused"
eq no-redis-one-line "$(wc -l <"$tmp/out")" 1
check bad-url 3 "$CQ" --redis http://x stats;	has bad-url "does not start with redis://"

# Bad input names the field and writes nothing.
check no-workflow 2 "$CQ" submit --param prompt=x
has no-workflow "spec: give a workflow or a graph"
check bad-timeout 2 "$CQ" submit --workflow smoke --timeout 0
has bad-timeout "timeout: '0' not an integer in 1..86400"
check bad-priority 2 "$CQ" submit --workflow smoke --priority urgent
has bad-priority "spec.priority: must be one of high, normal, low"
check bad-param 2 "$CQ" submit --workflow smoke --param novalue
has bad-param "expected K=V"
big=$(head -c 9000 /dev/zero | tr '\0' x)
check big-prompt 2 "$CQ" submit --workflow smoke --param "prompt=$big"
has big-prompt "spec.params.prompt: 9000 bytes over the 8192 byte limit"
echo '{"1": {"inputs": {}}' >"$tmp/broken.json"
check bad-graph-file 2 "$CQ" submit --graph "$tmp/broken.json"
has bad-graph-file "not valid JSON"
check missing-graph-file 2 "$CQ" submit --graph "$tmp/nope.json"
check progress-no-hook 2 "$CQ" submit --workflow smoke --webhook-progress
has progress-no-hook "spec.webhook_progress: needs a webhook URL to send to"
eq nothing-written "$(RC --scan --pattern "$P*" | wc -l)" 0

# Submit, status, idempotency.
check submit 0 "$CQ" submit --workflow smoke --param prompt="a red fox" \
	--param seed=42 --tenant tg:1 --meta charge=10
jid=$(cat "$tmp/out")
eq jid-shape "$(echo "$jid" | grep -cE '^[0-9a-z]{12}[0-9a-f]{16}$')" 1
eq state "$(RC HGET "${P}job:$jid" state)" queued
eq spec-typed "$(RC HGET "${P}job:$jid" spec)" \
	'{"workflow":"smoke","params":{"prompt":"a red fox","seed":42},"tenant":"tg:1","meta":{"charge":10}}'
check status 0 "$CQ" status "$jid";		has status "state +queued"
check status-json 0 "$CQ" status "$jid" --json
has status-json "\"job\":\"$jid\",\"state\":\"queued\",\"workflow\":\"smoke\",\"tenant\":\"tg:1\""
check status-missing 2 "$CQ" status nosuchjob;	has status-missing "no job nosuchjob"
check idem1 0 "$CQ" submit --workflow smoke --idempotency-key order-7 --json
has idem1 '"result":"created"'
idem=$(grep -oE '"job":"[a-z0-9]+"' "$tmp/out")
idem_jid=$(echo "$idem" | cut -d'"' -f4)
check idem2 0 "$CQ" submit --workflow smoke --idempotency-key order-7 --json
has idem2 "$idem,\"result\":\"existing\""
check idem-conflict 2 "$CQ" submit --workflow other --idempotency-key order-7
has idem-conflict "CONFLICT idempotency_key: order-7 was used for job"

# Cancel a queued job: exit 1 from status afterwards, refund recorded.
check cancel 0 "$CQ" cancel "$jid";		has cancel "canceled"
check status-canceled 1 "$CQ" status "$jid";	has status-canceled "refund +true"
check cancel-again 0 "$CQ" cancel "$jid";	has cancel-again "already ended: canceled"
check cancel-missing 2 "$CQ" cancel nosuchjob;	has cancel-missing "NOJOB"
eq refunds "$(RC XLEN "${P}refunds")" 1

check events 0 "$CQ" events --job "$jid"
has events "queued job=$jid"
has events "canceled job=$jid .*refund=true"
check events-json 0 "$CQ" events --json --count 1
has events-json '"type":"canceled".*"refund":true'
first=$(RC XRANGE "${P}events" - + COUNT 1 | head -1)
check events-from 0 "$CQ" events --from "$first"
eq events-from-count "$(wc -l <"$tmp/out")" $(( $(RC XLEN "${P}events") - 1 ))

# Slots and workers.
check slots-empty 0 "$CQ" slots;		has slots-empty "no pools"
check slots-set 0 "$CQ" slots set gpu0 2;	has slots-set "capacity 2"
check slots-zero 2 "$CQ" slots set gpu0 0;	has slots-zero "not in 1..256"
check slots-space 2 "$CQ" slots set "gpu 0" 1;	has slots-space "INVALID pool"
check slots 0 "$CQ" slots;			has slots "pool gpu0: 0/2 slots held"
check workers-none 0 "$CQ" workers;		has workers-none "no workers"
RC FCALL comfyq_register 1 "$P" w-test 60000 gpu0 0 0 host h1 >/dev/null
check workers 0 "$CQ" workers;			has workers "w-test +up .*pool gpu0"
check workers-json 0 "$CQ" workers --json
eq workers-json-beat-once "$(grep -o '"last_beat_ms"' "$tmp/out" | wc -l)" 1
has workers-json '"last_beat_ms":[0-9]+[,}]'
has workers-json '"started_ms":[0-9]+[,}]'
has workers-json '"jobs":0[,}]'
has workers-json '"host":"h1"'
check stats 0 "$CQ" stats --json
has stats '"queue":"'"$Q"'".*"counters":\{.*"enqueued":2'

# Text planted in Redis (enqueue refuses it) reaches the terminal escaped:
# no raw control byte, and a planted newline does not start a line.
esc=$'ok\e[2K\rjob=x succeeded'
ctl() {	# ctl NAME: the last output holds no control byte but line ends
	if LC_ALL=C grep -qaP '[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]' "$tmp/out"
	then bad "$1: raw control bytes"; od -c "$tmp/out" | head -20
	else ok; fi
}
RC HSET "${P}job:planted" state failed tenant "$esc" error_code x \
	error $'line1\nline2\xc2\x9b\xff' refund 1 worker $'w\e]0;t\a' >/dev/null
RC XADD "${P}events" '*' type failed job planted tenant "$esc" \
	error $'a\nb' refund true >/dev/null
RC HSET "${P}worker:w-test" host $'h\e[31mred Ёлка' >/dev/null
RC HINCRBY "${P}stats" $'bad\ekey' 1 >/dev/null
check planted-status 1 "$CQ" status planted;	ctl planted-status
hasf planted-status 'tenant    ok\x1b[2K\x0djob=x succeeded'
hasf planted-status 'error     [x] line1\x0aline2\xc2\x9b\xff'
hasf planted-status 'worker    w\x1b]0;t\x07 (pool ?)'
has planted-status '^refund +true$'
eq planted-status-lines "$(wc -l <"$tmp/out")" 9
check planted-status-json 1 "$CQ" status planted --json
hasf planted-status-json '"tenant":"ok\u001b[2K\rjob=x succeeded"'
hasf planted-status-json '"refund":true'
check planted-events 0 "$CQ" events --count 1;	ctl planted-events
hasf planted-events 'tenant="ok\x1b[2K\x0djob=x succeeded" error=a\x0ab refund=true'
eq planted-events-lines "$(wc -l <"$tmp/out")" 1
check planted-workers 0 "$CQ" workers;		ctl planted-workers
hasf planted-workers 'host h\x1b[31mred Ёлка'
check planted-stats 0 "$CQ" stats;		ctl planted-stats
hasf planted-stats 'bad\x1bkey'
RC HSET "${P}held:gpu0" $'j\e[1m' $'w\ex 5 99999999999999 0' >/dev/null
check planted-slots 0 "$CQ" slots;		ctl planted-slots
hasf planted-slots 'j\x1b[1m'
hasf planted-slots 'worker w\x1bx'
RC DEL "${P}held:gpu0" >/dev/null
RC HSET "${P}job:planted" refund true >/dev/null
check planted-refund-true 1 "$CQ" status planted; has planted-refund-true '^refund +true$'
RC HSET "${P}job:planted" refund 0 >/dev/null
check planted-refund-0 1 "$CQ" status planted;	has planted-refund-0 '^refund +false$'
check planted-refund-0-json 1 "$CQ" status planted --json
has planted-refund-0-json '"refund":false'
RC DEL "${P}job:planted" >/dev/null
RC HSET "${P}worker:w-test" host h1 >/dev/null

# --wait follows a job to its end; a stand-in worker drives it.
"$CQ" cancel "$idem_jid" >/dev/null	# nothing else may be queued
drive() {	# drive OUTCOME: claim the next job, report progress, end it
	local r jid fence i
	for i in $(seq 1 100); do
		r=$(RC FCALL comfyq_claim 1 "$P" w-test gpu0 30000)
		[ "$(echo "$r" | head -1)" = job ] && break
		sleep 0.05
	done
	jid=$(echo "$r" | sed -n 2p); fence=$(echo "$r" | sed -n 3p)
	RC FCALL comfyq_progress 1 "$P" "$jid" "$fence" 10 20 3 >/dev/null
	if [ "$1" = ok ]; then
		RC FCALL comfyq_complete 1 "$P" "$jid" "$fence" \
			'[{"path":"/out/x.png","mime":"image/png","width":64,"height":64,"bytes":1234}]' >/dev/null
	else
		RC FCALL comfyq_fail 1 "$P" "$jid" "$fence" output_invalid "black image" 0 >/dev/null
	fi
}
drive ok & dp=$!
check wait-ok 0 timeout 60 "$CQ" submit --workflow smoke --wait;	wait $dp
has wait-ok "state +succeeded"
has wait-ok "output +/out/x.png image/png 64x64 1234 bytes"
drive fail & dp=$!
check wait-fail 1 timeout 60 "$CQ" submit --workflow smoke --wait --json
wait $dp
has wait-fail '"state":"failed".*"error_code":"output_invalid","error":"black image","refund":true'

# --webhook-progress asks for progress webhooks (webhook_progress 1).
check submit-progress 0 "$CQ" submit --workflow smoke \
	--webhook https://bot.example/hook --webhook-progress
pjid=$(cat "$tmp/out")
eq spec-progress "$(RC HGET "${P}job:$pjid" spec)" \
	'{"workflow":"smoke","webhook":"https://bot.example/hook","webhook_progress":true}'
eq job-progress "$(RC HGET "${P}job:$pjid" webhook_progress)" 1
eq job-no-progress "$(RC HGET "${P}job:$jid" webhook_progress)" 0

# A template's VRAM estimate travels as the enqueue option vram_mb, and the
# stored spec is the one sent: the same spec and key from another producer
# (a plain FCALL) is the same job, not a CONFLICT.
W="$(cd "$(dirname "$0")/../.." && pwd)/workflows"
check vram-submit 0 "$CQ" submit --workflows "$W" --workflow sdxl_txt2img \
	--param prompt=fox --idempotency-key vram-1
vjid=$(cat "$tmp/out")
vspec='{"workflow":"sdxl_txt2img","params":{"prompt":"fox"},"idempotency_key":"vram-1"}'
eq vram-spec-as-sent "$(RC HGET "${P}job:$vjid" spec)" "$vspec"
[ "$(RC HGET "${P}job:$vjid" vram_mb)" -gt 0 ] && ok ||
	bad "vram-estimate: job vram_mb is '$(RC HGET "${P}job:$vjid" vram_mb)'"
eq vram-same-job "$(RC FCALL comfyq_enqueue 1 "$P" "$vspec" | head -2 | tr '\n' ' ')" \
	"$vjid existing "

finish
