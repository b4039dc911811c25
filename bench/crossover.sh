#!/usr/bin/env bash
# Where pgvector HNSW candidates start to beat the exact pass (sets reco.hnsw_min_items' default).
#   bench/crossover.sh [SCALES="medium large"] [CALLS=400] [ROUNDS=3]   (release build, project cluster)
# Needs the databases bench/recommend.sh leaves (reco_bench_serve_<scale>, with bench_req).
# One backend per measurement, cache warmed first; the two modes alternate ROUNDS times so
# that machine noise hits both. Prints ms per call (median over rounds) and the top-10 overlap
# of the HNSW lists with the exact ones.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALES=${1:-medium large}
CALLS=${2:-400}
ROUNDS=${3:-3}
PSQL=(scripts/cluster psql -q -At -v ON_ERROR_STOP=1)
OUT=target/bench-crossover.txt
echo "bench/crossover.sh \"$SCALES\" $CALLS $ROUNDS   ($(date -u +%FT%TZ), $(nproc) cores)" | tee $OUT
run() { # db, hnsw_min_items -> ms per call
  "${PSQL[@]}" -d "$1" <<SQL | tail -1
SET reco.hnsw_min_items = $2;
SELECT reco.warm_cache() IS NOT NULL \\g /dev/null
SELECT count(*) FROM (SELECT r.* FROM (SELECT customer_id, cart FROM bench_req ORDER BY n LIMIT 50) b,
       LATERAL reco.recommend(b.customer_id, 10, jsonb_build_object('cart', b.cart)) r) x \\g /dev/null
SELECT clock_timestamp() AS t0 \\gset
SELECT count(*) FROM (SELECT r.* FROM (SELECT customer_id, cart FROM bench_req ORDER BY n LIMIT $CALLS) b,
       LATERAL reco.recommend(b.customer_id, 10, jsonb_build_object('cart', b.cart)) r) x \\g /dev/null
SELECT round((extract(epoch FROM clock_timestamp() - :'t0') * 1000 / $CALLS)::numeric, 3);
SQL
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-8s %8s %12s %12s %8s %10s\n' scale items "exact ms" "hnsw ms" ratio overlap | tee -a $OUT
for s in $SCALES; do
  db=reco_bench_serve_$s
  items=$("${PSQL[@]}" -d $db -c "SELECT count(*) FROM reco.items")
  ex=(); hn=()
  for r in $(seq "$ROUNDS"); do
    ex+=("$(run $db 0)")
    hn+=("$(run $db 1)")
  done
  e=$(printf '%s\n' "${ex[@]}" | median); h=$(printf '%s\n' "${hn[@]}" | median)
  overlap=$("${PSQL[@]}" -d $db <<SQL | tail -1
SET reco.hnsw_min_items = 0;
CREATE TEMP TABLE l AS SELECT 0 AS hnsw, b.n, r.item_id FROM (SELECT n, customer_id, cart FROM bench_req ORDER BY n LIMIT 300) b,
  LATERAL reco.recommend(b.customer_id, 10, jsonb_build_object('cart', b.cart, 'now', '2026-11-20T18:00:00Z')) r;
SET reco.hnsw_min_items = 1;
INSERT INTO l SELECT 1, b.n, r.item_id FROM (SELECT n, customer_id, cart FROM bench_req ORDER BY n LIMIT 300) b,
  LATERAL reco.recommend(b.customer_id, 10, jsonb_build_object('cart', b.cart, 'now', '2026-11-20T18:00:00Z')) r;
SELECT round(count(*)::numeric / (SELECT count(*) FROM l WHERE hnsw = 0), 3) FROM l a JOIN l b USING (n, item_id) WHERE a.hnsw = 0 AND b.hnsw = 1;
SQL
)
  printf '%-8s %8s %12s %12s %8s %10s\n' "$s" "$items" "$e" "$h" "$(echo "scale=2; $e / $h" | bc)" "$overlap" | tee -a $OUT
done
echo "exact: reco.hnsw_min_items = 0 (candidate blend, i8 pass rescored exactly); hnsw: = 1 (hnsw.ef_search = $("${PSQL[@]}" -d postgres -c 'SHOW hnsw.ef_search' 2>/dev/null || echo 40))" | tee -a $OUT
