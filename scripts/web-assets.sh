#!/usr/bin/env bash
# Install the front-end packages from npm (package-lock.json) and copy the files the pages
# load into src/gonghui/web/static/vendor. Nothing is fetched from a CDN at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
	echo "npm not found; installing Debian's nodejs and npm..." >&2
	sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
	$sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq nodejs npm
fi
npm ci --no-audit --no-fund --loglevel=error
vendor=src/gonghui/web/static/vendor
mkdir -p "$vendor"
cp node_modules/htmx.org/dist/htmx.min.js "$vendor/htmx.min.js"
cp node_modules/chart.js/dist/chart.umd.min.js "$vendor/chart.umd.min.js"
# Quill 2.0.2, not 2.0.3: its getSemanticHTML turns every space into &nbsp; (slab/quill#4509).
cp node_modules/quill/dist/quill.js "$vendor/quill.min.js"
cp node_modules/quill/dist/quill.snow.css "$vendor/quill.snow.css"
