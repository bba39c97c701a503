#!/usr/bin/env bash
# A raw graph may name only its own files, end to end: a real
# redis-server, comfyq-sim and a worker with graph-files examples/. A job
# that names another job's upload, an annotated name, a host path or a
# '..' path ends failed/invalid_input with one refund, naming the node and
# the input, and ComfyUI (the sim) never receives a prompt for it; the
# job's own upload and a listed file run. Then a worker with raw-graphs
# deny refuses raw graphs and still runs templates.
#   confine.sh BIN_DIR
set -u
BIN=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-confine.XXXXXX")
. "$ROOT/tests/lib/stack.sh"
trap stack_cleanup EXIT

# enqueue SPEC: through the functions library, past the CLI's own checks.
enqueue() { RC FCALL comfyq_enqueue 1 "$P" "$1" | head -1; }
# graph IMAGE: LoadImage 1 (image = IMAGE, a JSON string) -> invert -> save.
graph() {
	printf '{"1":{"class_type":"LoadImage","inputs":{"image":%s}},' "$1"
	printf '"2":{"class_type":"ImageInvert","inputs":{"image":["1",0]}},'
	printf '"3":{"class_type":"SaveImage","inputs":{"images":["2",0],'
	printf '"filename_prefix":"x"}}}'
}
# prompts: how many POST /prompt the sim has seen (queued or refused).
prompts() { grep -cE 'queued \(number|invalid prompt' "$T/sim.log"; }
refunds() { RC XLEN "${P}refunds"; }
submitted() { grep -q "job=$1 submitted" "$T/$2.log"; }

sim_start sim --step-ms 10 --model-load-ms 0 || exit 1
PIDS+=("$SIM_PID")
mkdir -p "$T/sim/input/examples"
cp "$ROOT/tests/data/images/ok.png" "$T/sim/input/examples/cat.png"
worker_start w1 --graph-files examples/
PIDS+=("$WPID")
# The worker loads the functions library at start.
loaded() { RC FUNCTION LIST LIBRARYNAME comfyq | grep -q comfyq_enqueue; }
wait_until 20 loaded || bad "the worker did not load the functions"
b64=$(base64 -w0 "$ROOT/tests/data/images/ok.png")

# The job's own upload runs; it lands under comfyq/<jid>/.
a=$(enqueue "{\"graph\":$(graph '"placeholder.png"'),\"inputs\":{\"1\":\"$b64\"}}")
await "$a" succeeded 30
upload=$(cd "$T/sim/input" && ls comfyq/"$a"/* 2>/dev/null | head -1)
case "$upload" in "comfyq/$a/"*) ok ;; *) bad "no upload of $a: '$upload'" ;; esac
# A file the operator lists runs too.
j=$(enqueue "{\"graph\":$(graph '"examples/cat.png"')}")
await "$j" succeeded 30
seen=$(prompts)
eq "prompts so far" "$seen" 2

# refused NAME IMAGE_JSON WHY: the job fails invalid_input with a refund,
# the message names node 1's image input and WHY, nothing reaches ComfyUI.
refused() {
	local name=$1 j r0
	r0=$(refunds)
	j=$(enqueue "{\"graph\":$(graph "$2")}")
	await "$j" failed 30 || return
	eq "$name: code" "$(field "$j" error_code)" invalid_input
	eq "$name: refund" "$(field "$j" refund)" true
	eq "$name: one refund entry" "$(refunds)" $((r0 + 1))
	eq "$name: one failed event" "$(events "$j" failed)" 1
	case "$(field "$j" error)" in
	"node 1 (LoadImage) input image: "*"$3"*) ok ;;
	*) bad "$name: message: $(field "$j" error)" ;;
	esac
	submitted "$j" w1 && bad "$name: the worker submitted it"
	eq "$name: the sim got no prompt" "$(prompts)" "$seen"
}
refused "another job's upload" "\"$upload\"" "is not a file of this job"
refused "output annotation" '"x.png [output]"' "ends in an annotation"
refused "temp annotation" '"cat.png [temp]"' "ends in an annotation"
refused "host path" '"/etc/passwd"' "is an absolute path"
refused "dot-dot" '"../x.png"' "holds '..'"
refused "dot-dot inside a listed folder" '"examples/../../x.png"' "holds '..'"
refused "not listed" '"other.png"' "is not a file of this job"
alive() { kill -0 "$1" 2>/dev/null; }
alive "$WPID" && ok || bad "the worker died"

# raw-graphs deny: raw graphs are refused, templates still run.
stop "$WPID"
worker_start w2 --raw-graphs deny --graph-files examples/
PIDS+=("$WPID")
j=$(enqueue "{\"graph\":$(graph '"examples/cat.png"')}")
await "$j" failed 30
eq "deny: code" "$(field "$j" error_code)" invalid_input
eq "deny: message" "$(field "$j" error)" \
	"graph: raw graphs are turned off on this worker"
eq "deny: refund" "$(field "$j" refund)" true
submitted "$j" w2 && bad "deny: the worker submitted it"
j=$(enqueue '{"workflow":"smoke_invert","params":{"width":64,"height":64}}')
await "$j" succeeded 30
eq "deny: prompts" "$(prompts)" $((seen + 1))
finish
