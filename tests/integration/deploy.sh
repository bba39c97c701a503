#!/usr/bin/env bash
# The deploy kit (deploy/), one group per run:
#   deploy.sh BIN_DIR compose|systemd|runpod|packages
# compose   `docker-compose config` parses deploy/docker-compose.yml with
#           .env.example and with nothing set; compose_check.py then checks
#           the parsed output of each profile (gpu, sim): the services, a
#           health check on each, depends_on only on healthy services of
#           the same profile, each worker pointed at its profile's ComfyUI,
#           Redis with AOF on a volume, a GPU only in gpu, shared volumes,
#           and stop_grace_period above the worker's drain-grace-s; a file
#           whose stop grace is too short must fail the check.
# systemd   `systemd-analyze verify` on each unit in a root that holds the
#           programs at the units' paths (no output, exit 0; a missing
#           program fails it), `systemd-analyze security` rates each OK,
#           the units' stop timeouts exceed drain-grace-s; and the
#           programs speak Type=notify: READY=1 once serving (the worker
#           once registered in Redis), STOPPING=1 on SIGTERM, and a
#           ComfyUI the worker starts does not inherit NOTIFY_SOCKET.
# runpod    deploy/runpod/start.sh with comfyq-sim as the ComfyUI command
#           against the test's redis-server: it delivers a job, a killed
#           ComfyUI is started again by the worker and delivers the next,
#           the image entry point's health checks answer, and SIGTERM stops
#           the script with every process it or the worker started gone.
# packages  PKGS_IMAGE (deploy/lib/packages.sh) holds the package of every
#           library the programs link; the Dockerfiles install it through
#           the one setup script and name no library package themselves;
#           the rehearsal's reader of the Dockerfile takes the whole final
#           stage and refuses an instruction it does not know.
set -u
BIN=$1
group=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-deploy.XXXXXX")
. "$ROOT/tests/lib/stack.sh"
. "$ROOT/deploy/lib/packages.sh"
trap stack_cleanup EXIT

# alive PID: running and not a zombie.
alive() {
	local st
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "${st%% *}" != Z ]
}
gone() { ! alive "$1"; }
# pod_procs: the processes that carry the pod script's environment (it
# and everything it or the worker started), but not this test.
pod_procs() {
	local e p
	for e in /proc/[0-9]*/environ; do
		p=${e#/proc/}
		p=${p%/environ}
		[ "$p" = $$ ] || [ "$p" = "$BASHPID" ] && continue
		tr '\0' '\n' 2>/dev/null <"$e" | grep -qxF "COMFYQ_POD_RUN=$T/run" &&
			alive "$p" && echo "$p"
	done
}
compose() {
	local dc=$ROOT/deploy/docker-compose.yml
	command -v docker-compose >/dev/null || { bad "docker-compose is not installed"; return; }
	# config_of NAME ENV_FILE: docker-compose config with ENV_FILE as .env,
	# into $T/NAME.yml.
	config_of() {
		check "config with $1" 0 env ENV_FILE="$2" \
			docker-compose -f "$dc" --env-file "$2" config &&
			cp "$T/out" "$T/$1.yml"
	}
	stack_check() { python3 "$ROOT/tests/integration/compose_check.py" "$T/$1.yml" "$ROOT"; }
	# With the example: what a user who copied it gets.
	config_of example "$ROOT/deploy/.env.example"
	check "the example's stack" 0 stack_check example
	hasf "profiles checked" "profile gpu: comfyui janitor redis scheduler worker"
	hasf "profiles checked" "profile sim: janitor redis scheduler sim worker-sim"
	# With an empty env file: every default of docker-compose.yml.
	: >"$T/empty.env"
	config_of defaults "$T/empty.env"
	check "the default stack" 0 stack_check defaults
	# A drain grace the stop grace does not cover is caught.
	printf 'COMFYQ_DRAIN_GRACE_S=60\nWORKER_STOP_GRACE=45s\n' >"$T/short.env"
	config_of short "$T/short.env"
	check "a short stop grace fails" 1 stack_check short
	hasf "the short grace named" "stop_grace_period 45 s is not above drain-grace-s 60"
	# The .env example sets no setting a program refuses: each checks its
	# settings from it (the paths are the containers', so only the ones
	# that --check does not open).
	(
		set -a
		. "$ROOT/deploy/.env.example"
		set +a
		export COMFYQ_WORKFLOWS_DIR=$ROOT/workflows
		check "worker --check with .env.example" 0 "$BIN/comfyq-worker" --check
		check "janitor --check with .env.example" 0 "$BIN/comfyq-janitor" --check
		check "sim --check with .env.example" 0 "$BIN/comfyq-sim" --check
		finish >/dev/null
	) || bad "a program refused .env.example's settings"
}

# The units in a root where their paths exist: the host's system units
# (sysinit.target and the like), kill(1), the programs.
systemd_root() {
	local r=$T/root
	mkdir -p "$r/usr/lib/systemd" "$r/usr/local/bin" "$r/usr/bin" \
		"$r/etc/systemd/system"
	cp -a /usr/lib/systemd/system "$r/usr/lib/systemd/"
	cp /usr/bin/kill "$r/usr/bin/"
	ln -s usr/bin "$r/bin"
	cp "$BIN"/comfyq "$BIN"/comfyq-worker "$BIN"/comfyq-janitor \
		"$BIN"/comfyq-scheduler "$BIN"/comfyq-sim "$r/usr/local/bin/"
	cp "$ROOT"/deploy/systemd/*.service "$r/etc/systemd/system/"
}

# notify_listen NAME: a datagram socket at $T/NAME.sock whose messages
# go to $T/NAME.notify, one per line.
notify_listen() {
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as f:
    while True:
        f.write(s.recv(4096).decode() + "\n")
        f.flush()
' "$T/$1.sock" "$T/$1.notify" &
	PIDS+=("$!")
	wait_until 10 test -S "$T/$1.sock"
}
notified() { grep -qx "$2" "$T/$1.notify" 2>/dev/null; }

# notify_stop NAME PID: SIGTERM; STOPPING=1 arrives and PID exits 0.
notify_stop() {
	local rc
	kill -TERM "$2"
	wait_until 20 notified "$1" STOPPING=1 || bad "$1: no STOPPING=1 after SIGTERM"
	wait "$2"
	rc=$?
	eq "$1 exit status after SIGTERM" "$rc" 0
	alive "$2" && bad "$1 (pid $2) still runs"
}

systemd() {
	local u n drain stop rc redis_port wid sim_port
	command -v systemd-analyze >/dev/null || { bad "systemd-analyze is missing"; return; }
	systemd_root
	for u in comfyq-worker@gpu0.service comfyq-janitor.service comfyq-scheduler.service; do
		check "verify $u" 0 systemd-analyze verify --root="$T/root" "$u"
		[ -s "$T/out" ] && { bad "verify $u said something:"; sed 's/^/    /' "$T/out"; }
		check "security $u" 0 systemd-analyze security --offline=yes --root="$T/root" "$u"
		has "security $u rated OK" "Overall exposure level for $u: [0-4]\.[0-9] OK"
	done
	# The check sees the programs: one missing fails it.
	rm "$T/root/usr/local/bin/comfyq-janitor"
	check "verify without the program" 1 systemd-analyze verify --root="$T/root" comfyq-janitor.service
	hasf "the missing program named" "/usr/local/bin/comfyq-janitor is not executable"
	for n in worker@ janitor scheduler; do
		u=$ROOT/deploy/systemd/comfyq-$n.service
		for want in Type=notify Restart=on-failure KillSignal=SIGTERM \
			NoNewPrivileges=yes ProtectSystem=strict User=comfyq; do
			grep -qx "$want" "$u" || bad "comfyq-$n.service lacks $want"
		done
	done
	drain=$("$BIN/comfyq-worker" --help | grep -A1 -- '--drain-grace-s ' |
		sed -n 's/.*default \([0-9]*\).*/\1/p')
	stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$ROOT/deploy/systemd/comfyq-worker@.service")
	[ -n "$drain" ] && [ -n "$stop" ] && [ "$stop" -gt $((drain + 5)) ] ||
		bad "worker TimeoutStopSec '$stop' is not above drain-grace-s '$drain' plus 5 s"

	# Type=notify, for real: the janitor after its first tick.
	notify_listen janitor
	NOTIFY_SOCKET=$T/janitor.sock "$BIN/comfyq-janitor" \
		--redis-url "$COMFYQ_TEST_REDIS_URL" --queue "nt$$" --tick-ms 100 \
		>"$T/janitor.log" 2>&1 &
	n=$!
	PIDS+=("$n")
	wait_until 20 notified janitor READY=1 || bad "janitor: no READY=1"
	notify_stop janitor "$n"
	# The scheduler once it listens.
	notify_listen sched
	NOTIFY_SOCKET=$T/sched.sock "$BIN/comfyq-scheduler" \
		--redis-url "$COMFYQ_TEST_REDIS_URL" --queue "nt$$" --listen 127.0.0.1:0 \
		--workflows-dir "$ROOT/workflows" --output-dir "$T" >"$T/sched.log" 2>&1 &
	n=$!
	PIDS+=("$n")
	wait_until 20 notified sched READY=1 || bad "scheduler: no READY=1"
	grep -q "listening on" "$T/sched.log" || bad "scheduler: READY=1 before it listened"
	notify_stop sched "$n"
	# The worker once registered; the ComfyUI it starts (the sim, through
	# comfyui-start-cmd) gets no NOTIFY_SOCKET.
	redis_port=${COMFYQ_TEST_REDIS_URL##*:}
	wid=nw$$
	sim_port=$(free_port)
	notify_listen worker
	NOTIFY_SOCKET=$T/worker.sock "$BIN/comfyq-worker" \
		--redis-url "$COMFYQ_TEST_REDIS_URL" --queue "nt$$" --worker-id "$wid" \
		--comfyui-url "http://127.0.0.1:$sim_port" --workflows-dir "$ROOT/workflows" \
		--output-dir "$T/outputs" --health-interval-ms 200 --drain-grace-s 1 \
		--comfyui-start-cmd "echo \"\${NOTIFY_SOCKET:-unset}\" >'$T/inherited'; echo \$\$ >'$T/sim.pid'; exec '$BIN/comfyq-sim' --port $sim_port --base-directory '$T/sim'" \
		>"$T/worker.log" 2>&1 &
	n=$!
	PIDS+=("$n")
	wait_until 20 notified worker READY=1 || bad "worker: no READY=1"
	eq "worker record when READY=1 came" \
		"$(redis-cli -p "$redis_port" HGET "cq:{nt$$}:worker:$wid" state)" up
	wait_until 20 test -s "$T/inherited" || bad "the worker did not start the sim"
	eq "NOTIFY_SOCKET seen by comfyui-start-cmd" "$(cat "$T/inherited" 2>/dev/null)" unset
	notify_stop worker "$n"
	[ -s "$T/sim.pid" ] && { kill "$(cat "$T/sim.pid")"; PIDS+=("$(cat "$T/sim.pid")"); }
}

runpod() {
	local port pod rc p1 p2 j1 j2 q redis_port i
	# pod.env.example's settings pass the programs' own checks (with a
	# password in place of the RunPod secret).
	sed 's/{{ RUNPOD_SECRET_[a-z0-9_]* }}/secret/g' \
		"$ROOT/deploy/runpod/pod.env.example" >"$T/pod.env"
	(
		set -a
		. "$T/pod.env"
		set +a
		export COMFYQ_OUTPUT_DIR=$T/pod-check COMFYQ_WORKFLOWS_DIR=$ROOT/workflows
		check "worker --check with pod.env.example" 0 "$BIN/comfyq-worker" --check
		check "janitor --check with pod.env.example" 0 "$BIN/comfyq-janitor" --check
		finish >/dev/null
	) || bad "a program refused pod.env.example's settings"
	port=$(free_port)
	q=pod$$
	redis_port=${COMFYQ_TEST_REDIS_URL##*:}
	# The image's entry point runs from a prefix holding the programs.
	mkdir -p "$T/prefix/bin"
	for p in comfyq comfyq-worker comfyq-janitor comfyq-scheduler comfyq-sim; do
		ln -s "$BIN/$p" "$T/prefix/bin/$p"
	done
	(
		export PATH=$BIN:$PATH COMFYQ_REDIS_URL=$COMFYQ_TEST_REDIS_URL \
			COMFYQ_QUEUE=$q COMFYQ_POD_DATA=$T/data COMFYQ_POD_RUN=$T/run \
			COMFYUI_PORT=$port COMFYQ_WORKFLOWS_DIR=$ROOT/workflows \
			COMFYQ_WORKER_ID=pod-w COMFYQ_DRAIN_GRACE_S=5 \
			COMFYQ_HEALTH_INTERVAL_MS=200 COMFYQ_HEARTBEAT_MS=500 \
			COMFYQ_LOG_LEVEL=verbose \
			COMFYUI_CMD="comfyq-sim --port $port --base-directory $T/data/comfy --step-ms 20 --model-load-ms 0"
		exec "$ROOT/deploy/runpod/start.sh"
	) >"$T/pod.log" 2>&1 &
	pod=$!
	PIDS+=("$pod")
	export COMFYQ_REDIS_URL=$COMFYQ_TEST_REDIS_URL COMFYQ_QUEUE=$q
	wait_until 30 grep -q "registered as pod-w" "$T/pod.log" || bad "the worker did not register"
	p1=$(cat "$T/run/comfyui.pid" 2>/dev/null)
	[ -n "$p1" ] && alive "$p1" || bad "no ComfyUI (sim) pid from the pod script"
	wait_until 20 grep -q "comfyq-janitor notice started" "$T/pod.log" ||
		bad "the janitor did not start"
	hasf_file() { grep -qF -- "$2" "$1" || bad "$1 lacks '$2'"; }
	hasf_file "$T/pod.log" "3 folders to clean"

	check "job 1" 0 "$BIN/comfyq" submit --workflow smoke_invert \
		--param width=64 --param height=64 --wait --timeout 60
	j1=$(sed -n 's/^job  *\([a-z0-9]*\)$/\1/p' "$T/out" | head -1)
	has "job 1 succeeded" "^state +succeeded"
	[ -n "$j1" ] && ls "$T/data/outputs/$j1/"*.png >/dev/null 2>&1 ||
		bad "job 1's PNG is not in COMFYQ_POD_DATA/outputs/$j1"

	# The image's health checks, against what the pod runs.
	check "health worker" 0 env COMFYQ_PREFIX="$T/prefix" COMFYQ_WORKER_ID=pod-w \
		sh "$ROOT/deploy/docker/entrypoint.sh" health worker
	check "health of a worker that is not there" 1 env COMFYQ_PREFIX="$T/prefix" \
		COMFYQ_WORKER_ID=nobody sh "$ROOT/deploy/docker/entrypoint.sh" health worker
	check "health janitor" 0 env COMFYQ_PREFIX="$T/prefix" \
		sh "$ROOT/deploy/docker/entrypoint.sh" health janitor
	check "health comfyui" 0 env COMFYQ_PREFIX="$T/prefix" COMFYUI_PORT="$port" \
		sh "$ROOT/deploy/docker/entrypoint.sh" health comfyui
	check "health sim" 0 env COMFYQ_PREFIX="$T/prefix" COMFYQ_PORT="$port" \
		sh "$ROOT/deploy/docker/entrypoint.sh" health sim

	# ComfyUI crashes: the worker starts it again with the same command.
	kill -9 "$p1"
	for i in $(seq 1 200); do
		p2=$(cat "$T/run/comfyui.pid" 2>/dev/null)
		[ -n "$p2" ] && [ "$p2" != "$p1" ] && alive "$p2" && break
		sleep 0.1
	done
	[ -n "$p2" ] && [ "$p2" != "$p1" ] || bad "ComfyUI was not started again (pid $p1 -> '$p2')"
	hasf_file "$T/pod.log" "comfyui is down: started"
	check "job 2 after the restart" 0 "$BIN/comfyq" submit --workflow smoke_invert \
		--param width=64 --param height=64 --wait --timeout 60
	has "job 2 succeeded" "^state +succeeded"
	j2=$(sed -n 's/^job  *\([a-z0-9]*\)$/\1/p' "$T/out" | head -1)
	eq "job 2 ran on the pod's worker" "$(redis-cli -p "$redis_port" HGET "cq:{$q}:job:$j2" worker)" pod-w

	# SIGTERM: the script stops everything and exits 0.
	pod_procs >"$T/before"
	kill -TERM "$pod"
	wait_until 40 gone "$pod" || bad "start.sh did not exit within 40 s of SIGTERM"
	wait "$pod"
	rc=$?
	eq "start.sh exit status" "$rc" 0
	hasf_file "$T/pod.log" "comfyq-pod: stopped"
	grep -qx "$pod" "$T/before" && grep -qx "$p2" "$T/before" ||
		bad "the pod's processes before SIGTERM ($(tr '\n' ' ' <"$T/before")) lack the script $pod or ComfyUI $p2"
	eq "the pod's processes before SIGTERM" "$(wc -l <"$T/before")" 4
	for p in $(cat "$T/before"); do
		alive "$p" && bad "pid $p still runs after start.sh stopped: $(tr '\0' ' ' </proc/"$p"/cmdline)"
	done
	eq "the pod's processes after" "$(pod_procs | wc -l)" 0
	eq "worker state after the stop" \
		"$(redis-cli -p "$redis_port" HGET "cq:{$q}:worker:pod-w" state)" stopped
}

packages() {
	local b lib path pkg
	for b in comfyq comfyq-worker comfyq-janitor comfyq-scheduler comfyq-sim; do
		for lib in $(objdump -p "$BIN/$b" | awk '$1 == "NEEDED" { print $2 }'); do
			case "$lib" in
			# The sanitizers of the test build, and the optional CUDA
			# runtime (the main image builds with COMFYQ_CUDA=OFF).
			libasan.so.* | libubsan.so.* | libcudart.so.*) continue ;;
			esac
			path=$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')
			[ -n "$path" ] || { bad "$b: $lib is not in ldconfig's cache"; continue; }
			pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
			[ -n "$pkg" ] || pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
			case " $(echo $PKGS_IMAGE) " in
			*" $pkg "*) ok ;;
			*) bad "$b needs $lib from package '$pkg', which PKGS_IMAGE lacks" ;;
			esac
		done
	done
	# One list, one setup step: the Dockerfiles name no package of their
	# own for comfyq's libraries, and run setup-runtime.sh, as the
	# rehearsal does.
	for f in Dockerfile Dockerfile.comfyui; do
		grep -q 'setup-runtime.sh' "$ROOT/deploy/docker/$f" ||
			bad "$f does not run setup-runtime.sh"
		grep -q 'PKGS_BUILD' "$ROOT/deploy/docker/$f" ||
			bad "$f does not install PKGS_BUILD"
		grep -nE 'lib(hiredis|cjson|curl4|event|turbojpeg|wslay|stb|ssl)' \
			"$ROOT/deploy/docker/$f" && bad "$f names a library package itself"
	done
	grep -q 'PKGS_IMAGE' "$ROOT/deploy/docker/setup-runtime.sh" ||
		bad "setup-runtime.sh does not install PKGS_IMAGE"
	# The rehearsal runs the main image's final stage as
	# dockerfile_stage.py reads it: every instruction is one it knows, and
	# the stage runs the setup script and has the entry point and a
	# health check.
	check "dockerfile_stage.py reads the Dockerfile" 0 python3 \
		"$ROOT/deploy/docker/dockerfile_stage.py" "$ROOT/deploy/docker/Dockerfile"
	has "the stage runs setup-runtime.sh" "^stage_run 'sh /tmp/setup/setup-runtime.sh"
	has "the stage has the entry point" "^stage_entrypoint comfyq-entrypoint$"
	has "the stage has a health check" "^stage_healthcheck comfyq-entrypoint health$"
	has "the stage runs as comfyq" "^stage_user comfyq$"
	grep -q 'dockerfile_stage.py deploy/docker/Dockerfile' "$ROOT/deploy/docker/rehearse.sh" ||
		bad "rehearse.sh does not run the Dockerfile's stage"
	check "dockerfile_stage.py refuses what it does not know" 1 python3 \
		"$ROOT/deploy/docker/dockerfile_stage.py" /dev/stdin <<-EOF
	FROM debian:bookworm-slim
	SHELL ["/bin/bash", "-c"]
	EOF
	hasf "the unknown instruction named" "SHELL is not rehearsed"
}

case "$group" in
compose | systemd | runpod | packages) "$group" ;;
*) echo "deploy.sh: unknown group $group" >&2; exit 2 ;;
esac
finish
