#!/usr/bin/env bash
# make bench W=name (or W="a b"): run bench/<name>.py (all benchmarks when W is empty, except the
# 30-minute soak, which runs only by name).
set -euo pipefail
cd "$(dirname "$0")/.."
names=${*:-}
if [ -z "$names" ]; then
	names=$(ls bench/*.py | xargs -n1 basename | sed 's/\.py$//' | grep -v '^_' | grep -vx soak)
fi
# Load comes from wrk (Debian's package); install it when missing.
if ! command -v wrk >/dev/null 2>&1; then
	sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
	$sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq wrk
fi
for name in $names; do
	[ -f "bench/$name.py" ] || { echo "no benchmark bench/$name.py" >&2; exit 2; }
	echo "== bench $name =="
	.venv/bin/python "bench/$name.py"
done
