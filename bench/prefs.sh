#!/usr/bin/env bash
# Preference resolution latency and capture throughput, with pgbench, on CUSTOMERS customers
# with ~10 ledger rows each (explicit and inferred, several categories, some revoked).
#   bench/prefs.sh [CUSTOMERS=1000000] [SECONDS=15]     (release build, project cluster)
# Prints p50/p95/p99 of resolve_preferences from one client over 10 000 random customers,
# throughput at 1 and 8 clients, and capture rows/s at 8 clients.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
SECS=${2:-15}
DB=reco_bench_prefs
PGBENCH=/usr/lib/postgresql/15/bin/pgbench
PORT=${RECO_PGPORT:-28815}
OUT=target/bench-prefs.txt
W=$(mktemp -d)
PSQL=(scripts/cluster psql -q -v ON_ERROR_STOP=1)
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
echo "bench/prefs.sh $N $SECS   ($(date -u +%FT%TZ), $(nproc) cores)" | tee $OUT
t0=$(date +%s)
"${PSQL[@]}" -d $DB -v n="$N" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION pg_reco CASCADE;
INSERT INTO reco.customers (customer_id) SELECT 'c' || i FROM generate_series(1, :n) i;
-- ~10 rows per customer: sizes (explicit, then inferred later), color, brand, price range,
-- delivery speed, channel; 1 in 10 customers revoked one category
INSERT INTO reco.preferences (customer_id, category, value, source, explicit, confidence, evidence, observed_at, revoked_at)
SELECT 'c' || i, cat, val, src, src NOT LIKE 'inferred%', conf, ev, now() - (k || ' days')::interval,
       CASE WHEN i % 10 = 0 AND cat = 'brand' THEN now() END
FROM generate_series(1, :n) i,
LATERAL (VALUES
  (1, 'size_tops', to_jsonb((ARRAY['S','M','L','XL'])[1 + i % 4]), 'checkout', 1.0, NULL::int, 400),
  (2, 'size_tops', to_jsonb((ARRAY['M','L','XL','XXL'])[1 + i % 4]), 'inferred_orders', 0.8, 6, 20),
  (3, 'size_shoes', to_jsonb('EU' || (38 + i % 9)), 'survey', 1.0, NULL, 300),
  (4, 'color', to_jsonb((ARRAY['navy','black','grey','red','green'])[1 + i % 5]), 'profile', 1.0, NULL, 200),
  (5, 'color', to_jsonb((ARRAY['black','grey','navy','blue','white'])[1 + i % 5]), 'inferred_orders', 0.6, 4, 10),
  (6, 'brand', to_jsonb('Brand' || (i % 50)), 'inferred_orders', 0.7, 5, 30),
  (7, 'price_range', jsonb_build_object('min_minor', 2000, 'max_minor', 8000 + i % 5000, 'currency', 'EUR'), 'inferred_orders', 0.75, 9, 15),
  (8, 'delivery_speed', to_jsonb((ARRAY['standard','express'])[1 + i % 2]), 'checkout', 1.0, NULL, 60),
  (9, 'channel', to_jsonb((ARRAY['web','mobile','store'])[1 + i % 3]), 'inferred_orders', 0.66, 7, 5),
  (10, 'size_bottoms', to_jsonb('W' || (28 + i % 10) || 'L32'), 'checkout', 1.0, NULL, 90)
) AS v(k, cat, val, src, conf, ev, days_unused);
VACUUM ANALYZE reco.customers;
VACUUM ANALYZE reco.preferences;
CHECKPOINT;
SQL
rows=$("${PSQL[@]}" -At -d $DB -c "SELECT count(*) FROM reco.preferences")
echo "loaded $N customers, $rows ledger rows in $(( $(date +%s) - t0 )) s" | tee -a $OUT

cat > $W/resolve.sql <<SQL
\set c random(1, $N)
SELECT reco.resolve_preferences('c' || :c);
SQL
cat > $W/capture.sql <<SQL
\set c random(1, $N)
SELECT reco.capture_preference('c' || :c, 'color', 'navy blue', 'checkout');
SQL
cat > $W/capture_form.sql <<SQL
\set c random(1, $N)
SELECT reco.capture_preferences('c' || :c, '{"size_tops": "M", "color": "Charcoal", "size_shoes": "US 9", "delivery_speed": "express", "brand": "Acme"}', 'checkout');
SQL
pgb() { PGTZ=UTC "$PGBENCH" -n -h 127.0.0.1 -p "$PORT" -U postgres "$@" $DB; }
# warm the cache the way a running system would be
pgb -c 2 -j 2 -T 5 -f $W/resolve.sql >/dev/null
# latency: one client, 10 000 random customers, every transaction logged (microseconds)
(cd $W && pgb -c 1 -t 10000 -f $W/resolve.sql --log --log-prefix=lat >/dev/null)
sort -n -k3 $W/lat.* | awk '{print $3}' > $W/lat.sorted
pct() { awk -v p="$1" '{a[NR]=$1} END {i=int(p*NR); if (i<1) i=1; printf "%.3f", a[i]/1000}' $W/lat.sorted; }
echo "resolve_preferences latency, 1 client, 10000 random customers: p50 $(pct 0.50) ms, p95 $(pct 0.95) ms, p99 $(pct 0.99) ms, max $(pct 1.0) ms" | tee -a $OUT
for c in 1 8; do
  tps=$(pgb -c $c -j $(( c < 2 ? 1 : 2 )) -T "$SECS" -f $W/resolve.sql | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  echo "resolve_preferences throughput, $c client(s): $tps calls/s" | tee -a $OUT
done
tps=$(pgb -c 8 -j 2 -T "$SECS" -f $W/capture.sql | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
echo "capture_preference, 8 clients: $tps rows/s (one row per call)" | tee -a $OUT
tps=$(pgb -c 8 -j 2 -T "$SECS" -f $W/capture_form.sql | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
echo "capture_preferences (5-field form), 8 clients: $tps calls/s = $(echo "$tps * 5" | bc) rows/s" | tee -a $OUT
rm -rf "$W"
