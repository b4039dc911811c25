-- Driven by bench/ingest.sh. Prints one line per measurement.
\set QUIET on
SET max_parallel_workers_per_gather = 0;
SET client_min_messages = warning;
SET timezone = 'UTC';
CREATE EXTENSION pg_reco CASCADE;

-- 1. Payloads: Shopify order webhooks, 1-5 lines (3 on average), sizes/colors in variant titles.
CREATE TABLE payloads AS
SELECT i, jsonb_build_object(
    'id', 5000000000 + i, 'name', '#' || i, 'email', 'buyer' || (i % 20000) || '@example.com',
    'created_at', to_char(timestamptz '2024-01-01' + (i || ' minutes')::interval, 'YYYY-MM-DD"T"HH24:MI:SS') || '-05:00',
    'processed_at', to_char(timestamptz '2024-01-01' + (i || ' minutes')::interval, 'YYYY-MM-DD"T"HH24:MI:SS') || '-05:00',
    'currency', 'USD', 'financial_status', (ARRAY['paid', 'paid', 'paid', 'pending', 'refunded'])[1 + i % 5],
    'fulfillment_status', CASE WHEN i % 3 = 0 THEN 'fulfilled' END, 'cancelled_at', NULL,
    'subtotal_price', '0.00', 'total_discounts', '0.00', 'total_tax', '1.20', 'total_price', '0.00',
    'total_shipping_price_set', jsonb_build_object('shop_money', jsonb_build_object('amount', '4.99', 'currency_code', 'USD')),
    'customer', jsonb_build_object('id', 700000 + i % 20000, 'email', 'buyer' || (i % 20000) || '@example.com'),
    'shipping_address', jsonb_build_object('country_code', 'US', 'zip', '10001'),
    'line_items', (SELECT jsonb_agg(jsonb_build_object(
        'id', i * 10 + k, 'variant_id', 90000 + (i * 7 + k) % 5000, 'product_id', 8000 + (i * 7 + k) % 1000,
        'sku', 'SKU-' || ((i * 7 + k) % 5000), 'title', 'Product ' || ((i * 7 + k) % 1000),
        'variant_title', (ARRAY['S', 'M', 'L', 'XL'])[1 + k % 4] || ' / ' || (ARRAY['Navy', 'Black', 'Heather Grey'])[1 + i % 3],
        'quantity', 1 + (i + k) % 2, 'price', ((i * 7 + k) % 5000 + 100) / 100.0 || '', 'total_discount', '0.00'))
      FROM generate_series(1, 1 + i % 5) AS k)) AS p
FROM generate_series(1, :n) AS i;
ALTER TABLE payloads ADD PRIMARY KEY (i);
VACUUM ANALYZE payloads;

-- timing helper: seconds an EXECUTE takes
CREATE FUNCTION secs(sql text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN EXECUTE sql; RETURN extract(epoch FROM clock_timestamp() - t0); END $$;
CREATE FUNCTION median3(a float8, b float8, c float8) RETURNS float8 LANGUAGE sql AS
$$ SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(ARRAY[a, b, c]) x $$;

-- The hand-written mapping: what an engineer writes with jsonb operators for the same fields.
CREATE FUNCTION hand_normalize(p jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
SELECT jsonb_build_object(
  'order_id', 'shopify:' || (p->>'id'), 'channel', 'shopify', 'external_id', p->>'id',
  'customer_id', p->'customer'->>'id',
  'placed_at', to_char(coalesce(p->>'processed_at', p->>'created_at')::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
  'currency', upper(p->>'currency'),
  'status', CASE WHEN p->>'cancelled_at' IS NOT NULL THEN 'cancelled'
                 WHEN p->>'financial_status' IN ('pending', 'authorized') THEN 'pending'
                 WHEN p->>'financial_status' = 'refunded' THEN 'refunded'
                 WHEN p->>'fulfillment_status' = 'fulfilled' THEN 'shipped' ELSE 'paid' END,
  'total_minor', ((p->>'total_price')::numeric * 100)::bigint,
  'tax_minor', ((p->>'total_tax')::numeric * 100)::bigint,
  'shipping_minor', ((p->'total_shipping_price_set'->'shop_money'->>'amount')::numeric * 100)::bigint,
  'discount_minor', ((p->>'total_discounts')::numeric * 100)::bigint,
  'country', p->'shipping_address'->>'country_code', 'email', lower(p->>'email'),
  'lines', (SELECT jsonb_agg(jsonb_build_object(
      'line_no', n, 'item_id', coalesce(nullif(l->>'sku', ''), l->>'variant_id'), 'group_id', l->>'product_id',
      'title', l->>'title', 'qty', (l->>'quantity')::int,
      'unit_price_minor', ((l->>'price')::numeric * 100)::bigint,
      'discount_minor', ((l->>'total_discount')::numeric * 100)::bigint,
      'size', split_part(l->>'variant_title', ' / ', 1), 'color', lower(split_part(l->>'variant_title', ' / ', 2))))
    FROM jsonb_array_elements(p->'line_items') WITH ORDINALITY AS e(l, n)))
$$;

-- A copy of the canonical tables for the hand-written ingest, with the same keys and indexes.
CREATE SCHEMA hand;
CREATE TABLE hand.customers (LIKE reco.customers INCLUDING ALL);
CREATE TABLE hand.items (LIKE reco.items INCLUDING ALL);
CREATE TABLE hand.orders (LIKE reco.orders INCLUDING ALL);
ALTER TABLE hand.orders ADD FOREIGN KEY (customer_id) REFERENCES hand.customers;
CREATE TABLE hand.order_lines (LIKE reco.order_lines INCLUDING ALL);
ALTER TABLE hand.order_lines ADD FOREIGN KEY (order_id) REFERENCES hand.orders ON DELETE CASCADE;
-- lines -> items checked per statement, as reco.order_lines is (see sql/schema.sql)
CREATE FUNCTION hand_lines_item_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_rows n WHERE NOT EXISTS (SELECT 1 FROM hand.items i WHERE i.item_id = n.item_id)) THEN
    RAISE EXCEPTION 'order line refers to a missing item' USING ERRCODE = '23503';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER lines_item_check AFTER INSERT ON hand.order_lines
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION hand_lines_item_check();
CREATE TABLE hand.events (LIKE reco.events INCLUDING ALL);  -- no foreign keys, as in reco.events

-- The hand-written ingest: set-based INSERT ... SELECT over the same batch array pg_reco gets.
CREATE FUNCTION hand_ingest(arr jsonb) RETURNS void LANGUAGE sql AS $$
  INSERT INTO hand.customers (customer_id, created_at)
  SELECT DISTINCT ON (c) c, t FROM (SELECT p->'customer'->>'id' AS c, (p->>'created_at')::timestamptz AS t
                                    FROM jsonb_array_elements(arr) p) s ORDER BY c, t
  ON CONFLICT DO NOTHING;
  INSERT INTO hand.items (item_id, group_id, title, price, currency)
  SELECT DISTINCT ON (l->>'sku') l->>'sku', l->>'product_id', l->>'title', (l->>'price')::numeric, 'USD'
  FROM jsonb_array_elements(arr) p, jsonb_array_elements(p->'line_items') l
  ON CONFLICT DO NOTHING;
  INSERT INTO hand.orders (order_id, channel, external_id, customer_id, placed_at, currency, subtotal_minor,
      discount_minor, shipping_minor, tax_minor, total_minor, status, country, email, canonical_hash)
  SELECT o->>'order_id', 'shopify', o->>'external_id', o->>'customer_id', (o->>'placed_at')::timestamptz, o->>'currency',
      (SELECT sum((l->>'unit_price_minor')::bigint * (l->>'qty')::int) FROM jsonb_array_elements(o->'lines') l),
      (o->>'discount_minor')::bigint, (o->>'shipping_minor')::bigint, (o->>'tax_minor')::bigint, (o->>'total_minor')::bigint,
      o->>'status', o->>'country', o->>'email', hashtext(o::text)
  FROM (SELECT hand_normalize(p) AS o FROM jsonb_array_elements(arr) p OFFSET 0) s  -- evaluate once per order
  ON CONFLICT (channel, external_id) DO NOTHING;
  INSERT INTO hand.order_lines (order_id, line_no, item_id, qty, unit_price_minor, discount_minor, size, color)
  SELECT 'shopify:' || (p->>'id'), n, l->>'sku', (l->>'quantity')::int, ((l->>'price')::numeric * 100)::bigint,
         ((l->>'total_discount')::numeric * 100)::bigint, split_part(l->>'variant_title', ' / ', 1),
         lower(split_part(l->>'variant_title', ' / ', 2))
  FROM jsonb_array_elements(arr) p, jsonb_array_elements(p->'line_items') WITH ORDINALITY e(l, n)
  ON CONFLICT DO NOTHING;
  INSERT INTO hand.events (customer_id, item_id, kind, value, channel, occurred_at, order_id)
  SELECT p->'customer'->>'id', l->>'sku', 'purchase', (l->>'quantity')::int, 'shopify', (p->>'created_at')::timestamptz,
         'shopify:' || (p->>'id')
  FROM jsonb_array_elements(arr) p, jsonb_array_elements(p->'line_items') l WHERE p->>'cancelled_at' IS NULL;
$$;

-- The batches an OMS would send, built before any timing (building them is the client's work).
CREATE TABLE batches AS SELECT (i - 1) / :batch AS b, jsonb_agg(p ORDER BY i) AS arr FROM payloads GROUP BY 1;
ALTER TABLE batches ADD PRIMARY KEY (b);
CREATE FUNCTION reco_ingest_all(batch int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT arr FROM batches ORDER BY b LOOP
    PERFORM reco.ingest_orders('shopify', r.arr);
  END LOOP;
END $$;
CREATE FUNCTION hand_ingest_all(batch int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT arr FROM batches ORDER BY b LOOP PERFORM hand_ingest(r.arr); END LOOP;
END $$;
-- Part k of m of the batches, for concurrent clients: each batch commits, as an OMS worker's
-- call would (one long transaction per client would make the clients wait for each other's
-- new customers and items until the very end).
CREATE PROCEDURE reco_ingest_part(k int, m int) LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT b FROM batches WHERE b % m = k ORDER BY b LOOP
    PERFORM reco.ingest_orders('shopify', (SELECT arr FROM batches x WHERE x.b = r.b));
    COMMIT;
  END LOOP;
END $$;
CREATE PROCEDURE hand_ingest_part(k int, m int) LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT b FROM batches WHERE b % m = k ORDER BY b LOOP
    PERFORM hand_ingest((SELECT arr FROM batches x WHERE x.b = r.b));
    COMMIT;
  END LOOP;
END $$;
CREATE FUNCTION reset_tables() RETURNS void LANGUAGE sql AS $$
  TRUNCATE reco.events, reco.order_lines, reco.orders, reco.stock, reco.items, reco.preferences,
           reco.preference_revocations, reco.customers, reco.ingest_errors;
  TRUNCATE hand.events, hand.order_lines, hand.orders, hand.items, hand.customers;
$$;

-- Both mappings agree on the orders (a benchmark of different work would prove nothing).
SELECT count(*) FILTER (WHERE r->>'total_minor' <> h->>'total_minor' OR r->>'placed_at' <> h->>'placed_at'
                         OR r->>'status' <> h->>'status' OR jsonb_array_length(r->'lines') <> jsonb_array_length(h->'lines'))
       AS mismatches_in_first_1000
FROM (SELECT reco.normalize_order('shopify', p) r, hand_normalize(p) h FROM payloads WHERE i <= 1000) s \gset
\echo mismatches between pg_reco and the hand-written mapping (first 1000 orders): :mismatches_in_first_1000

SELECT count(*) AS orders, sum(jsonb_array_length(p->'line_items')) AS lines, pg_size_pretty(sum(pg_column_size(p))) AS size
FROM payloads \gset

-- Let the 2-core machine settle: the setup wrote hundreds of MB, and a checkpoint or an
-- autovacuum running during a timing would be measured as our cost (or the baseline's).
VACUUM ANALYZE payloads;
VACUUM ANALYZE batches;
CHECKPOINT;
\echo payloads: :orders orders, :lines lines, :size

-- 2. normalize throughput, one backend
SELECT median3(secs('SELECT count(reco.normalize_order(''shopify'', p)) FROM payloads'),
               secs('SELECT count(reco.normalize_order(''shopify'', p)) FROM payloads'),
               secs('SELECT count(reco.normalize_order(''shopify'', p)) FROM payloads')) AS reco_norm,
       median3(secs('SELECT count(hand_normalize(p)) FROM payloads'),
               secs('SELECT count(hand_normalize(p)) FROM payloads'),
               secs('SELECT count(hand_normalize(p)) FROM payloads')) AS hand_norm \gset

-- 3. ingest throughput into empty tables, in batches, then a full replay (nothing changes)
SELECT reset_tables();
CHECKPOINT;
SELECT secs(format('SELECT reco_ingest_all(%s)', :batch)) AS reco_ing1 \gset
SELECT secs(format('SELECT reco_ingest_all(%s)', :batch)) AS reco_replay \gset
SELECT secs(format('SELECT hand_ingest_all(%s)', :batch)) AS hand_ing1 \gset
SELECT reset_tables();
CHECKPOINT;
SELECT secs(format('SELECT hand_ingest_all(%s)', :batch)) AS hand_ing2 \gset
SELECT secs(format('SELECT reco_ingest_all(%s)', :batch)) AS reco_ing2 \gset
SELECT reset_tables();
CHECKPOINT;
SELECT secs(format('SELECT reco_ingest_all(%s)', :batch)) AS reco_ing3 \gset
SELECT secs(format('SELECT hand_ingest_all(%s)', :batch)) AS hand_ing3 \gset
SELECT (SELECT count(*) FROM reco.orders) AS reco_orders, (SELECT count(*) FROM hand.orders) AS hand_orders,
       (SELECT count(*) FROM reco.order_lines) AS reco_lines, (SELECT count(*) FROM hand.order_lines) AS hand_lines \gset
\echo rows written: pg_reco :reco_orders orders / :reco_lines lines; hand-written :hand_orders orders / :hand_lines lines

SELECT format('%-44s %10s %12s', 'measurement (median of 3)', 'seconds', 'rows/s') AS h \gset
\echo :h
SELECT format('%-44s %10s %12s', 'normalize_order, pg_reco', round(:reco_norm::numeric, 3), round(:orders / :reco_norm)) AS l \gset
\echo :l
SELECT format('%-44s %10s %12s', 'normalize, hand-written SQL', round(:hand_norm::numeric, 3), round(:orders / :hand_norm)) AS l \gset
\echo :l
SELECT median3(:reco_ing1, :reco_ing2, :reco_ing3) AS reco_ing, median3(:hand_ing1, :hand_ing2, :hand_ing3) AS hand_ing \gset
SELECT format('%-44s %10s %12s', 'ingest_orders, pg_reco (batches of ' || :batch || ')', round(:reco_ing::numeric, 3), round(:orders / :reco_ing)) AS l \gset
\echo :l
SELECT format('%-44s %10s %12s', 'ingest, hand-written SQL (same batches)', round(:hand_ing::numeric, 3), round(:orders / :hand_ing)) AS l \gset
\echo :l
SELECT format('%-44s %10s %12s', 'ingest_orders replay (all unchanged)', round(:reco_replay::numeric, 3), round(:orders / :reco_replay)) AS l \gset
\echo :l

-- 4. pseudonymous ids: the same batches with the channel in reco.pseudonymized_channels (every
-- customer id replaced by its keyed hash), beside the plain runs of 3; then one event at a time
-- (record_event) with plain ids and with e-mail addresses as ids
INSERT INTO reco.pseudonymized_channels (channel) VALUES ('shopify');
SELECT reset_tables();
CHECKPOINT;
SELECT secs(format('SELECT reco_ingest_all(%s)', :batch)) AS px_ing1 \gset
SELECT reset_tables();
CHECKPOINT;
SELECT secs(format('SELECT reco_ingest_all(%s)', :batch)) AS px_ing2 \gset
SELECT reset_tables();
CHECKPOINT;
SELECT secs(format('SELECT reco_ingest_all(%s)', :batch)) AS px_ing3 \gset
SELECT count(*) FILTER (WHERE customer_id LIKE 'p\_%') AS px_customers, count(*) AS all_customers FROM reco.customers \gset
DELETE FROM reco.pseudonymized_channels;
SELECT median3(:px_ing1, :px_ing2, :px_ing3) AS px_ing \gset
SELECT format('%-44s %10s %12s', 'ingest_orders, every customer id pseudonymized', round(:px_ing::numeric, 3), round(:orders / :px_ing)) AS l \gset
\echo :l
SELECT format('pseudonymized customers: %s of %s; cost of pseudonyms at ingest: %s%%', :px_customers, :all_customers,
              round(((:px_ing / :reco_ing - 1) * 100)::numeric, 1)) AS l \gset
\echo :l
-- one event per call and per transaction, as an OMS request handler records them (timed by
-- bench/ingest.sh): plain ids, or e-mail addresses as ids
CREATE PROCEDURE events_each_committed(n int, email boolean) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..n LOOP
    PERFORM reco.record_event(CASE WHEN email THEN 'buyer' || (i % 5000) || '@example.com' ELSE 'c' || (i % 5000) END, 'SKU-1', 'view',
                              occurred_at => '2026-01-01 00:00+00');
    COMMIT;
  END LOOP;
END $$;
SELECT format('ratios: normalize pg_reco/hand = %sx faster, ingest pg_reco/hand = %sx faster',
              round((:hand_norm / :reco_norm)::numeric, 2), round((:hand_ing / :reco_ing)::numeric, 2)) AS l \gset
\echo :l
