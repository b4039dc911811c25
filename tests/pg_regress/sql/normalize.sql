-- normalize_order: every built-in channel to the canonical order; pure and immutable.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\pset format aligned
SELECT channel, o->>'order_id' AS order_id, o->>'customer_id' AS customer, o->>'placed_at' AS placed_at,
       o->>'currency' AS cur, (o->>'total_minor')::bigint AS total_minor, o->>'status' AS status, o->>'country' AS country,
       o->>'delivery_speed' AS delivery
FROM fixtures, LATERAL reco.normalize_order(channel, payload) AS o
ORDER BY channel;

SELECT channel, l->>'line_no' AS n, l->>'item_id' AS item, l->>'qty' AS qty, l->>'unit_price_minor' AS unit_minor,
       l->>'size' AS size, l->>'color' AS color
FROM fixtures, LATERAL jsonb_array_elements(reco.normalize_order(channel, payload)->'lines') AS l
ORDER BY channel, (l->>'line_no')::int;

-- the whole canonical document of one channel
SELECT jsonb_pretty(reco.normalize_order('pos', payload)) FROM fixtures WHERE channel = 'pos';

-- standardizers on their own
SELECT v, reco.standardize_timestamp(v) FROM (VALUES ('2024-03-01T15:05:00+01:00'), ('20240301T140500Z'),
    ('1709301900'), ('1709301900123'), ('2024-03-01')) AS t(v);
SELECT reco.standardize_timestamp('2024-07-15 18:30:05', 'Europe/Berlin') AS berlin_summer,
       reco.standardize_timestamp('2024-10-27 02:30:00', 'Europe/Berlin') AS repeated_hour_first;
SELECT a, c, reco.standardize_money(a, c) AS minor, reco.money_amount(reco.standardize_money(a, c), c) AS back
FROM (VALUES ('19.99', 'USD'), ('1500', 'jpy'), ('1.250', 'KWD'), ('-0.5', 'EUR'), ('1.999e1', 'USD')) AS t(a, c);
SELECT v, f, reco.standardize_size(v, f) FROM (VALUES ('small', 'any'), ('X-Large', 'tops'), ('2X', 'any'),
    ('US 9', 'shoes'), ('UK 8', 'shoes'), ('42', 'shoes'), ('32x34', 'bottoms'), ('One Size', 'any')) AS t(v, f);
SELECT v, reco.standardize_color(v) FROM (VALUES ('Charcoal'), ('Navy Blue'), ('burgundy'), ('rose gold'),
    ('black/white'), ('#1a1f5c'), ('Schwarz')) AS t(v);
SELECT reco.standardize_country('usa'), reco.standardize_country('Germany'), reco.standardize_currency('eur'),
       reco.currency_exponent('KWD');

-- bad input: SQLSTATE, a message naming the value (and the channel and JSON path), a hint
SELECT try($$SELECT reco.normalize_order('ebay', '{}')$$);
SELECT try($$SELECT reco.normalize_order('shopify', payload - 'customer') FROM fixtures WHERE channel = 'shopify'$$);
SELECT try($$SELECT reco.normalize_order('shopify', jsonb_set(payload, '{line_items,1,quantity}', '-2')) FROM fixtures WHERE channel = 'shopify'$$);
SELECT try($$SELECT reco.normalize_order('shopify', jsonb_set(payload, '{total_price}', '"608.945"')) FROM fixtures WHERE channel = 'shopify'$$);
SELECT try($$SELECT reco.normalize_order('amazon', jsonb_set(payload, '{OrderItems,0,ItemPrice,Amount}', '"3980.5"')) FROM fixtures WHERE channel = 'amazon'$$);
SELECT try($$SELECT reco.normalize_order('web', jsonb_set(payload, '{created_ms}', '"2024-02-30T10:00:00"')) FROM fixtures WHERE channel = 'web'$$);
SELECT try($$SELECT reco.normalize_order('web', jsonb_set(payload, '{cart,items}', '{"a": 1}')) FROM fixtures WHERE channel = 'web'$$);
SELECT try($$SELECT reco.normalize_order('pos', jsonb_set(payload, '{store,timezone}', '"Mars/Olympus"')) FROM fixtures WHERE channel = 'pos'$$);
SELECT try($$SELECT reco.normalize_order('web', '[1, 2, 3]')$$);
SELECT try($$SELECT reco.normalize_order('web', '"\u00ff\u2028 garbage \ufffd"')$$);
SELECT try($$SELECT reco.normalize_order('web', (repeat('[', 1000) || repeat(']', 1000))::jsonb)$$);
SELECT try($$SELECT reco.normalize_order('web', jsonb_set(payload, '{customer_id}', to_jsonb(repeat('x', 300)))) FROM fixtures WHERE channel = 'web'$$);
SELECT try($$SELECT reco.standardize_money('1,000.00', 'USD')$$);
SELECT try($$SELECT reco.standardize_money('5', 'DOLLARS')$$);
SELECT try($$SELECT reco.standardize_timestamp('2024-03-31 02:30', 'Europe/Berlin')$$);
SELECT try($$SELECT reco.standardize_timestamp('01/03/2024')$$);
SELECT try($$SELECT reco.standardize_timestamp('2024-01-01', 'Mars/Olympus')$$);
SELECT try($$SELECT reco.standardize_size('banana')$$);
SELECT try($$SELECT reco.standardize_size('42')$$);
SELECT try($$SELECT reco.standardize_color('blorange')$$);

-- a 5 MB payload is normalized (unknown fields are ignored), and the backend lives on
SELECT (reco.normalize_order('web', payload || jsonb_build_object('note', repeat('x', 5 * 1024 * 1024))))->>'order_id'
FROM fixtures WHERE channel = 'web';
SELECT 1 AS still_alive;
