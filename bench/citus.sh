#!/usr/bin/env bash
# pg_reco on a local Citus cluster (a coordinator and two workers, scripts/citus) beside the
# single node (scripts/cluster), on the same data and model, in one sitting.
#   bench/citus.sh [SCALE=medium] [SECONDS=15] [ORDERS=20000]     (release build: make install-release)
# Both sides get the demo data at SCALE (loaded once on the single node, copied through the
# coordinator after reco.distribute()) and a hybrid trained and deployed on each. Serving: the
# 2 000 requests of bench/recommend.sh (a customer with a learned vector and a cart of 3
# buyable items), drawn with pgbench. On Citus a call is pushed down to the customer's worker
# only when it is a plain `SELECT * FROM reco.recommend(<constant>, ...)`, so every script
# first reads its request from a local table (\gset) and then makes that call; the request
# read alone is measured too, and subtracted. Prints, at 1 and 8 clients:
#   - the single node, the call made directly on a worker for customers whose shard it holds,
#     and the call made on the coordinator (pushed down): the difference between the last two
#     is the routing hop, the difference between the first two what running on a Citus node
#     costs;
#   - a one-shard primary-key probe through the coordinator (the routing cost of any query);
#   - the call as bench/recommend.sh writes it (joined to the request table), which Citus
#     cannot push down: the coordinator runs it, every statement inside going to a worker.
# Ingest: ORDERS Shopify-shaped orders (bench/ingest.sql's shape) in batches of 1 000 through
# reco.ingest_orders, one client and two, new orders and a replay; and 20 000 view events
# through reco.ingest_events. Figures in target/bench-citus-SCALE.txt.
# RECO_BENCH_PART=serving or =ingest runs one half (target/bench-citus-SCALE-PART.txt). The Citus
# cluster's data lives in its `postgres` database; the script destroys and rebuilds
# the cluster unless it already holds this scale's deployed model (RECO_BENCH_FRESH=1 forces it).
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-medium}
SECS=${2:-15}
ORDERS=${3:-20000}
DB=reco_bench_citus_$SCALE
PGBENCH=/usr/lib/postgresql/15/bin/pgbench
SPORT=${RECO_PGPORT:-28815}
CPORT=${RECO_CITUS_PORT:-28820}
W1PORT=$((CPORT + 1))
OUT=target/bench-citus-$SCALE${RECO_BENCH_PART:+-$RECO_BENCH_PART}.txt
W=$(mktemp -d)
chmod 755 "$W"
trap 'rm -rf "$W"' EXIT
source bench/lib.sh
S=("${PSQL[@]}" -d "$DB")
C=(scripts/citus psql coordinator -q -v ON_ERROR_STOP=1 -d postgres)
W1=(scripts/citus psql worker1 -q -v ON_ERROR_STOP=1 -d postgres)
now() { date +%s.%N; }
secs_since() { printf '%.1f' "$(echo "$(now) - $1" | bc)"; }

echo "bench/citus.sh $SCALE $SECS $ORDERS   ($(date -u +%FT%TZ), $(nproc) cores, Citus $(scripts/citus install >/dev/null && echo 13.2.2))" | tee "$OUT"
# -- the single node: the demo data and a deployed hybrid (kept for reruns) --------------------
t0=$(now)
demo_db "$DB" "$SCALE" | tee -a "$OUT"
echo "single node ready in $(secs_since "$t0") s" | tee -a "$OUT"

# -- the Citus cluster: distribute, copy the data in through the coordinator, train, deploy -----
scripts/citus start
if [[ ${RECO_BENCH_FRESH:-0} == 1 ]] \
   || ! "${C[@]}" -At -c "SELECT 1 FROM reco.models WHERE status = 'deployed' AND n_items = $("${S[@]}" -At -c 'SELECT count(*) FROM reco.items')" 2>/dev/null | grep -q 1; then
  scripts/citus destroy
  scripts/citus start
  "${C[@]}" -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_reco CASCADE" \
    -c "SELECT count(*) AS tables_placed FROM reco.distribute()"
  t0=$(now)
  for t in items stock category_settings customers orders order_lines events; do
    "${S[@]}" -c "COPY reco.$t TO STDOUT" | "${C[@]}" -c "COPY reco.$t FROM STDIN"
  done
  "${C[@]}" -c "VACUUM ANALYZE"
  echo "copied into the cluster through the coordinator in $(secs_since "$t0") s" | tee -a "$OUT"
  t0=$(now)
  "${C[@]}" -At -c "SELECT reco.deploy(reco.train('hybrid'))" >/dev/null
  echo "citus: trained and deployed a hybrid in $(secs_since "$t0") s" | tee -a "$OUT"
fi
# COPY wrote the events' ids as they were (pg_dump's restore does the same, then sets the
# sequence): the coordinator's identity sequence goes past them, below the workers' ranges
"${C[@]}" -At -c "SELECT setval(pg_get_serial_sequence('reco.events', 'event_id'),
  greatest((SELECT max(event_id) FROM reco.events WHERE event_id < 1::int8 << 48), 1))" >/dev/null
"${C[@]}" -At -c "SELECT format('citus: %s workers, %s shards per distributed table, events %s rows',
  (SELECT count(*) FROM pg_dist_node WHERE groupid > 0), (SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'reco.events'::regclass),
  (SELECT count(*) FROM reco.events))" | tee -a "$OUT"

# -- the requests (as bench/recommend.sh draws them, but by md5: hashtext is Citus's own hash, and
# the 2 000 lowest would all be in one shard), on the single node, the coordinator and worker 1 --
M=$("${S[@]}" -At -c "SELECT model_id FROM reco.models WHERE status = 'deployed'")
"${S[@]}" -v m="$M" <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_req, bench_buyable;
CREATE TABLE bench_buyable AS
  SELECT row_number() OVER (ORDER BY s.item_id) - 1 AS k, s.item_id FROM reco.stock s JOIN reco.items i USING (item_id)
  WHERE s.available > 0 AND NOT s.backordered AND i.active;
CREATE TABLE bench_req AS
  SELECT n::int, customer_id,
         ARRAY(SELECT item_id FROM bench_buyable WHERE k IN ((n * 7919) % b.cnt, (n * 104729 + 1) % b.cnt, (n * 1299709 + 2) % b.cnt)) AS cart
  FROM (SELECT row_number() OVER (ORDER BY md5(customer_id), customer_id) AS n, customer_id
          FROM reco.customer_vectors WHERE model_id = :m AND space = 'als' ORDER BY md5(customer_id), customer_id LIMIT 2000) c,
       (SELECT count(*) AS cnt FROM bench_buyable) b;
-- the call's arguments as SQL literals, for pgbench's textual substitution
ALTER TABLE bench_req ADD COLUMN c text, ADD COLUMN x text;
UPDATE bench_req SET c = quote_literal(customer_id), x = quote_literal(jsonb_build_object('cart', cart)::text);
ALTER TABLE bench_req ADD PRIMARY KEY (n);
SQL
REQ_DDL="DROP TABLE IF EXISTS bench_req; CREATE TABLE bench_req (n int PRIMARY KEY, customer_id text, cart text[], c text, x text)"
"${C[@]}" -c "SET client_min_messages = warning" -c "$REQ_DDL"
"${S[@]}" -c "COPY bench_req TO STDOUT" | "${C[@]}" -c "COPY bench_req FROM STDIN"
"${C[@]}" -c "ANALYZE bench_req"
# worker 1's share: the requests whose customer's shard it holds, numbered from 1
"${C[@]}" -At -c "COPY (SELECT row_number() OVER (ORDER BY n), customer_id, cart, c, x FROM bench_req b
   WHERE (SELECT nodeport FROM pg_dist_placement p JOIN pg_dist_node d USING (groupid)
           WHERE p.shardid = get_shard_id_for_distribution_column('reco.customers', b.customer_id)) = $W1PORT) TO STDOUT" >"$W/w1.copy"
"${W1[@]}" -c "SET client_min_messages = warning" -c "$REQ_DDL"
"${W1[@]}" -c "COPY bench_req FROM STDIN" <"$W/w1.copy"
"${W1[@]}" -c "ANALYZE bench_req"
NW1=$(wc -l <"$W/w1.copy")
NREQ=$("${S[@]}" -At -c "SELECT count(*) FROM bench_req")
items=$("${S[@]}" -At -c "SELECT count(*) FROM reco.items")
echo "model $M, $items items, $NREQ requests ($NW1 of them on worker 1)" | tee -a "$OUT"

# the same lists on both sides (with a pinned clock: serving weighs popularity by the hour)
same=$(for n in $(seq 1 $((NREQ / 50)) "$NREQ" | head -50); do
  args=$("${S[@]}" -At -c "SELECT c || ', 10, ' || quote_literal(jsonb_build_object('cart', cart, 'now', '2026-11-26T14:30:00Z')::text) FROM bench_req WHERE n = $n")
  q="SELECT item_id, round(score::numeric, 5), reason FROM reco.recommend($args)"
  [[ $("${S[@]}" -At -c "$q") == $("${C[@]}" -At -c "$q") ]] && echo same || echo differ
done | sort | uniq -c | tr '\n' ' ')
echo "lists on the single node and through the coordinator (pushed down; items, order, reasons, scores to 5 decimals), 50 requests: $same" | tee -a "$OUT"

# -- serving (RECO_BENCH_PART=ingest skips it) -------------------------------------------------
if [[ ${RECO_BENCH_PART:-all} != ingest ]]; then
cat >"$W/lookup.sql" <<SQL
\set n random(1, $NREQ)
SELECT c, x FROM bench_req WHERE n = :n \gset
SQL
cp "$W/lookup.sql" "$W/reco.sql"
echo 'SELECT * FROM reco.recommend(:c, 10, :x);' >>"$W/reco.sql"
cp "$W/lookup.sql" "$W/probe.sql"
echo 'SELECT customer_id FROM reco.customers WHERE customer_id = :c;' >>"$W/probe.sql"
sed "s/random(1, $NREQ)/random(1, $NW1)/" "$W/lookup.sql" >"$W/lookup_w1.sql"
sed "s/random(1, $NREQ)/random(1, $NW1)/" "$W/reco.sql" >"$W/reco_w1.sql"
cat >"$W/joined.sql" <<SQL
\set n random(1, $NREQ)
SELECT r.* FROM bench_req b, reco.recommend(b.customer_id, 10, jsonb_build_object('cart', b.cart)) r WHERE b.n = :n;
SQL

pcts() { sort -n "$1" | awk '{a[NR]=$1} END {printf "p50 %.2f ms, p95 %.2f ms, p99 %.2f ms", a[int(0.5*NR)]/1000, a[int(0.95*NR)]/1000, a[int(0.99*NR)]/1000}'; }
p50() { sort -n "$1" | awk '{a[NR]=$1} END {printf "%.3f", a[int(0.5*NR)]/1000}'; }
declare -A P50
# as bench/recommend.sh: steady state once every client has made its first call
run() { # key label port db script clients
  local key=$1 label=$2 port=$3 db=$4 script=$5 clients=$6 tps
  rm -f "$W"/lat.* "$W/all.log" "$W/warm.lat"
  (cd "$W" && PGTZ=UTC "$PGBENCH" -n -h 127.0.0.1 -p "$port" -U postgres -c "$clients" -j $((clients < 2 ? 1 : 2)) -T "$SECS" \
     -f "$script" --log --log-prefix=lat "$db" >/dev/null)
  cat "$W"/lat.* >"$W/all.log"
  tps=$(awk -v out="$W/warm.lat" '
    NR == FNR { if ($2 == 1) { e = $5 + $6 / 1e6; if (e > lo) lo = e } next }
    { e = $5 + $6 / 1e6; if ($2 > 1 && e - $3 / 1e6 >= lo) { print $3 > out; n++; if (e > hi) hi = e } }
    END { printf "%.0f", (hi > lo ? n / (hi - lo) : 0) }' "$W/all.log" "$W/all.log")
  P50[$key]=$(p50 "$W/warm.lat")
  printf '%-58s %s, %s calls/s\n' "$label, $clients client(s):" "$(pcts "$W/warm.lat")" "$tps" | tee -a "$OUT"
}
for cl in 1 8; do
  echo "-- $cl client(s)" | tee -a "$OUT"
  run "s_lookup_$cl" "single node, request read only" "$SPORT" "$DB" "$W/lookup.sql" "$cl"
  run "s_reco_$cl" "single node, read + recommend" "$SPORT" "$DB" "$W/reco.sql" "$cl"
  run "w_lookup_$cl" "worker 1 directly, request read only" "$W1PORT" postgres "$W/lookup_w1.sql" "$cl"
  run "w_reco_$cl" "worker 1 directly, read + recommend" "$W1PORT" postgres "$W/reco_w1.sql" "$cl"
  run "c_lookup_$cl" "coordinator, request read only" "$CPORT" postgres "$W/lookup.sql" "$cl"
  run "c_reco_$cl" "coordinator, read + recommend (pushed down)" "$CPORT" postgres "$W/reco.sql" "$cl"
  run "c_probe_$cl" "coordinator, read + one-shard primary-key probe" "$CPORT" postgres "$W/probe.sql" "$cl"
  run "s_probe_$cl" "single node, read + the same primary-key probe" "$SPORT" "$DB" "$W/probe.sql" "$cl"
done
run c_joined_1 "coordinator, recommend joined to the request (not pushed down)" "$CPORT" postgres "$W/joined.sql" 1
run s_joined_1 "single node, recommend joined to the request" "$SPORT" "$DB" "$W/joined.sql" 1
d() { printf '%.2f' "$(echo "(${P50[$1]} - ${P50[$2]}) - (${P50[$3]} - ${P50[$4]})" | bc -l)"; }
{
  echo "-- where the time goes (medians, ms; each call's own time = read + call minus read alone)"
  for cl in 1 8; do
    printf '%s client(s): call on the single node %.2f, on a worker directly %.2f, through the coordinator %.2f; ' "$cl" \
      "$(echo "${P50[s_reco_$cl]} - ${P50[s_lookup_$cl]}" | bc -l)" "$(echo "${P50[w_reco_$cl]} - ${P50[w_lookup_$cl]}" | bc -l)" \
      "$(echo "${P50[c_reco_$cl]} - ${P50[c_lookup_$cl]}" | bc -l)"
    printf 'running on a Citus node adds %s, the coordinator-to-worker hop %s, a one-shard probe costs %s more than on one node\n' \
      "$(d "w_reco_$cl" "w_lookup_$cl" "s_reco_$cl" "s_lookup_$cl")" "$(d "c_reco_$cl" "c_lookup_$cl" "w_reco_$cl" "w_lookup_$cl")" \
      "$(d "c_probe_$cl" "c_lookup_$cl" "s_probe_$cl" "s_lookup_$cl")"
  done
} | tee -a "$OUT"
# one pushed-down call: the coordinator's plan, and the statements the call runs on its worker
# (EXPLAIN ANALYZE cannot run a pushed-down call: Citus refuses the function's own distributed
# statements under it, docs/citus.md)
read -r cust ctx < <("${C[@]}" -At -F ' ' -c "SELECT c, x FROM bench_req WHERE n = 1")
{
  echo "-- one call through the coordinator: its plan, then what it runs on the worker (a warm backend)"
  "${C[@]}" -At -c "EXPLAIN (COSTS OFF) SELECT * FROM reco.recommend($cust, 10, $ctx)" | sed 's/^/   /'
  port=$("${C[@]}" -At -c "SELECT nodeport FROM pg_dist_placement p JOIN pg_dist_node d USING (groupid)
                            WHERE p.shardid = get_shard_id_for_distribution_column('reco.customers', $cust)")
  node=worker1; [[ $port == "$W1PORT" ]] || node=worker2
  scripts/citus psql "$node" -q -d postgres -At \
    -c "SELECT count(*) FROM reco.recommend($cust, 10, $ctx)" \
    -c "SET citus.log_local_commands = on" -c "SET citus.log_remote_commands = on" -c "SET client_min_messages = log" \
    -c "SELECT count(*) FROM reco.recommend($cust, 10, $ctx)" 2>&1 >/dev/null \
    | grep -o '\(executing the command locally\|issuing\): SELECT .\{0,90\}' | sed 's/^/   /'
} | tee -a "$OUT"

fi

# -- ingest through the coordinator beside the single node (RECO_BENCH_PART=serving skips it) --
[[ ${RECO_BENCH_PART:-all} == serving ]] && exit 0
GEN="SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_batches;
CREATE TABLE bench_batches (b int PRIMARY KEY, arr jsonb);
CREATE OR REPLACE PROCEDURE bench_ingest(first int, last int, k int, m int) LANGUAGE plpgsql AS \$\$
DECLARE r record;
BEGIN
  FOR r IN SELECT b FROM bench_batches WHERE b BETWEEN first AND last AND b % m = k ORDER BY b LOOP
    PERFORM reco.ingest_orders('shopify', (SELECT arr FROM bench_batches x WHERE x.b = r.b));
    COMMIT;
  END LOOP;
END \$\$;"
# 2 x ORDERS orders: the first half for one client, the second for two (bench/ingest.sql's shape,
# ids clear of the demo's), built on the single node and copied to the coordinator
# (the rows of an earlier run of this section go first, on both sides)
# (and again at the end: the serving data stays as it was trained, for a rerun)
CLEAN="SET citus.multi_shard_modify_mode = sequential;  -- Citus: reference-table writes after the multi-shard deletes
DELETE FROM reco.events WHERE item_id LIKE 'SKU-%';
DELETE FROM reco.order_lines WHERE order_id LIKE 'shopify:50________';
DELETE FROM reco.orders WHERE order_id LIKE 'shopify:50________';
DELETE FROM reco.stock WHERE item_id LIKE 'SKU-%';
DELETE FROM reco.items WHERE item_id LIKE 'SKU-%';
DELETE FROM reco.customers WHERE customer_id ~ '^7[0-9]{5}\$';"
"${S[@]}" -c "$CLEAN"
"${C[@]}" -c "$CLEAN"
{ echo "$GEN"; cat <<'SQL'; } | "${S[@]}" -v n=$((2 * ORDERS))
INSERT INTO bench_batches
SELECT (i - 1) / 1000, jsonb_agg(jsonb_build_object(
    'id', 5000000000 + i, 'name', '#' || i, 'email', 'buyer' || (i % 20000) || '@example.com',
    'created_at', to_char(timestamptz '2026-10-01' + (i || ' seconds')::interval, 'YYYY-MM-DD"T"HH24:MI:SS') || 'Z',
    'currency', 'USD', 'financial_status', (ARRAY['paid', 'paid', 'paid', 'pending', 'refunded'])[1 + i % 5],
    'total_price', '10.00', 'total_tax', '1.20',
    'customer', jsonb_build_object('id', 700000 + i % 20000, 'email', 'buyer' || (i % 20000) || '@example.com'),
    'line_items', (SELECT jsonb_agg(jsonb_build_object(
        'id', i * 10 + k, 'variant_id', 90000 + (i * 7 + k) % 5000, 'product_id', 8000 + (i * 7 + k) % 1000,
        'sku', 'SKU-' || ((i * 7 + k) % 5000), 'title', 'Product ' || ((i * 7 + k) % 1000),
        'variant_title', (ARRAY['S', 'M', 'L', 'XL'])[1 + k % 4] || ' / ' || (ARRAY['Navy', 'Black', 'Grey'])[1 + i % 3],
        'quantity', 1 + (i + k) % 2, 'price', ((i * 7 + k) % 5000 + 100) / 100.0 || ''))
      FROM generate_series(1, 1 + i % 5) AS k)) ORDER BY i)
FROM generate_series(1, :n) AS i GROUP BY 1;
SQL
"${C[@]}" -c "$GEN"
"${S[@]}" -c "COPY bench_batches TO STDOUT" | "${C[@]}" -c "COPY bench_batches FROM STDIN"
half=$((ORDERS / 1000 - 1)) last=$((2 * ORDERS / 1000 - 1))
lines=$("${S[@]}" -At -c "SELECT sum(jsonb_array_length(o->'line_items')) FROM bench_batches, jsonb_array_elements(arr) o WHERE b <= $half")
ingest() { # label psql... : first last clients
  local label=$1 first=$2 last=$3 clients=$4; shift 4
  local t0 t
  t0=$(now)
  for ((k = 0; k < clients; k++)); do "$@" -c "CALL bench_ingest($first, $last, $k, $clients)" & done
  wait
  t=$(echo "$(now) - $t0" | bc -l)
  printf '%-58s %6.1f s, %6.0f orders/s, %6.0f lines/s\n' "$label:" "$t" "$(echo "$ORDERS / $t" | bc -l)" "$(echo "$lines / $t" | bc -l)" | tee -a "$OUT"
}
echo "-- ingest_orders, $ORDERS orders ($lines lines) per row, batches of 1 000, a commit per batch" | tee -a "$OUT"
ingest "single node, new orders, 1 client" 0 "$half" 1 "${S[@]}"
ingest "coordinator, new orders, 1 client" 0 "$half" 1 "${C[@]}"
ingest "single node, new orders, 2 clients" $((half + 1)) "$last" 2 "${S[@]}"
ingest "coordinator, new orders, 2 clients" $((half + 1)) "$last" 2 "${C[@]}"
ingest "single node, the first half replayed, 1 client" 0 "$half" 1 "${S[@]}"
ingest "coordinator, the first half replayed, 1 client" 0 "$half" 1 "${C[@]}"
for side in S C; do
  declare -n P=$side
  n=$("${P[@]}" -At -c "SELECT count(*) FROM reco.orders WHERE channel = 'shopify' AND external_id::bigint > 5000000000")
  echo "$side: $n orders stored (expected $((2 * ORDERS)))" | tee -a "$OUT"
done
ev() { # batch b of 1 000 view events by demo customers on the ingested SKUs
  echo "SELECT jsonb_agg(jsonb_build_object('customer_id', 'demo-c' || lpad((1 + ($1 * 1000 + i) % 5000)::text, 7, '0'),
          'item_id', 'SKU-' || (($1 * 1000 + i) % 5000), 'kind', 'view',
          'occurred_at', to_char(timestamptz '2026-11-01' + (($1 * 1000 + i) || ' seconds')::interval, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')))
   FROM generate_series(1, 1000) i"
}
for side in S C; do
  declare -n P=$side
  t0=$(now)
  for b in $(seq 0 19); do "${P[@]}" -At -c "SELECT inserted FROM reco.ingest_events('web', ($(ev "$b")))" >/dev/null; done
  t=$(echo "$(now) - $t0" | bc -l)
  label="single node"; [[ $side == C ]] && label="coordinator"
  printf '%-58s %6.1f s, %6.0f events/s\n' "ingest_events, 20 batches of 1 000 views, $label:" "$t" "$(echo "20000 / $t" | bc -l)" | tee -a "$OUT"
done
"${S[@]}" -c "$CLEAN"
"${C[@]}" -c "$CLEAN"
