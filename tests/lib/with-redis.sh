#!/usr/bin/env bash
# with-redis.sh [--own] COMMAND [ARG...]
# Runs COMMAND with COMFYQ_TEST_REDIS_URL naming a live redis-server: the one
# tests/run.sh started for the whole run, or (with --own, or when none is
# set) a private one on a free port in a temp dir, stopped by PID afterwards.
# A test that restarts or pauses Redis asks for --own. COMFYQ_TEST_REDIS_CONF
# is set for a private server so the test can restart it.
set -u
here=$(cd "$(dirname "$0")" && pwd)
own=0
if [ "${1:-}" = "--own" ]; then own=1; shift; fi
if [ $own -eq 0 ] && [ -n "${COMFYQ_TEST_REDIS_URL:-}" ]; then
	exec "$@"
fi
. "$here/../../deploy/lib/redis.sh"
dir=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-test.XXXXXX")
cleanup() { redis_stop; rm -rf "$dir"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
redis_start "$dir" || exit 1
export COMFYQ_TEST_REDIS_URL=$REDIS_URL COMFYQ_TEST_REDIS_CONF=$REDIS_CONF
"$@"
