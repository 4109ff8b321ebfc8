#!/usr/bin/env bash
# The PostgreSQL-outage timings of docs/operations.md ("Faults"): a hub
# (`--demo`) on a PostgreSQL cluster of its own; the cluster is stopped and
# started again, and the script prints what a client sees meanwhile.
#
#   bench/outage.sh [path/to/renkei]      (default: target/debug/renkei)
#
# Needs the PostgreSQL server programs (/usr/lib/postgresql/*/bin, or
# PG_BIN=...), curl, and root or the postgres user (initdb refuses root: as
# root the cluster runs as `postgres`). Prints, for a GraphQL request with
# the database stopped: its time, HTTP status, Retry-After and code; the
# time `/ready` takes; and after the restart, how long until a request
# succeeds again.
set -euo pipefail
cd "$(dirname "$0")/.."

hub="$(realpath "${1:-target/debug/renkei}")"
pg_bin="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)}"
dir=$(mktemp -d)
port=$(( 40000 + RANDOM % 20000 ))
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$dir"
  as_pg=(runuser -u postgres --)
fi
pg() { "${as_pg[@]}" "$pg_bin/$1" "${@:2}" >/dev/null; }
pg_start() {
  pg pg_ctl -D "$dir/data" -l "$dir/pg.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start
}
hub_pid=""
cleanup() {
  [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null || true
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

pg initdb -D "$dir/data" -A trust -U postgres --locale=C --no-sync
pg_start
export RENKEI_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
(cd "$dir" && exec "$hub" serve --demo --listen 127.0.0.1:0 >"$dir/hub.out" 2>"$dir/hub.err") &
hub_pid=$!
addr=""
for _ in $(seq 1 600); do
  addr=$(grep -o 'listening on http://[0-9.:]*' "$dir/hub.out" 2>/dev/null | sed 's|listening on http://||' || true)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "the hub did not start" >&2; cat "$dir/hub.err" >&2; exit 1; }
token=$("$hub" demo-token physician)
query='{"query":"{ patientByLocalId(localId: \"K-000003\") { name } }"}'

# One request: prints "seconds status retry-after code".
request() {
  local out
  out=$(curl -s -o "$dir/body" -D "$dir/headers" -w '%{time_total} %{http_code}' \
    -X POST "http://$addr/graphql" -H 'content-type: application/json' \
    -H "authorization: Bearer $token" -d "$query")
  local retry code
  retry=$(grep -i '^retry-after:' "$dir/headers" | tr -d '\r' | awk '{print $2}' || true)
  code=$(grep -o '"code":"[A-Z_]*"' "$dir/body" | head -n1 | cut -d'"' -f4 || true)
  echo "$out ${retry:--} ${code:-none}"
}
ready() { curl -s -o /dev/null -w '%{time_total} %{http_code}' "http://$addr/ready"; }

request >/dev/null   # the member is in the directory cache now
echo "database up:       request $(request)   /ready $(ready)"
pg pg_ctl -D "$dir/data" -m fast -w stop
for i in 1 2 3; do
  echo "database down #$i:  request $(request)   /ready $(ready)"
done
pg_start
started=$(date +%s.%N)
while :; do
  read -r _ status _ _ <<<"$(request)"
  [ "$status" = 200 ] && ! grep -q '"errors"' "$dir/body" && break
  sleep 0.05
done
echo "recovered:         first success $(echo "$(date +%s.%N) - $started" | bc) s after PostgreSQL accepted connections again"
echo "database up again: request $(request)   /ready $(ready)"
