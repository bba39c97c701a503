#!/usr/bin/env bash
# store s3 end to end against a real S3-compatible server on loopback:
# s3rver (tests/integration/s3rver/: the fork that checks AWS Signature
# Version 4, pinned in package-lock.json, installed with npm ci under the
# build folder), redis-server, comfyq-sim and workers with store s3.
#   - a picture: the record names the bucket and key and holds no path;
#     the presigned GET URL gives the sim's PNG byte for byte; one PUT
#     reached the store; a URL with its expiry changed is refused; the
#     staged file and the job's folder are gone;
#   - comfyq-scheduler's GET /v1/jobs/{id}/outputs/0: 302 to the
#     presigned URL (followed: the same bytes), ?thumb= 501, 410 once the
#     record says the URL has expired; GET /v1/jobs/{id} shows the URL;
#   - a 12.8 MB video with s3-part-mb 5: a multipart upload of 3 parts
#     (the store's log), the same bytes back through the presigned URL;
#   - a wrong secret: the store refuses it (SignatureDoesNotMatch), once,
#     not retried; the job ends failed/internal, refunded, one terminal
#     event and one refund entry;
#   - a bucket that does not exist: likewise (NoSuchBucket);
#   - a store that does not answer: each request tried 1 + s3-retries
#     times, the job retried once (max_attempts 2), then failed once.
# Node and npm come from deploy/lib/packages.sh's PKGS_EXAMPLES_NODE where
# missing; when they or the npm registry cannot be had, it fails under
# CI=true and skips (exit 77) otherwise.
#   s3.sh BIN_DIR
set -u
BIN=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "$BIN/.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-s3.XXXXXX")
. "$ROOT/tests/lib/stack.sh"
trap stack_cleanup EXIT
tmp=$T/check	# check's output ($T/out is the workers' staging)
mkdir -p "$tmp"
. "$ROOT/deploy/lib/packages.sh"
. "$ROOT/deploy/lib/deps.sh"

need_node 20 "s3rver and its packages need 20"
SRC=$ROOT/tests/integration/s3rver
S3D=$BUILD/s3rver
mkdir -p "$S3D"
if ! cmp -s "$SRC/package-lock.json" "$S3D/package-lock.json" ||
	[ ! -d "$S3D/node_modules/@20minutes/s3rver" ]; then
	cp "$SRC/package.json" "$SRC/package-lock.json" "$S3D/"
	(cd "$S3D" && npm ci --no-audit --no-fund --loglevel=error) >"$T/npm.log" 2>&1 ||
		cannot "npm ci of s3rver failed (is the npm registry reachable?): $(grep -m1 -E 'request to|code E' "$T/npm.log" || tail -1 "$T/npm.log")"
fi
cp "$SRC/serve.js" "$S3D/"

node "$S3D/serve.js" "$T/s3data" outs "$T/s3.port" >"$T/s3rver.log" 2>&1 &
PIDS+=("$!")
wait_until 20 test -s "$T/s3.port" || { bad "s3rver did not start"; exit 1; }
S3="http://127.0.0.1:$(cat "$T/s3.port")"
sim_start sim --step-ms 5 --model-load-ms 0 || exit 1
PIDS+=("$SIM_PID")

# s3worker NAME [ARGS...]: a worker with store s3 on the bucket; waits
# until it is registered.
s3worker() {
	local name=$1
	shift
	worker_start "$name" --store s3 --s3-endpoint "$S3" --s3-bucket outs \
		--s3-path-style true --s3-access-key S3RVER \
		--s3-secret-key S3RVER --s3-prefix "t/" --s3-part-mb 5 \
		--s3-presign-s 600 "$@"
	PIDS+=("$WPID")
	wait_until 20 grep -q "registered as" "$T/$name.log" ||
		bad "worker $name did not register"
}
rec() { field "$1" outputs | jq -r ".[0].$2"; }
s3log() { grep -cF -- "$1" "$T/s3rver.log"; }
simfile() { find "$T/sim/output" -name "$1" -type f | head -1; }
logged() { grep -qF "$2" "$T/$1.log" && ok || bad "$1.log lacks '$2'"; }
# failed_once JOB CODE-TEXT: ended failed/internal with a refund, the
# error naming CODE-TEXT, one terminal event, one refund entry.
failed_once() {
	local j=$1
	await "$j" failed 60 || return
	eq "$j error_code" "$(field "$j" error_code)" internal
	eq "$j refund" "$(field "$j" refund)" true
	case "$(field "$j" error)" in
	*"$2"*) ok ;;
	*) bad "$j error lacks $2: $(field "$j" error)" ;;
	esac
	eq "$j failed events" "$(events "$j" failed)" 1
	eq "$j succeeded events" "$(events "$j" succeeded)" 0
	eq "$j refund entries" "$(RC XRANGE "${P}refunds" - + | grep -cx "$j")" 1
	[ -z "$(find "$T/out" -name '.tmp-*' 2>/dev/null)" ] && ok ||
		bad "$j left a staged file: $(find "$T/out" -name '.tmp-*')"
}

s3worker w1

# A picture.
j=$(submit --workflow smoke_invert --param width=64 --param height=64)
if await "$j" succeeded 30; then
	name=$(rec "$j" filename)
	eq "bucket" "$(rec "$j" bucket)" outs
	eq "object key" "$(rec "$j" object_key)" "t/$j/$name"
	eq "no path" "$(rec "$j" path)" null
	eq "no blob key" "$(rec "$j" key)" null
	url=$(rec "$j" presigned_url)
	case "$url" in
	"$S3/outs/t/$j/"*"X-Amz-Expires=600"*"X-Amz-Signature="*) ok ;;
	*) bad "presigned URL: $url" ;;
	esac
	exp=$(rec "$j" presigned_expires_ms)
	now=$(date +%s%3N)
	[ "$exp" -gt $((now + 500000)) ] && [ "$exp" -le $((now + 601000)) ] &&
		ok || bad "presigned_expires_ms $exp is not about now + 600 s"
	check "presigned GET" 0 curl -sSf -o "$T/got.png" "$url"
	cmp -s "$T/got.png" "$(simfile "$name")" && ok ||
		bad "the object is not the sim's $name"
	eq "a PNG" "$(head -c 4 "$T/got.png" | od -An -tx1 | tr -d ' ')" 89504e47
	eq "its size" "$(png_size "$T/got.png")" 64x64
	eq "one PUT" "$(s3log "PUT /outs/t/$j/$name 200")" 1
	bad_url=${url/X-Amz-Expires=600/X-Amz-Expires=601}
	eq "a changed URL" "$(curl -s -o /dev/null -w '%{http_code}' "$bad_url")" 403
	[ ! -e "$T/out/$j" ] && ok || bad "staging folder $T/out/$j is left"

	# Through the scheduler.
	"$BIN/comfyq-scheduler" --redis-url "$COMFYQ_TEST_REDIS_URL" --queue "$Q" \
		--listen 127.0.0.1:0 --output-dir "$T/out" \
		--workflows-dir "$ROOT/workflows" --log-level verbose \
		>"$T/sched.log" 2>&1 &
	PIDS+=("$!")
	wait_until 20 grep -q "listening on" "$T/sched.log" || bad "the scheduler did not start"
	S="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$T/sched.log" | head -1)"
	o="$S/v1/jobs/$j/outputs/0"
	eq "302" "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$o")" "302 $url"
	check "followed" 0 curl -sSfL -o "$T/via.png" "$o"
	cmp -s "$T/via.png" "$T/got.png" && ok || bad "the redirect gave other bytes"
	eq "no thumbnail" "$(curl -s -o "$T/body" -w '%{http_code}' "$o?thumb=64") $(jq -r .error.code "$T/body")" "501 not_implemented"
	eq "the job shows the URL" "$(curl -s "$S/v1/jobs/$j" | jq -r '.outputs[0].presigned_url')" "$url"
	RC HSET "${P}job:$j" outputs "$(field "$j" outputs | jq -c '.[0].presigned_expires_ms = 1000')" >/dev/null
	eq "expired" "$(curl -s -o "$T/body" -w '%{http_code}' "$o") $(jq -r .error.code "$T/body")" "410 gone"
fi

# A video over the part size: a multipart upload.
printf '%s' '{"1":{"class_type":"EmptyImage","inputs":{"width":64,"height":64,"batch_size":160,"color":1234}},"2":{"class_type":"VHS_VideoCombine","inputs":{"images":["1",0],"frame_rate":1,"loop_count":0,"filename_prefix":"big","format":"video/h264-mp4","pingpong":false,"save_output":true}}}' >"$T/video.json"
j=$(submit --graph "$T/video.json")
if await "$j" succeeded 60; then
	name=$(rec "$j" filename)
	eq "video bytes" "$(rec "$j" bytes)" $((160 * 80 * 1024))
	eq "one CreateMultipartUpload" "$(s3log "POST /outs/t/$j/$name?uploads= 200")" 1
	eq "three parts" "$(grep -cE "^PUT /outs/t/$j/$name\?partNumber=[123]&uploadId=[0-9a-f]+ 200" "$T/s3rver.log")" 3
	eq "one CompleteMultipartUpload" "$(grep -cE "^POST /outs/t/$j/$name\?uploadId=[0-9a-f]+ 200" "$T/s3rver.log")" 1
	logged w1 "job=$j stored $name as s3 object t/$j/$name (multipart, 3 parts, 5 requests"
	check "presigned GET of the video" 0 curl -sf -o "$T/got.mp4" "$(rec "$j" presigned_url)"
	cmp -s "$T/got.mp4" "$(simfile "$name")" && ok ||
		bad "the video object is not the sim's $name"
fi
stop "$WPID"

# A wrong secret: refused by the store, not retried.
s3worker w2 --s3-secret-key wrong-secret
j=$(submit --workflow smoke_invert --param width=64 --param height=64 --max-attempts 1)
failed_once "$j" "PutObject s3://outs/t/$j/"
case "$(field "$j" error)" in *"HTTP 403 SignatureDoesNotMatch"*) ok ;;
*) bad "wrong secret: $(field "$j" error)" ;; esac
eq "one refused PUT" "$(grep -c "^PUT /outs/t/$j/.* 403 SignatureDoesNotMatch" "$T/s3rver.log")" 1
stop "$WPID"

# A bucket that does not exist.
s3worker w3 --s3-bucket nosuchbucket
j=$(submit --workflow smoke_invert --param width=64 --param height=64 --max-attempts 1)
failed_once "$j" "HTTP 404 NoSuchBucket"
eq "one PUT to the missing bucket" "$(grep -c "^PUT /nosuchbucket/t/$j/" "$T/s3rver.log")" 1
stop "$WPID"

# A store that does not answer: retried, then the job, then failed.
dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
s3worker w4 --s3-endpoint "http://127.0.0.1:$dead" --s3-retries 2
j=$(submit --workflow smoke_invert --param width=64 --param height=64 --max-attempts 2)
failed_once "$j" "(after 3 tries)"
eq "attempts" "$(field "$j" attempt)" 2
eq "retrying events" "$(events "$j" retrying)" 1
eq "requests tried again" "$(grep -c "t/$j/.*; trying again" "$T/w4.log")" 4
stop "$WPID"

finish
