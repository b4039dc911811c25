#!/usr/bin/env bash
# Normalization and ingest throughput on N generated Shopify-shaped orders (~3 lines each),
# pg_reco side by side with the same mapping written by hand in plain SQL, in one run.
#   bench/ingest.sh [N=100000] [BATCH=1000] [CLIENTS=2]     (make bench: release build, project cluster)
# Single-backend figures run with parallel query off ("one core"); the concurrent figures run
# CLIENTS sessions at once, each ingesting its share of the batches. Medians of 3 runs.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
BATCH=${2:-1000}
CLIENTS=${3:-2}
DB=reco_bench
OUT=target/bench-ingest.txt
PSQL=(scripts/cluster psql -q -v ON_ERROR_STOP=1)
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
{
  echo "bench/ingest.sh $N $BATCH $CLIENTS   ($(date -u +%FT%TZ), $(nproc) cores, PostgreSQL $(scripts/cluster psql -At -c 'SHOW server_version'))"
  "${PSQL[@]}" -d $DB -v n="$N" -v batch="$BATCH" -f bench/ingest.sql
} | tee $OUT

# concurrent clients: wall time for all batches, CLIENTS sessions at once, each committing per batch
concurrent() {
  local fn=$1 times=()
  for run in 1 2 3; do
    "${PSQL[@]}" -d $DB -c "SELECT reset_tables()" -c "CHECKPOINT" >/dev/null
    local t0; t0=$(date +%s.%N)
    for ((k = 0; k < CLIENTS; k++)); do
      "${PSQL[@]}" -d $DB -c "CALL $fn($k, $CLIENTS)" >/dev/null &
    done
    wait
    times+=("$(echo "$(date +%s.%N) - $t0" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n 2p
}
orders=$("${PSQL[@]}" -At -d $DB -c "SELECT count(*) FROM payloads")
reco=$(concurrent reco_ingest_part)
hand=$(concurrent hand_ingest_part)
{
  printf '%-44s %10.3f %12.0f\n' "ingest_orders, pg_reco, $CLIENTS clients" "$reco" "$(echo "$orders / $reco" | bc -l)"
  printf '%-44s %10.3f %12.0f\n' "ingest, hand-written SQL, $CLIENTS clients" "$hand" "$(echo "$orders / $hand" | bc -l)"
  printf 'ratio with %s clients: ingest pg_reco/hand = %.2fx faster\n' "$CLIENTS" "$(echo "$hand / $reco" | bc -l)"
} | tee -a $OUT

# one event per call and per commit (record_event), plain ids against e-mail addresses as ids,
# alternating, 5 runs of 5000 each after a warm-up; medians
"${PSQL[@]}" -d $DB -c "SELECT reset_tables()" -c "INSERT INTO reco.items (item_id) VALUES ('SKU-1')" -c "CALL events_each_committed(5000, false)" -c "CALL events_each_committed(5000, true)" -c "CHECKPOINT" >/dev/null
plain=() email=()
for run in 1 2 3 4 5; do
  for kind in false true; do
    t0=$(date +%s.%N)
    "${PSQL[@]}" -d $DB -c "CALL events_each_committed(5000, $kind)" >/dev/null
    t=$(echo "$(date +%s.%N) - $t0" | bc)
    if [[ $kind == false ]]; then plain+=("$t"); else email+=("$t"); fi
  done
done
p=$(printf '%s\n' "${plain[@]}" | sort -n | sed -n 3p)
e=$(printf '%s\n' "${email[@]}" | sort -n | sed -n 3p)
{
  printf '%-44s %10.3f %12.0f\n' "record_event x 5000, one commit each, plain ids" "$p" "$(echo "5000 / $p" | bc -l)"
  printf '%-44s %10.3f %12.0f\n' "record_event x 5000, e-mail addresses as ids" "$e" "$(echo "5000 / $e" | bc -l)"
  printf 'cost of pseudonyms per event: %.0f us (%.1f%%)\n' "$(echo "($e - $p) / 5000 * 1000000" | bc -l)" "$(echo "($e / $p - 1) * 100" | bc -l)"
} | tee -a $OUT
