# Start and stop a private redis-server for tests and the demo.
# Source this file, then:
#   redis_start DIR   starts redis-server on a free port on 127.0.0.1 (and a
#                     unix socket, DIR/redis.sock) with its files in DIR;
#                     sets REDIS_PORT, REDIS_PID, REDIS_URL, REDIS_CONF
#   redis_stop        stops it by PID and waits until it is gone
# With REDIS_TLS_DIR set (ca.crt, server.crt and server.key in it, as
# tests/lib/tls.sh makes them) the server also takes TLS on a second free
# port: REDIS_TLS_PORT, REDIS_TLS_URL (rediss://127.0.0.1:PORT);
# REDIS_TLS_AUTH (no, yes or optional; default no) is its
# tls-auth-clients, and REDIS_TLS_ONLY=1 turns the plain port off
# (REDIS_PORT is then the TLS one and REDIS_URL its rediss:// URL).

redis_start() {
	local dir=$1 port tport i plain
	for i in $(seq 1 50); do
		port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
		tport=$(( 20000 + (port - 20000 + 1 + RANDOM % 1000) % 40000 ))
		plain=$port
		[ "${REDIS_TLS_ONLY:-}" = 1 ] && plain=0
		cat >"$dir/redis.conf" <<CONF
port $plain
bind 127.0.0.1
unixsocket $dir/redis.sock
unixsocketperm 700
dir $dir
save ""
appendonly no
daemonize yes
pidfile $dir/redis.pid
logfile $dir/redis.log
CONF
		if [ -n "${REDIS_TLS_DIR:-}" ]; then
			cat >>"$dir/redis.conf" <<CONF
tls-port $tport
tls-cert-file $REDIS_TLS_DIR/server.crt
tls-key-file $REDIS_TLS_DIR/server.key
tls-ca-cert-file $REDIS_TLS_DIR/ca.crt
tls-auth-clients ${REDIS_TLS_AUTH:-no}
CONF
		fi
		rm -f "$dir/redis.pid"
		redis-server "$dir/redis.conf" >/dev/null 2>&1 || continue
		local t
		for t in $(seq 1 100); do
			if redis-cli -s "$dir/redis.sock" ping 2>/dev/null | grep -q PONG; then
				REDIS_PORT=$port
				REDIS_PID=$(cat "$dir/redis.pid")
				REDIS_URL="redis://127.0.0.1:$port"
				REDIS_CONF="$dir/redis.conf"
				if [ -n "${REDIS_TLS_DIR:-}" ]; then
					REDIS_TLS_PORT=$tport
					REDIS_TLS_URL="rediss://127.0.0.1:$tport"
					export REDIS_TLS_PORT REDIS_TLS_URL
					if [ "$plain" = 0 ]; then
						REDIS_PORT=$tport
						REDIS_URL=$REDIS_TLS_URL
					fi
				fi
				export REDIS_PORT REDIS_PID REDIS_URL REDIS_CONF
				return 0
			fi
			# Gone already: the port was taken; try another.
			[ -f "$dir/redis.pid" ] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null || \
				{ [ "$t" -gt 5 ] && break; }
			sleep 0.05
		done
		[ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null
	done
	echo "redis_start: could not start redis-server (see $dir/redis.log)" >&2
	return 1
}

redis_stop() {
	[ -n "${REDIS_PID:-}" ] || return 0
	local pid=$REDIS_PID t
	# The test may have restarted it: the pidfile has the live one.
	[ -f "$(dirname "$REDIS_CONF")/redis.pid" ] &&
		pid=$(cat "$(dirname "$REDIS_CONF")/redis.pid")
	kill "$pid" 2>/dev/null
	for t in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null || true	# usually gone already
	REDIS_PID=
}
