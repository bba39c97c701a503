#!/usr/bin/env bash
# comfyq-scheduler end to end with curl: a real redis-server, the
# scheduler, and for `run` comfyq-sim and a worker. Asserts status codes,
# JSON bodies, headers, Redis state and bytes.
#   scheduler.sh BIN_DIR GROUP     GROUP: http jobs run ready hooks comfy kill9
set -u
BIN=$1
GROUP=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-sched.XXXXXX")
. "$ROOT/tests/lib/stack.sh"
trap stack_cleanup EXIT

TG_SECRET=tg-secret-0123456789
ADMIN_SECRET=admin-secret-0123456789
TOKENS="bot:tg::$TG_SECRET,admin:*:$ADMIN_SECRET"
TG="Authorization: Bearer $TG_SECRET"
ADMIN="Authorization: Bearer $ADMIN_SECRET"

# sched_start [ARGS...]: a scheduler on a free port: $SPID, $S (its URL).
sched_start() {
	: >"$T/sched.log"
	"$BIN/comfyq-scheduler" --redis-url "$COMFYQ_TEST_REDIS_URL" \
		--queue "$Q" --listen 127.0.0.1:0 --output-dir "$T/out" \
		--workflows-dir "$ROOT/workflows" --log-level verbose "$@" \
		>>"$T/sched.log" 2>&1 &
	SPID=$!
	PIDS+=("$SPID")
	if ! wait_until 20 grep -q "listening on" "$T/sched.log"; then
		bad "the scheduler did not start"
		exit 1
	fi
	S="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$T/sched.log" | head -1)"
	wait_until 20 curl -sf "$S/readyz" || bad "the scheduler is not ready"
}
sched_stop() { stop "$SPID"; }

# req METHOD PATH [CURL ARGS...]: $CODE, the body in $T/body (and $BODY),
# the headers in $T/headers.
req() {
	local m=$1 p=$2
	shift 2
	CODE=$(curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' \
		-X "$m" "$@" "$S$p")
	BODY=$(cat "$T/body")
}
post() {	# post PATH JSON [CURL ARGS...]
	local p=$1 d=$2
	shift 2
	req POST "$p" -H 'Content-Type: application/json' --data-binary "$d" "$@"
}
js() { echo "$BODY" | jq -r "$@"; }
# raw TEXT: TEXT (printf %b) as it is on one connection to $S; what comes
# back until the scheduler closes it, in $T/raw.
raw() {
	timeout 10 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "%b" "$2" >&3 &&
		cat <&3' _ "${S##*:}" "$1" >"$T/raw" 2>/dev/null
}
raw_codes() { grep -a '^HTTP/1\.1 ' "$T/raw" | cut -d' ' -f2 | paste -sd' ' -; }
header() { grep -i "^$1:" "$T/headers" | cut -d' ' -f2- | tr -d '\r'; }
code_is() { eq "$1" "$CODE" "$2"; }
err_is() {	# err_is NAME STATUS CODE: the status and a JSON error body
	eq "$1 status" "$CODE" "$2"
	eq "$1 error code" "$(js .error.code)" "$3"
	eq "$1 content type" "$(header Content-Type)" application/json
}
smoke_spec='{"workflow":"smoke_invert","params":{"width":256,"height":128}}'

case "$GROUP" in
http)
	printf 'tokens = %s\nbody-max-bytes = 4096\n' "$TOKENS" >"$T/s.conf"
	sched_start --config "$T/s.conf"
	req GET /healthz
	code_is "healthz without a token" 200
	eq "healthz" "$(js .status)" ok
	req GET /readyz
	code_is "readyz" 200
	eq "readyz library" "$(js .library)" "$(RC FCALL_RO comfyq_version 0)"
	req GET /v1/openapi.json
	code_is "openapi" 200
	eq "openapi version" "$(js .openapi)" 3.0.3
	req GET /v1/nope -H "$ADMIN"
	err_is "unknown route" 404 not_found
	req PUT /v1/jobs -H "$ADMIN"
	err_is "wrong method" 405 method_not_allowed
	eq "Allow" "$(header Allow)" "POST, GET"
	req DELETE /v1/stats -H "$ADMIN"
	err_is "DELETE stats" 405 method_not_allowed
	eq "Allow of stats" "$(header Allow)" GET
	req GET /v1/jobs/%2e%2e%2f -H "$ADMIN"
	err_is "a job id with path characters" 404 not_found
	req GET /v1/jobs/..%2f..%2fetc -H "$ADMIN"
	err_is "a job id with dots" 404 not_found
	req GET /v1/jobs/ABC -H "$ADMIN"
	err_is "a job id in capitals" 404 not_found
	req GET "/v1/jobs/$(printf 'a%.0s' $(seq 65))" -H "$ADMIN"
	err_is "a job id of 65 bytes" 404 not_found
	# Tokens.
	req GET /v1/stats
	err_is "no token" 401 unauthorized
	eq "WWW-Authenticate" "$(header WWW-Authenticate)" Bearer
	req GET /v1/stats -H "Authorization: Bearer ${TG_SECRET}x"
	err_is "a wrong token" 401 unauthorized
	req GET /v1/stats -H "Authorization: Bearer ${TG_SECRET%?}"
	err_is "a token cut short" 401 unauthorized
	req GET /v1/stats -H "$TG"
	code_is "a good token" 200
	# Bodies.
	req POST /v1/jobs -H "$ADMIN" -H 'Content-Type: text/plain' --data-binary "$smoke_spec"
	err_is "wrong content type" 415 unsupported_media_type
	req POST /v1/jobs -H "$ADMIN" --data-binary "$smoke_spec"
	err_is "no content type (curl's form type)" 415 unsupported_media_type
	post /v1/jobs '{"workflow": "smoke_invert",' -H "$ADMIN"
	err_is "malformed JSON" 400 invalid_json
	post /v1/jobs '' -H "$ADMIN"
	err_is "an empty body" 400 invalid_json
	# Limits and heads evhttp cannot read: the connection guard answers
	# them with the JSON error before evhttp reads any of it.
	big=$(head -c 5000 /dev/zero | tr '\0' 'a')
	printf '{"workflow":"smoke_invert","meta":{"x":"%s"}}' "$big" >"$T/big.json"
	{ printf '{"workflow":"smoke_invert","meta":{"x":"'
	  head -c 8000000 /dev/zero | tr '\0' 'a'; printf '"}}'; } >"$T/huge.json"
	post /v1/jobs "@$T/big.json" -H "$ADMIN" -H 'Expect:'
	err_is "an oversize body, sent" 413 payload_too_large
	eq "its message" "$(js .error.message)" "the body is over body-max-bytes (4096 bytes)"
	eq "then the connection closes" "$(header Connection)" close
	post /v1/jobs "@$T/huge.json" -H "$ADMIN" -H 'Expect:'
	err_is "an 8 MB body, sent without waiting" 413 payload_too_large
	out=$(curl -s -o "$T/body" -D "$T/headers" -w '%{http_code} %{size_upload}' \
		-H "$ADMIN" -H 'Content-Type: application/json' \
		-H 'Expect: 100-continue' --data-binary "@$T/huge.json" "$S/v1/jobs")
	CODE=${out% *}
	BODY=$(cat "$T/body")
	err_is "an oversize body with Expect: 100-continue" 413 payload_too_large
	eq "its body never sent" "${out#* }" 0
	post /v1/jobs "@$T/big.json" -H "$ADMIN" -H 'Transfer-Encoding: chunked'
	err_is "an oversize chunked body" 413 payload_too_large
	eq "nothing queued by the oversize bodies" "$(RC ZCARD "${P}ready:normal")" 0
	req GET /v1/stats -H "$ADMIN" -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' 'b')"
	err_is "oversize headers" 431 headers_too_large
	req BREW /v1/jobs -H "$ADMIN"
	err_is "an unknown method" 501 not_implemented
	raw 'POST /v1/jobs HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}'
	eq "two Content-Length headers" "$(raw_codes)" 400
	grep -qa '"code":"bad_request"' "$T/raw" && ok || bad "two Content-Length: JSON"
	raw 'GET http://[::1/healthz HTTP/1.1\r\n\r\n'
	eq "a target libevent cannot parse" "$(raw_codes)" 400
	grep -qa '"code":"bad_request"' "$T/raw" && ok || bad "a bad target: JSON"
	raw 'GET http://127.0.0.1/healthz HTTP/1.1\r\nConnection: close\r\n\r\n'
	eq "an absolute-form target" "$(raw_codes)" 200
	grep -q 'http: POST /v1/jobs 413 (guard: the body is over' "$T/sched.log" &&
		ok || bad "the guard's answer is logged"
	# Keep-alive and pipelining through the guard: bodies go on whole
	# and the next head is read after them.
	out=$(curl -s -o /dev/null -w '%{http_code}:%{num_connects} ' "$S/healthz" \
		-o /dev/null "$S/readyz" -o /dev/null "$S/healthz" --next \
		-o /dev/null -w '%{http_code}:%{num_connects} ' -H "$ADMIN" \
		-H 'Content-Type: application/json' --data-binary '{"workflow":"nope"}' \
		"$S/v1/jobs" --next -o /dev/null -w '%{http_code}:%{num_connects}' "$S/healthz")
	eq "a keep-alive sequence on one connection" "$out" "200:1 200:0 200:0 400:0 200:0"
	g='GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n'
	raw "$g$g"'POST /v1/jobs HTTP/1.1\r\n'"$ADMIN"'\r\nContent-Type: application/json\r\nContent-Length: 19\r\n\r\n{"workflow":"nope"}'"$g"'GET /readyz HTTP/1.1\r\nConnection: close\r\n\r\n'
	eq "pipelined requests" "$(raw_codes)" "200 200 400 200 200"
	raw "$g"'POST /v1/jobs HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 99999\r\n\r\n'"$big"
	eq "pipelined, then an oversize body" "$(raw_codes)" "200 413"
	grep -qa '"code":"payload_too_large"' "$T/raw" && ok || bad "pipelined 413: JSON"
	req GET "/v1/stats?x=$(head -c 5000 /dev/zero | tr '\0' 'c')" -H "$ADMIN"
	err_is "an oversize URL" 414 uri_too_long
	CODE=$(curl -s -N --max-time 2 -o "$T/sse" -D "$T/headers" -w '%{http_code}' \
		-H "$ADMIN" "$S/v1/events")
	eq "the events stream answers" "$CODE" 200
	eq "as an event stream" "$(header Content-Type)" text/event-stream
	req GET /v1/events -H "$TG" -G --data-urlencode tenant=web:1
	err_is "another tenant's events" 403 forbidden
	req GET /metrics
	code_is "metrics" 200
	grep -q '^comfyq_redis_up 1$' "$T/body" && ok || bad "metrics: redis up"
	grep -q '^comfyq_http_requests_total{route="/v1/stats",status="401"} [1-9]' "$T/body" &&
		ok || bad "metrics: requests by route and status"
	grep -q '^comfyq_http_requests_total{route="(guard)",status="413"} [4-9]' "$T/body" &&
		ok || bad "metrics: the guard's answers"
	# CORS is off by default; SIGHUP turns it on and changes the tokens.
	req GET /healthz -H 'Origin: https://bot.example'
	eq "no CORS header" "$(header Access-Control-Allow-Origin)" ""
	req OPTIONS /v1/jobs -H 'Origin: https://bot.example'
	err_is "preflight without CORS" 405 method_not_allowed
	printf 'tokens = admin:*:%s\ncors-origin = https://bot.example\nbody-max-bytes = 8192\nheader-max-bytes = 2048\n' \
		"$ADMIN_SECRET" >"$T/s.conf"
	kill -HUP "$SPID"
	wait_until 5 grep -q "reload: settings re-read (1 tokens)" "$T/sched.log" &&
		ok || bad "no reload logged"
	req GET /v1/stats -H "$TG"
	err_is "a token removed by the reload" 401 unauthorized
	req GET /v1/stats -H "$ADMIN"
	code_is "a token kept by the reload" 200
	eq "CORS origin" "$(header Access-Control-Allow-Origin)" https://bot.example
	req OPTIONS /v1/jobs/abc -H 'Origin: https://bot.example'
	code_is "preflight" 204
	eq "preflight methods" "$(header Access-Control-Allow-Methods)" "GET, DELETE"
	# The reload reached the guard: 5000 bytes are under the new limit.
	post /v1/jobs "{\"workflow\":\"nope\",\"meta\":{\"x\":\"$big\"}}" -H "$ADMIN"
	err_is "a body under the reloaded limit" 400 unknown_workflow
	post /v1/jobs "{\"workflow\":\"nope\",\"meta\":{\"x\":\"$big$big\"}}" -H "$ADMIN" -H 'Expect:'
	err_is "a body over the reloaded limit" 413 payload_too_large
	eq "the reloaded limit" "$(js .error.message)" "the body is over body-max-bytes (8192 bytes)"
	eq "the guard's answer has CORS" "$(header Access-Control-Allow-Origin)" https://bot.example
	req GET /v1/stats -H "$ADMIN" -H "X-Big: $(head -c 3000 /dev/zero | tr '\0' 'b')"
	err_is "headers over the reloaded limit" 431 headers_too_large
	printf 'tokens = broken\n' >"$T/s.conf"
	kill -HUP "$SPID"
	wait_until 5 grep -q "reload: tokens: .*settings unchanged" "$T/sched.log" &&
		ok || bad "a bad reload was not refused"
	req GET /v1/stats -H "$ADMIN"
	code_is "tokens after a refused reload" 200
	# SIGTERM: a clean stop.
	kill "$SPID"
	wait_until 10 sh -c "! kill -0 $SPID" && ok || bad "no stop on SIGTERM"
	wait "$SPID"
	eq "exit status" "$?" 0
	grep -q "stopped" "$T/sched.log" && ok || bad "no stop logged"
	# Open without tokens, with a warning.
	sched_start
	grep -q "tokens is empty: the API is open" "$T/sched.log" && ok ||
		bad "no warning for an open API"
	req GET /v1/stats
	code_is "open API" 200
	;;
jobs)
	sched_start --tokens "$TOKENS"
	# Field-level errors, checked before anything is written.
	post /v1/jobs '{"workflow":"sdxl_txt2img","params":{"prompt":"x","steps":150}}' -H "$ADMIN"
	err_is "steps=150" 400 invalid_input
	eq "steps field" "$(js '.error.fields[0].field')" params.steps
	eq "steps message" "$(js '.error.fields[0].message')" "150 not in 1..60"
	post /v1/jobs '{"workflow":"sdxl_txt2img","params":{"steps":4}}' -H "$ADMIN"
	err_is "a required param" 400 invalid_input
	eq "required field" "$(js '.error.fields[0].field')" params.prompt
	post /v1/jobs '{"workflow":"sdxl_txt2img","params":{"prompt":"x"},"priority":"urgent"}' -H "$ADMIN"
	err_is "priority" 400 invalid_input
	eq "priority field" "$(js '.error.fields[0].field')" priority
	post /v1/jobs '{"workflow":"sdxl_txt2img","params":{"prompt":"x"},"loras":["a:99"]}' -H "$ADMIN"
	err_is "a LoRA weight" 400 invalid_input
	eq "LoRA field" "$(js '.error.fields[0].field')" 'loras[0]'
	post /v1/jobs '{"workflow":"smoke_invert","inputs":{"nope":"aGk="}}' -H "$ADMIN"
	err_is "an input the template does not take" 400 invalid_input
	eq "input field" "$(js '.error.fields[0].field')" inputs.nope
	post /v1/jobs '{"workflow":"no_such_flow"}' -H "$ADMIN"
	err_is "unknown workflow" 400 unknown_workflow
	eq "workflow field" "$(js '.error.fields[0].field')" workflow
	post /v1/jobs '{"workflow":"smoke_invert","bogus":1}' -H "$ADMIN"
	err_is "unknown field" 400 invalid_input
	eq "nothing queued by bad specs" "$(RC ZCARD "${P}ready:normal")" 0
	eq "no job records" "$(RC --scan --pattern "${P}job:*" | wc -l)" 0
	# Tenants: the tg token submits for tg:* only; none given is its prefix.
	post /v1/jobs '{"workflow":"smoke_invert","tenant":"web:1"}' -H "$TG"
	err_is "a tenant out of scope" 403 forbidden
	post /v1/jobs '{"workflow":"smoke_invert","tenant":"tg:42"}' -H "$TG"
	code_is "a tenant in scope" 201
	tgjob=$(js .id)
	eq "created state" "$(js .state)" queued
	eq "created position" "$(js .position)" 1
	post /v1/jobs '{"workflow":"smoke_invert"}' -H "$TG"
	code_is "no tenant" 201
	eq "tenant from the token" "$(field "$(js .id)" tenant)" "tg:"
	post /v1/jobs '{"workflow":"smoke_invert","tenant":"web:7"}' -H "$ADMIN"
	code_is "admin for any tenant" 201
	webjob=$(js .id)
	req GET "/v1/jobs/$webjob" -H "$TG"
	err_is "another tenant's job" 404 not_found
	req DELETE "/v1/jobs/$webjob" -H "$TG"
	err_is "cancel of another tenant's job" 404 not_found
	eq "not canceled" "$(state "$webjob")" queued
	req GET "/v1/jobs/$tgjob" -H "$TG"
	code_is "own job" 200
	eq "own job tenant" "$(js .tenant)" tg:42
	eq "own job position" "$(js .position)" 1
	eq "own job workflow" "$(js .workflow)" smoke_invert
	# Positions over lanes: a high job goes before the normal ones.
	post /v1/jobs '{"workflow":"smoke_invert","priority":"high","tenant":"web:8"}' -H "$ADMIN"
	hi=$(js .id)
	eq "high position" "$(js .position)" 1
	req GET "/v1/jobs/$webjob" -H "$ADMIN"
	eq "normal after high" "$(js .position)" 4
	# Idempotency on the parsed spec: key order and spacing do not matter.
	post /v1/jobs '{"workflow":"smoke_invert","params":{"width":64,"height":32},"tenant":"web:9","idempotency_key":"order-7"}' -H "$ADMIN"
	code_is "first with a key" 201
	idem=$(js .id)
	post /v1/jobs '{ "idempotency_key" : "order-7",
	  "tenant":"web:9", "params": {"height":32, "width":64.0},
	  "workflow":"smoke_invert" }' -H "$ADMIN"
	code_is "replay" 200
	eq "replay id" "$(js .id)" "$idem"
	eq "replay is the whole job" "$(js .tenant)" web:9
	post /v1/jobs '{"workflow":"smoke_invert","params":{"width":64,"height":32},"tenant":"web:9"}' \
		-H "$ADMIN" -H 'Idempotency-Key: order-7'
	code_is "the key as a header" 200
	eq "header replay id" "$(js .id)" "$idem"
	# A template's VRAM estimate goes as the enqueue option vram_mb: the
	# stored spec is the body, so the same spec and key sent by another
	# producer (FCALL) is the same job, not a conflict.
	vspec='{"workflow":"sdxl_txt2img","params":{"prompt":"fox"},"tenant":"web:9","idempotency_key":"vram-7"}'
	post /v1/jobs "$vspec" -H "$ADMIN"
	code_is "template job" 201
	vj=$(js .id)
	eq "stored spec as sent" "$(RC HGET "${P}job:$vj" spec)" "$vspec"
	[ "$(RC HGET "${P}job:$vj" vram_mb)" -gt 0 ] && ok ||
		bad "vram_mb of $vj: '$(RC HGET "${P}job:$vj" vram_mb)'"
	eq "the same job through FCALL" \
		"$(RC FCALL comfyq_enqueue 1 "$P" "$vspec" | head -2 | tr '\n' ' ')" "$vj existing "
	eq "cancel it" "$(RC FCALL comfyq_cancel 1 "$P" "$vj")" canceled
	post /v1/jobs '{"workflow":"smoke_invert","params":{"width":65},"tenant":"web:9","idempotency_key":"order-7"}' -H "$ADMIN"
	err_is "the key with another spec" 409 conflict
	post /v1/jobs '{"workflow":"smoke_invert","idempotency_key":"a"}' \
		-H "$ADMIN" -H 'Idempotency-Key: b'
	err_is "header and field differ" 400 invalid_input
	eq "idempotency field" "$(js '.error.fields[0].field')" idempotency_key
	# Cancel: queued, then again, then unknown.
	refunds0=$(RC XLEN "${P}refunds")
	req DELETE "/v1/jobs/$hi" -H "$ADMIN"
	code_is "cancel queued" 200
	eq "canceled" "$(js .state)" canceled
	eq "refund" "$(js .refund)" true
	eq "record canceled" "$(state "$hi")" canceled
	eq "one refund entry" "$(RC XLEN "${P}refunds")" $((refunds0 + 1))
	req DELETE "/v1/jobs/$hi" -H "$ADMIN"
	err_is "cancel terminal" 409 already_ended
	req DELETE /v1/jobs/nosuchjob0 -H "$ADMIN"
	err_is "cancel unknown" 404 not_found
	req GET /v1/jobs/nosuchjob0 -H "$ADMIN"
	err_is "get unknown" 404 not_found
	req GET "/v1/jobs/$hi" -H "$ADMIN"
	eq "canceled job error" "$(js .error.code)" canceled
	eq "canceled job refund" "$(js .refund)" true
	eq "no position once ended" "$(js .position)" null
	# The checkpoint a template job loads, for model-aware claiming.
	post /v1/jobs '{"workflow":"sdxl_txt2img","params":{"prompt":"x","checkpoint":"sd_xl_refiner_1.0.safetensors"}}' -H "$ADMIN"
	code_is "a txt2img job" 201
	eq "its checkpoint key" "$(field "$(js .id)" model)" sd_xl_refiner_1.0.safetensors
	# Backpressure: at max-queue-depth, 503 with Retry-After.
	sched_stop
	n=$(( $(RC ZCARD "${P}ready:high") + $(RC ZCARD "${P}ready:normal") + $(RC ZCARD "${P}ready:low") ))
	sched_start --tokens "$TOKENS" --max-queue-depth "$n" --retry-after-s 7
	post /v1/jobs '{"workflow":"smoke_invert","tenant":"web:1"}' -H "$ADMIN"
	err_is "a full queue" 503 queue_full
	eq "Retry-After" "$(header Retry-After)" 7
	eq "nothing queued when full" "$(( $(RC ZCARD "${P}ready:normal") + $(RC ZCARD "${P}ready:high") ))" "$n"
	req DELETE "/v1/jobs/$webjob" -H "$ADMIN"
	post /v1/jobs '{"workflow":"smoke_invert","tenant":"web:1"}' -H "$ADMIN"
	code_is "room again" 201
	# Every independent error of the params at once, the first as message.
	post /v1/jobs '{"workflow":"sdxl_txt2img","params":{"prompt":"x","steps":150,"width":7,"bogus":1}}' -H "$ADMIN"
	err_is "three bad params" 400 invalid_input
	eq "three fields" "$(js '.error.fields | length')" 3
	eq "message is the first" "$(js .error.message)" "bogus: unknown parameter (see comfyq workflows show sdxl_txt2img)"
	eq "unknown param field" "$(js '.error.fields[0].field')" params.bogus
	eq "steps field of three" "$(js '.error.fields[1].field')" params.steps
	eq "steps message of three" "$(js '.error.fields[1].message')" "150 not in 1..60"
	eq "width field" "$(js '.error.fields[2].field')" params.width
	eq "width message" "$(js '.error.fields[2].message')" "7 not in 512..2048"
	post /v1/jobs '{"workflow":"sdxl_txt2img","params":{"prompt":"x","steps":150},"loras":["a:1",{"name":"b","strength_model":"x"}]}' -H "$ADMIN"
	err_is "a LoRA and a param" 400 invalid_input
	eq "LoRA entry field" "$(js '.error.fields[0].field')" 'loras[1].strength_model'
	eq "param after the LoRA" "$(js '.error.fields[1].field')" params.steps
	;;
run)
	sim_start sim --step-ms 50 --model-load-ms 0 || exit 1
	PIDS+=("$SIM_PID")
	worker_start w1
	PIDS+=("$WPID")
	sched_start
	wait_until 20 grep -q "registered as" "$T/w1.log" || bad "worker not up"
	post /v1/jobs "$smoke_spec"
	code_is "submit" 201
	j=$(js .id)
	await "$j" succeeded 30
	req GET "/v1/jobs/$j"
	code_is "get succeeded" 200
	eq "state" "$(js .state)" succeeded
	eq "refund" "$(js .refund)" false
	eq "attempt" "$(js .attempt)" 1
	eq "outputs" "$(js '.outputs | length')" 1
	eq "output url" "$(js '.outputs[0].url')" "/v1/jobs/$j/outputs/0"
	eq "no store path shown" "$(js '.outputs[0].path')" null
	[ "$(js .finished_ms)" -ge "$(js .created_ms)" ] && ok || bad "times"
	path=$(CQ status "$j" --json | jq -r '.outputs[0].path')
	req GET "/v1/jobs/$j/outputs/0" -o "$T/out.png"
	code_is "output" 200
	eq "output type" "$(header Content-Type)" image/png
	eq "output length" "$(header Content-Length)" "$(stat -c %s "$path")"
	cmp -s "$T/body" "$path" && ok || bad "output bytes differ from the store"
	eq "PNG magic" "$(head -c 8 "$T/body" | od -An -tx1 | tr -d ' \n')" 89504e470d0a1a0a
	req GET "/v1/jobs/$j/outputs/0?thumb=64"
	code_is "thumb" 200
	eq "thumb type" "$(header Content-Type)" image/jpeg
	eq "JPEG magic" "$(head -c 3 "$T/body" | od -An -tx1 | tr -d ' \n')" ffd8ff
	eq "thumb length" "$(header Content-Length)" "$(stat -c %s "$T/body")"
	size=$(python3 - "$T/body" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read()
i = 2
while i < len(b):
    m, l = b[i + 1], struct.unpack('>H', b[i + 2:i + 4])[0]
    if m in (0xc0, 0xc1, 0xc2):
        h, w = struct.unpack('>HH', b[i + 5:i + 9])
        print('%dx%d' % (w, h))
        break
    i += 2 + l
PY
)
	eq "thumb fits 64" "$size" 64x32
	req GET "/v1/jobs/$j/outputs/0?thumb=512"
	code_is "thumb 512" 200
	req GET "/v1/jobs/$j/outputs/0?thumb=zz"
	err_is "a bad thumb" 400 invalid_input
	req GET "/v1/jobs/$j/outputs/1"
	err_is "no such output" 404 not_found
	# A record that names a file outside the store is not followed.
	ln -s /etc/passwd "$T/out/$j/link.png"
	RC HSET "${P}job:$j" outputs "[{\"path\":\"$T/out/$j/link.png\",\"mime\":\"image/png\"},{\"path\":\"/etc/passwd\",\"mime\":\"text/plain\"},{\"path\":\"$T/out/$j/../../etc/x\"}]" >/dev/null
	for n in 0 1 2; do
		req GET "/v1/jobs/$j/outputs/$n"
		err_is "escaping output $n" 404 not_found
	done
	# Cancel a running job, then the terminal one.
	post /v1/jobs '{"workflow":"sdxl_txt2img","params":{"prompt":"x","steps":60}}'
	k=$(js .id)
	wait_until 20 is_state "$k" active || bad "never active"
	wait_until 10 sh -c "redis-cli -p $RPORT HGET '${P}job:$k' progress | grep -q /" || true
	req DELETE "/v1/jobs/$k"
	code_is "cancel running" 202
	eq "cancel requested" "$(js .cancel_requested)" true
	await "$k" canceled 30
	req DELETE "/v1/jobs/$k"
	err_is "cancel ended" 409 already_ended
	# The views match the CLI's.
	req GET /v1/stats
	eq "stats" "$(js -c '{ready, delayed, active, finished, counters}' | jq -S -c .)" \
		"$(CQ stats --json | jq -S -c '{ready, delayed, active, finished, counters}')"
	req GET /v1/workers
	eq "workers" "$(js -c '[.[] | {worker, state, pool, host}]')" \
		"$(CQ workers --json | jq -c '[.[] | {worker, state, pool, host}]')"
	req GET /v1/pools
	eq "pools" "$(js -c '[.[] | {pool, capacity, used}]')" \
		"$(CQ slots --json | jq -c '[.[] | {pool, capacity, used}]')"
	eq "one pool" "$(js 'length')" 1
	req GET /v1/workflows
	eq "workflows" "$(js -r '.[].name' | sort | tr '\n' ' ')" \
		"$(ls "$ROOT/workflows" | sed -n 's/\.json$//p' | sort | tr '\n' ' ')"
	req GET /v1/workflows/smoke_invert
	eq "workflow params" "$(js -c '[.params[].name]')" '["width","height","color","batch_size"]'
	req GET /v1/workflows/nope
	err_is "unknown template" 404 not_found
	# A job's events, live: queued to succeeded, then the stream ends
	# (10 steps of 50 ms: the stream attaches while it runs).
	post /v1/jobs '{"workflow":"sdxl_txt2img","params":{"prompt":"x","steps":10}}'
	e=$(js .id)
	timeout 30 curl -s -N "$S/v1/jobs/$e/events" >"$T/events" &
	cpid=$!
	await "$e" succeeded 30
	wait_until 10 sh -c "! kill -0 $cpid 2>/dev/null" && ok || bad "the stream did not end after the terminal event"
	types=$(sed -n 's/^event: //p' "$T/events" | tr '\n' ' ')
	eq "first event" "$(echo "$types" | cut -d' ' -f1)" queued
	eq "last event" "$(echo "$types" | awk '{print $NF}')" succeeded
	echo "$types" | grep -q 'started' && ok || bad "no started event: $types"
	echo "$types" | grep -q 'progress' && ok || bad "no progress event: $types"
	eq "one terminal event" "$(grep -c '^event: succeeded$' "$T/events")" 1
	eq "event ids are the stream's" "$(sed -n 's/^id: //p' "$T/events" | tail -1)" \
		"$(RC HGET "${P}job:$e" end_id)"
	# Resume after the terminal event: nothing more (204).
	req GET "/v1/jobs/$e/events" -H "Last-Event-ID: $(RC HGET "${P}job:$e" end_id)"
	code_is "resume after the end" 204
	req GET /metrics
	eq "metrics: succeeded" "$(sed -n 's/^comfyq_jobs_total{event="succeeded"} //p' "$T/body")" \
		"$(RC HGET "${P}stats" succeeded)"
	;;
ready)
	sched_start
	req GET /readyz
	code_is "ready" 200
	kill "$REDIS_PID"
	wait_until 10 sh -c "! kill -0 $REDIS_PID" || bad "redis did not stop"
	wait_until 10 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $S/readyz)\" = 503 ]" &&
		ok || bad "readyz not 503 with Redis down"
	req GET /readyz
	err_is "readyz down" 503 not_ready
	req GET /v1/stats
	err_is "stats with Redis down" 503 unavailable
	post /v1/jobs "$smoke_spec"
	err_is "submit with Redis down" 503 unavailable
	req GET /healthz
	code_is "healthz with Redis down" 200
	redis-server "$COMFYQ_TEST_REDIS_CONF" >/dev/null 2>&1
	wait_until 20 curl -sf "$S/readyz" && ok || bad "readyz not back"
	post /v1/jobs "$smoke_spec"
	code_is "submit after Redis came back" 201
	;;
hooks)
	# The program's webhook engine end to end: a receiver that answers
	# 500 once and then 200, a job that really runs, a signature checked
	# here with Python's own hmac.
	cat >"$T/recv.py" <<'PY'
import http.server, sys, os, time
d = sys.argv[1]
n = [0]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        n[0] += 1
        with open(os.path.join(d, 'at%d' % n[0]), 'w') as f:
            f.write('%d\n' % int(time.time() * 1000))
        with open(os.path.join(d, 'hook%d' % n[0]), 'wb') as f:
            f.write(('%s\n%s\n%s\n' % (self.headers['webhook-id'],
                self.headers['webhook-timestamp'],
                self.headers['webhook-signature'])).encode() + body)
        self.send_response(500 if n[0] == 1 else 200)
        self.send_header('Content-Length', '0')
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
open(os.path.join(d, 'port'), 'w').write(str(s.server_port))
s.serve_forever()
PY
	mkdir -p "$T/hooks"
	python3 "$T/recv.py" "$T/hooks" &
	PIDS+=("$!")
	wait_until 10 test -s "$T/hooks/port" || bad "receiver not up"
	hook="http://127.0.0.1:$(cat "$T/hooks/port")/hook"
	sim_start sim --step-ms 20 --model-load-ms 0 || exit 1
	PIDS+=("$SIM_PID")
	worker_start w1 --progress-min-ms 0
	PIDS+=("$WPID")
	secret=hook-secret-0123456789
	sched_start --webhook-secret "$secret" --webhook-allow-private true \
		--webhook-retry-base-ms 100 --webhook-retry-max-ms 200 \
		--webhook-progress-interval-ms 300
	post /v1/jobs "{\"workflow\":\"smoke_invert\",\"webhook\":\"$hook\",\"meta\":{\"charge\":10}}"
	code_is "submit with a webhook" 201
	j=$(js .id)
	await "$j" succeeded 30
	wait_until 20 test -s "$T/hooks/hook2" && ok || bad "no second delivery"
	wait_until 10 sh -c "[ \"\$(redis-cli -p $RPORT HGET ${P}job:$j wh_state)\" = delivered ]" &&
		ok || bad "delivery not recorded"
	eq "two attempts" "$(ls "$T/hooks" | grep -c '^hook')" 2
	eq "one id for both attempts" "$(head -1 "$T/hooks/hook1")" "$(head -1 "$T/hooks/hook2")"
	eq "signature checks" "$(python3 - "$T/hooks/hook2" "$secret" <<'PY'
import base64, hashlib, hmac, sys
raw = open(sys.argv[1], 'rb').read()
wid, ts, sig, body = raw.split(b'\n', 3)
mac = hmac.new(sys.argv[2].encode(), wid + b'.' + ts + b'.' + body,
    hashlib.sha256).digest()
print('ok' if sig == b'v1,' + base64.b64encode(mac) else 'bad')
PY
)" ok
	body=$(tail -n +4 "$T/hooks/hook2")
	eq "body job id" "$(echo "$body" | jq -r .job)" "$j"
	eq "body state" "$(echo "$body" | jq -r .state)" succeeded
	eq "body meta" "$(echo "$body" | jq -r .meta.charge)" 10
	req GET "/v1/jobs/$j"
	eq "job shows the delivery" "$(js .webhook.state)" delivered
	eq "job shows two attempts" "$(js .webhook.attempts)" 2
	eq "job shows the last status" "$(js .webhook.last_status)" 200
	eq "no progress object without webhook_progress" "$(js .progress_webhook)" null

	# Progress webhooks: a job that asks gets its progress POSTed, signed,
	# coalesced (fewer POSTs than progress events, each with the next seq),
	# all before its one terminal POST. The interval (300 ms) spaces the
	# claims in Redis; arrivals are checked only against half of it, since
	# a send delayed on a loaded machine brings the next arrival closer.
	post /v1/jobs '{"workflow":"smoke_invert","webhook_progress":true}'
	err_is "webhook_progress alone" 400 invalid_input
	eq "webhook_progress alone: why" "$(js .error.message)" \
		"spec.webhook_progress: needs a webhook URL to send to"
	post /v1/jobs "{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"x\",\"steps\":60},\"webhook\":\"$hook\",\"webhook_progress\":true}"
	code_is "submit with progress webhooks" 201
	pj=$(js .id)
	await "$pj" succeeded 60
	wait_until 10 sh -c "[ \"\$(redis-cli -p $RPORT HGET ${P}job:$pj wh_state)\" = delivered ]" &&
		ok || bad "terminal delivery not recorded"
	sleep 1 # three intervals: nothing else comes
	out=$(python3 - "$T/hooks" "$secret" "$pj" <<'PY'
import base64, hashlib, hmac, json, os, sys
d, key, job = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
n = len([f for f in os.listdir(d) if f.startswith('hook')])
prog, term, last_at, errs = 0, 0, 0, []
for i in range(1, n + 1):
    raw = open(os.path.join(d, 'hook%d' % i), 'rb').read()
    at = int(open(os.path.join(d, 'at%d' % i)).read())
    wid, ts, sig, body = raw.split(b'\n', 3)
    mac = hmac.new(key, wid + b'.' + ts + b'.' + body, hashlib.sha256).digest()
    if sig != b'v1,' + base64.b64encode(mac):
        errs.append('bad signature on ' + wid.decode())
    b = json.loads(body)
    if wid.decode() == 'wh_' + job:
        term += 1
    elif wid.decode().startswith('whp_'):
        if b['job'] != job or wid.decode() != 'whp_%s_%d' % (job, prog + 1):
            errs.append('unexpected progress id ' + wid.decode())
        if term:
            errs.append('progress after the terminal POST')
        if b['type'] != 'progress' or b['seq'] != prog + 1:
            errs.append('bad progress body %s' % b)
        if prog and at - last_at < 150:
            errs.append('progress %d ms after the last' % (at - last_at))
        prog, last_at = prog + 1, at
print(' '.join(errs) if errs else 'ok %d %d' % (prog, term))
PY
)
	eq "progress POSTs checked" "${out%% *}" ok
	np=$(echo "$out" | cut -d' ' -f2)
	eq "one terminal POST" "$(echo "$out" | cut -d' ' -f3)" 1
	[ "${np:-0}" -ge 1 ] && ok || bad "no progress POST"
	ne=$(events "$pj" progress)
	[ "${np:-0}" -lt "$ne" ] && ok || bad "$np progress POSTs for $ne progress events"
	eq "the first job got no progress POST" "$(grep -l "^whp_$j" "$T"/hooks/hook* | wc -l)" 0
	req GET "/v1/jobs/$pj"
	eq "job shows progress deliveries" "$(js .progress_webhook.delivered)" "$np"
	eq "job shows them sent" "$(js .progress_webhook.sent)" "$np"
	eq "job shows its terminal delivery" "$(js .webhook.state)" delivered
	req GET /metrics
	eq "metrics count progress deliveries" \
		"$(echo "$BODY" | sed -n 's/^comfyq_webhook_progress_deliveries_total //p')" "$np"
	;;
comfy)
	# ComfyUI's API under /comfy/, driven as a ComfyUI client drives it:
	# upload, prompt, history, view, queue, interrupt; tenants apart.
	WEB_SECRET=web-secret-0123456789
	WEB="Authorization: Bearer $WEB_SECRET"
	sim_start sim --step-ms 50 --model-load-ms 0 || exit 1
	PIDS+=("$SIM_PID")
	worker_start w1
	PIDS+=("$WPID")
	sched_start --tokens "$TOKENS,web:web::$WEB_SECRET"
	wait_until 20 grep -q "registered as" "$T/w1.log" || bad "worker not up"
	python3 - "$T/in.png" "$T/other.png" <<'PY'
import struct, sys, zlib
def png(path, w, h, k):
    raw = b''.join(b'\0' + b''.join(bytes(((x * k) & 255, (y * 4) & 255, 128))
        for x in range(w)) for y in range(h))
    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
    open(path, 'wb').write(b'\x89PNG\r\n\x1a\n' +
        chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) +
        chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
png(sys.argv[1], 64, 32, 4)
png(sys.argv[2], 64, 32, 3)
PY
	# Upload: ComfyUI's answer; same bytes keep the name, others get (1).
	req POST /comfy/upload/image -H "$TG" -F "image=@$T/in.png" -F subfolder=bot
	code_is "upload" 200
	eq "upload answer" "$(js -c .)" '{"name":"in.png","subfolder":"bot","type":"input"}'
	eq "stored bytes" "$(RC --raw GET "${P}comfy:upload:tg::bot/in.png" | head -c 8 | od -An -tx1 | tr -d ' \n')" 89504e470d0a1a0a
	[ "$(RC TTL "${P}comfy:upload:tg::bot/in.png")" -gt 0 ] && ok || bad "upload has no TTL"
	req POST /comfy/upload/image -H "$TG" -F "image=@$T/in.png" -F subfolder=bot
	eq "same bytes, same name" "$(js .name)" in.png
	req POST /comfy/upload/image -H "$TG" -F "image=@$T/other.png;filename=in.png" -F subfolder=bot
	eq "other bytes, a new name" "$(js .name)" "in (1).png"
	req POST /comfy/upload/image -H "$TG" -F "image=@$T/in.png;filename=in (1).png" -F subfolder=bot -F overwrite=true
	eq "overwrite keeps the name" "$(js .name)" "in (1).png"
	RC --raw GET "${P}comfy:upload:tg::bot/in (1).png" | head -c -1 | cmp -s - "$T/in.png" && ok ||
		bad "overwrite did not replace the bytes"
	req POST /comfy/upload/image -H "$TG" -F subfolder=bot
	code_is "upload without an image" 400
	eq "no body" "$BODY" ""
	req POST /comfy/upload/image -H "$TG" -F "image=@$T/in.png" -F subfolder=../x
	code_is "upload to a climbing subfolder" 400
	req POST /comfy/upload/image -F "image=@$T/in.png"
	err_is "upload without a token" 401 unauthorized
	# A prompt whose LoadImage names the upload.
	graph='{"1":{"class_type":"LoadImage","inputs":{"image":"bot/in.png"}},"2":{"class_type":"ImageInvert","inputs":{"image":["1",0]}},"3":{"class_type":"SaveImage","inputs":{"images":["2",0],"filename_prefix":"itest"}}}'
	pid=0b5e5a52-6a8f-4d39-9a41-8f1f5b8a2c10
	post /comfy/prompt "{\"prompt\":$graph,\"client_id\":\"c1\",\"prompt_id\":\"$pid\"}" -H "$TG"
	code_is "prompt" 200
	eq "prompt id" "$(js .prompt_id)" "$pid"
	eq "node_errors" "$(js -c .node_errors)" '{}'
	[ "$(js .number)" -ge 1 ] && ok || bad "no number: $BODY"
	j=$(RC GET "${P}comfy:pid:tg::$pid")
	[ -n "$j" ] && ok || bad "no prompt id mapping"
	eq "tenant" "$(field "$j" tenant)" "tg:"
	eq "the upload is the job's input" "$(field "$j" spec | jq -r '.inputs["1"]' | base64 -d | cmp - "$T/in.png" && echo same)" same
	eq "meta" "$(field "$j" meta | jq -S -c .comfy)" "{\"client_id\":\"c1\",\"number\":$(js .number),\"prompt_id\":\"$pid\"}"
	await "$j" succeeded 30
	req GET "/comfy/history/$pid" -H "$TG"
	code_is "history" 200
	h=$(js -c --arg p "$pid" '.[$p]')
	eq "status" "$(echo "$h" | jq -c '.status | {status_str, completed}')" '{"status_str":"success","completed":true}'
	eq "messages" "$(echo "$h" | jq -c '[.status.messages[][0]]')" '["execution_start","execution_cached","execution_success"]'
	eq "nodes: what the worker's ComfyUI did" "$(field "$j" nodes)" '{"ran":["1","2","3"],"cached":[]}'
	eq "prompt item" "$(echo "$h" | jq -c '[.prompt[1], .prompt[3].client_id, .prompt[4]]')" "[\"$pid\",\"c1\",[\"3\"]]"
	eq "prompt graph" "$(echo "$h" | jq -c '.prompt[2]')" "$(echo "$graph" | jq -c .)"
	img=$(echo "$h" | jq -c '.outputs["3"].images[0]')
	eq "output subfolder" "$(echo "$img" | jq -r .subfolder)" "$j"
	eq "output type" "$(echo "$img" | jq -r .type)" output
	fname=$(echo "$img" | jq -r .filename)
	path=$(CQ status "$j" --json | jq -r '.outputs[0].path')
	req GET "/comfy/view?filename=$fname&subfolder=$j&type=output" -H "$TG"
	code_is "view" 200
	eq "view type" "$(header Content-Type)" image/png
	cmp -s "$T/body" "$path" && ok || bad "view bytes differ from the store"
	req GET "/comfy/view?filename=../$fname&subfolder=$j" -H "$TG"
	code_is "view of ../" 400
	req GET "/comfy/view?filename=/etc/passwd" -H "$TG"
	code_is "view of an absolute name" 400
	req GET "/comfy/view?filename=$fname&subfolder=$j&type=bogus" -H "$TG"
	code_is "view of a bogus type" 400
	req GET "/comfy/view?filename=$fname&subfolder=.." -H "$TG"
	code_is "view of a climbing subfolder" 403
	req GET "/comfy/view?filename=nope.png&subfolder=$j" -H "$TG"
	code_is "view of a name the job lacks" 404
	req GET "/comfy/view" -H "$TG"
	code_is "view without a query" 404
	# Another tenant sees nothing of it.
	req GET "/comfy/history/$pid" -H "$WEB"
	code_is "history of another tenant" 200
	eq "another tenant: {}" "$(js -c .)" '{}'
	req GET /comfy/history -H "$WEB"
	eq "another tenant's list" "$(js -c .)" '{}'
	req GET "/comfy/view?filename=$fname&subfolder=$j&type=output" -H "$WEB"
	code_is "view of another tenant's output" 404
	req GET /comfy/history -H "$TG"
	eq "own list" "$(js -c 'keys')" "[\"$pid\"]"
	req GET /comfy/history/nosuch -H "$TG"
	eq "unknown prompt" "$(js -c .)" '{}'
	# No prompt id: the job id is the prompt id.
	post /comfy/prompt "{\"prompt\":$graph,\"client_id\":\"c1\"}" -H "$TG"
	code_is "prompt without an id" 200
	j2=$(js .prompt_id)
	eq "job id as prompt id" "$(state "$j2" | grep -c .)" 1
	await "$j2" succeeded 30
	req GET "/comfy/history/$j2" -H "$TG"
	eq "history by job id" "$(js -r --arg p "$j2" '.[$p].status.status_str')" success
	# Refused graphs: ComfyUI's 400.
	post /comfy/prompt '{"prompt":{"1":{"class_type":"LoadImage","inputs":{"image":"../missing.png"}},"2":{"class_type":"SaveImage","inputs":{"images":["1",0]}}}}' -H "$TG"
	code_is "a LoadImage of a climbing name" 400
	eq "error type" "$(js .error.type)" prompt_outputs_failed_validation
	eq "error keys" "$(js -c '.error | keys')" '["details","extra_info","message","type"]'
	eq "node error" "$(js -c '.node_errors["1"] | [.errors[0].type, .errors[0].details, .class_type, .dependent_outputs]')" \
		'["custom_validation_failed","image - Invalid image file: ../missing.png","LoadImage",["2"]]'
	post /comfy/prompt '{"prompt":{"1":{"class_type":"EmptyImage","inputs":{"width":8,"height":8}}}}' -H "$TG"
	code_is "no output node" 400
	eq "no outputs" "$(js .error.type)" prompt_no_outputs
	post /comfy/prompt '{"client_id":"c1"}' -H "$TG"
	code_is "no prompt" 400
	eq "no_prompt" "$(js -c '[.error.type, .node_errors]')" '["no_prompt",{}]'
	post /comfy/prompt '{"prompt":{"1":{"class_type":"SaveImage","inputs":{"images":["9",0]}}}}' -H "$TG"
	eq "a link to nothing" "$(js -c '[.error.type, .node_errors["1"].errors[0].type]')" '["prompt_outputs_failed_validation","bad_linked_input"]'
	post /comfy/prompt '{"prompt":' -H "$TG"
	code_is "not JSON" 400
	eq "nothing queued by refused prompts" "$(RC ZCARD "${P}ready:normal")" 0
	# A client's socket (ws.py PORT CLIENT_ID TOKEN OUT): the status line,
	# then each text frame, until executing with node null.
	cat >"$T/ws.py" <<'PY'
import base64, json, os, socket, sys
port, cid, token, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
s = socket.create_connection(('127.0.0.1', port), timeout=30)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(('GET /comfy/ws?clientId=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n'
    'Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n'
    'Authorization: Bearer %s\r\n\r\n' % (cid, key, token)).encode())
buf = b''
while b'\r\n\r\n' not in buf:
    buf += s.recv(4096)
head, buf = buf.split(b'\r\n\r\n', 1)
f = open(out, 'w')
f.write(head.split(b'\r\n')[0].decode() + '\n')
f.flush()
def need(n):
    global buf
    while len(buf) < n:
        d = s.recv(65536)
        if not d:
            sys.exit(0)
        buf += d
    r, buf = buf[:n], buf[n:]
    return r
while True:
    b0, b1 = need(2)
    n = b1 & 127
    if n == 126:
        n = int.from_bytes(need(2), 'big')
    elif n == 127:
        n = int.from_bytes(need(8), 'big')
    data = need(n)
    if b0 & 15 != 1:
        continue
    f.write(data.decode() + '\n')
    f.flush()
    m = json.loads(data)
    if m['type'] == 'executing' and m['data'].get('node', 0) is None:
        break
PY
	# A running prompt: in queue_running, then interrupted with a refund.
	# (600 steps: 30 s, which the interrupt cuts short, so a loaded
	# machine's slow socket client still finds the sampler running.)
	CQ render --workflow sdxl_txt2img --param prompt=x --param steps=60 |
		jq -c '(.[] | select(.class_type == "KSampler") | .inputs.steps) = 600' \
			>"$T/long.json" || bad "render"
	post /comfy/prompt "{\"prompt\":$(cat "$T/long.json"),\"client_id\":\"c2\"}" -H "$TG"
	code_is "a long prompt" 200
	k=$(js .prompt_id)
	wait_until 20 is_state "$k" active || bad "never active"
	# A socket of its client opened while it runs: the front follows it
	# from the middle and announces each node once.
	wait_until 20 sh -c "[ \$('$BIN/comfyq' events --from 0-0 --job $k --json | grep -c '\"type\":\"progress\"') -ge 1 ]" ||
		bad "no progress"
	python3 "$T/ws.py" "${S##*:}" c2 "$TG_SECRET" "$T/ws-mid.out" &
	midpid=$!
	PIDS+=("$midpid")
	wait_until 10 sh -c "[ \$(wc -l <'$T/ws-mid.out') -ge 2 ]" || bad "no first frame mid-run"
	req GET /comfy/queue -H "$TG"
	code_is "queue" 200
	eq "queue running" "$(js -c '[.queue_running[] | .[1]]')" "[\"$k\"]"
	eq "queue pending" "$(js -c .queue_pending)" '[]'
	eq "queue item" "$(js -c '.queue_running[0] | [length, .[3].client_id]')" '[5,"c2"]'
	req GET /comfy/queue -H "$WEB"
	eq "another tenant's queue" "$(js -c .)" '{"queue_running":[],"queue_pending":[]}'
	req GET /comfy/prompt -H "$TG"
	eq "queue_remaining" "$(js .exec_info.queue_remaining)" 1
	refunds0=$(RC XLEN "${P}refunds")
	post /comfy/interrupt "{\"prompt_id\":\"$k\"}" -H "$WEB"
	code_is "another tenant's interrupt" 200
	eq "not interrupted by another tenant" "$(field "$k" cancel_req)" 0
	post /comfy/interrupt "{\"prompt_id\":\"$k\"}" -H "$TG"
	code_is "interrupt" 200
	eq "interrupt body" "$BODY" ""
	await "$k" canceled 30
	wait_until 10 sh -c "! kill -0 $midpid" && ok || bad "the socket opened mid-run never saw the end"
	tail -n +2 "$T/ws-mid.out" >"$T/ws-mid.json"
	eq "mid-run: no execution_start" "$(jq -r 'select(.type == "execution_start") | .type' "$T/ws-mid.json" | wc -l)" 0
	eq "mid-run: the node announced before its progress" \
		"$(jq -r 'select(.type == "executing" or .type == "progress") | .type + " " + (.data.node // "null")' "$T/ws-mid.json" | head -2 | tr '\n' ' ')" \
		"executing 3 progress 3 "
	eq "mid-run: each node announced once" \
		"$(jq -r 'select(.type == "executing") | .data.node' "$T/ws-mid.json" | sort | uniq -d | wc -l)" 0
	eq "mid-run: the end" "$(jq -r 'select(.type != "status" and .type != "progress" and .type != "executing") | .type' "$T/ws-mid.json" | tr '\n' ' ')" \
		"execution_interrupted "
	eq "mid-run: interrupted where it was" "$(jq -r 'select(.type == "execution_interrupted") | .data.node_id' "$T/ws-mid.json")" \
		"$(jq -r 'select(.type == "executing") | .data.node // empty' "$T/ws-mid.json" | tail -1)"
	eq "refunded" "$(field "$k" refund)" true
	eq "one refund entry" "$(RC XLEN "${P}refunds")" $((refunds0 + 1))
	req GET "/comfy/history/$k" -H "$TG"
	eq "interrupted in history" "$(js -c --arg p "$k" '.[$p] | [.status.status_str, .status.completed, .status.messages[-1][0], .outputs]')" \
		'["error",false,"execution_interrupted",{}]'
	eq "interrupted at a node that did not finish" "$(js -c --arg p "$k" '.[$p].status.messages[-1][1] | [(.node_id | type), (.node_id as $n | .executed | index([$n]))]')" \
		'["string",null]'
	# /comfy/ws: ComfyUI's events for this client's prompt, in order.
	sport=${S##*:}
	python3 "$T/ws.py" "$sport" c3 "$TG_SECRET" "$T/ws.out" &
	wspid=$!
	PIDS+=("$wspid")
	python3 "$T/ws.py" "$sport" c3 "$WEB_SECRET" "$T/ws-web.out" &
	PIDS+=("$!")
	wait_until 10 sh -c "[ \$(wc -l <'$T/ws.out') -ge 2 ] && [ \$(wc -l <'$T/ws-web.out') -ge 2 ]" ||
		bad "no first frames"
	eq "handshake" "$(head -1 "$T/ws.out" | tr -d '\r')" "HTTP/1.1 101 Switching Protocols"
	eq "first frame" "$(sed -n 2p "$T/ws.out" | jq -c '[.type, .data.sid, (.data.status.exec_info.queue_remaining | type)]')" \
		'["status","c3","number"]'
	post /comfy/prompt "{\"prompt\":$graph,\"client_id\":\"c3\"}" -H "$TG"
	code_is "prompt for the socket" 200
	w=$(js .prompt_id)
	wait_until 30 sh -c "! kill -0 $wspid" && ok || bad "the socket never saw the end"
	tail -n +2 "$T/ws.out" >"$T/ws.json"
	eq "event order" "$(jq -r 'select(.type != "status" and .type != "progress") | .type' "$T/ws.json" | tr '\n' ' ')" \
		"execution_start execution_cached executing executing executing executed execution_success executing "
	eq "one executing per node" "$(jq -r 'select(.type == "executing") | .data.node' "$T/ws.json" | tr '\n' ' ')" \
		"1 2 3 null "
	eq "all for this prompt" "$(jq -r 'select(.type != "status") | .data.prompt_id' "$T/ws.json" | sort -u)" "$w"
	eq "status before the end" "$(tail -2 "$T/ws.json" | head -1 | jq -r .type)" status
	eq "the end" "$(tail -1 "$T/ws.json" | jq -c .data.node)" null
	req GET "/comfy/history/$w" -H "$TG"
	eq "executed names what history names" \
		"$(jq -c 'select(.type == "executed") | [.data.node, .data.output]' "$T/ws.json")" \
		"$(js -c --arg p "$w" '.[$p].outputs | to_entries[0] | [.key, .value]')"
	eq "another tenant's socket of that id heard nothing of it" \
		"$(tail -n +3 "$T/ws-web.out" | jq -r 'select(.type != "status") | .type' | wc -l)" 0
	# The fleet.
	req GET /comfy/system_stats -H "$TG"
	code_is "system_stats" 200
	eq "one device per worker" "$(js '.devices | length')" 1
	eq "system keys" "$(js -c '.system | has("os") and has("comfyui_version")')" true
	# /object_info: what the worker's ComfyUI answers, published by the
	# worker as objinfo:<pool>; a second pool adds its classes, the first
	# pool in name order keeps a class both have.
	pool=$(RC SMEMBERS "${P}pools")
	eq "one pool" "$(echo "$pool" | grep -c .)" 1
	[ "$(RC TTL "${P}objinfo:$pool")" -gt 0 ] && ok || bad "objinfo:<pool> has no TTL"
	curl -s "$SIM_URL/object_info" | jq -S . >"$T/oi-sim.json"
	req GET /comfy/object_info -H "$TG"
	code_is "object_info" 200
	eq "object_info type" "$(header Content-Type)" application/json
	jq -S . "$T/body" | cmp -s - "$T/oi-sim.json" && ok ||
		bad "/comfy/object_info differs from the sim's /object_info"
	curl -s "$SIM_URL/object_info/KSampler" | jq -S . >"$T/ks-sim.json"
	eq "the sim has KSampler" "$(jq -c keys "$T/ks-sim.json")" '["KSampler"]'
	req GET /comfy/object_info/KSampler -H "$TG"
	code_is "object_info of a class" 200
	jq -S . "$T/body" | cmp -s - "$T/ks-sim.json" && ok ||
		bad "/comfy/object_info/KSampler differs from the sim's"
	req GET /comfy/object_info/NoSuchNode -H "$TG"
	eq "object_info of an unknown class" "$(js -c .)" '{}'
	req GET /comfy/object_info
	err_is "object_info without a token" 401 unauthorized
	CQ slots set zz-extra 1 >/dev/null || bad "slots set"
	RC SET "${P}objinfo:zz-extra" '{"KSampler":{"name":"other"},"ExtraNode":{"name":"ExtraNode"}}' EX 60 >/dev/null
	req GET /comfy/object_info -H "$TG"
	eq "the union of the pools" "$(js -c 'keys | length')" "$(($(jq 'keys | length' "$T/oi-sim.json") + 1))"
	eq "the other pool's class" "$(js -c .ExtraNode)" '{"name":"ExtraNode"}'
	jq -S .KSampler "$T/body" | cmp -s - <(jq -S .KSampler "$T/oi-sim.json") && ok ||
		bad "the first pool's KSampler did not win"
	# None published (a fresh queue, the lists lapsed): 503.
	RC DEL "${P}objinfo:$pool" "${P}objinfo:zz-extra" >/dev/null
	req GET /comfy/object_info -H "$TG"
	err_is "object_info with none published" 503 unavailable
	eq "says why" "$(js -r .error.message | grep -c 'no worker has published')" 1
	req GET /comfy/object_info/KSampler -H "$TG"
	err_is "a class with none published" 503 unavailable
	;;
kill9)
	# A scheduler killed with SIGKILL loses nothing: an SSE client resumes
	# on another one with Last-Event-ID, pending webhook deliveries (one
	# mid-retry, one mid-request) are delivered, jobs it took run to the end.
	cat >"$T/recv.py" <<'PY'
import http.server, os, sys, threading, time
d = sys.argv[1]
lock = threading.Lock()
seen = {}
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers['Content-Length']))
        wid = self.headers['webhook-id']
        with lock:
            n = seen[wid] = seen.get(wid, 0) + 1
        code = 200
        if self.path == '/fail-first' and n == 1:
            code = 500
        if self.path == '/slow' and n == 1:
            open(os.path.join(d, 'slow-start'), 'w').write('%d' % (time.time() * 1000))
            time.sleep(6)
        with lock, open(os.path.join(d, 'attempts'), 'a') as f:
            f.write('%d %s %s %d\n' % (time.time() * 1000, self.path, wid, code))
        self.send_response(code)
        self.send_header('Content-Length', '0')
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
open(os.path.join(d, 'port'), 'w').write(str(s.server_port))
s.serve_forever()
PY
	# frames FILE: the ids of the complete frames of an SSE capture.
	frames() {
		python3 - "$1" <<'PY'
import sys
raw = open(sys.argv[1]).read().split('\n\n')[:-1]
for f in raw:
    for l in f.split('\n'):
        if l.startswith('id: '):
            print(l[4:])
PY
	}
	mkdir -p "$T/hooks"
	python3 "$T/recv.py" "$T/hooks" &
	PIDS+=("$!")
	wait_until 10 test -s "$T/hooks/port" || bad "receiver not up"
	hook="http://127.0.0.1:$(cat "$T/hooks/port")"
	sim_start sim --step-ms 100 --model-load-ms 0 || exit 1
	PIDS+=("$SIM_PID")
	worker_start w1 --slots 4
	PIDS+=("$WPID")
	secret=hook-secret-0123456789
	hookargs=(--webhook-secret "$secret" --webhook-allow-private true
		--webhook-timeout-ms 8000 --webhook-lease-ms 1000)
	sched_start "${hookargs[@]}" --webhook-retry-base-ms 8000 \
		--webhook-retry-max-ms 8000
	wait_until 20 grep -q "registered as" "$T/w1.log" || bad "worker not up"
	# Two deliveries: one answered 500 (its retry is 4..8 s away), one
	# held by a receiver that takes 6 s to answer (the sim runs one prompt
	# at a time, so these jobs go before the followed one).
	post /v1/jobs "{\"workflow\":\"smoke_invert\",\"webhook\":\"$hook/fail-first\"}"
	h500=$(js .id)
	post /v1/jobs "{\"workflow\":\"smoke_invert\",\"webhook\":\"$hook/slow\"}"
	hslow=$(js .id)
	wait_until 20 grep -q " /fail-first wh_$h500 500" "$T/hooks/attempts" ||
		bad "no first (500) attempt"
	wait_until 20 test -s "$T/hooks/slow-start" || bad "no slow attempt"
	# A job of 30 steps of 100 ms, followed live on this scheduler.
	post /v1/jobs '{"workflow":"sdxl_txt2img","params":{"prompt":"x","steps":30}}'
	code_is "submit the followed job" 201
	e=$(js .id)
	curl -s -N "$S/v1/jobs/$e/events" >"$T/ev1" &
	cpid=$!
	wait_until 20 grep -q '^event: progress' "$T/ev1" || bad "no progress followed"
	# Two jobs (with a webhook each) that the killed scheduler took.
	post /v1/jobs "{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"x\",\"steps\":10},\"webhook\":\"$hook/ok\"}"
	code_is "submit before the kill" 201
	c1=$(js .id)
	post /v1/jobs "{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"y\",\"steps\":10},\"webhook\":\"$hook/ok\"}"
	c2=$(js .id)
	kill -9 "$SPID"
	killed=$(date +%s%3N)
	wait "$SPID" 2>/dev/null
	eq "killed by SIGKILL" "$?" 137
	wait_until 10 sh -c "! kill -0 $cpid 2>/dev/null" || bad "the client's stream did not end"
	is_state "$e" active && ok || bad "the followed job is not running at the kill: $(state "$e")"
	eq "the slow attempt is mid-request" "$(grep -c "/slow" "$T/hooks/attempts")" 0
	eq "the 500 delivery waits for its retry" "$(field "$h500" wh_state)" pending
	for j in "$c1" "$c2"; do
		case "$(state "$j")" in queued|active) ok ;;
		*) bad "job $j after the kill: '$(state "$j")'" ;; esac
	done
	# Another scheduler, on another port.
	cp "$T/sched.log" "$T/sched-killed.log"
	sched_start "${hookargs[@]}" --webhook-retry-base-ms 100 \
		--webhook-retry-max-ms 200
	last=$(frames "$T/ev1" | tail -1)
	[ -n "$last" ] && ok || bad "no frame before the kill"
	timeout 30 curl -s -N -H "Last-Event-ID: $last" "$S/v1/jobs/$e/events" >"$T/ev2"
	eq "the resumed stream ends with the terminal event" \
		"$(sed -n 's/^event: //p' "$T/ev2" | tail -1)" succeeded
	{ frames "$T/ev1"; frames "$T/ev2"; } >"$T/got"
	CQ events --from 0-0 --job "$e" --json | jq -r .id >"$T/want"
	eq "ids before and after the kill are the job's events" \
		"$(tr '\n' ' ' <"$T/got")" "$(tr '\n' ' ' <"$T/want")"
	eq "no duplicate" "$(sort "$T/got" | uniq -d | wc -l)" 0
	eq "resumed after the last id" "$(frames "$T/ev2" | head -1)" \
		"$(grep -A1 -x -- "$last" "$T/want" | tail -1)"
	# The jobs it took complete, and every webhook is delivered.
	await "$c1" succeeded 60
	await "$c2" succeeded 60
	for j in "$h500" "$hslow" "$c1" "$c2"; do
		wait_until 30 sh -c "[ \"\$(redis-cli -p $RPORT HGET ${P}job:$j wh_state)\" = delivered ]" &&
			ok || bad "job $j: webhook $(field "$j" wh_state)"
	done
	acc() { grep -c " wh_$1 200$" "$T/hooks/attempts"; }
	tries() { grep -c " wh_$1 " "$T/hooks/attempts"; }
	eq "the 500 delivery: accepted once" "$(acc "$h500")" 1
	eq "the 500 delivery: two attempts" "$(tries "$h500")" 2
	eq "its record counts them" "$(field "$h500" wh_attempts)" 2
	retried=$(awk -v id="wh_$h500" '$3 == id && $4 == 200 { print $1 }' "$T/hooks/attempts")
	[ "$retried" -gt "$killed" ] && ok || bad "the retry came before the kill"
	# Killed mid-request: the receiver took the first attempt after its
	# sender died, and the next scheduler sent it again (at-least-once).
	eq "the mid-request delivery: two attempts, both accepted" \
		"$(tries "$hslow") $(acc "$hslow")" "2 2"
	eq "its record counts them" "$(field "$hslow" wh_attempts)" 2
	for j in "$c1" "$c2"; do
		eq "job $j: delivered once" "$(tries "$j") $(acc "$j")" "1 1"
	done
	req GET "/v1/jobs/$c1"
	eq "the new scheduler shows the job" "$(js .state) $(js .webhook.state)" "succeeded delivered"
	;;
*)
	echo "unknown group $GROUP" >&2
	exit 2
	;;
esac
finish
