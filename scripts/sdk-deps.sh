#!/usr/bin/env bash
# The TypeScript SDK's tests (tests/sdk) compile it with its pinned TypeScript and run it on
# Node: installs Debian's nodejs and npm when missing (as scripts/web-assets.sh does), then
# the SDK's dev dependencies from sdk/typescript/package-lock.json (again only when changed).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "node or npm not found; installing Debian's nodejs and npm..." >&2
	sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
	$sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq nodejs npm
fi
# node --test, fetch, WebCrypto and Headers.getSetCookie are all there from Node 18.14.
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 18 || (a === 18 && b >= 14) ? 0 : 1)'; then
	echo "the TypeScript SDK's tests need Node 18.14 or newer; found $(node --version)" >&2
	exit 1
fi
sdk=sdk/typescript
stamp=$sdk/node_modules/.installed
if [ ! -f "$stamp" ] || [ "$sdk/package-lock.json" -nt "$stamp" ]; then
	npm ci --prefix "$sdk" --no-audit --no-fund --loglevel=error
	touch "$stamp"
fi
