#!/usr/bin/env bash
# Normalization and ingest throughput on N generated Shopify-shaped orders (~3 lines each),
# pg_reco side by side with the same mapping written by hand in plain SQL, in one run.
#   bench/ingest.sh [N=100000] [BATCH=1000]      (make bench runs it on the project cluster)
# Single backend, parallel query off: "one core". Each measurement is the median of 3 runs.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
BATCH=${2:-1000}
DB=reco_bench
PSQL=(scripts/cluster psql -q -v ON_ERROR_STOP=1)
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
"${PSQL[@]}" -d $DB -v n="$N" -v batch="$BATCH" -f bench/ingest.sql | tee target/bench-ingest.txt
