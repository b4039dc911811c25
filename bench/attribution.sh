#!/usr/bin/env bash
# Attribution against ingest (issue #18): reco.ingest_events throughput with the experiment
# tallies kept (the events trigger on: each click, cart add or purchase carrying a rec_id looks
# up its list and counts a first success) and with them off (the trigger disabled), alternated
# in one sitting.
#   bench/attribution.sh [BATCHES=40] [ROUNDS=3] [SHARE=50]      (release build, project cluster)
# Data: 200 000 lists logged for a two-arm experiment (20 000 customers); BATCHES batches of
# 1 000 web events each: SHARE percent clicks and cart adds carrying the rec_id of one of those
# lists (a tenth of them a repeat), the rest views without one. Each round ingests every batch, one
# per transaction, with the trigger on and then off (the order alternating between rounds);
# the events, successes and tallies they made are removed between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
BATCHES=${1:-40}
ROUNDS=${2:-3}
SHARE=${3:-50}
DB=reco_bench_attribution
OUT=target/bench-attribution.txt
source bench/lib.sh
mkdir -p target
echo "bench/attribution.sh $BATCHES $ROUNDS $SHARE   ($(date -u +%FT%TZ), $(nproc) cores)" | tee $OUT
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
"${PSQL[@]}" -d $DB -v batches="$BATCHES" -v share="$SHARE" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION pg_reco CASCADE;
INSERT INTO reco.items (item_id, title, category, price, currency) SELECT 'i' || i, 'Item ' || i, 'c' || (i % 20), 10, 'EUR' FROM generate_series(1, 1000) i;
INSERT INTO reco.customers (customer_id) SELECT 'c' || u FROM generate_series(0, 19999) u;
INSERT INTO reco.experiments (name, surface, arms, salt, starts_at)
VALUES ('bench', 'checkout', '[{"name": "control", "weight": 1}, {"name": "b", "weight": 1}]', 'bench', '2026-01-01');
INSERT INTO reco.recommendations (customer_id, shard_key, placement, items, scores, context, shown_at)
SELECT 'c' || (g % 20000), 'c' || (g % 20000), 'checkout', ARRAY['i' || (g % 1000 + 1)], '{1}',
       jsonb_build_object('experiment', 'bench', 'arm', reco.experiment_arm('bench', 'c' || (g % 20000))), '2026-02-01'
FROM generate_series(0, 199999) g;
CREATE TABLE bench_batches (b int PRIMARY KEY, payload jsonb NOT NULL);
INSERT INTO bench_batches
SELECT b, jsonb_agg(CASE WHEN e % 100 >= :share
                         THEN jsonb_build_object('event', 'view_item', 'user_id', 'c' || (x % 20000), 'sku', 'i' || (x % 1000 + 1),
                                                 'ts', '2026-02-02T10:00:00Z')
                         ELSE jsonb_build_object('event', CASE WHEN e % 4 = 1 THEN 'select_item' ELSE 'add_to_cart' END,
                                                 'user_id', 'c' || (r % 20000), 'sku', 'i' || (r % 1000 + 1), 'ts', '2026-02-02T10:00:00Z',
                                                 'rec_id', (SELECT min(rec_id) FROM reco.recommendations) + r) END)
FROM generate_series(1, :batches) b, generate_series(1, 1000) e,
     LATERAL (SELECT (b * 7919 + e * 104729) % 200000 AS x,
                     -- a tenth repeat an earlier event's list
                     CASE WHEN e % 10 = 9 THEN (b * 7919 + (e - 2) * 104729) % 200000 ELSE (b * 7919 + e * 104729) % 200000 END AS r) k
GROUP BY b;
VACUUM ANALYZE;
-- (RECO_BENCH_EXPLAIN=1: slow statements of the runs, with their plans, in the server log)
CREATE PROCEDURE bench_ingest() LANGUAGE plpgsql AS $$
DECLARE bn int;
BEGIN
    FOR bn IN SELECT x.b FROM bench_batches x ORDER BY x.b LOOP
        PERFORM * FROM reco.ingest_events('web', (SELECT x.payload FROM bench_batches x WHERE x.b = bn));
        COMMIT;
    END LOOP;
END $$;
CREATE PROCEDURE bench_reset() LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM reco.events;
    DELETE FROM reco.experiment_successes;
    DELETE FROM reco.experiment_tallies WHERE metric <> 'trials';
END $$;
SQL
if [[ -n ${RECO_BENCH_EXPLAIN:-} ]]; then
  "${PSQL[@]}" -d $DB -c "ALTER DATABASE $DB SET session_preload_libraries = 'auto_explain'" \
    -c "ALTER DATABASE $DB SET auto_explain.log_min_duration = 50" -c "ALTER DATABASE $DB SET auto_explain.log_nested_statements = on" \
    -c "ALTER DATABASE $DB SET auto_explain.log_analyze = on" >/dev/null
fi
echo "$(( BATCHES * 1000 )) events per run ($(( BATCHES * 10 * SHARE )) carrying a rec_id), 200000 logged lists" | tee -a $OUT
ingest() { # on|off -> seconds
  "${PSQL[@]}" -d $DB -c "CALL bench_reset()" -c "VACUUM reco.events" -c "CHECKPOINT" >/dev/null
  if [[ $1 == off ]]; then
    "${PSQL[@]}" -d $DB -c "ALTER TABLE reco.events DISABLE TRIGGER events_experiment_tally" >/dev/null
  fi
  local t0 t
  t0=$(date +%s.%N)
  "${PSQL[@]}" -d $DB -c "CALL bench_ingest()" >/dev/null || { echo "bench_ingest failed" >&2; exit 1; }
  t=$(echo "$(date +%s.%N) - $t0" | bc)
  "${PSQL[@]}" -d $DB -c "ALTER TABLE reco.events ENABLE TRIGGER events_experiment_tally" >/dev/null
  echo "$t"
}
on=() off=()
for round in $(seq "$ROUNDS"); do
  if ((round % 2)); then order="on off"; else order="off on"; fi
  for mode in $order; do
    t=$(ingest $mode) || exit 1
    if [[ $mode == on ]]; then on+=("$t"); else off+=("$t"); fi
    printf 'round %d, tallies %-3s: %6.2f s, %6.0f events/s\n' "$round" "$mode" "$t" "$(echo "$BATCHES * 1000 / $t" | bc -l)" | tee -a $OUT
  done
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
mon=$(med "${on[@]}") moff=$(med "${off[@]}")
printf 'median: tallies on %.0f events/s, off %.0f events/s: on is %+.1f%% of off\n' \
  "$(echo "$BATCHES * 1000 / $mon" | bc -l)" "$(echo "$BATCHES * 1000 / $moff" | bc -l)" "$(echo "100 * ($moff / $mon - 1)" | bc -l)" | tee -a $OUT
