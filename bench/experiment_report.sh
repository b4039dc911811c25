#!/usr/bin/env bash
# reco.experiment_report over many logged impressions (issue #18: 10 million in under 2 s).
#   bench/experiment_report.sh [MILLIONS=10] [RUNS=3]      (release build, project cluster)
# Builds (once; kept for reruns) a database with MILLIONS million lists logged for a two-arm
# experiment on `checkout` (one list per call, 200 000 customers, arms by the real assignment),
# and the events that carry their rec_ids: clicks on 10% of control's lists and 12% of b's, cart
# adds on 4%, purchases on 1%. Then times the report (rows, and the HTML page) RUNS times each
# and prints every time and the best; then, once each in a transaction rolled back, the report
# with none of those events folded into the tallies yet (it reads them itself) and the fold of
# all of them (reco.fold_attribution); then the same report reading every list and event, as on
# Citus, beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
MILLIONS=${1:-10}
RUNS=${2:-3}
DB=reco_bench_report_${MILLIONS}m
OUT=target/bench-experiment-report-${MILLIONS}m.txt
source bench/lib.sh
mkdir -p target
echo "bench/experiment_report.sh $MILLIONS $RUNS   ($(date -u +%FT%TZ), $(nproc) cores)" | tee $OUT
# (built when the database does not hold every list yet, e.g. after an interrupted build)
# (and when its extension predates the fold: the report's SQL is the one it was created with)
if ! "${PSQL[@]}" -d $DB -At -c "SELECT (SELECT count(*) FROM reco.recommendations) >= $MILLIONS * 1000000
                                   AND to_regprocedure('reco.fold_attribution(bigint, interval)') IS NOT NULL" 2>/dev/null | grep -q t; then
  t0=$(date +%s)
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
  "${PSQL[@]}" -d $DB -v n="$MILLIONS" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION pg_reco CASCADE;
INSERT INTO reco.items (item_id, title, category, price, currency) SELECT 'i' || i, 'Item ' || i, 'c' || (i % 20), 10, 'EUR' FROM generate_series(1, 1000) i;
INSERT INTO reco.experiments (name, surface, arms, salt, starts_at, planned_units)
VALUES ('bench', 'checkout', '[{"name": "control", "weight": 1}, {"name": "b", "weight": 1}]', 'bench', '2026-01-01', 100000);
-- 200 000 customers and their arms, computed once
CREATE TEMP TABLE units AS SELECT 'c' || u AS unit, reco.experiment_arm('bench', 'c' || u) AS arm FROM generate_series(0, 199999) u;
CREATE INDEX ON units (unit);
ALTER TABLE reco.recommendations SET (autovacuum_enabled = false);
INSERT INTO reco.recommendations (customer_id, shard_key, placement, items, scores, context, shown_at)
SELECT u.unit, u.unit, 'checkout', ARRAY['i' || (g % 1000), 'i' || ((g + 1) % 1000)], '{1, 0.5}',
       jsonb_build_object('experiment', 'bench', 'arm', u.arm), timestamptz '2026-02-01' + g * interval '200 ms'
FROM generate_series(0, :n * 1000000 - 1) g JOIN units u ON u.unit = 'c' || (g % 200000);
ALTER TABLE reco.recommendations RESET (autovacuum_enabled);
-- successes carry the list's rec_id, as a click from the shop would
INSERT INTO reco.events (customer_id, shard_key, item_id, kind, occurred_at, context)
SELECT r.customer_id, r.customer_id, r.items[1], k.kind, r.shown_at + interval '1 minute', jsonb_build_object('rec_id', r.rec_id)
FROM reco.recommendations r CROSS JOIN (VALUES ('click', 10, 12), ('cart_add', 4, 4), ('purchase', 1, 1)) k(kind, control, b)
WHERE r.rec_id % 100 < CASE r.context ->> 'arm' WHEN 'b' THEN k.b ELSE k.control END;
VACUUM ANALYZE reco.recommendations;
VACUUM ANALYZE reco.events;
SELECT * FROM reco.fold_attribution(max_events => 1000000000);
VACUUM ANALYZE reco.experiment_successes;
VACUUM ANALYZE reco.experiment_units;
SQL
  echo "built in $(( $(date +%s) - t0 )) s" | tee -a $OUT
fi
"${PSQL[@]}" -d $DB -At -c "SELECT format('%s lists logged, %s events carrying a rec_id', (SELECT count(*) FROM reco.recommendations), (SELECT count(*) FROM reco.events WHERE context ? 'rec_id'))" | tee -a $OUT
"${PSQL[@]}" -d $DB -At -c "SELECT format('recommendations %s, events %s', pg_size_pretty(pg_total_relation_size('reco.recommendations')), pg_size_pretty(pg_total_relation_size('reco.events')))" | tee -a $OUT
# (timeit, bench/lib.sh: each run in its own session; the table's pages as the last run left them)
timeit "experiment_report (rows)" "SELECT count(*) FROM reco.experiment_report('bench');"
timeit "experiment_report (html)" "SELECT length(reco.experiment_report('bench', format => 'html'));"
# as if the fold had never run: the report reads every event itself; then the fold of them all
unfold="BEGIN;
TRUNCATE reco.experiment_successes;
DELETE FROM reco.experiment_tallies WHERE metric <> 'trials';
UPDATE reco.experiment_units SET click = 0, cart_add = 0, purchase = 0 WHERE click + cart_add + purchase > 0;
UPDATE reco.experiment_watermark SET event_id = 0;"
for what in "SELECT count(*) FROM reco.experiment_report('bench');" "SELECT * FROM reco.fold_attribution(max_events => 1000000000);"; do
  t=$("${PSQL[@]}" -d $DB <<SQL | grep -o 'Time: [0-9.]*' | tail -2 | head -1 | awk '{print $2}'
$unfold
\timing on
$what
ROLLBACK;
SQL
)
  echo "nothing folded yet: $what $t ms" | tee -a $OUT
done
# the same report reading every list and event, as on Citus (the tally trigger dropped inside a
# transaction that is rolled back), once
t=$("${PSQL[@]}" -d $DB <<'SQL' | grep -o 'Time: [0-9.]*' | sed -n 3p | awk '{print $2}'
\timing on
BEGIN;
DROP TRIGGER recommendations_experiment_tally ON reco.recommendations;
SELECT count(*) FROM reco.experiment_report('bench');
ROLLBACK;
SQL
)
echo "experiment_report reading the lists and events instead (as on Citus): $t ms" | tee -a $OUT
"${PSQL[@]}" -d $DB -c "SELECT metric, arm, units, trials, successes, round(rate::numeric, 4) AS rate, round(p_value::numeric, 4) AS p, round(p_sequential::numeric, 4) AS p_any_time, verdict FROM reco.experiment_report('bench')" | tee -a $OUT
