#!/usr/bin/env bash
# The producer contract as README states it, against a real run on a fresh
# redis-server: comfyq init before any worker ran, a producer's own calls,
# then jobs through comfyq-sim, comfyq-worker and comfyq-janitor that end
# succeeded, failed (a sim fault) and canceled, one retried, one requeued by
# the janitor (its worker killed), one handed back (its worker draining) and
# one delayed. Then every entry of the events and refunds streams must have
# exactly the fields README's stream entries table lists for its type, every
# type of the table must have been seen, every field of a job record must
# be one README's data model names, and a finished job's record must say
# what its terminal event said. README is the one source: this script reads
# its tables.
#   contract.sh BIN_DIR   (COMFYQ_TEST_REDIS_URL: a redis-server of its own)
set -u
BIN=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
README=$ROOT/README.md
T=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-contract.XXXXXX")
. "$ROOT/tests/lib/stack.sh"
tmp=$T/check	# check's output; $T/out is the workers' output-dir
mkdir -p "$tmp"
trap stack_cleanup EXIT

# README's stream entries table as "name field field ..." lines (fields
# sorted; the refund entry's name is "refund").
readme_entries() {
	awk '/<!-- contract: stream entries/ { on = 1; next }
	     on && /^$/ { exit }
	     on && /^\| / { print }' "$README" |
	while IFS='|' read -r _ name _ fields _; do
		case "$name" in
		*'refund entry'*) name=refund ;;
		*'`'*) name=$(echo "$name" | tr -d '` ') ;;
		*) continue ;;
		esac
		echo "$name $(echo "$fields" | grep -oE '`[a-z_]+`' | tr -d '`' |
			sort | tr '\n' ' ' | sed 's/ $//')"
	done
}
# The job record fields README's data model names, one a line.
readme_job_fields() {
	grep -E '^\| `job:<jid>` \|' "$README" | cut -d'|' -f4 |
		grep -oE '`[a-z_]+`' | tr -d '`' | sort -u
}
# Every entry of a stream as "type field field ..." (fields sorted; the
# type of a refund entry is "refund").
stream_entries() {
	RC EVAL "local out = {}
		for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
			local t, f = ARGV[1], {}
			for i = 1, #e[2], 2 do
				f[#f + 1] = e[2][i]
				if e[2][i] == 'type' then t = e[2][i + 1] end
			end
			table.sort(f)
			out[#out + 1] = t .. ' ' .. table.concat(f, ' ')
		end
		return out" 1 "$1" "$2"
}
# The fields of every job record under the queue, one a line.
record_fields() {
	RC EVAL "local out, seen = {}, {}
		for _, k in ipairs(redis.call('KEYS', KEYS[1] .. 'job:*')) do
			local h = redis.call('HKEYS', k)
			for _, f in ipairs(h) do
				if not seen[f] then seen[f] = true; out[#out + 1] = f end
			end
		end
		return out" 1 "$P"
}
# Terminal events whose job record says something else: "jid field" lines.
record_mismatches() {
	RC EVAL "local out = {}
		local term = { succeeded = true, failed = true, canceled = true }
		for _, e in ipairs(redis.call('XRANGE', KEYS[1] .. 'events', '-', '+')) do
			local f = {}
			for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
			if term[f.type] then
				local key = KEYS[1] .. 'job:' .. f.job
				if redis.call('HGET', key, 'end_id') ~= e[1] then
					out[#out + 1] = f.job .. ' end_id'
				end
				for k, v in pairs(f) do
					if k ~= 'type' and k ~= 'job' and
					    redis.call('HGET', key, k) ~= v then
						out[#out + 1] = f.job .. ' ' .. k
					end
				end
			end
		end
		return out" 1 "$P"
}
enqueue() { RC FCALL comfyq_enqueue 1 "$P" "$1"; }
txt2img() { submit --workflow sdxl_txt2img --param prompt="a fox" "$@"; }
renewed() { [ "$(field "$1" renewed)" = 1 ]; }
has_event() { [ "$(events "$1" "$2")" -ge 1 ]; }

# A fresh Redis: the library is loaded by comfyq init, before any worker.
check init-unreachable 3 "$BIN/comfyq" --redis redis://127.0.0.1:1 init
eq "no library yet" "$(RC FUNCTION LIST LIBRARYNAME comfyq | wc -c)" 1
check init 0 "$BIN/comfyq" init
LIBV=$(sed -n "s/^local VERSION = '\([0-9]*\)'.*/\1/p" "$ROOT/lua/lib.lua")
has init "^loaded the comfyq functions library, version $LIBV \([0-9]+ functions, [0-9]+ bytes\\) with FUNCTION LOAD REPLACE; none was loaded before\$"
check init-json 0 "$BIN/comfyq" init --json
has init-json "^\\{\"library\":\"comfyq\",\"version\":\"$LIBV\",\"functions\":[0-9]+,\"bytes\":[0-9]+,\"replaced\":\"$LIBV\"\\}\$"
eq "the build's file is what was loaded" \
	"$(RC FUNCTION LIST LIBRARYNAME comfyq WITHCODE | grep -c '^#!lua name=comfyq')" 1

# A producer's own calls, as README's Producer contract gives them.
spec='{"workflow":"smoke_invert","params":{"width":64,"height":64},"tenant":"t1","idempotency_key":"k1","meta":{"charge":3}}'
out=$(enqueue "$spec")
A=$(echo "$out" | sed -n 1p)
eq "enqueue reply" "$(echo "$out" | sed -n 2,3p | tr '\n' ' ')" "created queued "
out=$(enqueue '{ "meta": {"charge": 3.0}, "tenant": "t1", "idempotency_key": "k1",
	"params": {"height": 64, "width": 64}, "workflow": "smoke_invert" }')
eq "same spec parsed: existing" "$(echo "$out" | tr '\n' ' ')" "$A existing queued "
out=$(enqueue '{"workflow":"smoke_invert","tenant":"t1","idempotency_key":"k1"}' 2>&1)
case "$out" in "CONFLICT idempotency_key: k1 was used for job $A with a different spec") ok ;;
	*) bad "conflict: $out" ;; esac
out=$(RC FCALL comfyq_cancel 1 "$P" nosuchjob 2>&1)
eq "cancel unknown" "$out" "NOJOB job nosuchjob does not exist"

# Now the stack.
sim_start sim --step-ms 50 --model-load-ms 0 || exit 1
PIDS+=("$SIM_PID")
janitor_start
PIDS+=("$JPID")
worker_start w1
PIDS+=("$WPID")
W1=$WPID
await "$A" succeeded 30

# Retried once (an OOM), then succeeded.
sim_faults '{"reset": true, "oom": {"nth": 1, "times": 1}}'
B=$(txt2img --param steps=4 --max-attempts 2)
await "$B" succeeded 30
eq "retried" "$(events "$B" retrying)" 1

# Failed: a node error ComfyUI reports.
sim_faults '{"reset": true, "execution_error": {"nth": 1, "times": 1, "message": "boom"}}'
C=$(txt2img --param steps=4)
await "$C" failed 30
eq "failed code" "$(field "$C" error_code)" workflow_error

# Canceled while it runs; a job waiting behind it hears its place.
sim_faults '{"reset": true}'
D=$(txt2img --param steps=60)
wait_until 20 is_state "$D" active || bad "D never active"
E=$(submit --workflow smoke_invert --param width=64 --param height=64)
wait_until 10 has_event "$E" queue_status || bad "E: no queue_status"
out=$(RC FCALL comfyq_cancel 1 "$P" "$D")
eq "cancel running" "$out" requested
await "$D" canceled 30
out=$(RC FCALL comfyq_cancel 1 "$P" "$D" | tr '\n' ' ')
eq "cancel again" "$out" "already canceled "
await "$E" succeeded 30

# Requeued by the janitor: its worker killed after a heartbeat renewed it.
F=$(txt2img --param steps=60)
wait_until 20 renewed "$F" || bad "F never renewed"
kill -9 "$W1"
wait "$W1" 2>/dev/null
worker_start w2 --drain-grace-s 0
PIDS+=("$WPID")
W2=$WPID
await "$F" succeeded 60
eq "F requeued" "$(events "$F" requeued)" 1

# Handed back by a draining worker, finished by the next.
G=$(txt2img --param steps=60)
wait_until 20 is_state "$G" active || bad "G never active"
kill -TERM "$W2"
wait_until 20 sh -c "! kill -0 $W2" || bad "w2 did not exit"
eq "G handed back" "$(state "$G")" queued
worker_start w3
PIDS+=("$WPID")
await "$G" succeeded 60

# Delayed, then canceled before it ran.
H=$(enqueue '{"workflow":"smoke_invert","run_at":4000000000000}' | sed -n 1p)
eq "delayed" "$(state "$H")" delayed
eq "cancel delayed" "$(RC FCALL comfyq_cancel 1 "$P" "$H")" canceled
eq "refund entries" "$(RC XLEN "${P}refunds")" 3

# Every entry has exactly README's fields for its type; every type seen.
readme_entries >"$T/readme"
[ "$(wc -l <"$T/readme")" -ge 11 ] && ok || bad "README table: $(cat "$T/readme")"
{ stream_entries "${P}events" "?"; stream_entries "${P}refunds" refund; } |
	sort | uniq >"$T/seen"
while read -r type fields; do
	want=$(awk -v t="$type" '$1 == t { $1 = ""; sub(/^ /, ""); print }' "$T/readme")
	if [ -z "$want" ]; then
		bad "entry type '$type' is not in README's table"
	else
		eq "fields of $type" "$fields" "$want"
	fi
done <"$T/seen"
while read -r type _; do
	grep -q "^$type " "$T/seen" && ok || bad "no '$type' entry seen"
done <"$T/readme"

# Job records: only fields README names; a finished job's record says what
# its terminal event said, refund included (true or false in both).
readme_job_fields >"$T/jobfields"
for f in $(record_fields); do
	grep -qx "$f" "$T/jobfields" && ok || bad "job field '$f' is not in README"
done
out=$(record_mismatches)
eq "records match their terminal events" "$out" ""
finish
