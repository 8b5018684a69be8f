#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the test suite and print its URL.
# Installs Debian's postgresql package when no initdb is found. The cluster lives in DIR (first
# argument) and listens on 127.0.0.1:PORT (second argument); stop it with `pg_ctl -D DIR stop`
# (tests/db/conftest.py does). Runs the server as the `postgres` user when started as root.
set -euo pipefail
DIR=${1:?usage: postgres_for_tests.sh DIR PORT}
PORT=${2:?usage: postgres_for_tests.sh DIR PORT}
bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
if [[ -z $(bindir) ]]; then
  echo "postgres_for_tests.sh: installing PostgreSQL (apt-get install postgresql)" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
BIN=$(bindir)
as_owner() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
mkdir -p "$DIR"
[[ $(id -u) == 0 ]] && chown postgres "$DIR"
as_owner "$BIN/initdb" -D "$DIR/data" -U tokenmill -A trust --no-sync >/dev/null
as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
  -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
as_owner "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U tokenmill tokenmill_test
echo "postgresql+psycopg://tokenmill@127.0.0.1:$PORT/tokenmill_test"
