-- Recommendation KPIs: logged lists per day, placement, model, experiment and arm, and what is
-- attributed to them (an event's rec_id, else the latest list that showed the item within the
-- window: last touch; revenue line by line). Every timestamp is pinned, except in the last part
-- (reco.kpis reads the last 30 days), whose data is placed relative to the clock.
SET timezone = 'UTC';
SELECT reset();
TRUNCATE reco.recommendations RESTART IDENTITY CASCADE;
INSERT INTO reco.items (item_id, title, category, price, currency) VALUES
    ('a', 'A', 'phones', 10, 'EUR'), ('b', 'B', 'cases', 5, 'EUR'), ('c', 'C', 'cables', 3, 'EUR');
INSERT INTO reco.customers (customer_id) VALUES ('u1'), ('u2'), ('u3');
-- four lists: rec_id 1..4
INSERT INTO reco.recommendations (customer_id, placement, model_id, items, scores, context, shown_at) VALUES
    ('u1', 'home', NULL, '{a,b}', '{2,1}', '{}', '2026-03-02 10:00+00'),
    ('u2', 'checkout', NULL, '{c}', '{1}', '{}', '2026-03-02 10:00+00'),
    ('u3', 'home', NULL, '{a}', '{1}', '{"experiment": "x", "arm": "b"}', '2026-03-02 11:00+00'),
    ('u1', 'home', NULL, '{b}', '{1}', '{}', '2026-03-03 10:00+00');
INSERT INTO reco.orders (order_id, channel, external_id, customer_id, placed_at, currency, subtotal_minor, total_minor, status, canonical_hash) VALUES
    ('web:1', 'web', '1', 'u1', '2026-03-02 12:00+00', 'EUR', 1900, 1900, 'paid', 1),
    ('web:2', 'web', '2', 'u3', '2026-03-02 12:00+00', 'EUR', 1000, 1000, 'cancelled', 2),
    ('web:3', 'web', '3', 'u1', '2026-03-03 11:00+00', 'JPY', 700, 700, 'paid', 3),
    ('web:4', 'web', '4', 'u2', '2026-03-04 12:00+00', 'EUR', 300, 300, 'paid', 4);
INSERT INTO reco.order_lines (order_id, line_no, item_id, qty, unit_price_minor, discount_minor) VALUES
    ('web:1', 1, 'a', 2, 1000, 100), ('web:2', 1, 'a', 1, 1000, 0), ('web:3', 1, 'b', 1, 700, 0), ('web:4', 1, 'c', 1, 300, 0);
INSERT INTO reco.events (customer_id, item_id, kind, value, channel, occurred_at, order_id, context) VALUES
    ('u1', 'a', 'click', NULL, 'web', '2026-03-02 10:05+00', NULL, '{"rec_id": 1}'),      -- list 1 by its rec_id
    ('u1', 'a', 'purchase', 2, 'web', '2026-03-02 12:00+00', 'web:1', '{}'),             -- list 1, last touch: 19.00 EUR
    ('u2', 'c', 'cart_add', 1, 'web', '2026-03-02 11:00+00', NULL, '{}'),                -- list 2, last touch
    ('u3', 'a', 'click', NULL, 'web', '2026-03-02 11:01+00', NULL, '{"rec_id": 3}'),      -- list 3 (arm b)
    ('u3', 'a', 'purchase', 1, 'web', '2026-03-02 12:00+00', 'web:2', '{"rec_id": 3}'),  -- cancelled: counts for nothing
    ('u1', 'b', 'purchase', 1, 'web', '2026-03-03 11:00+00', 'web:3', '{}'),             -- list 4 (list 1 is 25 h old): 700 JPY
    ('u2', 'c', 'purchase', 1, 'web', '2026-03-04 12:00+00', 'web:4', '{}'),             -- list 2 is 2 days old: nobody's
    ('u2', 'c', 'click', NULL, 'web', '2026-03-02 09:00+00', NULL, '{"rec_id": 2}');     -- before its list was shown: not counted
SELECT * FROM reco.recommendation_kpis_for('2026-03-01', '2026-03-05');
-- a longer window reaches the late purchase; a period that leaves list 4 out leaves its sale out
SELECT day, placement, converted, orders, revenue FROM reco.recommendation_kpis_for('2026-03-01', '2026-03-05', attribution_window => '3 days');
SELECT day, placement, impressions, converted, revenue FROM reco.recommendation_kpis_for('2026-03-01', '2026-03-03');

-- bad input: an error with a hint
SELECT try($$SELECT * FROM reco.recommendation_kpis_for('2026-03-05', '2026-03-01')$$);
SELECT try($$SELECT * FROM reco.recommendation_kpis_for('2026-03-01', 'infinity')$$);
SELECT try($$SELECT * FROM reco.recommendation_kpis_for(attribution_window => '-1 hour')$$);

-- reco.kpis: each target beside its value over the last 30 days (the data moved to yesterday)
UPDATE reco.recommendations SET shown_at = now() - interval '1 day' + (shown_at - '2026-03-02 10:00+00');
UPDATE reco.events SET occurred_at = now() - interval '1 day' + (occurred_at - '2026-03-02 10:00+00');
UPDATE reco.orders SET placed_at = now() - interval '1 day' + (placed_at - '2026-03-02 10:00+00');
SELECT count(reco.capture_preference('u1', 'color', 'red', 'profile'));  -- one of the three active customers
SELECT kpi, comparison, target,
       CASE WHEN kpi = 'preference_lookup_ms' THEN (value < 200)::text ELSE round(value::numeric, 4)::text END AS value,
       met, basis
FROM reco.kpis;

-- roles: readers (and writers, who are readers) and the reporting role read the KPIs; a
-- customer-facing session cannot
SET ROLE reco_reader;
SELECT count(*) AS reader_rows FROM reco.recommendation_kpis;
SELECT count(*) AS reader_kpis FROM reco.kpis;
RESET ROLE;
SET ROLE reco_reporting;
SELECT count(*) AS reporting_rows FROM reco.recommendation_kpis_for(now() - interval '7 days', now());
RESET ROLE;
SET ROLE reco_customer;
SELECT try($$SELECT count(*) FROM reco.recommendation_kpis$$);
SELECT try($$SELECT count(*) FROM reco.kpis$$);
SELECT try($$SELECT count(*) FROM reco.recommendation_kpis_for()$$);
RESET ROLE;
TRUNCATE reco.recommendations RESTART IDENTITY CASCADE;
SELECT reset();
