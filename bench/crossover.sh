#!/usr/bin/env bash
# Where pgvector HNSW candidates start to beat the exact pass (sets reco.hnsw_min_items' default).
#   bench/crossover.sh [SCALES="medium large"] [CALLS=400] [ROUNDS=3]   (release build, project cluster)
# Needs the databases bench/recommend.sh leaves (reco_bench_serve_<scale>, with bench_req).
# One backend per measurement, cache warmed first; the two modes alternate ROUNDS times so
# that machine noise hits both. Prints ms per call (median over rounds) and the top-10 overlap
# of the other lists with the exact ones. Three modes: exact (reco.hnsw_min_items = 0: the i8
# pass over the cached vectors, rescored), hnsw (pgvector HNSW search per space and call,
# reco.item_knn off) and knn (the anchors' nearest-item lists training stored, reco.item_knn on).
set -euo pipefail
cd "$(dirname "$0")/.."
SCALES=${1:-medium large}
CALLS=${2:-400}
ROUNDS=${3:-3}
PSQL=(scripts/cluster psql -q -At -v ON_ERROR_STOP=1)
OUT=target/bench-crossover.txt
echo "bench/crossover.sh \"$SCALES\" $CALLS $ROUNDS   ($(date -u +%FT%TZ), $(nproc) cores)" | tee $OUT
run() { # db, hnsw_min_items, item_knn -> ms per call
  "${PSQL[@]}" -d "$1" <<SQL | tail -1
SET reco.hnsw_min_items = $2;
SET reco.item_knn = $3;
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
printf '%-8s %8s %10s %10s %10s %8s %13s %12s\n' scale items "exact ms" "hnsw ms" "knn ms" ratio "overlap hnsw" "overlap knn" | tee -a $OUT
for s in $SCALES; do
  db=reco_bench_serve_$s
  items=$("${PSQL[@]}" -d $db -c "SELECT count(*) FROM reco.items")
  ex=(); hn=(); nb=()
  for r in $(seq "$ROUNDS"); do
    ex+=("$(run $db 0 off)")
    hn+=("$(run $db 1 off)")
    nb+=("$(run $db 1 on)")
  done
  e=$(printf '%s\n' "${ex[@]}" | median); h=$(printf '%s\n' "${hn[@]}" | median); nbm=$(printf '%s\n' "${nb[@]}" | median)
  overlaps=$("${PSQL[@]}" -d $db <<SQL | tail -1
CREATE TEMP TABLE l AS SELECT 0 AS mode, n, NULL::text AS item_id FROM bench_req WHERE false;
SET reco.hnsw_min_items = 0;
INSERT INTO l SELECT 0, b.n, r.item_id FROM (SELECT n, customer_id, cart FROM bench_req ORDER BY n LIMIT 300) b,
  LATERAL reco.recommend(b.customer_id, 10, jsonb_build_object('cart', b.cart, 'now', '2026-11-20T18:00:00Z')) r;
SET reco.hnsw_min_items = 1;
SET reco.item_knn = off;
INSERT INTO l SELECT 1, b.n, r.item_id FROM (SELECT n, customer_id, cart FROM bench_req ORDER BY n LIMIT 300) b,
  LATERAL reco.recommend(b.customer_id, 10, jsonb_build_object('cart', b.cart, 'now', '2026-11-20T18:00:00Z')) r;
SET reco.item_knn = on;
INSERT INTO l SELECT 2, b.n, r.item_id FROM (SELECT n, customer_id, cart FROM bench_req ORDER BY n LIMIT 300) b,
  LATERAL reco.recommend(b.customer_id, 10, jsonb_build_object('cart', b.cart, 'now', '2026-11-20T18:00:00Z')) r;
SELECT string_agg(round(x, 3)::text, ' ' ORDER BY m) FROM (
  SELECT b.mode AS m, count(*)::numeric / (SELECT count(*) FROM l WHERE mode = 0) AS x
    FROM l a JOIN l b USING (n, item_id) WHERE a.mode = 0 AND b.mode > 0 GROUP BY b.mode) o;
SQL
)
  read -r overlap overlap_nb <<<"$overlaps"
  printf '%-8s %8s %10s %10s %10s %8s %13s %12s\n' "$s" "$items" "$e" "$h" "$nbm" "$(echo "scale=2; $e / $nbm" | bc)" "$overlap" "$overlap_nb" | tee -a $OUT
done
echo "ratio = exact / knn; overlap: share of the exact top-10 the mode returns too (hnsw.ef_search = $("${PSQL[@]}" -d postgres -c 'SHOW hnsw.ef_search' 2>/dev/null || echo 40))" | tee -a $OUT
