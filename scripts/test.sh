#!/usr/bin/env bash
# The whole suite on SQLite, then on PostgreSQL. PostgreSQL comes from
# GONGHUI_TEST_DATABASE_URL when given, else from a throwaway cluster started here.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
postgres_only=0
if [ "${1:-}" = "--postgres-only" ]; then postgres_only=1; shift; fi

if [ "$postgres_only" = 0 ]; then
	echo "== tests on SQLite =="
	env -u GONGHUI_TEST_DATABASE_URL "$BIN/pytest" "$@"
fi

pg_dir=""
cleanup() { if [ -n "$pg_dir" ]; then scripts/pg-throwaway.sh stop "$pg_dir"; fi; }
trap cleanup EXIT
url=${GONGHUI_TEST_DATABASE_URL:-}
if [ -z "$url" ]; then
	pg_dir=$(mktemp -d /tmp/gonghui-pg.XXXXXX)
	url=$(scripts/pg-throwaway.sh start "$pg_dir")
fi
echo "== tests on PostgreSQL =="
GONGHUI_TEST_DATABASE_URL=$url "$BIN/pytest" "$@"
