#!/usr/bin/env bash
# What one audit row costs PostgreSQL (docs/performance.md, "Session 16"):
# each script runs a PATCH's own statements (the client's SELECT, then the
# update) in a transaction; the variants differ only in the update.
#   bash tests/pgbench/audit/run.sh [clients=16] [seconds=12] [rounds=2]
# Creates (and drops again) the scratch database `gp_pgbench_audit`.
set -euo pipefail
cd "$(dirname "$0")"
clients=${1:-16}; seconds=${2:-12}; rounds=${3:-2}
db=gp_pgbench_audit
psql() { PGOPTIONS="-c client_min_messages=warning" command psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -q "$@"; }
psql -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
trap 'psql -c "DROP DATABASE IF EXISTS $db"' EXIT
psql -d "$db" -f setup.sql
for ((r = 1; r <= rounds; r++)); do
  for s in plain cte_only audit_heap audit_unlogged audit_lean audit_json audit_log; do
    tps=$(pgbench -h 127.0.0.1 -U postgres -n -M prepared -c "$clients" -j $((clients < 2 ? 1 : 2)) \
      -T "$seconds" -f "$s.sql" "$db" 2>&1 | grep -oP "tps = \K[0-9.]+" | head -1)
    printf '%-16s %s tps\n' "$s" "$tps"
  done
done
