-- ingest_order(s): idempotent upserts, dead letters, no partial writes, mapped channels.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SELECT reset();
SELECT reco.ingest_order(channel, payload) FROM fixtures ORDER BY channel;
-- replaying every payload changes nothing
SELECT * FROM reco.ingest_orders('pos', (SELECT jsonb_agg(payload) FROM fixtures WHERE channel = 'pos'));
SELECT count(*) AS orders, (SELECT count(*) FROM reco.order_lines) AS lines,
       (SELECT count(*) FROM reco.events WHERE kind = 'purchase') AS purchase_events,
       (SELECT count(*) FROM reco.customers) AS customers, (SELECT count(*) FROM reco.items) AS items
FROM reco.orders;
SELECT order_id, channel, external_id, customer_id, placed_at, currency, subtotal_minor, discount_minor,
       shipping_minor, tax_minor, total_minor, status, country, delivery_speed
FROM reco.orders ORDER BY order_id;
SELECT order_id, line_no, item_id, qty, unit_price_minor, discount_minor, size, color
FROM reco.order_lines ORDER BY order_id, line_no;
-- placeholder items for SKUs the catalogue has not synced: price in major units, size/color
SELECT item_id, group_id, price, currency, attributes FROM reco.items ORDER BY item_id;

-- a batch: good rows land, bad rows are dead-lettered with their reason, duplicates collapse
SELECT * FROM reco.ingest_orders('web', jsonb_build_array(
    (SELECT payload FROM fixtures WHERE channel = 'web'),
    jsonb_set((SELECT payload FROM fixtures WHERE channel = 'web'), '{id}', '"W-2"'),
    jsonb_set((SELECT payload FROM fixtures WHERE channel = 'web'), '{cart,items,0,quantity}', '0'),
    '{"id": "W-3"}'::jsonb,
    jsonb_set(jsonb_set((SELECT payload FROM fixtures WHERE channel = 'web'), '{id}', '"W-2"'), '{status}', '"shipped"')));
SELECT order_id, status FROM reco.orders WHERE channel = 'web' ORDER BY 1;
SELECT channel, entity, sqlstate, message, json_path, hint IS NOT NULL AS has_hint, payload ? 'id' AS kept_payload
FROM reco.ingest_errors ORDER BY error_id;

-- an error in one order leaves nothing behind: no order, no lines, no customer, no events
SELECT try($$SELECT reco.ingest_order('web', jsonb_set(jsonb_set(payload, '{id}', '"W-BAD"'), '{cart,items,1,unit_price}', '"1.234"')) FROM fixtures WHERE channel = 'web'$$);
SELECT count(*) AS bad_orders FROM reco.orders WHERE order_id = 'web:W-BAD';

-- a changed payload for a known order replaces it, its lines and its purchase events
SELECT reco.ingest_order('shopify', jsonb_set(jsonb_set(payload, '{line_items}', payload->'line_items'->0 || '[]'::jsonb), '{financial_status}', '"refunded"'))
FROM fixtures WHERE channel = 'shopify';
SELECT o.status, count(l.*) AS lines,
       (SELECT string_agg(e.kind, ',' ORDER BY e.kind) FROM reco.events e WHERE e.order_id = o.order_id) AS events
FROM reco.orders o JOIN reco.order_lines l USING (order_id) WHERE o.order_id = 'shopify:450789469' GROUP BY o.order_id, o.status;

-- a new channel is rows, validated on insert
INSERT INTO reco.channel_mappings (channel, field, path, value, transform, zone) VALUES
    ('marketplace', 'external_id', '$.ref', NULL, NULL, NULL),
    ('marketplace', 'customer_id', '$.buyer.email', NULL, 'lower', NULL),
    ('marketplace', 'placed_at', '$.ts', NULL, 'epoch_s', NULL),
    ('marketplace', 'currency', NULL, '"KWD"', NULL, NULL),
    ('marketplace', 'status', '$.state', NULL, NULL, NULL),
    ('marketplace', 'lines', '$.rows', NULL, NULL, NULL),
    ('marketplace', 'line.item_id', '$.sku', NULL, NULL, NULL),
    ('marketplace', 'line.qty', '$.n', NULL, NULL, NULL),
    ('marketplace', 'line.line_total', '$.amount', NULL, NULL, NULL),
    ('marketplace', 'line.color', '$.colour', NULL, NULL, NULL);
SELECT jsonb_pretty(reco.channel_mapping('marketplace'));
SELECT reco.ingest_order('marketplace', '{"ref": "K-1", "buyer": {"email": "Ali@Example.KW"}, "ts": 1709301900,
    "state": "delivered", "rows": [{"sku": "DATES-1KG", "n": 2, "amount": "7.500", "colour": "brown"}]}');
SELECT order_id, customer_id, placed_at, currency, total_minor, status FROM reco.orders WHERE channel = 'marketplace';
SELECT try($$INSERT INTO reco.channel_mappings (channel, field, path) VALUES ('marketplace', 'custmer_id', '$.x')$$);
SELECT try($$INSERT INTO reco.channel_mappings (channel, field, path) VALUES ('other', 'customer_id', 'buyer.id')$$);
SELECT try($$INSERT INTO reco.channel_mappings (channel, field, path, transform) VALUES ('other', 'total', '$.t', 'epoch_ms')$$);
SELECT try($$INSERT INTO reco.channel_mappings (channel, field, path, value) VALUES ('other', 'total', '$.t', '1')$$);
SELECT try($$INSERT INTO reco.channel_mappings (channel, field, path) VALUES ('Other Channel', 'total', '$.t')$$);
-- found by sqlsmith (tests/integration/tests/sqlsmith.rs): a row without a channel or field is
-- the NOT NULL constraint's to refuse (23502), not an internal error (XX000) from the row check
-- (the first line only: the failing row's DETAIL holds the time of the insert)
SELECT split_part(try($$INSERT INTO reco.channel_mappings VALUES (cast(null as text), cast(null as text), cast(null as text), default, default, cast(null as text), cast(null as timestamptz))$$), E'\n', 1) AS try;
SELECT split_part(try($$INSERT INTO reco.channel_mappings (channel, field, path) VALUES ('other', NULL, '$.t')$$), E'\n', 1) AS try;
-- a mapping row overrides one field of a built-in channel
INSERT INTO reco.channel_mappings (channel, field, path, transform) VALUES ('woocommerce', 'customer_id', '$.billing.email', 'lower');
SELECT reco.normalize_order('woocommerce', payload, reco.channel_mapping('woocommerce'))->>'customer_id' FROM fixtures WHERE channel = 'woocommerce';
-- a channel without rows is unknown; one with too few rows says what is missing
SELECT try($$SELECT reco.ingest_order('other', '{}')$$);
INSERT INTO reco.channel_mappings (channel, field, path) VALUES ('partial', 'external_id', '$.id');
SELECT try($$SELECT reco.ingest_order('partial', '{"id": 1}')$$);

-- order lines name existing items; a named item cannot be deleted, renamed or truncated away
-- (statement-level checks, sql/schema.sql)
SELECT try($$INSERT INTO reco.order_lines (order_id, line_no, item_id, qty, unit_price_minor) VALUES ('shopify:450789469', 99, 'NO-SUCH-SKU', 1, 100)$$);
SELECT try($$DELETE FROM reco.items WHERE item_id = 'DATES-1KG'$$);
SELECT try($$UPDATE reco.items SET item_id = 'DATES-2KG' WHERE item_id = 'DATES-1KG'$$);
SELECT try($$TRUNCATE reco.items, reco.stock$$);
UPDATE reco.items SET title = 'Dates, 1 kg' WHERE item_id = 'DATES-1KG';  -- other columns change freely
INSERT INTO reco.items (item_id, title) VALUES ('NEVER-SOLD', 'never sold');
DELETE FROM reco.items WHERE item_id = 'NEVER-SOLD';                     -- and unsold items go
SELECT count(*) AS lines_of_dates FROM reco.order_lines WHERE item_id = 'DATES-1KG';
