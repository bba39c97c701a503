#!/usr/bin/env bash
# with-redis.sh [--own] [--tls] COMMAND [ARG...]
# Runs COMMAND with COMFYQ_TEST_REDIS_URL naming a live redis-server: the one
# tests/run.sh started for the whole run, or (with --own, or when none is
# set) a private one on a free port in a temp dir, stopped by PID afterwards.
# A test that restarts or pauses Redis asks for --own. COMFYQ_TEST_REDIS_CONF
# is set for a private server so the test can restart it. --tls (a private
# server) gives it a TLS port too, with certificates made for it
# (tests/lib/tls.sh): COMFYQ_TEST_REDIS_TLS_URL is its rediss:// URL and
# COMFYQ_TLS_CA_FILE the CA, which every program reads.
set -u
here=$(cd "$(dirname "$0")" && pwd)
own=0 tls=0
while :; do
	case "${1:-}" in
	--own) own=1 ;;
	--tls) own=1 tls=1 ;;
	*) break ;;
	esac
	shift
done
if [ $own -eq 0 ] && [ -n "${COMFYQ_TEST_REDIS_URL:-}" ]; then
	exec "$@"
fi
. "$here/../../deploy/lib/redis.sh"
dir=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-test.XXXXXX")
cleanup() { redis_stop; rm -rf "$dir"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ $tls -eq 1 ]; then
	. "$here/tls.sh"
	mkdir "$dir/tls" && tls_certs "$dir/tls" || exit 1
	REDIS_TLS_DIR=$dir/tls
fi
redis_start "$dir" || exit 1
export COMFYQ_TEST_REDIS_URL=$REDIS_URL COMFYQ_TEST_REDIS_CONF=$REDIS_CONF
if [ $tls -eq 1 ]; then
	export COMFYQ_TEST_REDIS_TLS_URL=$REDIS_TLS_URL
	export COMFYQ_TLS_CA_FILE=$dir/tls/ca.crt
fi
"$@"
