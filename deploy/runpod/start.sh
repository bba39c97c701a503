#!/usr/bin/env bash
# deploy/runpod/start.sh: the start command of an always-on GPU pod
# (installed in the ComfyUI image as comfyq-pod, its default command).
# Workers pull jobs from Redis, so a pod is a long-lived machine, not a
# serverless handler. In order:
#
#   1. starts ComfyUI (COMFYUI_CMD) in a session of its own, unless one
#      already answers on COMFYUI_PORT, and waits up to COMFYUI_WAIT_S for
#      GET /system_stats;
#   2. starts comfyq-worker against it, with comfyui-start-cmd set to the
#      same command, so a ComfyUI that crashes is started again by the
#      worker (README, comfyq-worker: Timeouts and recovery);
#   3. starts comfyq-janitor with clean-dirs on ComfyUI's output, temp and
#      input folders and clean-host set to this host, so the pod's disk
#      does not fill up (it also does the queue's janitor duties, which any
#      number of janitors may share);
#   4. waits. A worker or janitor that exits is started again after
#      COMFYQ_POD_RESTART_S, except on exit status 2 (bad settings: the
#      script stops with it). SIGTERM or SIGINT stops the worker first (it
#      drains: jobs in flight get drain-grace-s to finish on ComfyUI), then
#      the janitor, then ComfyUI, whichever process started it, and exits 0
#      once every one is gone.
#
# Everything logs to this script's stdout and stderr: the pod's console.
# Settings come from the environment the pod template sets (pod.env.example
# lists them): the programs' own COMFYQ_<SETTING> variables pass through
# as they are, and these are the script's:
#   COMFYQ_REDIS_URL      the queue's Redis (required)
#   COMFYQ_POD_DATA       folder for the pod's data (default /var/lib/comfyq;
#                         on RunPod /workspace/comfyq, the volume): outputs/
#                         (the worker's output-dir unless COMFYQ_OUTPUT_DIR
#                         says otherwise) and comfy/ (ComfyUI's folders)
#   COMFYUI_DATA          ComfyUI's folders: output/, input/, temp/
#                         (default COMFYQ_POD_DATA/comfy)
#   COMFYUI_PORT          ComfyUI's port on 127.0.0.1 (default 8188)
#   COMFYUI_CMD           the command that runs ComfyUI in the foreground
#                         on that port with those folders (default
#                         `comfyq-entrypoint comfyui`, the image's; one
#                         simple command, exec'd by sh)
#   COMFYUI_WAIT_S        how long the first start may take (default 600)
#   COMFYQ_POD_RESTART_S  pause before a worker or janitor is started again
#                         (default 5)
#   COMFYQ_POD_RUN        folder for ComfyUI's pid file and the lock the
#                         worker's starter takes (default $TMPDIR/comfyq-pod)
# Defaults it gives the programs (each overridden by its variable):
# COMFYQ_COMFYUI_URL http://127.0.0.1:COMFYUI_PORT, COMFYQ_WORKER_ID the pod
# id (RUNPOD_POD_ID) or the host name, COMFYQ_OUTPUT_DIR, COMFYQ_CLEAN_DIRS
# and COMFYQ_CLEAN_HOST as above, COMFYQ_COMFYUI_START_TIMEOUT_S 300.
set -euo pipefail

say() { echo "comfyq-pod: $*" >&2; }

: "${COMFYQ_REDIS_URL:?must name the Redis of the queue (redis://[user:password@]host:port/db)}"
data=${COMFYQ_POD_DATA:-/var/lib/comfyq}
port=${COMFYUI_PORT:-8188}
run=${COMFYQ_POD_RUN:-${TMPDIR:-/tmp}/comfyq-pod}
wait_s=${COMFYUI_WAIT_S:-600}
pause=${COMFYQ_POD_RESTART_S:-5}
COMFYUI_DATA=${COMFYUI_DATA:-$data/comfy}
export COMFYUI_DATA COMFYUI_PORT=$port
case "$run" in *"'"*) say "COMFYQ_POD_RUN must not hold a quote"; exit 2 ;; esac

export COMFYQ_COMFYUI_URL=${COMFYQ_COMFYUI_URL:-http://127.0.0.1:$port}
export COMFYQ_WORKER_ID=${COMFYQ_WORKER_ID:-${RUNPOD_POD_ID:-$(hostname)}}
export COMFYQ_OUTPUT_DIR=${COMFYQ_OUTPUT_DIR:-$data/outputs}
export COMFYQ_CLEAN_DIRS=${COMFYQ_CLEAN_DIRS:-output=$COMFYUI_DATA/output,temp=$COMFYUI_DATA/temp,input=$COMFYUI_DATA/input}
export COMFYQ_CLEAN_HOST=${COMFYQ_CLEAN_HOST:-$(hostname)}
export COMFYQ_COMFYUI_START_TIMEOUT_S=${COMFYQ_COMFYUI_START_TIMEOUT_S:-300}
# The worker's start lock lives in TMPDIR: the same folder for both.
export TMPDIR=$run

# ComfyUI writes its pid where this script finds it, whoever starts it;
# it runs in a session (and process group) of its own, so stopping the
# group stops whatever ComfyUI started too.
pidfile=$run/comfyui.pid
start_cmd="echo \$\$ >'$pidfile'; exec ${COMFYUI_CMD:-comfyq-entrypoint comfyui}"
export COMFYQ_COMFYUI_START_CMD=$start_cmd

mkdir -p "$run" "$COMFYQ_OUTPUT_DIR" "$COMFYUI_DATA/output" \
	"$COMFYUI_DATA/input" "$COMFYUI_DATA/temp"

comfy_up() {
	curl -sf -o /dev/null --max-time 5 "$COMFYQ_COMFYUI_URL/system_stats"
}
comfy_pid() { cat "$pidfile" 2>/dev/null || true; }
# alive PID: the process runs (a zombie, which an orphan is until its new
# parent reaps it, does not count).
alive() {
	local st
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "${st%% *}" != Z ]
}

worker_pid= janitor_pid= nap_pid=

# stop_pid PID SECONDS: SIGTERM, then SIGKILL after SECONDS; waits.
stop_pid() {
	local pid=$1 limit=$2 i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < limit * 10; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

stop_all() {
	local pid i
	trap - TERM INT
	[ -z "$nap_pid" ] || kill "$nap_pid" 2>/dev/null || true
	say "stopping: the worker drains (drain-grace-s ${COMFYQ_DRAIN_GRACE_S:-30})"
	stop_pid "$worker_pid" $((${COMFYQ_DRAIN_GRACE_S:-30} + 15))
	stop_pid "$janitor_pid" 15
	pid=$(comfy_pid)
	if [ -n "$pid" ] && alive "$pid"; then
		say "stopping ComfyUI (pid $pid)"
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 200; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		kill -KILL -- "-$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		wait "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
	say "stopped"
}
trap 'stop_all; exit 0' TERM INT

# 1. ComfyUI.
if comfy_up; then
	say "ComfyUI already answers at $COMFYQ_COMFYUI_URL; not starting one"
else
	rm -f "$pidfile"
	say "starting ComfyUI: ${COMFYUI_CMD:-comfyq-entrypoint comfyui}"
	setsid sh -c "$start_cmd" </dev/null &
	first=$!
	for ((i = 0; ; i++)); do
		comfy_up && break
		if ! alive "$first"; then
			wait "$first" && rc=0 || rc=$?
			say "ComfyUI exited with status $rc before it answered"
			exit 1
		fi
		if [ "$i" -ge $((wait_s * 2)) ]; then
			say "ComfyUI did not answer within $wait_s s"
			stop_all
			exit 1
		fi
		sleep 0.5
	done
	say "ComfyUI answers at $COMFYQ_COMFYUI_URL (pid $(comfy_pid))"
fi

# 2 and 3. The worker and the janitor, started again when they exit.
start_worker() {
	comfyq-worker &
	worker_pid=$!
	say "comfyq-worker $COMFYQ_WORKER_ID started (pid $worker_pid)"
}
start_janitor() {
	comfyq-janitor &
	janitor_pid=$!
	say "comfyq-janitor started (pid $janitor_pid), cleaning $COMFYQ_CLEAN_DIRS"
}
start_worker
start_janitor

# 4. Wait. wait -n returns when either exits; a signal runs the trap,
# which stops everything and exits.
while true; do
	done_pid=
	set +e
	wait -n -p done_pid "$worker_pid" "$janitor_pid"
	rc=$?
	set -e
	[ -n "$done_pid" ] || continue
	who=janitor
	[ "$done_pid" = "$worker_pid" ] && who=worker
	if [ "$rc" -eq 2 ]; then
		say "comfyq-$who refused its settings (exit 2); stopping"
		stop_all
		exit 2
	fi
	say "comfyq-$who (pid $done_pid) exited with status $rc; starting it again in $pause s"
	sleep "$pause" &
	nap_pid=$!
	wait "$nap_pid" || true
	nap_pid=
	"start_$who"
done
