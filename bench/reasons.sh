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
source bench/lib.sh
demo_db $DB "$SCALE"
echo "bench/reasons.sh $SCALE $N   ($(date -u +%FT%TZ), $(git rev-parse --short HEAD))"
"${PSQL[@]}" -d $DB -v customers="$N" -f bench/reasons.sql
