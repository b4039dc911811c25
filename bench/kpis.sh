#!/usr/bin/env bash
# reco.recommendation_kpis_for at scale, with last-touch attribution (issue #18).
#   bench/kpis.sh [EVERY=5] [RUNS=3]      (release build; needs bench/experiment_report.sh 10's database)
# On the 10-million-list database of bench/experiment_report.sh (a list every 200 ms from
# 2026-02-01, about 432 000 a day; clicks, cart adds and purchases carrying their rec_id), adds
# once, on 2026-02-05 only, a click without a rec_id 30 minutes after every EVERY-th list, on the
# list's second item, by its customer: the events last touch attributes (one probe of the
# customer's lists each). Then times the KPIs of that day beside those of 2026-02-07 (the same
# lists and events, no last-touch events), RUNS times each, and checks the day's clicked lists
# (rec_id clicks, plus the lists the last-touch clicks found).
set -euo pipefail
cd "$(dirname "$0")/.."
EVERY=${1:-5}
RUNS=${2:-3}
DB=reco_bench_report_10m
OUT=target/bench-kpis.txt
source bench/lib.sh
mkdir -p target
echo "bench/kpis.sh $EVERY $RUNS   ($(date -u +%FT%TZ), $(nproc) cores)" | tee $OUT
if ! "${PSQL[@]}" -d $DB -At -c "SELECT count(*) >= 10000000 FROM reco.recommendations" 2>/dev/null | grep -q t; then
  echo "build the database first: bench/experiment_report.sh 10" >&2
  exit 2
fi
"${PSQL[@]}" -d $DB -v every="$EVERY" <<'SQL'
SET client_min_messages = warning;
DELETE FROM reco.events WHERE context ->> 'bench' = 'last_touch' AND NOT (context ->> 'every')::int = :every;
INSERT INTO reco.events (customer_id, shard_key, item_id, kind, occurred_at, context)
SELECT r.customer_id, r.customer_id, r.items[2], 'click', r.shown_at + interval '30 minutes', jsonb_build_object('bench', 'last_touch', 'every', :every)
FROM reco.recommendations r
WHERE r.shown_at >= '2026-02-05' AND r.shown_at < '2026-02-06' AND r.rec_id % :every = 0
  AND NOT EXISTS (SELECT 1 FROM reco.events e WHERE e.context ->> 'bench' = 'last_touch' LIMIT 1);
VACUUM ANALYZE reco.events;
SQL
"${PSQL[@]}" -d $DB -At -c "SELECT format('%s last-touch clicks on 2026-02-05 (no rec_id); %s lists that day', (SELECT count(*) FROM reco.events WHERE context ->> 'bench' = 'last_touch'), (SELECT count(*) FROM reco.recommendations WHERE shown_at >= '2026-02-05' AND shown_at < '2026-02-06'))" | tee -a $OUT
timeit "kpis of 2026-02-05 (with the last-touch clicks)" "SELECT count(*) FROM reco.recommendation_kpis_for('2026-02-05', '2026-02-06', '1 day')"
timeit "kpis of 2026-02-07 (none)" "SELECT count(*) FROM reco.recommendation_kpis_for('2026-02-07', '2026-02-08', '1 day')"
"${PSQL[@]}" -d $DB <<'SQL' | tee -a $OUT
SELECT day, experiment, arm, impressions, clicked, round(ctr::numeric, 4) AS ctr FROM reco.recommendation_kpis_for('2026-02-05', '2026-02-06', '1 day')
UNION ALL
SELECT day, experiment, arm, impressions, clicked, round(ctr::numeric, 4) FROM reco.recommendation_kpis_for('2026-02-07', '2026-02-08', '1 day')
ORDER BY 1, 2, 3;
SQL
echo "written to $OUT"
