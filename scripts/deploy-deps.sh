#!/usr/bin/env bash
# tests/deploy/test_nginx.py runs deploy/nginx.conf in Debian's nginx; installs it when
# missing. The tests start nginx themselves on a loopback port, so the system service the
# package starts on port 80 is stopped and disabled again.
set -euo pipefail
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
	exit 0
fi
echo "installing nginx from Debian packages..." >&2
sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq nginx >/dev/null
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
	$sudo_cmd systemctl disable --now nginx
fi
