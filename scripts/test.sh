#!/usr/bin/env bash
# The whole suite on the embedded default (SQLite, local files) and on PostgreSQL with
# Redis and an S3 bucket (a production deployment's parts); between them, on PostgreSQL
# without Redis, the tests marked database_fallback: what lives in Redis when one is
# configured and in the database otherwise (rate limits, code throttles, the change feed,
# the task queue's broker), and the PostgreSQL restart fault test. Every other path is the
# same with or without Redis and runs in both whole runs. Each part comes from its
# GONGHUI_TEST_* variable when given, else from a throwaway server started here
# (installed from Debian's packages when missing).
#   scripts/test.sh [--postgres-only] [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
postgres_only=0
if [ "${1:-}" = "--postgres-only" ]; then postgres_only=1; shift; fi
# The first two runs use none of the production parts, whatever the environment says.
embedded=(env -u GONGHUI_TEST_DATABASE_URL -u GONGHUI_TEST_REDIS_URL -u GONGHUI_TEST_S3_ENDPOINT)

if [ "$postgres_only" = 0 ]; then
	echo "== tests on SQLite =="
	"${embedded[@]}" "$BIN/pytest" "$@"
fi

pg_dir="" redis_dir="" s3_dir=""
cleanup() {
	if [ -n "$s3_dir" ]; then scripts/s3-throwaway.sh stop "$s3_dir" || true; fi
	if [ -n "$redis_dir" ]; then scripts/redis-throwaway.sh stop "$redis_dir" || true; fi
	if [ -n "$pg_dir" ]; then scripts/pg-throwaway.sh stop "$pg_dir"; fi
}
trap cleanup EXIT
url=${GONGHUI_TEST_DATABASE_URL:-}
if [ -z "$url" ]; then
	pg_dir=$(mktemp -d /tmp/gonghui-pg.XXXXXX)
	url=$(scripts/pg-throwaway.sh start "$pg_dir")
fi
echo "== tests on PostgreSQL without Redis: the database fallbacks =="
"${embedded[@]}" GONGHUI_TEST_DATABASE_URL="$url" "$BIN/pytest" -m database_fallback "$@"

redis_url=${GONGHUI_TEST_REDIS_URL:-}
if [ -z "$redis_url" ]; then
	redis_dir=$(mktemp -d /tmp/gonghui-redis.XXXXXX)
	redis_url=$(scripts/redis-throwaway.sh start "$redis_dir")
fi
s3_url=${GONGHUI_TEST_S3_ENDPOINT:-}
if [ -z "$s3_url" ]; then
	s3_dir=$(mktemp -d /tmp/gonghui-s3.XXXXXX)
	s3_url=$(scripts/s3-throwaway.sh start "$s3_dir")
fi
echo "== tests on PostgreSQL + Redis + S3 =="
GONGHUI_TEST_DATABASE_URL="$url" GONGHUI_TEST_REDIS_URL="$redis_url" \
	GONGHUI_TEST_S3_ENDPOINT="$s3_url" "$BIN/pytest" "$@"
