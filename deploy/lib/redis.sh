# Start and stop a private redis-server for tests and the demo.
# Source this file, then:
#   redis_start DIR   starts redis-server on a free port on 127.0.0.1 (and a
#                     unix socket) with its files in DIR; sets REDIS_PORT,
#                     REDIS_PID, REDIS_URL, REDIS_CONF
#   redis_stop        stops it by PID and waits until it is gone

redis_start() {
	local dir=$1 port i
	for i in $(seq 1 50); do
		port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
		cat >"$dir/redis.conf" <<CONF
port $port
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
		rm -f "$dir/redis.pid"
		redis-server "$dir/redis.conf" >/dev/null 2>&1 || continue
		local t
		for t in $(seq 1 100); do
			if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
				REDIS_PORT=$port
				REDIS_PID=$(cat "$dir/redis.pid")
				REDIS_URL="redis://127.0.0.1:$port"
				REDIS_CONF="$dir/redis.conf"
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
