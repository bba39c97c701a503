#!/usr/bin/env bash
# deploy/docker/rehearse.sh [--record]: the comfyq image without a
# container runtime. This machine can neither run containers nor reach a
# registry, so the rehearsal builds the image's root itself and runs the
# image the way Docker would:
#
#   1. debootstrap --variant=minbase bookworm: a Debian 12 root, as bare as
#      debian:bookworm-slim (debs cached in WORK/debs between runs);
#   2. the build stage's step, build-install.sh (-DCOMFYQ_CUDA=OFF), on
#      this host, which is Debian 12 with PKGS_BUILD as the build stage;
#   3. the Dockerfile's final stage, instruction by instruction
#      (dockerfile_stage.py reads it): COPY from the context or from the
#      build output, RUN in the root (so setup-runtime.sh installs
#      PKGS_IMAGE from Debian's mirror and adds the user comfyq), ENV, USER,
#      WORKDIR, HEALTHCHECK, ENTRYPOINT; nothing else is put in the root;
#   4. "containers": each of comfyq-sim, comfyq-worker, comfyq-janitor and
#      comfyq-scheduler through the ENTRYPOINT, as the USER, with the ENV
#      and the settings docker-compose.yml gives it, in a PID and mount
#      namespace of its own with its own /proc and /tmp
#      (unshare --pid --mount --fork, chroot), against a redis-server on
#      this host standing in for the redis service;
#   5. one job: `comfyq-entrypoint cli submit --wait` in a fifth
#      container; its PNG must be in the outputs folder and come back
#      byte for byte from the scheduler's HTTP API; the HEALTHCHECK passes
#      in every container; SIGTERM stops each with exit status 0.
#
# Needs root, network to Debian's mirror (DEBIAN_MIRROR), and minutes.
# Prints a summary; --record also writes it into deploy/README.md between
# the rehearsal markers. Environment: REHEARSE_DIR (work folder, default
# build-rehearse/ in the checkout; the root is made anew each run, the
# build folder and the downloaded debs are kept), DEBIAN_MIRROR.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
cd "$src"
record=0
[ "${1:-}" = --record ] && record=1

. deploy/lib/packages.sh
. deploy/lib/deps.sh
. deploy/lib/redis.sh
# shellcheck disable=SC2086
deps_install $PKGS_BUILD $PKGS_RUN $PKGS_REHEARSE python3 procps
[ "$(id -u)" -eq 0 ] || { echo "rehearse: run as root (debootstrap, chroot, unshare)" >&2; exit 1; }

work=${REHEARSE_DIR:-$src/build-rehearse}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$work/root
mkdir -p "$work/debs"
t0=$(date +%s)
say() { echo "rehearse: [$(($(date +%s) - t0)) s] $*"; }

pids=()
stop_all() {
	local p
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	redis_stop
}
trap stop_all EXIT

# 1. The root.
rm -rf "$root"
say "debootstrap --variant=minbase bookworm $mirror"
debootstrap --variant=minbase --cache-dir="$work/debs" bookworm "$root" "$mirror" \
	>"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; exit 1; }
cp /etc/resolv.conf "$root/etc/resolv.conf"
t1=$(date +%s)

# 2. The build stage (WORK/build is kept: a later run builds what changed).
build_kind="a fresh build folder"
[ -f "$work/build/CMakeCache.txt" ] && build_kind="WORK/build kept from the last run"
say "build-install.sh (release, no CUDA) into $work/out"
rm -rf "$work/out"
JOBS=$(nproc) sh deploy/docker/build-install.sh "$src" "$work/build" "$work/out" \
	-DCOMFYQ_CUDA=OFF >"$work/build.log" 2>&1 || { tail -20 "$work/build.log"; exit 1; }
t2=$(date +%s)

# 3. The final stage, as dockerfile_stage.py reads it.
env_names=() env_values=() user=root workdir=/ health=() entry=()
stage_from() {
	case "$1" in
	debian:bookworm-slim | debian:bookworm) ;;
	*) echo "rehearse: the image is FROM $1, the rehearsal builds bookworm" >&2; exit 1 ;;
	esac
}
stage_copy() {
	local from="" a srcs=() dst
	for a in "$@"; do
		case "$a" in
		--from=*) from=${a#--from=} ;;
		--chown=*) echo "rehearse: COPY --chown is not rehearsed" >&2; exit 1 ;;
		*) srcs+=("$a") ;;
		esac
	done
	dst=${srcs[-1]}
	unset 'srcs[-1]'
	for a in "${srcs[@]}"; do
		if [ -n "$from" ]; then
			[ "$from" = build ] && [ "${a#/out/}" != "$a" ] ||
				{ echo "rehearse: COPY --from=$from $a is not the build's /out" >&2; exit 1; }
			a=$work/out/${a#/out/}
		else
			a=$src/$a
		fi
		# Docker's COPY: a folder's contents, a file into a folder
		# (DST ending in /) or to DST.
		if [ -d "$a" ]; then
			mkdir -p "$root$dst"
			cp -a "$a/." "$root$dst"
		elif [ "${dst%/}" != "$dst" ]; then
			mkdir -p "$root$dst"
			cp -a "$a" "$root$dst"
		else
			mkdir -p "$(dirname "$root$dst")"
			cp -a "$a" "$root$dst"
		fi
	done
}
stage_run() {
	say "RUN $1"
	in_root "$user" "$workdir" sh -c "$1" >>"$work/stage.log" 2>&1 ||
		{ tail -20 "$work/stage.log"; echo "rehearse: RUN failed: $1" >&2; exit 1; }
}
stage_env() { env_names+=("$1"); env_values+=("$2"); }
stage_user() { user=$1; }
stage_workdir() { workdir=$1; }
stage_healthcheck() { health=("$@"); }
stage_entrypoint() { entry=("$@"); }
stage_cmd() { :; }

# in_root USER DIR CMD...: CMD in the root with a PID and mount namespace of
# its own and its own /proc, as USER, in DIR, with the stage's ENV. With
# tmp=1, also a /tmp of its own, as each container has (a build step's RUN
# sees the image's).
tmp=0
in_root() {
	local u=$1 d=$2 i envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root)
	shift 2
	[ "$u" = root ] || envs[1]=HOME=/var/lib/comfyq
	for i in "${!env_names[@]}"; do envs+=("${env_names[$i]}=${env_values[$i]}"); done
	envs+=("${extra_env[@]}")
	unshare --pid --mount --fork --kill-child sh -c '
		root=$1 u=$2 d=$3 tmp=$4
		shift 4
		mount -t proc proc "$root/proc"
		[ "$tmp" = 0 ] || mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
		exec chroot --userspec="$u:$u" "$root" sh -c "cd \"\$0\" && exec \"\$@\"" "$d" "$@"
	' sh "$root" "$u" "$d" "$tmp" env -i "${envs[@]}" "$@"
}
extra_env=()
stage_lines=$(python3 deploy/docker/dockerfile_stage.py deploy/docker/Dockerfile)
eval "$stage_lines"
t3=$(date +%s)
[ "${#entry[@]}" -gt 0 ] && [ "${#health[@]}" -gt 0 ] ||
	{ echo "rehearse: the Dockerfile has no ENTRYPOINT or HEALTHCHECK" >&2; exit 1; }

# 4. The containers, against a redis-server on this host.
mkdir -p "$work/redis"
redis_start "$work/redis"
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
sim_port=$(port)
api_port=$(port)
# container NAME ENV=VALUE... -- ARG...: the ENTRYPOINT with ARG in a
# namespace of its own; its log in WORK/NAME.log.
container() {
	local name=$1
	shift
	extra_env=()
	while [ "$1" != -- ]; do extra_env+=("$1"); shift; done
	shift
	tmp=1 in_root "$user" "$workdir" "${entry[@]}" "$@" >"$work/$name.log" 2>&1 &
	pids+=("$!")
	eval "pid_$name=\$!"
	eval "env_$name=(\"\${extra_env[@]}\")"
}
common=(COMFYQ_REDIS_URL="$REDIS_URL" COMFYQ_QUEUE=rehearse)
container sim "${common[@]}" COMFYQ_LISTEN=127.0.0.1 COMFYQ_PORT="$sim_port" \
	COMFYQ_BASE_DIRECTORY=/var/lib/comfyq/comfy COMFYQ_STEP_MS=20 -- sim
container worker "${common[@]}" COMFYQ_COMFYUI_URL="http://127.0.0.1:$sim_port" \
	COMFYQ_WORKER_ID=rehearse-worker COMFYQ_DRAIN_GRACE_S=5 -- worker
container janitor "${common[@]}" \
	COMFYQ_CLEAN_DIRS=output=/var/lib/comfyq/comfy/output,temp=/var/lib/comfyq/comfy/temp,input=/var/lib/comfyq/comfy/input -- janitor
container scheduler "${common[@]}" COMFYQ_LISTEN="127.0.0.1:$api_port" -- scheduler

# ns_init PID: the process that is PID 1 in the namespace under PID (the
# container's program, exec'd by the entry point).
ns_init() {
	local p=$1 c n
	for n in 1 2 3 4 5; do
		c=$(pgrep -P "$p" | head -1) || return 1
		p=$c
		if awk '/^NSpid:/ { exit !(NF > 2 && $NF == 1) }' "/proc/$p/status"; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# health NAME: the HEALTHCHECK in NAME's namespaces (its /tmp knows which
# program it runs), with its settings.
health() {
	local name=$1 pid target
	pid=$(eval echo "\$pid_$name")
	target=$(ns_init "$pid") || return 1
	extra_env=()
	eval "extra_env=(\"\${env_$name[@]}\")"
	local i envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/var/lib/comfyq)
	for i in "${!env_names[@]}"; do envs+=("${env_names[$i]}=${env_values[$i]}"); done
	envs+=("${extra_env[@]}")
	nsenter --target "$target" --mount --pid chroot --userspec="$user:$user" "$root" \
		env -i "${envs[@]}" "${health[@]}"
}
for name in sim worker janitor scheduler; do
	for i in $(seq 1 100); do health "$name" >/dev/null 2>&1 && break; sleep 0.2; done
	health "$name" >"$work/health-$name.txt" 2>&1 ||
		{ cat "$work/health-$name.txt" "$work/$name.log" >&2; echo "rehearse: $name is not healthy" >&2; exit 1; }
	say "$name: healthy (${health[*]})"
done

# 5. One job, from a container of its own.
container cli "${common[@]}" -- cli submit --workflow smoke_invert \
	--param width=64 --param height=64 --tenant rehearse --wait --timeout 60
cli=${pids[-1]}
wait "$cli" || { cat "$work/cli.log" >&2; echo "rehearse: the job failed" >&2; exit 1; }
job=$(sed -n 's/^job  *\([a-z0-9]*\)$/\1/p' "$work/cli.log" | head -1)
grep -qE '^state +succeeded' "$work/cli.log" || { cat "$work/cli.log" >&2; exit 1; }
png=$(ls "$root/var/lib/comfyq/outputs/$job/"*.png)
owner=$(chroot "$root" stat -c %U "${png#"$root"}")
curl -sf -o "$work/api.png" "http://127.0.0.1:$api_port/v1/jobs/$job/outputs/0"
cmp -s "$png" "$work/api.png" || { echo "rehearse: the API's bytes differ from $png" >&2; exit 1; }
say "job $job succeeded: $(basename "$png"), $(stat -c %s "$png") bytes, owned by $owner, the same bytes from GET /v1/jobs/$job/outputs/0"

# SIGTERM stops each container's program, which is its PID 1.
stopped=""
for name in worker janitor scheduler sim; do
	pid=$(eval echo "\$pid_$name")
	target=$(ns_init "$pid")
	kill -TERM "$target"
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ] || { tail -5 "$work/$name.log" >&2; echo "rehearse: $name exited $rc after SIGTERM" >&2; exit 1; }
	stopped="$stopped $name"
done
pids=()
t4=$(date +%s)
say "SIGTERM stopped$stopped with exit status 0"

# The summary.
versions=$(chroot "$root" dpkg-query -W -f='${Package} ${Version}\n' $PKGS_IMAGE | tr '\n' ',' | sed 's/,$//; s/,/, /g')
size=$(du -sh --exclude=proc "$root" | cut -f1)
summary=$(cat <<EOF
Last run: $(date -u +%Y-%m-%dT%H:%MZ) on this project's machine ($(nproc) cores),
$((t4 - t0)) s in all: debootstrap $((t1 - t0)) s, the build $((t2 - t1)) s ($build_kind),
the Dockerfile's final stage $((t3 - t2)) s, the containers and the job $((t4 - t3)) s;
the root is $size. Job \`$job\` (\`smoke_invert\`, 64x64, submitted with
\`comfyq-entrypoint cli submit --wait\`) succeeded: \`$(basename "$png")\`,
$(stat -c %s "$png") bytes, owned by \`$owner\`, and the same bytes from the
scheduler's \`GET /v1/jobs/<id>/outputs/0\`. The HEALTHCHECK passed in the
sim, worker, janitor and scheduler containers; SIGTERM stopped each with
exit status 0. PKGS_IMAGE as installed: $versions.
EOF
)
echo
echo "$summary"
if [ "$record" -eq 1 ]; then
	python3 - "$src/deploy/README.md" "$summary" <<'PY'
import sys
path, text = sys.argv[1], sys.argv[2]
s = open(path).read()
b, e = "<!-- rehearsal:begin -->\n", "<!-- rehearsal:end -->"
i, j = s.index(b) + len(b), s.index(e)
open(path, "w").write(s[:i] + text + "\n" + s[j:])
PY
	echo "rehearse: recorded in deploy/README.md"
fi
