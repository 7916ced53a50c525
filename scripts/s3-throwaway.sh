#!/usr/bin/env bash
# Start a throwaway S3 protocol server (moto's standalone server, a dev dependency) on a
# free loopback port, print its endpoint URL on stdout.
#   url=$(scripts/s3-throwaway.sh start DIR)   ...   scripts/s3-throwaway.sh stop DIR
# The test suite stores its files there when GONGHUI_TEST_S3_ENDPOINT=$url (any access
# key is accepted; the suite makes a bucket of its own).
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?directory for the server state}
root=$(cd "$(dirname "$0")/.." && pwd)
python=${GONGHUI_PYTHON:-$root/.venv/bin/python}

case "$cmd" in
start)
	mkdir -p "$dir"
	port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	setsid "$python" -m moto.server -H 127.0.0.1 -p "$port" >"$dir/server.log" 2>&1 &
	echo $! >"$dir/pid"
	url="http://127.0.0.1:$port"
	for _ in $(seq 1 300); do
		if "$python" -c "import httpx,sys; httpx.get(sys.argv[1] + '/moto-api/', timeout=1)" "$url" 2>/dev/null; then
			echo "$url"
			exit 0
		fi
		if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then break; fi
		sleep 0.1
	done
	cat "$dir/server.log" >&2
	echo "moto server did not start" >&2
	exit 1
	;;
stop)
	if [ -f "$dir/pid" ]; then kill "$(cat "$dir/pid")" 2>/dev/null || true; fi
	rm -rf "$dir"
	;;
esac
