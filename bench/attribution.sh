#!/usr/bin/env bash
# Attribution against ingest (issue #18): reco.ingest_events throughput while the experiment
# successes are folded into the tallies (reco.fold_attribution every FOLD_EVERY seconds in a
# second session, as pg_cron would, only more often) and with no fold running, alternated in one
# sitting; then how fast one fold catches up with a whole run's backlog.
#   bench/attribution.sh [BATCHES=40] [ROUNDS=3] [SHARE=50] [FOLD_EVERY=1]   (release build, project cluster)
# Data: 200 000 lists logged for a two-arm experiment (20 000 customers); BATCHES batches of
# 1 000 web events each: SHARE percent clicks and cart adds carrying the rec_id of one of those
# lists (a tenth of them a repeat), the rest views without one. Each round ingests every batch, one
# per transaction, with the folds running and without them (and without the writers' advisory
# lock that the folds wait on), the order alternating between rounds; a run without folds is then
# folded in one call, timed. The events, successes and tallies a run
# made are removed between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
BATCHES=${1:-40}
ROUNDS=${2:-3}
SHARE=${3:-50}
FOLD_EVERY=${4:-1}
DB=reco_bench_attribution
OUT=target/bench-attribution.txt
source bench/lib.sh
mkdir -p target
echo "bench/attribution.sh $BATCHES $ROUNDS $SHARE $FOLD_EVERY   ($(date -u +%FT%TZ), $(nproc) cores)" | tee $OUT
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
    -- (TRUNCATE: the watermark starts again at 0, as after a real TRUNCATE of the events)
    TRUNCATE reco.events;
    DELETE FROM reco.experiment_successes;
    DELETE FROM reco.experiment_tallies WHERE metric <> 'trials';
    UPDATE reco.experiment_units SET click = 0, cart_add = 0, purchase = 0 WHERE click + cart_add + purchase > 0;
END $$;
SQL
if [[ -n ${RECO_BENCH_EXPLAIN:-} ]]; then
  "${PSQL[@]}" -d $DB -c "ALTER DATABASE $DB SET session_preload_libraries = 'auto_explain'" \
    -c "ALTER DATABASE $DB SET auto_explain.log_min_duration = 50" -c "ALTER DATABASE $DB SET auto_explain.log_nested_statements = on" \
    -c "ALTER DATABASE $DB SET auto_explain.log_analyze = on" >/dev/null
fi
echo "$(( BATCHES * 1000 )) events per run ($(( BATCHES * 10 * SHARE )) carrying a rec_id), 200000 logged lists" | tee -a $OUT
# one run: ingest every batch, with a folder session running (on) or not (off); prints the
# ingest seconds, and for on the folds made and the events they read, for off the seconds one
# fold of the whole run then takes
run() {
  "${PSQL[@]}" -d $DB -c "CALL bench_reset()" -c "VACUUM ANALYZE reco.events" -c "CHECKPOINT" >/dev/null
  local t0 t stop folder folds=0
  stop=$(mktemp -u)
  if [[ $1 == on ]]; then
    folder=$(mktemp)
    ( while [[ ! -e $stop ]]; do
        "${PSQL[@]}" -d $DB -At -c "SELECT events FROM reco.fold_attribution()" >> "$folder"
        sleep "$FOLD_EVERY"
      done ) &
  fi
  # (off: not even the writers' advisory lock, reco._events_writing)
  [[ $1 == off ]] && "${PSQL[@]}" -d $DB -c "ALTER TABLE reco.events DISABLE TRIGGER events_writers" >/dev/null
  t0=$(date +%s.%N)
  "${PSQL[@]}" -d $DB -c "CALL bench_ingest()" >/dev/null || { echo "bench_ingest failed" >&2; exit 1; }
  t=$(echo "$(date +%s.%N) - $t0" | bc)
  "${PSQL[@]}" -d $DB -c "ALTER TABLE reco.events ENABLE TRIGGER events_writers" >/dev/null
  if [[ $1 == on ]]; then
    touch "$stop"; wait
    folds=$(wc -l < "$folder")
    echo "$t $folds $(paste -sd+ "$folder" | bc)"
    rm -f "$folder" "$stop"
  else
    t0=$(date +%s.%N)
    "${PSQL[@]}" -d $DB -At -c "SELECT events FROM reco.fold_attribution()" >/dev/null
    echo "$t $(echo "$(date +%s.%N) - $t0" | bc)"
  fi
  # the tallies the run made must be every success once (checked, not assumed)
  "${PSQL[@]}" -d $DB -At -c "SELECT * FROM reco.fold_attribution()" >/dev/null
  local want got
  want=$("${PSQL[@]}" -d $DB -At -c "SELECT count(DISTINCT (context ->> 'rec_id', kind)) FROM reco.events WHERE context ? 'rec_id'")
  got=$("${PSQL[@]}" -d $DB -At -c "SELECT coalesce(sum(n), 0) FROM reco.experiment_tallies WHERE metric <> 'trials'")
  [[ $want == "$got" ]] || { echo "tallies hold $got successes, the events $want" >&2; exit 1; }
}
rate() { echo "$BATCHES * 1000 / $1" | bc -l; }
on=() off=() catch=()
for round in $(seq "$ROUNDS"); do
  if ((round % 2)); then order="on off"; else order="off on"; fi
  for mode in $order; do
    res=$(run $mode) || exit 1
    read -r t a b <<< "$res"
    if [[ $mode == on ]]; then
      on+=("$t")
      printf 'round %d, folding every %s s: %6.2f s, %6.0f events/s (%d folds read %d events)\n' "$round" "$FOLD_EVERY" "$t" "$(rate "$t")" "$a" "$b" | tee -a $OUT
    else
      off+=("$t") catch+=("$a")
      printf 'round %d, no fold:            %6.2f s, %6.0f events/s; then one fold of the run: %.2f s, %.0f events/s\n' \
        "$round" "$t" "$(rate "$t")" "$a" "$(rate "$a")" | tee -a $OUT
    fi
  done
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
mon=$(med "${on[@]}") moff=$(med "${off[@]}") mcatch=$(med "${catch[@]}")
# per round, the throughput while folding against without (this machine's noise between runs is
# larger than the effect, so the paired median is the figure)
ratios=()
for i in "${!on[@]}"; do ratios+=("$(echo "100 * (${off[$i]} / ${on[$i]} - 1)" | bc -l)"); done
printf 'per round, throughput while folding vs without:%s; median %+.1f%%\n' "$(printf ' %+.1f%%' "${ratios[@]}")" "$(med "${ratios[@]}")" | tee -a $OUT
printf 'median: ingest while folding %.0f events/s, without %.0f events/s: %+.1f%%; a fold catches up at %.0f events/s (%.1fx ingest)\n' \
  "$(rate "$mon")" "$(rate "$moff")" "$(echo "100 * ($moff / $mon - 1)" | bc -l)" "$(rate "$mcatch")" "$(echo "$moff / $mcatch" | bc -l)" | tee -a $OUT
