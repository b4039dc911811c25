#!/usr/bin/env bash
# Demand-aware ranking measured as experiment arms (issue #18: the placement weight's default).
#   bench/demand.sh [SCALE=small] [VISITORS=1000] [WEIGHTS="0 0.25 0.5 1"]
# On the demo data at SCALE (hybrid trained and deployed, kept for reruns), for each demand
# WEIGHT in turn: the stock as loaded, a placement `home_w` with that weight, a two-arm
# experiment on `home` (control, and the arm on `home_w`; its own salt), and the simulation of
# `make demo` section 10: VISITORS customers visit once, in two rounds of half each (the second
# sees the stock the first bought); a shown item of a category the customer bought before is
# clicked 1 time in 8 (other items 1 in 40), a click bought 1 time in 3 while stock lasts (each
# purchase takes a unit). One list per customer: the report's tests treat lists as independent,
# which several lists of one customer are not (their clicks go together). The responses are blind to the arm. Prints
# the report's click and purchase rows per weight (weight 0 is an A/A check: both arms serve the
# same lists), and the backtest of the forecast on the same data. The simulated events are
# deleted before the next weight. Any build; the figures do not depend on speed.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-small}
VISITORS=${2:-1000}
WEIGHTS=${3:-0 0.25 0.5 1}
DB=reco_bench_demand_$SCALE
OUT=target/bench-demand-$SCALE.txt
source bench/lib.sh
mkdir -p target
echo "bench/demand.sh $SCALE $VISITORS \"$WEIGHTS\"   ($(date -u +%FT%TZ))" | tee $OUT
demo_db $DB $SCALE | tee -a $OUT
"${PSQL[@]}" -d $DB <<'SQL' | tee -a $OUT
\echo 'the forecast against naive ones over the last 8 weeks (WAPE, lower is better):'
SELECT round((sum(wape * units) / sum(units))::numeric, 3) AS daily, round((sum(wape_naive * units) / sum(units))::numeric, 3) AS same_day_last_week,
       round((sum(wape_week * units) / sum(units))::numeric, 3) AS weekly, round((sum(wape_week_naive * units) / sum(units))::numeric, 3) AS last_weeks_units
FROM reco.demand_backtest(weeks => 8);
SQL
"${PSQL[@]}" -d $DB -c "SET client_min_messages = warning" -c "CREATE TABLE IF NOT EXISTS bench_stock AS SELECT item_id, available, backordered FROM reco.stock" >/dev/null
for w in $WEIGHTS; do
  "${PSQL[@]}" -d $DB -v w="$w" -v visitors="$VISITORS" <<'SQL' | tee -a $OUT
SET client_min_messages = warning;
UPDATE reco.stock s SET available = b.available, backordered = b.backordered FROM bench_stock b WHERE b.item_id = s.item_id;
DELETE FROM reco.events WHERE context ? 'rec_id';
TRUNCATE reco.recommendations;
DELETE FROM reco.experiments;
DELETE FROM reco.placement_weights WHERE placement = 'home_w';
INSERT INTO reco.placement_weights (placement, demand, description) VALUES ('home_w', :w, 'bench/demand.sh');
INSERT INTO reco.experiments (name, surface, arms, salt, starts_at, planned_units)
VALUES ('demand_' || replace(:'w', '.', '_'), 'home',
        '[{"name": "control", "weight": 50}, {"name": "demand", "weight": 50, "placement": "home_w"}]',
        'bench-' || :'w', now() - interval '1 hour', 2 * :visitors / 5);
CREATE TEMP TABLE visitors AS SELECT customer_id, row_number() OVER (ORDER BY customer_id) AS n FROM reco.customers WHERE customer_id LIKE 'demo-c%' ORDER BY customer_id LIMIT :visitors;
CREATE TEMP TABLE bought_categories AS
SELECT DISTINCT e.customer_id, i.category FROM reco.events e JOIN reco.items i USING (item_id) JOIN visitors v USING (customer_id)
WHERE e.kind = 'purchase';
\i bench/demand_visit.sql
SELECT name AS experiment FROM reco.experiments \gset
SELECT * FROM pg_temp.visit(1, :'experiment') UNION ALL SELECT * FROM pg_temp.visit(2, :'experiment') \g /dev/null
\echo demand weight :w
SELECT metric, arm, units, trials, successes, round(rate::numeric, 4) AS rate, round(diff::numeric, 4) AS diff,
       round(relative::numeric, 3) AS relative, round(p_value::numeric, 3) AS p, verdict
FROM reco.experiment_report(:'experiment') WHERE metric IN ('click', 'purchase') ORDER BY metric, arm;
SQL
done
echo "written to $OUT"
