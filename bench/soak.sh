#!/usr/bin/env bash
# The soak of issue #19 (part 5): a day of mixed load compressed into MINUTES on SCALE demo data,
# with the figures per window of WINDOW seconds (tests/integration/src/bin/soak.rs says what runs):
# 6 clients calling recommend, complements and resolve_preferences; 2 clients ingesting orders
# and web events; a training and deploy every RETRAIN seconds, the second one killed with
# SIGKILL a few seconds in; a forget_customer every FORGET seconds. First the serving clients
# run alone for QUIET seconds (the quiet figures the p99s are compared with).
#   bench/soak.sh [MINUTES=30] [SCALE=medium]      (release build, project cluster, as root:
#                                                   it reads /proc of the server's processes
#                                                   and sends the SIGKILL)
#   RETRAIN=300 FORGET=60 WINDOW=300 QUIET=60 KILL_ROUND=2 TRAIN_SETUP='SET ...' bench/soak.sh ...
# The database (reco_bench_soak_SCALE) is built once and kept; the soak adds orders and events
# to it and forgets customers, so a rerun starts from a larger shop.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-30}
SCALE=${2:-medium}
DB=reco_bench_soak_$SCALE
OUT=target/bench-soak-$SCALE.txt
source bench/lib.sh
mkdir -p target
echo "bench/soak.sh $MINUTES $SCALE   ($(date -u +%FT%TZ), $(nproc) cores; RETRAIN=${RETRAIN:-300} FORGET=${FORGET:-60} WINDOW=${WINDOW:-300} QUIET=${QUIET:-60})" | tee $OUT
demo_db $DB "$SCALE" | tee -a $OUT
# the requests: customers with a learned vector, each with a cart of three buyable items
request_tables $DB "$("${PSQL[@]}" -d $DB -At -c "SELECT model_id FROM reco.models WHERE status = 'deployed'")"
# settle first: the vacuum, analyze and checkpoint that loading and training left for the
# background are done before the quiet figures are taken (a first run measured them beside
# autovacuum of the fresh tables: quiet p99 24 ms instead of a few)
"${PSQL[@]}" -d $DB -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
for _ in $(seq 120); do
  [[ $("${PSQL[@]}" -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'") == 0 ]] && break
  sleep 5
done
# and the deployed model loaded: after a server restart the first call loads the shared copy
# and the others wait for it (seconds at medium), which is not what the quiet phase measures
"${PSQL[@]}" -d $DB -At -c "SELECT count(*) FROM bench_req b, reco.recommend(b.customer_id, 10) r WHERE b.n = 1" >/dev/null
cargo build -q --release -p pg_reco_integration --bin soak
LOG=target/pg.log
from=$(($(wc -l < $LOG) + 1))
RECO_TEST_DSN="$(scripts/cluster url)" target/release/soak $DB "$MINUTES" | tee -a $OUT
# what the server logged meanwhile: the SIGKILL's crash restart, and anything else
echo "server log during the soak: $(tail -n +$from $LOG | grep -c 'terminated by signal' || true) backend(s) terminated by a signal;" \
  "$(tail -n +$from $LOG | grep -c 'ERROR:  XX000' || true) XX000 error(s)" | tee -a $OUT
echo "command: bench/soak.sh $MINUTES $SCALE" | tee -a $OUT
