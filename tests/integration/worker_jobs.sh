#!/usr/bin/env bash
# comfyq-worker end to end, one job's life: the wall clock cap, progress
# throttling, the files a job records for the janitor, inputs fetched
# before the GPU slot, and cancels that act at once. A real redis-server,
# comfyq-sim and workers; outcomes asserted on what a producer sees.
#   worker_jobs.sh BIN_DIR GROUP    GROUP: timecap progress files prefetch
#                                          cancelnow pipeline
set -u
BIN=$1
GROUP=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-jobs.XXXXXX")
. "$ROOT/tests/lib/stack.sh"
trap stack_cleanup EXIT

stack() {	# stack [SIM ARGS...]: one sim and one worker (WORKER_ARGS)
	sim_start sim --step-ms 20 --model-load-ms 0 "$@" || exit 1
	PIDS+=("$SIM_PID")
	worker_start w1 ${WORKER_ARGS:-}
	PIDS+=("$WPID")
}
# A raw graph: checkpoint, latent, prompt, then $1 KSamplers of $2 steps
# in a chain, decoded and saved; $3 more nodes (JSON members) may follow.
sampler_graph() {
	local n=$1 steps=$2 i prev='"2"' g
	g='{"1":{"class_type":"CheckpointLoaderSimple","inputs":{"ckpt_name":"sd_xl_base_1.0.safetensors"}},"2":{"class_type":"EmptyLatentImage","inputs":{"width":512,"height":512,"batch_size":1}},"3":{"class_type":"CLIPTextEncode","inputs":{"text":"x","clip":["1",1]}}'
	for i in $(seq 1 "$n"); do
		g="$g,\"k$i\":{\"class_type\":\"KSampler\",\"inputs\":{\"model\":[\"1\",0],\"seed\":$i,\"steps\":$steps,\"cfg\":7,\"sampler_name\":\"euler\",\"scheduler\":\"normal\",\"positive\":[\"3\",0],\"negative\":[\"3\",0],\"latent_image\":[$prev,0],\"denoise\":1}}"
		prev="\"k$i\""
	done
	echo "$g,\"8\":{\"class_type\":\"VAEDecode\",\"inputs\":{\"samples\":[$prev,0],\"vae\":[\"1\",2]}},\"9\":{\"class_type\":\"SaveImage\",\"inputs\":{\"images\":[\"8\",0],\"filename_prefix\":\"x\"}}${3:+,$3}}"
}
# ms since the epoch of a log line's ISO timestamp (UTC).
log_ms() { date -u -d "$1" +%s%3N; }
ran_ms() { echo $(( $(field "$1" finished_ms) - $(field "$1" started_ms) )); }
# cancel_now JOB WHAT: cancels it; it must end canceled, refunded, once,
# within 2 s of the request (the heartbeat alone takes up to 10 s).
cancel_now() {
	local t0 d
	t0=$(date +%s%3N)
	CQ cancel "$1" >/dev/null
	await "$1" canceled 20
	d=$(( $(field "$1" finished_ms) - t0 ))
	[ "$d" -lt 2000 ] && ok || bad "$2: canceled $d ms after the request"
	eq "$2: refund" "$(field "$1" refund)" true
	eq "$2: one canceled event" "$(events "$1" canceled)" 1
}

case "$GROUP" in
timecap)
	# The operator's job-timeout-s caps what a job asks for.
	WORKER_ARGS="--job-timeout-s 2"
	stack --step-ms 200
	j=$(submit --workflow sdxl_txt2img --param prompt=x --param steps=30 \
		--timeout 30)
	await "$j" failed 30
	eq "capped: code" "$(field "$j" error_code)" timeout
	d=$(ran_ms "$j")
	[ "$d" -lt 10000 ] && ok || bad "ran $d ms against a cap of 2 s"
	grep -q "job=$j timeout_s 30 capped at job-timeout-s 2" "$T/w1.log" &&
		ok || bad "the cap was not logged"
	case "$(field "$j" error)" in *"job-timeout-s"*"asked for 30 s"*) ok ;;
		*) bad "message: $(field "$j" error)" ;; esac
	eq "one failed event" "$(events "$j" failed)" 1
	eq "refund" "$(field "$j" refund)" true
	;;
progress)
	# 100 one-step samplers: each ends with progress value == max, and
	# every one of them is throttled to progress-min-ms (250).
	stack --step-ms 10
	sampler_graph 100 1 >"$T/g.json"
	j=$(submit --graph "$T/g.json")
	await "$j" succeeded 60
	n=$(events "$j" progress)
	d=$(ran_ms "$j")
	max=$(( d / 250 + 3 ))
	if [ "$n" -ge 1 ] && [ "$n" -le "$max" ]; then ok; else
		bad "$n progress events in $d ms (at most $max)"; fi
	eq "last progress recorded" "$(field "$j" progress)" 1/1
	;;
files)
	# A raw graph reads an existing input by name: while the job runs the
	# janitor keeps it, old as it is; after the job it goes. (graph-files
	# lets raw graphs name it.)
	WORKER_ARGS="--graph-files faces/"
	stack --step-ms 100
	mkdir -p "$T/sim/input/faces"
	cp "$ROOT/tests/data/images/ok.png" "$T/sim/input/faces/old.png"
	touch -d '2 hours ago' "$T/sim/input/faces/old.png"
	sampler_graph 1 100 '"20":{"class_type":"LoadImage","inputs":{"image":"faces/old.png"}},"21":{"class_type":"ImageInvert","inputs":{"image":["20",0]}},"22":{"class_type":"SaveImage","inputs":{"images":["21",0],"filename_prefix":"y"}}' >"$T/g.json"
	j=$(submit --graph "$T/g.json")
	wait_until 20 sh -c "grep -q 'job=.* start' '$T/sim.log'" ||
		bad "the prompt never started"
	eq "files recorded" "$(field "$j" files)" '["input/faces/old.png"]'
	janitor_start --clean-dirs "input=$T/sim/input" \
		--clean-input-age-s 60 --clean-interval-s 1
	PIDS+=("$JPID")
	wait_until 10 sh -c "[ \$(grep -c 'clean: pass' '$T/janitor.log') -ge 2 ]" ||
		bad "the janitor made no two passes"
	eq "still running" "$(state "$j")" active
	[ -f "$T/sim/input/faces/old.png" ] && ok ||
		bad "the janitor deleted a running job's input"
	grep -q 'kept 1 in use' "$T/janitor.log" && ok || bad "nothing kept"
	await "$j" succeeded 30
	wait_until 10 sh -c "[ ! -e '$T/sim/input/faces/old.png' ]" && ok ||
		bad "the input stayed after the job ended"
	# A template job records the inputs it uploaded.
	j=$(submit --workflow sdxl_img2img --param prompt=x --param steps=2 \
		--input image="$ROOT/tests/data/images/ok.png")
	await "$j" succeeded 30
	eq "uploads recorded" "$(field "$j" files)" "[\"input/comfyq/$j/image.png\"]"
	# A name that leaves ComfyUI's folder is refused, not recorded.
	sampler_graph 1 1 '"20":{"class_type":"LoadImage","inputs":{"image":"../../etc/passwd"}},"21":{"class_type":"SaveImage","inputs":{"images":["20",0],"filename_prefix":"z"}}' >"$T/g.json"
	# (comfyq submit refuses it first: straight to enqueue.)
	j=$(RC FCALL comfyq_enqueue 1 "$P" "{\"graph\":$(cat "$T/g.json")}" |
		head -1)
	await "$j" failed 30
	eq "escape: code" "$(field "$j" error_code)" invalid_input
	case "$(field "$j" error)" in *"node 20 (LoadImage)"*"'..'"*) ok ;;
		*) bad "message: $(field "$j" error)" ;; esac
	eq "escape: one refund" "$(field "$j" refund)" true
	;;
prefetch)
	# One slot. Jobs whose input URL is slow (a second sim holds /view 4 s,
	# longer than the lease: heartbeats cover them, the janitor must not
	# reclaim) are queued first, then another tenant's job without a URL:
	# it runs while the downloads are still going on.
	WORKER_ARGS="--slots 1 --allow-private-urls true"	# prefetch 2
	stack --step-ms 20
	janitor_start
	PIDS+=("$JPID")
	main_pid=$SIM_PID main_port=$SIM_PORT main_url=$SIM_URL
	SIM_PORT=0
	sim_start slow || exit 1
	PIDS+=("$SIM_PID")
	slow_url=$SIM_URL
	mkdir -p "$T/slow/output"
	cp "$ROOT/tests/data/images/ok.png" "$T/slow/output/in.png"
	sim_faults '{"reset":true,"slow_view":{"ms":4000}}'
	SIM_PID=$main_pid SIM_PORT=$main_port SIM_URL=$main_url
	slow=()
	for i in 1 2 3 4; do
		slow+=("$(submit --workflow sdxl_img2img --param prompt=x \
			--param steps=2 --tenant slow \
			--input image="$slow_url/view?filename=in.png")")
	done
	other=$(submit --workflow smoke_invert --param width=64 \
		--param height=64 --tenant other)
	await "$other" succeeded 20
	wait_until 10 grep -q 'fault: /view of in.png held' "$T/slow.log" ||
		bad "the slow server was never asked"
	first=$(grep -m1 'fault: /view of in.png held' "$T/slow.log" | cut -d' ' -f1)
	sent=$(( $(log_ms "$first") + 4000 ))
	fin=$(field "$other" finished_ms)
	[ "$fin" -lt "$sent" ] && ok ||
		bad "the other tenant finished at $fin, after the first slow file was sent ($sent)"
	for j in "${slow[@]}"; do
		await "$j" succeeded 40
		eq "one terminal event" "$(events "$j" succeeded)" 1
		eq "no failure" "$(events "$j" failed)" 0
		eq "not reclaimed" "$(events "$j" requeued)" 0
	done
	eq "other: one terminal event" "$(events "$other" succeeded)" 1
	eq "nothing refunded" "$(RC XLEN "${P}refunds")" 0
	pool=$(RC HGET "${P}worker:w1" pool)
	eq "slots free" "$(RC HLEN "${P}held:$pool")" 0
	# A job canceled while it downloads ends at once.
	slowjob() {
		submit --workflow sdxl_img2img --param prompt=x --param steps=2 \
			--input image="$slow_url/view?filename=in.png" "$@"
	}
	j=$(slowjob)
	wait_until 10 grep -q "job=$j claimed .*no slot yet" "$T/w1.log" ||
		bad "not claimed slotless"
	cancel_now "$j" slotless
	# SIGTERM hands a job that holds no slot back at once.
	j=$(slowjob)
	wait_until 10 grep -q "job=$j claimed .*no slot yet" "$T/w1.log" ||
		bad "not claimed slotless"
	kill -TERM "$WPID"
	wait_until 10 sh -c "! kill -0 $WPID" && ok || bad "w1 did not exit"
	eq "handed back" "$(state "$j")" queued
	eq "attempt not counted" "$(field "$j" attempt)" 0
	grep -q "job=$j handing back" "$T/w1.log" && ok || bad "no hand-back logged"
	grep -q "draining: 1 job in flight, grace 30 s" "$T/w1.log" && ok ||
		bad "drain not logged"
	CQ cancel "$j" >/dev/null	# (queued again: not needed below)
	# prefetch 0: a URL job takes its slot first, then downloads; it runs.
	worker_start w2 --slots 1 --allow-private-urls true --prefetch 0
	PIDS+=("$WPID")
	j=$(slowjob)
	await "$j" succeeded 30
	eq "off: one terminal event" "$(events "$j" succeeded)" 1
	grep -q "job=$j claimed without a slot; waiting for a slot" "$T/w2.log" &&
		grep -q "job=$j slot taken" "$T/w2.log" && ok ||
		bad "prefetch 0: the slot was not taken first"
	grep -q "job=$j inputs ready" "$T/w2.log" &&
		bad "prefetch 0: inputs readied before the slot" || ok
	;;
pipeline)
	# A busy worker of a queue without URL inputs: one claim a job, sent
	# right behind the previous job's complete on the same connection
	# (one write, one socket read in Redis), never a second claim to
	# prefetch. Watched with MONITOR; heartbeats (1.5 s) may each add one
	# prefetch look, which is counted apart.
	sim_start sim --step-ms 0 || exit 1
	PIDS+=("$SIM_PID")
	n=30
	for i in $(seq 1 $n); do
		submit --workflow smoke_invert --param width=8 --param height=8 \
			>/dev/null
	done
	RC MONITOR >"$T/monitor.txt" 2>&1 &
	mpid=$!
	PIDS+=("$mpid")
	sleep 0.3
	worker_start w1 --slots 1 --heartbeat-ms 1500
	PIDS+=("$WPID")
	all_done() { [ "$(RC HGET "${P}stats" succeeded)" = "$n" ]; }
	wait_until 60 all_done ||
		bad "not all $n jobs succeeded: $(RC HGET "${P}stats" succeeded)"
	sleep 0.3
	stop "$mpid"
	out=$(python3 - "$T/monitor.txt" "$P" <<'PY'
import re, sys
path, prefix = sys.argv[1], sys.argv[2]
seq = []   # (client, function) of the worker's FCALLs on this queue
for line in open(path, errors='replace'):
    m = re.match(r'[0-9.]+ \[\d+ ([^\]]+)\] "FCALL" "comfyq_(\w+)" "1" "([^"]*)"', line)
    if m and m.group(3) == prefix:
        seq.append((m.group(1), m.group(2)))
done = [i for i, (_, f) in enumerate(seq) if f == 'complete']
if not done:
    print('completes=0'); sys.exit()
win = seq[done[0]:done[-1] + 1]
after = sum(1 for a, b in zip(win, win[1:])
            if a[1] == 'complete' and b[1] == 'claim' and a[0] == b[0])
claims = sum(1 for _, f in win if f == 'claim')
beats = sum(1 for _, f in win if f == 'heartbeat')
print('completes=%d after=%d claims=%d beats=%d' % (len(done), after, claims, beats))
PY
)
	echo "pipeline: $out"
	eval "$out"
	eq "completes seen" "$completes" "$n"
	eq "a claim right behind each complete but the last" "${after:-0}" $((n - 1))
	extra=$(( ${claims:-0} - ${after:-0} ))
	[ "$extra" -le "${beats:-0}" ] && ok ||
		bad "$extra claims not behind a complete, $beats heartbeats"
	;;
cancelnow)
	# The default heartbeat (10 s): a cancel still acts within a moment.
	WORKER_ARGS="--heartbeat-ms 10000 --lease-ms 30000"
	stack --step-ms 50
	sampler_graph 1 300 >"$T/g.json"	# 15 s of sampling
	j=$(submit --graph "$T/g.json")
	wait_until 20 sh -c "grep -q 'job=.* start' '$T/sim.log'" ||
		bad "the prompt never started"
	sleep 1
	cancel_now "$j" running
	pid=$(grep -oE "job=$j submitted as prompt [0-9a-f-]+" "$T/w1.log" |
		awk '{ print $NF }')
	wait_until 5 grep -q "job=$pid interrupted at node" "$T/sim.log" && ok ||
		bad "the sim saw no interrupt of prompt '$pid'"
	# The subscription is cut (this group has a redis-server of its own):
	# the worker reconnects, subscribes again, and cancels act at once.
	RC CLIENT KILL TYPE pubsub >/dev/null
	wait_until 10 sh -c "[ \$(grep -c 'listening for cancels' '$T/w1.log') -ge 2 ]" &&
		ok || bad "not subscribed again"
	j=$(submit --graph "$T/g.json")
	wait_until 20 sh -c "[ \$(grep -c 'job=.* start' '$T/sim.log') -ge 2 ]" ||
		bad "the second prompt never started"
	cancel_now "$j" "after a reconnect"
	;;
*)
	echo "worker_jobs.sh: unknown group $GROUP" >&2
	exit 2
	;;
esac
finish
