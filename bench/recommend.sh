#!/usr/bin/env bash
# reco.recommend against the query an engineer would write by hand with pgvector, with pgbench.
#   bench/recommend.sh [SCALE=medium] [SECONDS=15]      (release build, project cluster)
# Loads the demo data at SCALE (once; the database is kept for reruns), trains and deploys a
# hybrid, and draws 2 000 requests: a customer with a learned vector and a cart of 3 buyable
# items. Each call is one statement that reads its request from that table (a primary-key
# probe) and answers it, the same way on both sides:
#   pg_reco:      SELECT * FROM reco.recommend(customer, 10, '{"cart": [3 items]}')
#   hand-written: HNSW ORDER BY v <#> customer_vector LIMIT 10, joined to stock, cart excluded,
#                 NOT EXISTS for purchased items
# Prints p50/p95/p99 and throughput at 1 and 8 clients, how often each side returned fewer than
# 10 buyable items, and complements / popular / similar_items latencies.
# Then the cost of an experiment (issue #18): the same recommend calls with and without a
# running two-arm experiment on their placement, alternated in one sitting (none, with, six
# times by default: RECO_BENCH_ROUNDS, at 1 client; the median of the rounds' ratios): arm b serves a copy of the placement's weights, so both arms do the same
# work and the difference is the experiment's own (the arm's lookup and assignment). Then an
# experiment whose arm b names a second model (a popularity model): the backends' cache loads
# before and after show whether switching arms reloads anything.
#   RECO_BENCH_PART=experiment bench/recommend.sh ...   only the experiment comparison
#   RECO_BENCH_PART=shared bench/recommend.sh ...       only the shared model cache against a
#                                                       copy per backend, 8 clients, alternated
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-medium}
SECS=${2:-15}
DB=reco_bench_serve_$SCALE
PGBENCH=/usr/lib/postgresql/15/bin/pgbench
PORT=${RECO_PGPORT:-28815}
OUT=target/bench-recommend-$SCALE.txt
W=$(mktemp -d)
chmod 755 "$W"
source bench/lib.sh
echo "bench/recommend.sh $SCALE $SECS   ($(date -u +%FT%TZ), $(nproc) cores)" | tee $OUT
demo_db $DB "$SCALE" | tee -a $OUT
M=$("${PSQL[@]}" -d $DB -At -c "SELECT model_id FROM reco.models WHERE status = 'deployed'")
F=$("${PSQL[@]}" -d $DB -At -c "SELECT params->>'factors' FROM reco.models WHERE model_id = $M")
request_tables $DB "$M"
items=$("${PSQL[@]}" -d $DB -At -c "SELECT count(*) FROM reco.items")
buyable=$("${PSQL[@]}" -d $DB -At -c "SELECT count(*) FROM bench_buyable")
echo "model $M ($F factors), $items items ($buyable buyable), 2000 requests" | tee -a $OUT

# the hand-written query for the request row b (customer b.customer_id, cart b.cart)
HAND="SELECT iv.item_id, iv.v::vector($F) <#> cv.v::vector($F) AS score
  FROM reco.item_vectors iv JOIN reco.stock s ON s.item_id = iv.item_id,
       (SELECT v FROM reco.customer_vectors WHERE model_id = $M AND space = 'als' AND customer_id = b.customer_id) cv
 WHERE iv.model_id = $M AND iv.space = 'als' AND s.available > 0 AND NOT s.backordered
   AND iv.item_id <> ALL (b.cart)
   AND NOT EXISTS (SELECT 1 FROM reco.events e WHERE e.customer_id = b.customer_id AND e.item_id = iv.item_id AND e.kind = 'purchase')
 ORDER BY iv.v::vector($F) <#> (SELECT v FROM reco.customer_vectors WHERE model_id = $M AND space = 'als' AND customer_id = b.customer_id)::vector($F)
 LIMIT 10"
# One statement per call: the request is drawn from bench_req in the statement that answers
# it (a primary-key probe), so a transaction is one round trip, as an OMS call is.
cat > $W/reco.sql <<SQL
\set n random(1, 2000)
SELECT r.* FROM bench_req b, reco.recommend(b.customer_id, 10, jsonb_build_object('cart', b.cart)) r WHERE b.n = :n;
SQL
cat > $W/hand.sql <<SQL
\set n random(1, 2000)
SELECT h.* FROM bench_req b CROSS JOIN LATERAL ($HAND) h WHERE b.n = :n;
SQL
cat > $W/complements.sql <<SQL
\set n random(1, 2000)
SELECT r.* FROM bench_req b, reco.complements(b.cart, 10) r WHERE b.n = :n;
SQL
cat > $W/popular.sql <<SQL
SELECT * FROM reco.popular(10);
SQL
cat > $W/similar.sql <<SQL
\set n random(0, $buyable - 1)
SELECT r.* FROM bench_buyable b, reco.similar_items(b.item_id, 10) r WHERE b.k = :n;
SQL
# the plan the hand-written query gets (it should use the model's HNSW index)
plan=$("${PSQL[@]}" -d $DB -At -c "EXPLAIN SELECT h.* FROM bench_req b CROSS JOIN LATERAL ($HAND) h WHERE b.n = 1" | grep -o 'Index Scan using item_vectors_[a-z0-9_]*' | head -1 || true)
echo "hand-written plan: ${plan:-no index scan}" | tee -a $OUT

pgb() { PGTZ=UTC "$PGBENCH" -n -h 127.0.0.1 -p "$PORT" -U postgres "$@" $DB; }
pcts() { sort -n "$1" | awk '{a[NR]=$1} END {printf "p50 %.2f ms, p95 %.2f ms, p99 %.2f ms", a[int(0.5*NR)]/1000, a[int(0.95*NR)]/1000, a[int(0.99*NR)]/1000}'; }
# Steady state, as behind a connection pool: the window starts once every client has made its
# first call (which loads the model into that backend's cache); latencies and throughput count
# the calls that start inside it. The cache load is reported on its own (cache line at the end).
run() { # name script clients
  rm -f $W/lat.* $W/all.log $W/warm.lat
  (cd $W && pgb -c "$3" -j $(( $3 < 2 ? 1 : 2 )) -T "$SECS" -f "$2" --log --log-prefix=lat >/dev/null)
  cat $W/lat.* > $W/all.log
  # log columns: client transaction (from 1) latency_us script end_epoch_s end_us
  local tps
  tps=$(awk -v out="$W/warm.lat" '
    NR == FNR { if ($2 == 1) { e = $5 + $6 / 1e6; if (e > lo) lo = e } next }
    { e = $5 + $6 / 1e6; if ($2 > 1 && e - $3 / 1e6 >= lo) { print $3 > out; n++; if (e > hi) hi = e } }
    END { printf "%.0f", (hi > lo ? n / (hi - lo) : 0) }' $W/all.log $W/all.log)
  echo "$1, $3 client(s): $(pcts $W/warm.lat), $tps calls/s" | tee -a $OUT
}
experiment() { # arms (jsonb) or empty for none
  "${PSQL[@]}" -d $DB -c "DELETE FROM reco.experiments WHERE name = 'bench'" >/dev/null
  if [[ -n $1 ]]; then
    "${PSQL[@]}" -d $DB -c "INSERT INTO reco.experiments (name, surface, arms, salt, starts_at) VALUES ('bench', 'home', '$1', 'bench', now() - interval '1 day')" >/dev/null
  fi
}
if [[ ${RECO_BENCH_PART:-all} == shared ]]; then
  # one copy per server against a copy per backend (issue #19), 8 clients, alternated
  echo "recommend at 8 clients, one shared model copy (reco.shared_cache = on) against a copy per backend (off), alternated:" | tee -a $OUT
  for round in $(seq "${RECO_BENCH_ROUNDS:-4}"); do
    PGOPTIONS="-c reco.shared_cache=off" run "  round $round, copy per backend" $W/reco.sql 8
    PGOPTIONS="-c reco.shared_cache=on" run "  round $round, shared copy     " $W/reco.sql 8
  done
  awk '/copy per backend, 8 client/ { split($0, a, "p50 "); split($0, p, "p99 "); split($0, t, "ms, "); n50 = a[2] + 0; n99 = p[2] + 0; ntp = t[4] + 0 }
       /shared copy     , 8 client/ { split($0, a, "p50 "); split($0, p, "p99 "); split($0, t, "ms, "); r50[++k] = (a[2] + 0) / n50; r99[k] = (p[2] + 0) / n99; rtp[k] = (t[4] + 0) / ntp }
       function median(x, m,   i, j, v) { for (i = 2; i <= m; i++) { v = x[i]; for (j = i - 1; j >= 1 && x[j] > v; j--) x[j + 1] = x[j]; x[j + 1] = v }
                                          return m % 2 ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2 }
       END { for (i = 1; i <= k; i++) { l50 = l50 sprintf(" %+.1f%%", 100 * (r50[i] - 1)); ltp = ltp sprintf(" %+.1f%%", 100 * (rtp[i] - 1)) }
             printf "shared vs per-backend per round: p50%s; throughput%s\n", l50, ltp
             printf "shared vs per-backend, median of %d rounds: p50 %+.1f%%, p99 %+.1f%%, throughput %+.1f%%\n", k, 100 * (median(r50, k) - 1), 100 * (median(r99, k) - 1), 100 * (median(rtp, k) - 1) }' $OUT | tee -a $OUT
  rm -rf "$W"
  exit 0
fi
if [[ ${RECO_BENCH_PART:-all} == experiment ]]; then
  "${PSQL[@]}" -d $DB -c "INSERT INTO reco.placement_weights (placement, popularity, cooccurrence, content, als, session_boost, complements_first, alternatives, description)
      SELECT 'bench_home', popularity, cooccurrence, content, als, session_boost, complements_first, alternatives, 'bench: a copy of home'
        FROM reco.placement_weights WHERE placement = 'home' ON CONFLICT (placement) DO NOTHING" >/dev/null
  echo "recommend with a two-arm experiment on its placement (arm b: a copy of the placement's weights), alternated:" | tee -a $OUT
  rounds=${RECO_BENCH_ROUNDS:-6}
  for round in $(seq "$rounds"); do
    experiment ""
    run "  round $round, no experiment  " $W/reco.sql 1
    experiment '[{"name": "control", "weight": 1}, {"name": "b", "weight": 1, "placement": "bench_home"}]'
    run "  round $round, with experiment" $W/reco.sql 1
  done
  # per round, with ÷ without; this machine's noise between rounds is of the size measured, so
  # the median over the rounds is the figure
  awk '/no experiment  , 1 client/ { split($0, a, "p50 "); split($0, t, "ms, "); n50 = a[2] + 0; ntp = t[4] + 0 }
       /with experiment, 1 client/ { split($0, a, "p50 "); split($0, t, "ms, "); r50[++k] = (a[2] + 0) / n50; rtp[k] = (t[4] + 0) / ntp }
       function median(x, m,   i, j, v) { for (i = 2; i <= m; i++) { v = x[i]; for (j = i - 1; j >= 1 && x[j] > v; j--) x[j + 1] = x[j]; x[j + 1] = v }
                                          return m % 2 ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2 }
       END { for (i = 1; i <= k; i++) { l50 = l50 sprintf(" %+.1f%%", 100 * (r50[i] - 1)); ltp = ltp sprintf(" %+.1f%%", 100 * (rtp[i] - 1)) }
             printf "experiment overhead per round: p50%s; throughput%s\n", l50, ltp
             printf "experiment overhead, median of %d rounds: p50 %+.1f%%, throughput %+.1f%%\n", k, 100 * (median(r50, k) - 1), 100 * (median(rtp, k) - 1) }' $OUT | tee -a $OUT
  # an arm naming a second model: the cache holds both, so alternating arms loads nothing more
  P=$("${PSQL[@]}" -d $DB -At -c "SET client_min_messages = warning; SELECT model_id FROM reco.models WHERE kind = 'popularity' AND status <> 'deployed' ORDER BY model_id DESC LIMIT 1")
  [[ -n $P ]] || P=$("${PSQL[@]}" -d $DB -At -c "SET client_min_messages = warning; SELECT reco.train('popularity')" | tail -1)
  experiment "[{\"name\": \"control\", \"weight\": 1}, {\"name\": \"b\", \"weight\": 1, \"model_id\": $P}]"
  loads=$("${PSQL[@]}" -d $DB -At <<SQL
SELECT count(*) FROM bench_req b, reco.recommend(b.customer_id, 10, jsonb_build_object('cart', b.cart)) r WHERE b.n <= 4;
SELECT reco.cache_info() ->> 'loads';
SELECT count(*) FROM bench_req b, reco.recommend(b.customer_id, 10, jsonb_build_object('cart', b.cart)) r WHERE b.n <= 400;
SELECT (reco.cache_info() ->> 'loads') || ' ' || jsonb_array_length(reco.cache_info() -> 'models');
SQL
)
  read -r _ l1 _ l2 held <<<"$(echo $loads)"
  echo "arm b naming model $P: 400 calls alternating arms after the first 4: $((l2 - l1)) more loads, $held models held" | tee -a $OUT
  run "  arms naming two models        " $W/reco.sql 1
  experiment ""
  rm -rf "$W"
  exit 0
fi
for c in 1 8; do
  run "pg_reco recommend " $W/reco.sql $c
  run "hand-written pgvector" $W/hand.sql $c
done
run "complements (3 items)" $W/complements.sql 1
run "popular" $W/popular.sql 1
run "similar_items" $W/similar.sql 1
# completeness over all 2000 requests: lists shorter than 10, and rows that are not buyable
"${PSQL[@]}" -d $DB -At <<SQL | tee -a $OUT
WITH r AS (
  SELECT n, (SELECT count(*) FROM reco.recommend(b.customer_id, 10, jsonb_build_object('cart', b.cart))) AS reco,
            (SELECT count(*) FROM ($HAND) h) AS hand
  FROM bench_req b)
SELECT format('short lists (< 10 items) over 2000 requests: pg_reco %s, hand-written %s (%s%%)',
              count(*) FILTER (WHERE reco < 10), count(*) FILTER (WHERE hand < 10),
              round(100.0 * count(*) FILTER (WHERE hand < 10) / count(*), 1)) FROM r;
SQL
echo "cache: $("${PSQL[@]}" -d $DB -At -c "SELECT reco.warm_cache()")" | tee -a $OUT
rm -rf "$W"
