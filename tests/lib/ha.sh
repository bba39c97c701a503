# shellcheck shell=bash
# Shared by the Sentinel and Cluster tests (tests/integration/sentinel.sh,
# cluster.sh). Source it after tests/lib/stack.sh.
#   SRV_PIDS+=(PID)       a daemonized redis-server or sentinel to stop
#   ha_cleanup            the EXIT trap: the stack's processes, then the
#                         servers, by PID; the logs when a check failed;
#                         KEEP_LOGS; $T removed
#   xr_ends FILE JOB      JOB's terminal events in FILE, an XRANGE listing
#                         of the events stream (redis-cli prints an entry's
#                         id, then one field or value a line)
#   xr_refunds FILE JOB   JOB's entries in FILE, an XRANGE of refunds
#   LIBV                  the functions library's version (shared/rq.h)

SRV_PIDS=()

ha_cleanup() {
	local p f
	stop "${PIDS[@]}" 2>/dev/null
	for p in "${SRV_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${SRV_PIDS[@]}"; do
		wait_until 10 sh -c "! kill -0 $p" || kill -9 "$p" 2>/dev/null
	done
	if [ "$fails" -gt 0 ]; then
		for f in "$T"/*.log "$T"/*/log; do
			echo "---- $f"
			tail -30 "$f"
		done
	fi
	[ -n "${KEEP_LOGS:-}" ] && cp -r "$T" "$KEEP_LOGS"
	rm -rf "$T"
}

xr_ends() {
	awk -v j="$2" '
	function end() { if (jj == j && t ~ /^(succeeded|failed|canceled)$/) n++ }
	/^[0-9]+-[0-9]+$/ { end(); jj = ""; t = ""; next }
	prev == "job" { jj = $0 }
	prev == "type" { t = $0 }
	{ prev = $0 }
	END { end(); print n + 0 }' "$1"
}

xr_refunds() {
	awk -v j="$2" 'prev == "job" && $0 == j { n++ } { prev = $0 }
	END { print n + 0 }' "$1"
}

LIBV=$(sed -n 's/^#define RQ_LIB_VERSION "\([0-9]*\)".*/\1/p' "$ROOT/shared/rq.h")
