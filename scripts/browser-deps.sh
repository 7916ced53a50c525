#!/usr/bin/env bash
# Browser tests drive Debian's Chromium through Playwright; without a CJK font every Chinese
# character renders as an empty box. Installs both when missing.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need+=(fonts-noto-cjk)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing ${need[*]} from Debian packages..." >&2
	sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
	$sudo_cmd apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
