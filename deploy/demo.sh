#!/usr/bin/env bash
# deploy/demo.sh [PROMPT]: comfyq end to end on one machine.
#
# Installs what is missing (Debian packages), builds a release build
# (build-release/, RelWithDebInfo without sanitizers: tests/run.sh's ASan
# build in build/ is left alone), showing cmake's progress, starts a private
# redis-server, comfyq-sim (unless COMFYQ_COMFYUI_URL names a real
# ComfyUI; the sim draws a test pattern and ignores the prompt), a
# comfyq-worker, a comfyq-janitor and comfyq-scheduler (the HTTP API and
# its dashboard at /, on a free port of 127.0.0.1, no tokens), submits the
# sample sdxl_txt2img job with a progress bar, prints where the PNG is, the
# dashboard's URL and how to submit more (CLI and curl), and stops
# everything it started on Ctrl-C. Every program gets its paths from here
# (the checkout's workflows/, the demo folder), none from the working
# directory.
#
# Environment:
#   COMFYQ_COMFYUI_URL   a real ComfyUI (http://host:port) instead of the sim
#   COMFYQ_DEMO_DIR      where its data goes (default: a new temp dir)
#   COMFYQ_DEMO_BUILD_DIR  build directory (default: build-release)
#   COMFYQ_DEMO_ONESHOT  1: stop everything after the first job (for tests)
#   COMFYQ_DEMO_NO_BUILD 1: use the programs already built
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${COMFYQ_DEMO_BUILD_DIR:-build-release}
prompt=${1:-"a red fox in the snow, golden hour"}

. "$root/deploy/lib/packages.sh"
. "$root/deploy/lib/deps.sh"
. "$root/deploy/lib/redis.sh"
# shellcheck disable=SC2086
deps_install $PKGS_BUILD $PKGS_RUN

if [ "${COMFYQ_DEMO_NO_BUILD:-0}" != 1 ]; then
	if [ ! -f "$build/CMakeCache.txt" ]; then
		echo "demo: configuring a release build in $build/ (tests/run.sh's ASan build stays in build/)"
		cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
			-DASAN=OFF -DUBSAN=OFF
	fi
	echo "demo: building in $build/ with $(nproc) jobs (the first build takes a few minutes)"
	cmake --build "$build" -j "$(nproc)" --target comfyq comfyq-worker \
		comfyq-janitor comfyq-scheduler comfyq-sim
	echo "demo: built"
fi
bin=$(cd "$build/bin" && pwd)
# The CLI checks specs against the checkout's templates, as the worker and
# the scheduler below run them.
export COMFYQ_WORKFLOWS_DIR=$root/workflows

dir=${COMFYQ_DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/comfyq-demo.XXXXXX")}
mkdir -p "$dir/redis" "$dir/outputs"
pids=()
stop_all() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	redis_stop
}
trap stop_all EXIT
trap 'echo; echo "demo: stopping"; exit 0' INT TERM

redis_start "$dir/redis"
export COMFYQ_REDIS_URL=$REDIS_URL COMFYQ_QUEUE=demo
echo "demo: redis-server (pid $REDIS_PID) on $REDIS_URL"

if [ -n "${COMFYQ_COMFYUI_URL:-}" ]; then
	comfy=$COMFYQ_COMFYUI_URL
	curl -sf "$comfy/system_stats" >/dev/null ||
		{ echo "demo: no ComfyUI answers at $comfy" >&2; exit 1; }
	echo "demo: using ComfyUI at $comfy"
else
	"$bin/comfyq-sim" --port 0 --port-file "$dir/sim.port" \
		--base-directory "$dir/sim" --step-ms 100 >"$dir/sim.log" 2>&1 &
	pids+=("$!")
	for i in $(seq 1 100); do [ -s "$dir/sim.port" ] && break; sleep 0.1; done
	[ -s "$dir/sim.port" ] || { echo "demo: comfyq-sim did not start" >&2; exit 1; }
	comfy="http://127.0.0.1:$(cat "$dir/sim.port")"
	echo "demo: comfyq-sim (pid ${pids[-1]}) at $comfy, a stand-in for ComfyUI:"
	echo "demo:   it draws a test pattern and ignores the prompt (set"
	echo "demo:   COMFYQ_COMFYUI_URL=http://host:port to use a real ComfyUI)"
fi

"$bin/comfyq-worker" --comfyui-url "$comfy" --output-dir "$dir/outputs" \
	--workflows-dir "$root/workflows" >"$dir/worker.log" 2>&1 &
pids+=("$!")
echo "demo: comfyq-worker (pid ${pids[-1]}), log $dir/worker.log"
if [ -x "$bin/comfyq-janitor" ]; then
	"$bin/comfyq-janitor" >"$dir/janitor.log" 2>&1 &
	pids+=("$!")
	echo "demo: comfyq-janitor (pid ${pids[-1]}), log $dir/janitor.log"
fi

"$bin/comfyq-scheduler" --listen 127.0.0.1:0 --output-dir "$dir/outputs" \
	--workflows-dir "$root/workflows" >"$dir/scheduler.log" 2>&1 &
pids+=("$!")
for i in $(seq 1 100); do
	grep -q "listening on" "$dir/scheduler.log" && break
	kill -0 "${pids[-1]}" 2>/dev/null || break
	sleep 0.1
done
port=$(sed -n 's/.*listening on .*(port \([0-9]*\)).*/\1/p' "$dir/scheduler.log" | head -1)
[ -n "$port" ] || { echo "demo: comfyq-scheduler did not start; see $dir/scheduler.log" >&2; exit 1; }
api="http://127.0.0.1:$port"
echo "demo: comfyq-scheduler (pid ${pids[-1]}) at $api, log $dir/scheduler.log"
echo "demo: the dashboard is at $api/"

echo "demo: submitting sdxl_txt2img: \"$prompt\""
set +e
"$bin/comfyq" submit --workflow sdxl_txt2img --param prompt="$prompt" \
	--tenant demo --wait | tee "$dir/job.txt"
status=${PIPESTATUS[0]}
set -e
png=$(awk '$1 == "output" { print $2; exit }' "$dir/job.txt")
if [ "$status" -eq 0 ] && [ -n "$png" ]; then
	echo
	echo "demo: the picture is at $png"
	[ -n "${COMFYQ_COMFYUI_URL:-}" ] ||
		echo "demo: (comfyq-sim's test pattern: the sim ignores the prompt)"
fi
cat <<EOF

Submit more (the stack keeps running):
  export COMFYQ_REDIS_URL=$REDIS_URL COMFYQ_QUEUE=demo COMFYQ_WORKFLOWS_DIR=$root/workflows
  $bin/comfyq submit --workflow sdxl_txt2img --param prompt="a lighthouse" --wait
  $bin/comfyq workflows          # the templates and their parameters
  $bin/comfyq stats; $bin/comfyq workers; $bin/comfyq slots
Or through the HTTP API (the dashboard: $api/):
  curl -s -H 'Content-Type: application/json' $api/v1/jobs \\
      -d '{"workflow":"sdxl_txt2img","params":{"prompt":"a lighthouse"}}'
  curl -s $api/v1/jobs/<id>        # then /v1/jobs/<id>/events, /outputs/0
Outputs go to $dir/outputs. Press Ctrl-C to stop everything.
EOF
if [ "${COMFYQ_DEMO_ONESHOT:-0}" = 1 ]; then
	exit "$status"
fi
# wait, unlike a foreground sleep, lets the INT/TERM trap run at once.
while true; do
	sleep 3600 &
	wait $! || true
done
