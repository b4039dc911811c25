#!/usr/bin/env bash
# Do the reasons name related items? bench/reasons.sh [SCALE=small] [CUSTOMERS=0 (all)]
# Loads the demo at SCALE into reco_bench_reasons_SCALE (kept for reruns), trains and deploys a
# hybrid, then runs bench/reasons.sql: of the reasons that name an item, the share naming one of
# the pick's category or of a category bought together with it, at three hours.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-small}
N=${2:-0}
DB=reco_bench_reasons_$SCALE
PSQL=(scripts/cluster psql -q -v ON_ERROR_STOP=1)
if ! "${PSQL[@]}" -d $DB -At -c "SELECT 1 FROM reco.models WHERE status = 'deployed'" 2>/dev/null | grep -q 1; then
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
  "${PSQL[@]}" -d $DB -v scale="$SCALE" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION pg_reco CASCADE;
SELECT reco.load_demo(:'scale') - 'seconds' AS loaded;
VACUUM ANALYZE;
SELECT reco.deploy(reco.train('hybrid')) AS deployed;
SQL
fi
echo "bench/reasons.sh $SCALE $N   ($(date -u +%FT%TZ), $(git rev-parse --short HEAD))"
"${PSQL[@]}" -d $DB -v customers="$N" -f bench/reasons.sql
