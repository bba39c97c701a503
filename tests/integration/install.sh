#!/usr/bin/env bash
# The installed layout, as an operator meets it: `cmake --install` of this
# build, then every program run from / (so nothing may lean on the working
# directory):
#   - the files: bin/ (5 programs), share/comfyq/workflows/ (the templates
#     of workflows/), share/comfyq/comfyq.lua (the library the programs
#     embed), share/doc/comfyq/examples/*.conf and README.md;
#   - --version of the 5 programs and `comfyq version`: one line each;
#   - the defaults --help prints are this build's absolute paths;
#   - the example configs are read by --config as they are and with every
#     line uncommented, and name every setting;
#   - comfyq-sim and comfyq-worker started from / deliver a job that
#     `comfyq submit --wait` (from /) sees succeed; the PNG is in the
#     worker's output dir;
#   - a bad path is exit 2 and one line naming the setting.
# tests/run.sh configures the install prefix inside the build folder
# (BUILD/stage): the test installs there and the programs run on their
# baked-in defaults alone. With a prefix elsewhere (a plain build, say
# /usr/local) it installs into a temp prefix with --prefix instead and
# gives the paths as settings, since the defaults point at the real prefix.
#   install.sh BUILD_DIR CONFIGURED_PREFIX DATA_DIR STATE_DIR
# (DATA_DIR and STATE_DIR: the build's <datadir>/comfyq and
# <localstatedir>/lib/comfyq.)
set -u
BUILD=$(cd "$1" && pwd)
CONF_PREFIX=$2
DATA=$3
STATE=$4
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-install.XXXXXX")
tmp=$T
. "$ROOT/tests/lib/check.sh"
# Nothing from the caller's environment stands in for a default.
for v in $(env | sed -n 's/^\(COMFYQ_[A-Z_]*\)=.*/\1/p'); do
	[ "$v" = COMFYQ_TEST_REDIS_URL ] || unset "$v"
done
RPORT=${COMFYQ_TEST_REDIS_URL##*:}
Q="inst$$-${RANDOM}"
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	if [ "$fails" -gt 0 ]; then
		for f in "$T"/*.log; do
			[ -f "$f" ] && { echo "---- $f"; tail -30 "$f"; }
		done
	fi
	rm -rf "$T"
}
trap cleanup EXIT
# at_root CMD...: CMD with / as its working directory.
at_root() { (cd / && exec "$@"); }
# one_line NAME WANT: the last output is exactly the line WANT.
one_line() { eq "$1" "$(cat "$tmp/out")" "$2"; }

case "$CONF_PREFIX/" in
"$BUILD"/*/)
	P=$CONF_PREFIX
	staged=1
	rm -rf "$P"
	cmake --install "$BUILD" >"$T/install.log" 2>&1 ||
		bad "cmake --install failed: $(tail -3 "$T/install.log")"
	WF=() OUT=() SIMDIR=()
	PSTATE=$STATE
	;;
*)
	P=$T/prefix
	staged=0
	cmake --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1 ||
		bad "cmake --install failed: $(tail -3 "$T/install.log")"
	WF=(--workflows-dir "$P/share/comfyq/workflows")
	OUT=(--output-dir "$T/state/outputs")
	SIMDIR=(--base-directory "$T/state/sim")
	PSTATE=$T/state
	;;
esac
B=$P/bin

# The files.
for prog in comfyq comfyq-worker comfyq-janitor comfyq-scheduler comfyq-sim; do
	if [ -x "$B/$prog" ]; then ok; else bad "no $B/$prog"; fi
done
n_src=$(ls "$ROOT"/workflows/*.json | wc -l)
n_inst=$(ls "$P"/share/comfyq/workflows/*.json 2>/dev/null | wc -l)
eq "templates installed" "$n_inst" "$n_src"
for f in "$ROOT"/workflows/*.json; do
	cmp -s "$f" "$P/share/comfyq/workflows/${f##*/}" ||
		bad "share/comfyq/workflows/${f##*/} differs from workflows/"
done
if cmp -s "$BUILD/comfyq.lua" "$P/share/comfyq/comfyq.lua"; then ok; else
	bad "share/comfyq/comfyq.lua is not the library the build embeds"
fi
grep -q "^local VERSION = " "$P/share/comfyq/comfyq.lua" && ok ||
	bad "share/comfyq/comfyq.lua holds no VERSION"
for f in examples/worker.conf examples/janitor.conf examples/scheduler.conf \
	examples/sim.conf README.md; do
	if [ -s "$P/share/doc/comfyq/$f" ]; then ok; else
		bad "no share/doc/comfyq/$f"
	fi
done

# --version: one line, one shape, the same on every program.
ver=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD/CMakeCache.txt")
lib=$(sed -n "s/^local VERSION = '\([0-9]*\)'.*/\1/p" "$ROOT/lua/lib.lua")
for prog in comfyq comfyq-worker comfyq-janitor comfyq-scheduler comfyq-sim; do
	check "$prog --version" 0 at_root "$B/$prog" --version
	eq "$prog --version lines" "$(wc -l <"$tmp/out")" 1
	has "$prog --version" "^$prog $ver \([A-Za-z0-9._+-]+, functions library $lib\)\$"
done
check "comfyq version" 0 at_root "$B/comfyq" version
has "comfyq version" "^comfyq $ver \(.+, functions library $lib\)\$"
at_root "$B/comfyq" --version >"$T/v1"
cmp -s "$tmp/out" "$T/v1" && ok || bad "comfyq version and --version differ"

# The defaults are this build's absolute paths.
# default_of PROG NAME: the default --help gives for --NAME.
default_of() {
	at_root "$B/$1" --help |
		awk -v n="  --$2" '$1 == substr(n, 3) { getline; sub(/.*default /, ""); sub(/ \[reload\]$/, ""); print; exit }'
}
eq "worker workflows-dir default" "$(default_of comfyq-worker workflows-dir)" "$DATA/workflows"
eq "worker output-dir default" "$(default_of comfyq-worker output-dir)" "$STATE/outputs"
eq "scheduler workflows-dir default" "$(default_of comfyq-scheduler workflows-dir)" "$DATA/workflows"
eq "scheduler output-dir default" "$(default_of comfyq-scheduler output-dir)" "$STATE/outputs"
eq "sim base-directory default" "$(default_of comfyq-sim base-directory)" "$STATE/sim"
case "$DATA/$STATE" in /*/*) ok ;; *) bad "relative defaults: $DATA $STATE" ;; esac

# The example configs name every setting, and --config reads them.
for prog in worker janitor scheduler sim; do
	conf=$P/share/doc/comfyq/examples/$prog.conf
	n_help=$(at_root "$B/comfyq-$prog" --help | grep -cE '^  --[a-z0-9-]+')
	n_conf=$(grep -cE '^#[a-z0-9-]+ =( |$)' "$conf")
	eq "$prog.conf settings" "$n_conf" "$n_help"
	sed -E 's/^#([a-z0-9-]+ =( |$))/\1/' "$conf" >"$T/$prog.conf"
	case $prog in # the paths a fallback run must give (see above)
	worker | scheduler) extra=("${WF[@]}" "${OUT[@]}") ;;
	sim) extra=("${SIMDIR[@]}") ;;
	*) extra=() ;;
	esac
	check "$prog.conf as installed" 0 at_root "$B/comfyq-$prog" \
		--config "$conf" --check "${extra[@]}"
	check "$prog.conf uncommented" 0 at_root "$B/comfyq-$prog" \
		--config "$T/$prog.conf" --check "${extra[@]}"
done

# A job from /: the sim and the worker on their defaults, the CLI's
# templates the installed ones.
# (A subshell of its own, not at_root: "at_root ... &" would fork twice,
# and $! would be a shell whose kill leaves the program running.)
(cd / && exec "$B/comfyq-sim" --port 0 --port-file "$T/sim.port" \
	--model-load-ms 0 --step-ms 5 "${SIMDIR[@]}") >"$T/sim.log" 2>&1 &
PIDS+=("$!")
for i in $(seq 1 100); do [ -s "$T/sim.port" ] && break; sleep 0.1; done
SIM_URL="http://127.0.0.1:$(cat "$T/sim.port" 2>/dev/null)"
(cd / && exec "$B/comfyq-worker" --redis-url "$COMFYQ_TEST_REDIS_URL" \
	--queue "$Q" --comfyui-url "$SIM_URL" "${WF[@]}" "${OUT[@]}") \
	>"$T/worker.log" 2>&1 &
PIDS+=("$!")
check submit 0 at_root "$B/comfyq" --redis "$COMFYQ_TEST_REDIS_URL" \
	--queue "$Q" submit --workflow sdxl_txt2img --param prompt="a fox" \
	--param width=512 --param height=512 --timeout 60 --wait
png=$(awk '$1 == "output" { print $2; exit }' "$tmp/out")
case "$png" in
"$PSTATE"/outputs/*.png) ok ;;
*) bad "output '$png' is not under $PSTATE/outputs" ;;
esac
if [ -s "$png" ] && [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
	ok
else
	bad "no PNG at '$png'"
fi
n=$(find "$PSTATE/sim/output" -name '*.png' 2>/dev/null | wc -l)
[ "$n" -ge 1 ] && ok || bad "the sim wrote nothing under $PSTATE/sim/output"
grep -q "workflows: [0-9]* templates from $P/share/comfyq/workflows" \
	"$T/worker.log" && ok || bad "the worker did not load the installed templates"
redis-cli -p "$RPORT" DEL "cq:{$Q}:" >/dev/null 2>&1

# A bad path: exit 2, one line naming the setting, from / as from anywhere.
: >"$T/file"
nx=$T/nonexistent/wf
W=("$B/comfyq-worker" --comfyui-url "$SIM_URL" --redis-url redis://127.0.0.1:1)
check worker-wf-missing 2 at_root "${W[@]}" "${OUT[@]}" --workflows-dir "$nx"
one_line worker-wf-missing "comfyq-worker: workflows-dir: $nx: No such file or directory"
check worker-wf-file 2 at_root "${W[@]}" "${OUT[@]}" --workflows-dir "$T/file"
one_line worker-wf-file "comfyq-worker: workflows-dir: $T/file: Not a directory"
check worker-out-file 2 at_root "${W[@]}" "${WF[@]}" --output-dir "$T/file/out"
one_line worker-out-file "comfyq-worker: output-dir: $T/file/out: Not a directory"
check worker-out-check 2 at_root "${W[@]}" "${WF[@]}" --output-dir "$T/file/out" --check
one_line worker-out-check "comfyq-worker: output-dir: $T/file/out: Not a directory"
# store redis keeps no files: its output-dir is not looked at.
check worker-store-redis 0 at_root "${W[@]}" "${WF[@]}" --store redis \
	--output-dir "$T/file/out" --check
check sim-base-file 2 at_root "$B/comfyq-sim" --port 0 --base-directory "$T/file/sim"
one_line sim-base-file "comfyq-sim: base-directory: $T/file/sim: Not a directory"
check sim-out-file 2 at_root "$B/comfyq-sim" --port 0 "${SIMDIR[@]}" \
	--output-directory "$T/file" --check
one_line sim-out-file "comfyq-sim: output-directory: $T/file: Not a directory"
S=("$B/comfyq-scheduler" --listen 127.0.0.1:0 --redis-url redis://127.0.0.1:1)
check sched-wf-missing 2 at_root "${S[@]}" "${OUT[@]}" --workflows-dir "$nx"
one_line sched-wf-missing "comfyq-scheduler: workflows-dir: $nx: No such file or directory"
check sched-out-file 2 at_root "${S[@]}" "${WF[@]}" --output-dir "$T/file/out"
one_line sched-out-file "comfyq-scheduler: output-dir: $T/file/out: Not a directory"
check janitor-clean-missing 2 at_root "$B/comfyq-janitor" \
	--redis-url redis://127.0.0.1:1 --clean-dirs "output=$nx"
has janitor-clean-missing "^comfyq-janitor: clean-dirs: .*$nx"
eq janitor-clean-missing-lines "$(wc -l <"$tmp/out")" 1
if [ "$(id -u)" -ne 0 ]; then # root reads and writes any folder
	mkdir -p "$T/locked" && chmod 000 "$T/locked"
	check worker-wf-locked 2 at_root "${W[@]}" "${OUT[@]}" --workflows-dir "$T/locked"
	one_line worker-wf-locked "comfyq-worker: workflows-dir: $T/locked: Permission denied"
	chmod 700 "$T/locked"
fi
finish
