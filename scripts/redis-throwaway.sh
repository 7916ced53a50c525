#!/usr/bin/env bash
# Start a throwaway Redis on a free loopback port, print its URL on stdout.
#   url=$(scripts/redis-throwaway.sh start DIR)   ...   scripts/redis-throwaway.sh stop DIR
# Installs Debian's redis-server package if the binary is not present. Nothing is
# persisted (no RDB snapshots, no AOF). `start DIR` again after a crash reuses the port
# recorded in DIR, so clients configured with the URL find it again.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?directory for the server}

find_bin() { command -v redis-server || { [ -x /usr/bin/redis-server ] && echo /usr/bin/redis-server; } || true; }

case "$cmd" in
start)
	bin=$(find_bin)
	if [ -z "$bin" ]; then
		echo "installing Redis from Debian packages..." >&2
		sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
		$sudo_cmd apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq redis-server >&2
		bin=$(find_bin)
	fi
	mkdir -p "$dir"
	if [ -f "$dir/port" ]; then
		port=$(cat "$dir/port")
	else
		port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
		echo "$port" >"$dir/port"
	fi
	"$bin" --bind 127.0.0.1 --port "$port" --dir "$dir" --save "" --appendonly no \
		--daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/server.log" >&2
	for _ in $(seq 100); do
		if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
			echo "redis://127.0.0.1:$port/0"
			exit 0
		fi
		sleep 0.1
	done
	cat "$dir/server.log" >&2
	echo "redis-server did not start on port $port" >&2
	exit 1
	;;
stop)
	if [ -f "$dir/redis.pid" ]; then
		pid=$(cat "$dir/redis.pid")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	rm -rf "$dir"
	;;
esac
