#!/usr/bin/env bash
# What one audit row costs PostgreSQL (docs/performance.md, sessions 16
# to 18): each script runs a PATCH's own statements (the client's SELECT,
# then the update) as the application sends them, without a transaction
# around them; the variants differ only in the update.
#   bash tests/pgbench/audit/run.sh [clients=16] [seconds=12] [rounds=2] [variant ...]
# Variants (default: all of them):
#   plain, cte_only, audit_*       session 16: the audit values as literals
#   plain_ret                      the update as sea-orm sends it (RETURNING every column)
#   app_raise                      the audited update until session 17: audit row first,
#                                  raising when the update found no row
#   app_after(_lean|_heap)         the audited update since: the audit row inserted
#                                  from what the update returned (into the primary
#                                  key only, into a heap with no index)
#   one_row_*                      the same with every client updating one row
# Settings for the pgbench sessions come from the environment, e.g.
#   PGOPTIONS="-c synchronous_commit=off" bash tests/pgbench/audit/run.sh 16 8 3 one_row_plain_ret one_row_app_after
# The audit values of plain_ret/app_* are bound parameters (-D), as the
# application binds them. Creates (and drops again) the scratch database
# `gp_pgbench_audit`.
set -euo pipefail
cd "$(dirname "$0")"
clients=${1:-16}; seconds=${2:-12}; rounds=${3:-2}
shift $(($# < 3 ? $# : 3))
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(plain cte_only audit_heap audit_unlogged audit_lean audit_json audit_log
  plain_ret app_raise app_after app_after_lean app_after_heap
  one_row_plain_ret one_row_app_raise one_row_app_after one_row_app_after_lean one_row_app_after_heap)
db=gp_pgbench_audit
psql() { PGOPTIONS="-c client_min_messages=warning" command psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -q "$@"; }
psql -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
trap 'psql -c "DROP DATABASE IF EXISTS $db"' EXIT
psql -d "$db" -f setup.sql
agency=$(psql -d "$db" -Atc "SELECT agency_id FROM clients LIMIT 1")
for ((r = 1; r <= rounds; r++)); do
  for s in "${variants[@]}"; do
    tps=$(pgbench -h 127.0.0.1 -U postgres -n -M prepared -c "$clients" -j $((clients < 2 ? 1 : 2)) \
      -D ag="$agency" -D uid=01a2516d-ae57-74d0-8924-1dc6a48b9b9f \
      -D rid=446c1afa-f3f7-400d-9963-95cca735038f \
      -D 'ch={"name": {"from": "Client 1", "to": "Client 2"}}' \
      -T "$seconds" -f "$s.sql" "$db" 2>&1 | grep -oP "tps = \K[0-9.]+" | head -1)
    printf '%-20s %s tps\n' "$s" "$tps"
  done
done
