#!/usr/bin/env bash
# comfyq-worker end to end: a real redis-server, comfyq-sim and workers,
# jobs submitted with the CLI, outcomes asserted on what a producer sees
# (job states, events, refunds, files) and on what the sim saw.
#   worker.sh BIN_DIR GROUP      GROUP: basic templates faults timeouts
#                                       recovery cancel kill drain autostart
#                                       store reload pipeline partition
#                                       outputs health models
set -u
BIN=$1
GROUP=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-worker.XXXXXX")
. "$ROOT/tests/lib/stack.sh"
trap stack_cleanup EXIT

# A small, fast job: the sim runs KSampler for steps x step-ms.
txt2img() {
	submit --workflow sdxl_txt2img --param prompt="a red fox" \
		--param steps=4 "$@"
}
smoke() {
	submit --workflow smoke_invert --param width=256 --param height=128 \
		"$@"
}
stack() {	# stack [SIM ARGS...]: one sim and one worker
	sim_start sim --step-ms 20 --model-load-ms 0 "$@" || exit 1
	PIDS+=("$SIM_PID")
	worker_start w1 ${WORKER_ARGS:-}
	PIDS+=("$WPID")
	W1=$WPID
}
refunds() { RC XLEN "${P}refunds"; }
alive() { kill -0 "$1" 2>/dev/null; }
# sim_saw PATTERN: the sim's log has a line matching it.
sim_saw() { grep -qE -- "$1" "$T/sim.log"; }

case "$GROUP" in
basic)
	stack
	# A weightless job end to end: a PNG of the asked size on disk.
	j=$(smoke)
	await "$j" succeeded 30
	out=$(CQ status "$j" --json)
	path=$(echo "$out" | grep -oE '"path":"[^"]+"' | cut -d'"' -f4)
	eq "file on disk" "$( [ -f "$path" ] && echo yes)" yes
	eq "png size" "$(png_size "$path")" 256x128
	eq "record size" "$(echo "$out" | grep -oE '"width":[0-9]+,"height":[0-9]+')" \
		'"width":256,"height":128'
	eq "started events" "$(events "$j" started)" 1
	eq "succeeded events" "$(events "$j" succeeded)" 1
	eq "no refund" "$(refunds)" 0
	case "$path" in "$T/out/$j/"*) ok ;; *) bad "stored at $path" ;; esac

	# An SDXL job: progress is published, throttled.
	j=$(txt2img --param steps=20)
	await "$j" succeeded 30
	n=$(events "$j" progress)
	if [ "$n" -ge 1 ] && [ "$n" -le 20 ]; then ok; else
		bad "progress events: $n"; fi
	eq "progress recorded" "$(field "$j" progress)" 20/20

	# Bad jobs end with their code and a refund; the worker lives on.
	j=$(RC FCALL comfyq_enqueue 1 "$P" '{"workflow":"no_such_flow"}' | head -1)
	await "$j" failed 30
	eq "unknown workflow" "$(field "$j" error_code)" unknown_workflow
	j=$(RC FCALL comfyq_enqueue 1 "$P" \
		'{"workflow":"smoke_invert","params":{"width":100000}}' | head -1)
	await "$j" failed 30
	eq "param out of range" "$(field "$j" error_code)" invalid_input
	case "$(field "$j" error)" in *width*100000*) ok ;;
		*) bad "message: $(field "$j" error)" ;; esac
	g='{"1":{"class_type":"CheckpointLoaderSimple","inputs":{"ckpt_name":"nope.safetensors"}},"2":{"class_type":"EmptyLatentImage","inputs":{"width":512,"height":512,"batch_size":1}},"3":{"class_type":"CLIPTextEncode","inputs":{"text":"x","clip":["1",1]}},"4":{"class_type":"KSampler","inputs":{"model":["1",0],"seed":1,"steps":2,"cfg":7,"sampler_name":"euler","scheduler":"normal","positive":["3",0],"negative":["3",0],"latent_image":["2",0],"denoise":1}},"5":{"class_type":"VAEDecode","inputs":{"samples":["4",0],"vae":["1",2]}},"6":{"class_type":"SaveImage","inputs":{"images":["5",0],"filename_prefix":"x"}}}'
	echo "$g" >"$T/graph.json"
	j=$(submit --graph "$T/graph.json")
	await "$j" failed 30
	eq "missing model" "$(field "$j" error_code)" invalid_input
	case "$(field "$j" error)" in *nope.safetensors*) ok ;;
		*) bad "message: $(field "$j" error)" ;; esac
	echo "this is not an image" >"$T/not.png"
	j=$(submit --workflow sdxl_img2img --param prompt=x \
		--input image="$T/not.png")
	await "$j" failed 30
	eq "input not an image" "$(field "$j" error_code)" invalid_input
	eq "refunds" "$(refunds)" 4
	alive "$W1" && ok || bad "worker died"
	;;
templates)
	stack
	cp "$ROOT/tests/data/images/ok.png" "$T/in.png"
	# Every template through the sim, with the surgery it offers.
	j=$(txt2img --lora add-detail-xl:0.7 \
		--param prompt="a fox <lora:pixel-art-xl:0.5>" --param aspect=16:9)
	await "$j" succeeded 30
	path=$(CQ status "$j" --json | grep -oE '"path":"[^"]+"' | cut -d'"' -f4)
	eq "16:9 preset size" "$(png_size "$path")" 1344x768
	hist=$(curl -sf "$SIM_URL/history")
	n=$(echo "$hist" | grep -o '"class_type":"LoraLoader"' | wc -l)
	eq "two LoraLoaders reached ComfyUI" "$n" 2
	case "$hist" in *"<lora:"*) bad "a LoRA tag reached ComfyUI" ;; *) ok ;; esac
	j=$(submit --workflow sdxl_img2img --param prompt=x --param steps=2 \
		--param denoise=0.6 --input image="$T/in.png")
	await "$j" succeeded 30
	j=$(submit --workflow sdxl_controlnet --param prompt=x \
		--param steps=2 --param preprocess=true --input control_image="$T/in.png")
	await "$j" succeeded 30
	curl -sf "$SIM_URL/history" | grep -q '"class_type":"ControlNetApplyAdvanced"' &&
		ok || bad "no ControlNet in the graph ComfyUI ran"
	ls "$T/sim/input/comfyq/$j/" >/dev/null 2>&1 && ok ||
		bad "the condition image was not uploaded under comfyq/$j/"
	j=$(submit --workflow sdxl_face_ipadapter --param prompt=x \
		--param steps=2 --input face="$T/in.png")
	await "$j" succeeded 30
	j=$(submit --workflow svd_img2vid --param duration=2 --param fps=8 \
		--input image="$T/in.png")
	await "$j" succeeded 30
	out=$(CQ status "$j" --json)
	echo "$out" | grep -q '"mime":"video/mp4"' && ok || bad "video: $out"
	j=$(smoke --param color=16777215)
	await "$j" succeeded 30
	eq "refunds" "$(refunds)" 0
	# An input URL that points inside (here: the sim on loopback) is
	# refused unless allow-private-urls is set.
	j=$(submit --workflow sdxl_img2img --param prompt=x \
		--input image="$SIM_URL/view?filename=x.png")
	await "$j" failed 30
	eq "private URL" "$(field "$j" error_code)" invalid_input
	case "$(field "$j" error)" in *inputs.image*) ok ;;
		*) bad "message: $(field "$j" error)" ;; esac
	;;
autostart)
	# ComfyUI is down; two workers share it; one starts it, once.
	port=$(free_port)
	SIM_URL="http://127.0.0.1:$port"
	cmd="exec $BIN/comfyq-sim --port $port --base-directory $T/sim --step-ms 10 --model-load-ms 0 >>$T/started.log 2>&1"
	export TMPDIR=$T	# where the workers' start lock file goes
	worker_start w1 --comfyui-start-cmd "$cmd" --comfyui-start-timeout-s 20
	PIDS+=("$WPID")
	worker_start w2 --comfyui-start-cmd "$cmd" --comfyui-start-timeout-s 20
	PIDS+=("$WPID")
	j=$(smoke)
	await "$j" succeeded 40
	n=$(cat "$T/w1.log" "$T/w2.log" | grep -c "comfyui is down: started")
	eq "started once" "$n" 1
	eq "one sim listening" "$(grep -c 'listening on' "$T/started.log")" 1
	eq "one start lock" "$(ls "$T"/comfyq-start-*.lock | wc -l)" 1
	# The started sim is in a session of its own: stop it by its PID (the
	# pattern is anchored: the workers' own arguments hold the command).
	spid=$(pgrep -f -- "^$BIN/comfyq-sim --port $port ")
	eq "the started sim found" "$(echo "$spid" | wc -w)" 1
	[ -n "$spid" ] && PIDS+=("$spid")
	;;
store)
	WORKER_ARGS="--store both --blob-ttl-s 600"
	stack
	j=$(smoke)
	await "$j" succeeded 30
	out=$(CQ status "$j" --json)
	key=$(echo "$out" | grep -oE '"key":"[^"]+"' | cut -d'"' -f4)
	path=$(echo "$out" | grep -oE '"path":"[^"]+"' | cut -d'"' -f4)
	eq "blob key" "$key" "${P}blob:$j:0"
	eq "blob size" "$(RC STRLEN "$key")" "$(stat -c %s "$path")"
	ttl=$(RC TTL "$key")
	if [ "$ttl" -gt 500 ] && [ "$ttl" -le 600 ]; then ok; else
		bad "blob TTL $ttl"; fi
	;;
reload)
	printf 'progress-min-ms = 250\nlog-level = notice\n' >"$T/w.conf"
	WORKER_ARGS="--config $T/w.conf"
	stack
	wait_until 20 grep -q "registered as" "$T/w1.log" || bad "w1 not up"
	printf 'progress-min-ms = 100\nlog-level = verbose\n' >"$T/w.conf"
	kill -HUP "$W1"
	wait_until 5 grep -q "configuration reloaded" "$T/w1.log" && ok ||
		bad "no reload logged"
	printf 'progress-min-ms = -1\n' >"$T/w.conf"
	kill -HUP "$W1"
	wait_until 5 grep -q "reload refused: .*progress-min-ms" "$T/w1.log" &&
		ok || bad "a bad reload was not refused"
	j=$(smoke)
	await "$j" succeeded 30
	alive "$W1" && ok || bad "worker died"
	# A reload that breaks a rule between settings (heartbeat at most half
	# the lease) changes nothing, the good values beside it included. This
	# worker takes both from its file (worker_start gives them as flags).
	stop "$W1"
	printf 'heartbeat-ms = 500\nlease-ms = 3000\nlog-level = notice\n' \
		>"$T/w2.conf"
	"$BIN/comfyq-worker" --config "$T/w2.conf" \
		--redis-url "$COMFYQ_TEST_REDIS_URL" --queue "$Q" \
		--comfyui-url "$SIM_URL" --worker-id w2 --output-dir "$T/out" \
		--workflows-dir "$ROOT/workflows" >>"$T/w2.log" 2>&1 &
	W2=$!
	PIDS+=("$W2")
	wait_until 20 grep -q "registered as" "$T/w2.log" || bad "w2 not up"
	printf 'heartbeat-ms = 2000\nlease-ms = 3000\nraw-graphs = deny\n' \
		>"$T/w2.conf"
	kill -HUP "$W2"
	wait_until 5 grep -q "reload refused: heartbeat-ms" "$T/w2.log" &&
		ok || bad "a cross-field reload was not refused"
	CQ render --workflow sdxl_txt2img --param prompt=x --param steps=2 \
		>"$T/raw.json"
	j=$(submit --graph "$T/raw.json")
	await "$j" succeeded 30
	;;
pipeline)
	# Two slots: the next prompt waits in ComfyUI's queue while one runs.
	WORKER_ARGS="--slots 2"
	stack --step-ms 100
	a=$(txt2img --param steps=20)
	b=$(txt2img --param steps=20)
	both() { is_state "$a" active && is_state "$b" active; }
	wait_until 20 both && ok || bad "not both active"
	q=$(curl -sf "$SIM_URL/queue")
	n_run=$(echo "$q" | grep -o '"queue_running":\[\[' | wc -l)
	n_pend=$(echo "$q" | sed 's/.*"queue_pending"://' | grep -o '\[[0-9.]*,"' | wc -l)
	eq "one running in ComfyUI" "$n_run" 1
	eq "one waiting in ComfyUI" "$n_pend" 1
	await "$a" succeeded 30
	await "$b" succeeded 30
	;;
partition)
	# w1 is cut off longer than its lease; the janitor gives its job to
	# w2. When w1 comes back it must stop the prompt and write nothing.
	stack --step-ms 200
	janitor_start
	PIDS+=("$JPID")
	j=$(txt2img --param steps=30)
	wait_until 20 is_state "$j" active || bad "never active"
	wait_until 20 sim_saw "job=.* start" || bad "w1's prompt never ran"
	kill -STOP "$W1"
	worker_start w2
	PIDS+=("$WPID")
	wait_until 20 sh -c "[ \"\$(redis-cli -p $RPORT HGET '${P}job:$j' worker)\" = w2 ]" ||
		bad "w2 never took the job"
	kill -CONT "$W1"
	wait_until 10 grep -q "job=$j dropped: lease lost" "$T/w1.log" && ok ||
		bad "w1 did not drop the job"
	await "$j" succeeded 60
	eq "one success" "$(events "$j" succeeded)" 1
	eq "finished by" "$(field "$j" worker)" w2
	wait_until 5 sim_saw 'interrupted at node' && ok ||
		bad "w1's prompt was not interrupted"
	alive "$W1" && ok || bad "w1 died"
	;;
faults)
	# Only the download this group times out is slow (held 60 s against
	# a 5 s output timeout): every other call has the default timeouts,
	# so a loaded machine changes no outcome.
	WORKER_ARGS="--output-timeout-ms 5000"
	stack
	# execution_error: a workflow error, not retried, refunded once.
	sim_faults '{"reset":true,"execution_error":{"times":1,"node":"4","exception_type":"RuntimeError","message":"boom"}}'
	j=$(txt2img --max-attempts 3)
	await "$j" failed 30
	eq "exec error code" "$(field "$j" error_code)" workflow_error
	eq "exec error attempts" "$(field "$j" attempt)" 1
	eq "one failed event" "$(events "$j" failed)" 1
	eq "one refund" "$(refunds)" 1
	# OOM: models freed, retried, then delivered; no refund.
	sim_faults '{"reset":true,"oom":{"times":1}}'
	j=$(txt2img --max-attempts 3)
	await "$j" succeeded 30
	eq "oom retried" "$(events "$j" retrying)" 1
	CQ events --from 0-0 --job "$j" --json | grep '"type":"retrying"' |
		grep -q '"error_code":"oom"' && ok || bad "oom code not on the retrying event"
	# The success's record says what its event says: no code of the
	# failed attempt left in it.
	eq "no error code after the success" "$(field "$j" error_code)" ""
	wait_until 30 sim_saw 'free: models unloaded' && ok || bad "sim saw no /free"
	eq "still one refund" "$(refunds)" 1
	# 500 on /prompt: backend_unavailable, retried.
	sim_faults '{"reset":true,"prompt_500":{"times":1}}'
	j=$(txt2img)
	await "$j" succeeded 30
	eq "500 retried" "$(events "$j" retrying)" 1
	# A slow /view runs past the download timeout: retried.
	sim_faults '{"reset":true,"slow_view":{"times":1,"ms":60000}}'
	j=$(txt2img)
	await "$j" succeeded 50
	eq "slow view retried" "$(events "$j" retrying)" 1
	# Outputs that fail validation: not retried, refunded.
	sim_faults '{"reset":true,"black_image":{"times":1}}'
	j=$(txt2img --max-attempts 3)
	await "$j" failed 30
	eq "black image" "$(field "$j" error_code)" output_invalid
	sim_faults '{"reset":true,"truncated_png":{"times":1}}'
	j=$(txt2img --max-attempts 3)
	await "$j" failed 30
	eq "truncated png" "$(field "$j" error_code)" output_invalid
	cp "$ROOT/tests/data/images/ok.png" "$T/in.png"
	sim_faults '{"reset":true,"tiny_video":{"times":1}}'
	j=$(submit --workflow svd_img2vid --param duration=1 \
		--input image="$T/in.png")
	await "$j" failed 30
	eq "tiny video" "$(field "$j" error_code)" output_invalid
	sim_faults '{"reset":true,"no_face":{"times":1}}'
	j=$(submit --workflow sdxl_face_ipadapter --param prompt=x \
		--param steps=2 --input face="$T/in.png")
	await "$j" failed 30
	eq "no face" "$(field "$j" error_code)" no_face
	eq "refunds" "$(refunds)" 5
	# Without faults the video and face templates deliver.
	sim_faults '{"reset":true}'
	j=$(submit --workflow svd_img2vid --param duration=1 \
		--input image="$T/in.png")
	await "$j" succeeded 30
	j=$(submit --workflow sdxl_face_ipadapter --param prompt=x \
		--param steps=2 --input face="$T/in.png")
	await "$j" succeeded 30
	# A CUDA fault: retried elsewhere, and this worker stops claiming.
	sim_faults '{"reset":true,"execution_error":{"times":1,"node":"3","exception_type":"RuntimeError","message":"CUDA error: an illegal memory access was encountered"}}'
	j=$(txt2img --max-attempts 3)
	wait_until 20 sh -c "[ \"\$($BIN/comfyq events --from 0-0 --job $j --json | grep -c retrying)\" = 1 ]" &&
		ok || bad "gpu fault not retried"
	eq "gpu fault code" "$(field "$j" error_code)" gpu_fault
	sleep 1
	eq "not claimed again here" "$(state "$j")" delayed
	eq "worker health" "$(RC HGET "${P}worker:w1" health)" gpu_broken
	alive "$W1" && ok || bad "worker died"
	;;
timeouts)
	WORKER_ARGS="--silence-timeout-s 1"
	stack
	# A hang: interrupted at the job's timeout, failed timeout, refunded.
	sim_faults '{"reset":true,"hang":{"times":1}}'
	j=$(txt2img --timeout 2)
	await "$j" failed 30
	eq "hang code" "$(field "$j" error_code)" timeout
	wait_until 5 sim_saw 'interrupt' && ok || bad "sim saw no interrupt"
	eq "one refund" "$(refunds)" 1
	# Silence: the socket says nothing; /history has the result.
	sim_faults '{"reset":true,"silence":{"times":1}}'
	j=$(txt2img)
	await "$j" succeeded 30
	eq "silence not retried" "$(events "$j" retrying)" 0
	# ComfyUI forgets a silent prompt: stalled, retried, delivered.
	curl -sf -X POST -d '{"clear":true}' "$SIM_URL/history" >/dev/null
	sim_faults '{"reset":true,"silence":{"times":1}}'
	j=$(txt2img --param steps=1)
	wait_until 10 sh -c "curl -sf $SIM_URL/history | grep -q status_str" && \
		curl -sf -X POST -d '{"clear":true}' "$SIM_URL/history" >/dev/null
	await "$j" succeeded 30
	eq "stalled then retried" "$(events "$j" retrying)" 1
	;;
recovery)
	stack
	# The socket drops mid-job: reconnect, reconcile, deliver once.
	sim_faults '{"reset":true,"ws_drop":{"times":1}}'
	j=$(txt2img --param steps=10)
	await "$j" succeeded 30
	eq "ws drop: no retry" "$(events "$j" retrying)" 0
	eq "ws drop: one success" "$(events "$j" succeeded)" 1
	grep -q "websocket lost" "$T/w1.log" && ok || bad "no ws loss logged"
	# The sim crashes mid-job and comes back empty: resubmitted.
	sim_faults '{"reset":true,"crash":{"times":1}}'
	j=$(txt2img --param steps=10)
	wait_until 20 sh -c "! kill -0 $SIM_PID" || bad "sim did not crash"
	wait "$SIM_PID" 2>/dev/null
	sim_start sim --step-ms 20 --model-load-ms 0 || exit 1
	PIDS+=("$SIM_PID")
	await "$j" succeeded 40
	eq "crash: one success" "$(events "$j" succeeded)" 1
	grep -q "submitting again" "$T/w1.log" && ok || bad "no resubmit logged"
	;;
cancel)
	WORKER_ARGS="--slots 1"
	stack
	sim_faults '{"reset":true,"hang":{"times":1}}'
	run=$(txt2img)
	wait_until 20 is_state "$run" active || bad "never active"
	queued=$(txt2img)
	sleep 0.5
	eq "second waits" "$(state "$queued")" queued
	CQ cancel "$queued" >/dev/null
	eq "queued canceled at once" "$(state "$queued")" canceled
	CQ cancel "$run" >/dev/null
	await "$run" canceled 20
	wait_until 5 sim_saw 'interrupt' && ok || bad "sim saw no interrupt"
	eq "two refunds" "$(refunds)" 2
	eq "one canceled event each" "$(events "$run" canceled)" 1
	j=$(txt2img)
	await "$j" succeeded 30
	;;
kill)
	stack --step-ms 300
	j=$(txt2img --param steps=15)
	wait_until 20 is_state "$j" active || bad "never active"
	fence=$(field "$j" fence)
	kill -9 "$W1"
	wait "$W1" 2>/dev/null
	# The janitor puts it back once the lease lapses; w2 finishes it.
	janitor_start
	PIDS+=("$JPID")
	worker_start w2
	PIDS+=("$WPID")
	await "$j" succeeded 60
	eq "requeued once" "$(events "$j" requeued)" 1
	eq "attempt" "$(field "$j" attempt)" 2
	eq "finished by" "$(field "$j" worker)" w2
	eq "late complete" "$(RC FCALL comfyq_complete 1 "$P" "$j" "$fence" '[]')" STALE
	eq "one success" "$(events "$j" succeeded)" 1
	# A worker killed while its prompt hangs leaves it running on ComfyUI
	# (only /interrupt ends it). The next worker's prompt waits behind it
	# until that worker sees that no live worker owns it: interrupted,
	# and the job runs.
	stop "$WPID"
	worker_start w3 --worker-ttl-ms 2000
	W3=$WPID
	PIDS+=("$WPID")
	sim_faults '{"reset":true,"hang":{"times":1}}'
	j=$(txt2img --param steps=2 --max-attempts 1)
	wait_until 20 is_state "$j" active || bad "never active"
	wait_until 20 sim_saw 'fault|hang' || true
	sleep 1
	kill -9 "$W3"
	wait "$W3" 2>/dev/null
	worker_start w4 --silence-timeout-s 1
	PIDS+=("$WPID")
	await "$j" succeeded 60
	grep -q "client w3, no live worker" "$T/w4.log" && ok ||
		bad "w4 did not interrupt w3's orphaned prompt"
	eq "orphan interrupted" "$(curl -sf "$SIM_URL/sim/stats" | jq .interrupts)" 1
	;;
drain)
	WORKER_ARGS="--drain-grace-s 20"
	stack --step-ms 100
	j=$(txt2img --param steps=15)
	wait_until 20 is_state "$j" active || bad "never active"
	kill -TERM "$W1"
	await "$j" succeeded 30
	wait_until 10 sh -c "! kill -0 $W1" && ok || bad "worker did not exit"
	wait "$W1"
	eq "exit status" "$?" 0
	eq "worker stopped" "$(RC HGET "${P}worker:w1" state)" stopped
	# A job longer than the grace period is handed back uncounted.
	worker_start w3 --drain-grace-s 1
	PIDS+=("$WPID")
	j=$(txt2img --param steps=60)
	wait_until 20 is_state "$j" active || bad "never active"
	kill -TERM "$WPID"
	wait_until 20 sh -c "! kill -0 $WPID" && ok || bad "w3 did not exit"
	eq "handed back" "$(state "$j")" queued
	eq "attempt not counted" "$(field "$j" attempt)" 0
	eq "requeued event" "$(events "$j" requeued)" 1
	wait_until 5 sim_saw 'interrupt' && ok || bad "sim saw no interrupt"
	;;
outputs)
	# Output names and sizes come from ComfyUI's history and files:
	# untrusted. Two files of one name in two subfolders stay two files.
	stack
	# Two samplers with two seeds, two SaveImage nodes: two pictures.
	k='"class_type":"KSampler","inputs":{"model":["1",0],"steps":2,"cfg":7,"sampler_name":"euler","scheduler":"normal","positive":["3",0],"negative":["3",0],"latent_image":["2",0],"denoise":1'
	echo '{"1":{"class_type":"CheckpointLoaderSimple","inputs":{"ckpt_name":"sd_xl_base_1.0.safetensors"}},"2":{"class_type":"EmptyLatentImage","inputs":{"width":256,"height":256,"batch_size":1}},"3":{"class_type":"CLIPTextEncode","inputs":{"text":"x","clip":["1",1]}},"4":{'"$k"',"seed":1}},"5":{"class_type":"VAEDecode","inputs":{"samples":["4",0],"vae":["1",2]}},"6":{"class_type":"SaveImage","inputs":{"images":["5",0],"filename_prefix":"x"}},"7":{'"$k"',"seed":2}},"8":{"class_type":"VAEDecode","inputs":{"samples":["7",0],"vae":["1",2]}},"9":{"class_type":"SaveImage","inputs":{"images":["8",0],"filename_prefix":"x"}}}' >"$T/two.json"
	sim_faults '{"reset":true,"same_name":{"times":1}}'
	j=$(submit --graph "$T/two.json")
	await "$j" succeeded 30
	out=$(CQ status "$j" --json)
	p0=$(echo "$out" | grep -oE '"path":"[^"]+"' | sed -n 1p | cut -d'"' -f4)
	p1=$(echo "$out" | grep -oE '"path":"[^"]+"' | sed -n 2p | cut -d'"' -f4)
	s="$T/sim/output/comfyq/$j/a1"
	[ -n "$p0" ] && [ "$p0" != "$p1" ] && ok || bad "paths '$p0' '$p1'"
	cmp -s "$s/1/x.png" "$s/2/x.png" && bad "the two images are one" || ok
	{ cmp -s "$p0" "$s/1/x.png" && cmp -s "$p1" "$s/2/x.png"; } ||
	{ cmp -s "$p0" "$s/2/x.png" && cmp -s "$p1" "$s/1/x.png"; } && ok ||
		bad "$p0 and $p1 are not ComfyUI's 1/x.png and 2/x.png"
	eq "files stored" "$(ls "$T/out/$j" | wc -l)" 2
	# A name with a control character is refused, not stored.
	sim_faults '{"reset":true,"same_name":{"times":1,"name":"x\n.png"}}'
	j=$(smoke --max-attempts 3)
	await "$j" failed 30
	eq "control character" "$(field "$j" error_code)" output_invalid
	case "$(field "$j" error)" in *"control character"*) ok ;;
		*) bad "message: $(field "$j" error)" ;; esac
	eq "nothing stored" "$(ls "$T/out/$j" 2>/dev/null | wc -l)" 0
	# A small PNG that declares 16384x16384 (about 1.5 GB to decode) is
	# refused from its header: the worker's peak RSS stays far below.
	sim_faults '{"reset":true,"huge_png":{"times":1}}'
	j=$(smoke --max-attempts 3)
	await "$j" failed 30
	eq "huge png" "$(field "$j" error_code)" output_invalid
	eq "huge png attempts" "$(field "$j" attempt)" 1
	case "$(field "$j" error)" in *16384x16384*) ok ;;
		*) bad "message: $(field "$j" error)" ;; esac
	eq "no file kept" "$(ls -A "$T/out/$j" 2>/dev/null | wc -l)" 0
	eq "refunds" "$(refunds)" 2
	hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$W1/status")
	if [ "${hwm:-999999999}" -lt 307200 ]; then ok; else
		bad "worker peak RSS ${hwm} kB"; fi

	# output-fsync on (w1, the default: flushed and renamed on the sync
	# pool) and off (renamed on the loop): when a producer following the
	# events stream reads succeeded (submit --wait returns there), every
	# file the record names is on disk, whole, and no temporary file is.
	stored_at_event() {	# stored_at_event LABEL: 4 jobs, one at a time
		local i out j p n
		for i in 1 2 3 4; do
			out=$(submit --workflow smoke_invert --param width=64 \
				--param height=32 --wait --json) || continue
			j=$(echo "$out" | grep -oE '"job":"[^"]+"' | cut -d'"' -f4)
			n=0
			for p in $(echo "$out" | grep -oE '"path":"[^"]+"' | cut -d'"' -f4); do
				[ "$(png_size "$p" 2>/dev/null)" = 64x32 ] && n=$((n + 1))
			done
			eq "$1: job $i's file at its event" "$n" 1
			eq "$1: job $i's temporary files" \
				"$(ls -A "$T/out/$j" | grep -c '^\.tmp-')" 0
		done
	}
	stored_at_event "fsync on"
	stop "$W1"
	worker_start w2 --output-fsync false
	PIDS+=("$WPID")
	W2=$WPID
	stored_at_event "fsync off"
	stop "$W2"

	# A folder that turns read-only under a running worker (one that is
	# so at start stops it: output-dir is checked), and a full one: the
	# job ends internal with the reason and a refund, in both modes; the
	# worker lives on. As root, tmpfs mounts of the test's own (remounted
	# read-only; 64 KiB filled up); otherwise write permission taken
	# away, and no full folder.
	mounted=()
	unmount() { local m; for m in "${mounted[@]}"; do umount "$m"; done; }
	trap 'unmount; stack_cleanup' EXIT
	if [ "$(id -u)" = 0 ] && mkdir -p "$T/ro" "$T/full" &&
		mount -t tmpfs -o size=64k,mode=0755 tmpfs "$T/full" 2>/dev/null; then
		mounted+=("$T/full")
		dd if=/dev/zero of="$T/full/fill" bs=4k 2>/dev/null
		mount -t tmpfs -o size=64k tmpfs "$T/ro" && mounted+=("$T/ro")
		dirs="ro full"
	else
		mkdir -p "$T/ro"
		dirs=ro
	fi
	read_only() {
		if [ "$(id -u)" = 0 ]; then mount -o remount,ro "$T/ro"
		else chmod 0555 "$T/ro"; fi
	}
	writable() {
		if [ "$(id -u)" = 0 ]; then mount -o remount,rw "$T/ro"
		else chmod 0755 "$T/ro"; fi
	}
	for mode in true false; do
		for d in $dirs; do
			worker_start "w-$d-$mode" --output-dir "$T/$d" \
				--output-fsync $mode
			PIDS+=("$WPID")
			wait_until 20 grep -q "registered as" "$T/w-$d-$mode.log" ||
				bad "w-$d-$mode did not register"
			[ $d = ro ] && read_only
			j=$(smoke --max-attempts 1)
			await "$j" failed 30
			eq "$d, fsync $mode: code" "$(field "$j" error_code)" internal
			eq "$d, fsync $mode: refund" \
				"$(CQ status "$j" --json | grep -oE '"refund":(true|false)')" \
				'"refund":true'
			case "$(field "$j" error)" in
			*"Read-only file system"* | *"Permission denied"* | \
				*"No space left on device"*) ok ;;
			*) bad "$d, fsync $mode: message: $(field "$j" error)" ;;
			esac
			alive "$WPID" && ok || bad "w-$d-$mode died"
			stop "$WPID"
			[ $d = ro ] && writable
		done
	done
	;;
health)
	# The record's health follows the truth whatever the order of
	# events. (It pauses Redis: CMakeLists gives it a Redis of its own.)
	health() { RC HGET "${P}worker:w1" health; }
	is_health() { [ "$(health)" = "$1" ]; }
	SIM_PORT=$(free_port)
	SIM_URL="http://127.0.0.1:$SIM_PORT"
	# The first register fails (the pool's slots key is no hash); the
	# retry is sent while the sim is down and held by Redis until the
	# worker has seen the sim come up.
	RC SET "${P}slots:127.0.0.1:$SIM_PORT" x >/dev/null
	worker_start w1 --drain-grace-s 30
	PIDS+=("$WPID")
	W1=$WPID
	wait_until 20 grep -q "register: .*CORRUPT" "$T/w1.log" ||
		bad "the first register did not fail"
	printf 'DEL %s\nCLIENT PAUSE 30000 WRITE\n' \
		"${P}slots:127.0.0.1:$SIM_PORT" | RC >/dev/null
	wait_until 20 sh -c "redis-cli -p $RPORT CLIENT LIST | grep -q 'flags=b .*cmd=fcall'" ||
		bad "no register held"
	sim_start sim --step-ms 100 --model-load-ms 0 || exit 1
	PIDS+=("$SIM_PID")
	wait_until 20 grep -q "is healthy" "$T/w1.log" || bad "sim never up"
	RC CLIENT UNPAUSE >/dev/null
	wait_until 20 grep -q "registered as" "$T/w1.log" || bad "not registered"
	wait_until 10 is_health ok && ok || bad "health $(health), sim up"
	# ComfyUI goes away and comes back.
	stop "$SIM_PID"
	wait_until 10 is_health backend_down && ok || bad "health $(health), sim down"
	sim_start sim --step-ms 100 --model-load-ms 0 || exit 1
	PIDS+=("$SIM_PID")
	wait_until 20 is_health ok && ok || bad "health $(health), sim back"
	j=$(txt2img --param steps=30)
	wait_until 20 is_state "$j" active || bad "never active"
	kill -TERM "$W1"
	wait_until 10 is_health draining && ok || bad "health $(health), draining"
	await "$j" succeeded 30
	wait_until 10 sh -c "! kill -0 $W1" && ok || bad "worker did not exit"
	eq "worker stopped" "$(RC HGET "${P}worker:w1" state)" stopped
	# Without a usable GPU the probe says so once, plainly.
	n=$(grep -cE "notice (no usable CUDA driver|no CUDA device|built without CUDA); using ComfyUI's /system_stats$" "$T/w1.log")
	if grep -q " GPU 0: " "$T/w1.log"; then eq "GPU probed" "$n" 0; else
		eq "one plain probe line" "$n" 1; fi
	;;
models)
	# Model-aware claiming: 12 jobs alternating between two checkpoints
	# (the template's checkpoint param: comfyq submit records the key),
	# queued before the worker starts; the sim counts checkpoint loads.
	# In fair order (model-aware false) every job loads one; model-aware,
	# one load per checkpoint.
	loads() { curl -sf "$SIM_URL/sim/stats" | grep -oE '"model_loads":[0-9]+' | cut -d: -f2; }
	base=sd_xl_base_1.0.safetensors refiner=sd_xl_refiner_1.0.safetensors
	declare -A n_loads
	for aware in false true; do
		SIM_PORT=
		sim_start "sim-$aware" --step-ms 20 --model-load-ms 200 || exit 1
		PIDS+=("$SIM_PID")
		for i in $(seq 1 12); do
			c=$base
			[ $((i % 2)) = 1 ] && c=$refiner
			submit --workflow sdxl_txt2img --param prompt="fox $i" \
				--param steps=1 --param checkpoint=$c >>"$T/jobs.$aware"
		done
		first=$(head -1 "$T/jobs.$aware")
		eq "$aware: the template's key" "$(field "$first" model)" $refiner
		worker_start "w-$aware" --model-aware $aware
		PIDS+=("$WPID")
		for j in $(cat "$T/jobs.$aware"); do await "$j" succeeded 60; done
		eq "$aware: the worker record's model" \
			"$(RC HGET "${P}worker:w-$aware" model)" $base
		n_loads[$aware]=$(loads)
		[ $aware = false ] && stop "$WPID"
	done
	eq "fair order: a load per job" "${n_loads[false]}" 12
	eq "model-aware: a load per checkpoint" "${n_loads[true]}" 2
	eq "claims that took the worker's checkpoint first" \
		"$(RC HGET "${P}stats" model_preferred)" 5
	CQ workers --json | grep -q "\"worker\":\"w-true\".*\"model\":\"$base\"" &&
		ok || bad "comfyq workers: $(CQ workers --json)"
	# An OOM makes the worker /free ComfyUI: it holds nothing then.
	sim_faults '{"oom":{"nth":1}}'
	j=$(submit --workflow sdxl_txt2img --param prompt=x --param steps=1 \
		--max-attempts 1)
	await "$j" failed 30
	wait_until 10 sh -c "[ -z \"\$(redis-cli -p $RPORT HGET '${P}worker:w-true' model)\" ]" &&
		ok || bad "model after /free: $(RC HGET "${P}worker:w-true" model)"
	eq "the sim holds none" "$(curl -sf "$SIM_URL/sim/stats" | grep -o '"loaded":null')" '"loaded":null'
	# Lost backend (a restart, say): nothing held either.
	j=$(submit --workflow sdxl_txt2img --param prompt=y --param steps=1)
	await "$j" succeeded 30
	eq "held again" "$(RC HGET "${P}worker:w-true" model)" $base
	stop "$SIM_PID"
	wait_until 10 sh -c "[ -z \"\$(redis-cli -p $RPORT HGET '${P}worker:w-true' model)\" ]" &&
		ok || bad "model after the backend was lost: $(RC HGET "${P}worker:w-true" model)"
	;;
*)
	echo "worker.sh: unknown group $GROUP" >&2
	exit 2
	;;
esac
finish
