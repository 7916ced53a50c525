#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster on a free loopback port, print its URL on stdout.
#   url=$(scripts/pg-throwaway.sh start DIR)   ...   scripts/pg-throwaway.sh stop DIR
# Installs Debian's postgresql package if no server binaries are present.
# `crash DIR` stops it as a crash would (immediate mode: no checkpoint, every client's
# connection dropped) and keeps the cluster; `start DIR` again starts that cluster on the
# port it had (crash recovery first), so clients configured with the URL find it again.
set -euo pipefail
cmd=${1:?start|crash|stop}
dir=${2:?directory for the cluster}

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
as_pg() {
	# initdb and postgres refuse to run as root.
	if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

case "$cmd" in
start)
	bin=$(find_bin)
	if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
		echo "installing PostgreSQL from Debian packages..." >&2
		sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
		$sudo_cmd apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq postgresql >&2
		bin=$(find_bin)
	fi
	again=0
	if [ -f "$dir/port" ] && [ -d "$dir/data" ]; then
		again=1
		port=$(cat "$dir/port")
	else
		port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
		mkdir -p "$dir"
		[ "$(id -u)" = 0 ] && chown postgres "$dir"
		if ! as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1; then
			cat "$dir/initdb.log" >&2
			echo "initdb failed (the postgres user must be able to reach $dir)" >&2
			exit 1
		fi
	fi
	as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c fsync=off -c full_page_writes=off" \
		start >&2
	echo "$port" >"$dir/port"
	[ "$again" = 1 ] || as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres gonghui_test
	echo "postgresql+psycopg://postgres@127.0.0.1:$port/gonghui_test"
	;;
crash)
	as_pg "$(find_bin)/pg_ctl" -D "$dir/data" -m immediate -w stop >&2
	;;
stop)
	bin=$(find_bin)
	[ -d "$dir/data" ] && as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
	rm -rf "$dir"
	;;
esac
