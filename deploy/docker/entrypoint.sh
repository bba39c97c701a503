#!/bin/sh
# comfyq-entrypoint: the images' entry point (installed as
# /usr/local/bin/comfyq-entrypoint). One image holds every program; the
# first argument picks one:
#
#   worker | janitor | scheduler | sim [ARG...]   exec comfyq-<that> ARG...
#   cli | comfyq [ARG...]                         exec comfyq ARG...
#   comfyui             (the ComfyUI image) exec ComfyUI's main.py on
#                       COMFYUI_LISTEN:COMFYUI_PORT (127.0.0.1:8188) with
#                       its output, input and temp folders under
#                       COMFYUI_DATA, models from COMFYUI_MODELS when set,
#                       and COMFYUI_ARGS appended
#   pod                 (the ComfyUI image) the pod start script: ComfyUI,
#                       a worker and a janitor (deploy/runpod/start.sh)
#   health [PROGRAM]    the health check: exit 0 when PROGRAM (default:
#                       the one this container started) is healthy
#   help                this text
#   anything else       exec'd as it is (a shell, say)
#
# Settings come from the environment (COMFYQ_<SETTING>, see README), as
# every program reads them itself; the health check reads the same
# variables, so give a container its settings there rather than as
# arguments. The worker's id defaults to the container's host name (the
# pod's id on RunPod), which is what the health check looks for in Redis.
#
# Health, per program:
#   scheduler  GET /readyz on COMFYQ_LISTEN's port answers 200 (it serves,
#              Redis answers and holds the functions library)
#   sim        GET /system_stats on COMFYQ_PORT answers 200
#   worker     its record in Redis (comfyq workers) is up: registered and
#              heartbeating (a record expires worker-ttl-ms after the last
#              heartbeat), and not gpu_broken
#   janitor    Redis answers (comfyq stats)
#   comfyui    GET /system_stats on COMFYUI_PORT answers 200
#   pod        comfyui's check, then worker's
set -eu

bin=${COMFYQ_PREFIX:-/usr/local}/bin
mark=${TMPDIR:-/tmp}/comfyq-entrypoint.program

usage() {
	sed -n '2,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//;p}' "$0"
}

# url_host HOST: a wildcard address becomes the loopback one.
url_host() {
	case "$1" in
	"" | 0.0.0.0 | "[::]" | "::") echo 127.0.0.1 ;;
	*) echo "$1" ;;
	esac
}

# The worker's id: COMFYQ_WORKER_ID, else the pod's id on RunPod (as
# comfyq-pod gives it), else the host name (the container's).
worker_id() {
	echo "${COMFYQ_WORKER_ID:-${RUNPOD_POD_ID:-$(hostname)}}"
}

get_ok() {
	curl -sf -o /dev/null --max-time "${COMFYQ_HEALTH_TIMEOUT_S:-5}" "$1"
}

health() {
	prog=${1:-}
	[ -n "$prog" ] || prog=$(cat "$mark" 2>/dev/null) || prog=
	case "$prog" in
	scheduler)
		listen=${COMFYQ_LISTEN:-127.0.0.1:8680}
		get_ok "http://$(url_host "${listen%:*}"):${listen##*:}/readyz"
		;;
	sim)
		get_ok "http://$(url_host "${COMFYQ_LISTEN:-}"):${COMFYQ_PORT:-8188}/system_stats"
		;;
	comfyui)
		get_ok "http://127.0.0.1:${COMFYUI_PORT:-8188}/system_stats"
		;;
	worker)
		id=$(worker_id)
		line=$("$bin/comfyq" workers --json | tr '{' '\n' |
			grep -F "\"worker\":\"$id\"") || {
			echo "health: worker $id has no record in Redis" >&2
			return 1
		}
		case "$line" in
		*'"state":"up"'*) ;;
		*) echo "health: worker $id is not up" >&2; return 1 ;;
		esac
		case "$line" in
		*'"health":"gpu_broken"'*)
			echo "health: worker $id: gpu_broken" >&2
			return 1
			;;
		esac
		;;
	janitor)
		"$bin/comfyq" stats >/dev/null
		;;
	pod)
		health comfyui && health worker
		;;
	*)
		echo "health: which program? (health worker|janitor|scheduler|sim|comfyui|pod)" >&2
		return 2
		;;
	esac
}

# Runs ComfyUI in the foreground (the ComfyUI image).
comfyui() {
	dir=${COMFYUI_DIR:-/opt/ComfyUI}
	data=${COMFYUI_DATA:-/var/lib/comfyq/comfy}
	mkdir -p "$data/output" "$data/input" "$data/temp"
	set --
	if [ -n "${COMFYUI_MODELS:-}" ]; then
		# Models from a mounted folder, in ComfyUI's own layout.
		{
			echo "comfyq:"
			echo "  base_path: $COMFYUI_MODELS"
			for f in checkpoints loras controlnet clip_vision ipadapter \
				vae upscale_models embeddings clip unet diffusion_models; do
				echo "  $f: $f"
			done
		} >"$data/extra_model_paths.yaml"
		set -- --extra-model-paths-config "$data/extra_model_paths.yaml"
	fi
	cd "$dir"
	# --temp-directory names the folder that holds temp/.
	# shellcheck disable=SC2086
	exec "${COMFYUI_PYTHON:-python3}" main.py --listen "${COMFYUI_LISTEN:-127.0.0.1}" \
		--port "${COMFYUI_PORT:-8188}" --output-directory "$data/output" \
		--input-directory "$data/input" --temp-directory "$data" \
		--disable-auto-launch "$@" ${COMFYUI_ARGS:-}
}

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
worker | janitor | scheduler | sim | comfyui | pod)
	echo "$cmd" >"$mark" 2>/dev/null || true
	;;
esac
case "$cmd" in
worker)
	COMFYQ_WORKER_ID=$(worker_id)
	export COMFYQ_WORKER_ID
	exec "$bin/comfyq-worker" "$@"
	;;
janitor | scheduler | sim) exec "$bin/comfyq-$cmd" "$@" ;;
cli | comfyq) exec "$bin/comfyq" "$@" ;;
comfyui) comfyui ;;
pod) exec "$bin/comfyq-pod" "$@" ;;
health) health "$@" ;;
help | -h | --help) usage ;;
*) exec "$cmd" "$@" ;;
esac
