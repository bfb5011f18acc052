#!/usr/bin/env bash
# Production topology on one machine: `serve --no-worker` plus two `worker`
# processes sharing PostgreSQL and Redis. Sends a burst of single responses
# and a CSV import, waits for the summary to catch up, then reads the ledger:
# every data version must have been computed at most once, the last one
# exactly once. Prints the figures. Needs PostgreSQL and Redis on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-18090}
POSTS=${POSTS:-1000}
DB=gp_two_workers
PG="psql -h 127.0.0.1 -U postgres -d postgres -Atq"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build -q --release --bin growthpoint
BIN="$CARGO_TARGET_DIR/release/growthpoint"

$PG -c "DROP DATABASE IF EXISTS $DB" && $PG -c "CREATE DATABASE $DB"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
export REDIS_URL="redis://127.0.0.1:6379"
export JWT_SECRET="two-workers-script-secret-0123456789abcdef"
export GROWTHPOINT_QUEUE_NAME="gp-two-workers-$$"
export RUST_LOG=warn
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT
"$BIN" migrate
"$BIN" serve --no-worker --bind "127.0.0.1:$PORT" & pids+=($!)
"$BIN" worker & pids+=($!)
"$BIN" worker & pids+=($!)
for _ in $(seq 100); do curl -sf "127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done

B="http://127.0.0.1:$PORT/api/v1"
J='content-type: application/json'
val() { sed -E "s/.*\"$1\":\"([^\"]+)\".*/\1/"; }
TOKEN=$(curl -s -X POST "$B/auth/signup" -H "$J" \
  -d '{"agency_name":"Two workers","name":"T","email":"t@two.example","password":"correct horse battery"}' | val token)
H="authorization: Bearer $TOKEN"
CLIENT=$(curl -s -X POST "$B/clients" -H "$H" -H "$J" -d '{"name":"C"}' | val id)
Q=$(curl -s -X POST "$B/clients/$CLIENT/questionnaires" -H "$H" -H "$J" -d '{"title":"P","kind":"customer_panel","questions":[
  {"key":"city","type":"single_choice","options":["msk","spb"]},{"key":"nps","type":"nps_0_10","role":"nps"}]}' | val id)

start=$(date +%s%N)
seq "$POSTS" | xargs -P 16 -I{} curl -s -o /dev/null -X POST "$B/questionnaires/$Q/responses" \
  -H "$H" -H "$J" -d '{"external_id":"p{}","answers":{"city":"msk","nps":9}}'
{ echo "city,nps"; for i in $(seq 100000); do echo "spb,$((i % 11))"; done; } > /tmp/gp-two-workers.csv
curl -s -o /dev/null -X POST "$B/questionnaires/$Q/responses/import" -H "$H" -H 'content-type: text/csv' \
  --data-binary @/tmp/gp-two-workers.csv
want=$((POSTS + 1))
for _ in $(seq 600); do
  got=$(curl -s "$B/questionnaires/$Q/summary" -H "$H" | sed -E 's/.*"data_version":([0-9]+).*/\1/')
  [ "$got" = "$want" ] && break
  sleep 0.1
done
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$got" = "$want" ] || { echo "summary stuck at version $got of $want" >&2; exit 1; }

q() { psql -h 127.0.0.1 -U postgres -d "$DB" -Atq -c "$1"; }
runs=$(q "SELECT COUNT(*) FROM job_runs WHERE status = 'succeeded' AND kind = 'questionnaire_summary'")
distinct=$(q "SELECT COUNT(DISTINCT data_version) FROM job_runs WHERE status = 'succeeded' AND kind = 'questionnaire_summary'")
twice=$(q "SELECT COUNT(*) FROM (SELECT data_version FROM job_runs WHERE status = 'succeeded' AND kind = 'questionnaire_summary' GROUP BY data_version HAVING COUNT(*) > 1) d")
per_worker=$(q "SELECT worker_id || ': ' || COUNT(*) FROM job_runs WHERE kind = 'questionnaire_summary' GROUP BY worker_id ORDER BY 1" | tr '\n' ' ')
n=$(curl -s "$B/questionnaires/$Q/summary" -H "$H" | sed -E 's/.*"summary":\{"n":([0-9]+).*/\1/')
echo "data versions written: $want (POSTS=$POSTS single posts + 1 import of 100000 rows)"
echo "recomputes: $runs for $distinct distinct versions; versions computed twice: $twice"
echo "per worker: $per_worker"
echo "final summary: n=$n at version $got; all caught up in ${elapsed} ms"
[ "$twice" = 0 ] && [ "$n" = $((POSTS + 100000)) ]
