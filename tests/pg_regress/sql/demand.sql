-- Demand: the forecast training stores with each model, days of cover against live stock,
-- demand-aware ranking by a placement weight, the low_stock trigger reading the same cover,
-- the backtest against a naive forecast, bad input and roles. The sales are planted relative to
-- the server's day (the tests run at several clocks): the hot item sells 10 a day on weekdays
-- and 20 at weekends, give or take 3 (a fixed pseudo-random sequence), the steady one 2 a day give or take 1, the slow one 1 unit every two weeks, and the old
-- one sold 80 days ago only.
SET timezone = 'UTC';
SELECT reset();
TRUNCATE reco.models CASCADE;
TRUNCATE reco.deployments, reco.recommendations, reco.triggers, reco.experiments CASCADE;
DELETE FROM reco.email_templates;
INSERT INTO reco.items (item_id, title, category, price, currency) VALUES
    ('hot', 'Hot', 'gadgets', 20, 'EUR'), ('steady', 'Steady', 'gadgets', 20, 'EUR'),
    ('slow', 'Slow', 'gadgets', 20, 'EUR'), ('old', 'Old', 'gadgets', 20, 'EUR'), ('new', 'New', 'gadgets', 20, 'EUR');
INSERT INTO reco.stock (item_id, available) VALUES ('hot', 20), ('steady', 100), ('slow', 3), ('old', 50), ('new', 10);
CREATE TEMP TABLE planted AS
SELECT s.item_id, d, s.qty
FROM generate_series(1, 90) d,
     LATERAL (VALUES ('hot', CASE WHEN extract(isodow FROM current_date - d) IN (6, 7) THEN 20 ELSE 10 END + abs(hashtext('hot' || d)) % 7 - 3),
                     ('steady', 1 + abs(hashtext('steady' || d)) % 3), ('slow', CASE WHEN d % 14 = 5 THEN 1 END), ('old', CASE WHEN d = 80 THEN 5 END)) s(item_id, qty)
WHERE s.qty IS NOT NULL AND (d <= 56 OR s.item_id = 'old');
SELECT received, inserted, failed FROM reco.ingest_orders('web', (
    SELECT jsonb_agg(jsonb_build_object('id', 'd-' || item_id || '-' || d, 'customer_id', 'buyer' || (d % 7), 'currency', 'EUR', 'status', 'delivered',
           'created_ms', (extract(epoch FROM date_trunc('day', now()) - make_interval(days => d) + interval '12 hours') * 1000)::int8,
           'cart', jsonb_build_object('items', jsonb_build_array(jsonb_build_object('sku', item_id, 'quantity', qty, 'unit_price', '20.00')))))
    FROM planted));

-- training stores the forecast: units per day by weekday (1 = Monday) and their mean
SET client_min_messages = warning;
SELECT reco.train('popularity') > 0 AS trained;
RESET client_min_messages;
SELECT reco.deploy('most_recent') IS NOT NULL AS deployed;
-- (the figures move a little with the weekday the tests run on: the decay weighs the last
-- days most)
SELECT item_id, round(per_day::numeric) AS per_day,
       CASE WHEN item_id = 'hot' THEN by_weekday[6] > 1.5 * by_weekday[2] END AS saturday_over_one_and_a_half_tuesdays
FROM reco.item_demand WHERE item_id IN ('hot', 'steady') ORDER BY per_day DESC;
SELECT item_id, per_day > 0 AND per_day < 0.2 AS a_unit_every_week_or_two FROM reco.item_demand WHERE item_id NOT IN ('hot', 'steady');

-- days of cover against live stock: the hot item has under two days, the old one no forecast
SELECT item_id, available, width_bucket(days_of_cover, ARRAY[0, 3, 30, 100]::float8[]) AS cover_0_3_30_100 FROM reco.demand ORDER BY 3, 1;
UPDATE reco.stock SET backordered = true WHERE item_id = 'slow';
SELECT item_id, days_of_cover FROM reco.demand WHERE item_id = 'slow';
UPDATE reco.stock SET backordered = false WHERE item_id = 'slow';

-- demand-aware ranking: best sellers by default; with the placement's demand weight the hot
-- item (fewer days of cover than reco.demand_lead_days, 3) goes down, and comes back once
-- restocked
INSERT INTO reco.placement_weights (placement, demand, description) VALUES ('home_demand', 1, 'home with demand-aware ranking');
SELECT string_agg(item_id, ', ' ORDER BY rank) AS home FROM reco.recommend('visitor', 4, '{"placement": "home", "max_per_category": 0}') WITH ORDINALITY r(item_id, score, reason, rank);
SELECT string_agg(item_id, ', ' ORDER BY rank) AS home_demand FROM reco.recommend('visitor', 4, '{"placement": "home_demand", "max_per_category": 0}') WITH ORDINALITY r(item_id, score, reason, rank);
UPDATE reco.stock SET available = 1000 WHERE item_id = 'hot';
SELECT string_agg(item_id, ', ' ORDER BY rank) AS home_demand_restocked FROM reco.recommend('visitor', 4, '{"placement": "home_demand", "max_per_category": 0}') WITH ORDINALITY r(item_id, score, reason, rank);
-- a 40-day lead time puts the slow item's 60-odd days of cover at risk too: it leaves the list
SET reco.demand_lead_days = 40;
SELECT string_agg(item_id, ', ' ORDER BY rank) AS long_lead FROM reco.recommend('visitor', 4, '{"placement": "home_demand", "max_per_category": 0}') WITH ORDINALITY r(item_id, score, reason, rank);
RESET reco.demand_lead_days;
UPDATE reco.stock SET available = 20 WHERE item_id = 'hot';

-- the low_stock trigger's max_days_of_cover reads the same days of cover
INSERT INTO reco.email_templates (name, subject, text_body) VALUES ('clear', 'Going fast', '{% for item in items %}{{ item.title }}{% endfor %}');
INSERT INTO reco.customers (customer_id, email_opt_in) VALUES ('fan', true);
SELECT reco.record_event('fan', 'new', 'view', value => 30, occurred_at => now() - interval '1 hour') > 0 AS viewed;
INSERT INTO reco.triggers (name, kind, template, params) VALUES ('clear', 'low_stock', 'clear', '{"max_available": 1, "max_days_of_cover": 3}');
SELECT trigger_name, candidates FROM reco.run_triggers(now => now(), only_trigger => 'clear');
SELECT customer_id, items FROM reco.notification_candidates ORDER BY items;

-- the backtest: each of the last weeks forecast from the 56 days before it, beside "the same
-- day last week"
SELECT count(*) AS weeks, bool_and(wape < wape_naive) AS better_every_week, bool_and(items = 3) AS items,
       bool_and(week_start = date_trunc('day', week_start)) AS whole_days
FROM reco.demand_backtest(weeks => 3);
SELECT try($$SELECT * FROM reco.demand_backtest(weeks => 0)$$);
SELECT try($$SELECT * FROM reco.demand_backtest(half_life_days => -1)$$);
SELECT try($$SELECT * FROM reco.demand_backtest(half_life_days => 'NaN')$$);
SELECT count(*) AS no_sales FROM reco.demand_backtest(now => '2000-01-01');
SELECT try($$UPDATE reco.placement_weights SET demand = -1 WHERE placement = 'home'$$);
SELECT try($$UPDATE reco.placement_weights SET demand = 'NaN' WHERE placement = 'home'$$);

-- roles: readers and reporting read the forecast and run the backtest; a customer-facing
-- session reads neither; only admins write
SET ROLE reco_reader;
SELECT count(*) > 0 AS reader_reads FROM reco.demand;
SELECT count(*) AS reader_backtest FROM reco.demand_backtest(weeks => 1);
SELECT try($$DELETE FROM reco.item_demand$$);
RESET ROLE;
SET ROLE reco_reporting;
SELECT count(*) > 0 AS reporting_reads FROM reco.item_demand;
RESET ROLE;
SET ROLE reco_customer;
SELECT try($$SELECT count(*) FROM reco.demand$$);
SELECT try($$SELECT * FROM reco.demand_backtest()$$);
RESET ROLE;

-- each model keeps its own forecast; deleting the models takes them with them
SET client_min_messages = warning;
SELECT reco.train('popularity') > 0 AS retrained;
RESET client_min_messages;
SELECT count(DISTINCT model_id) AS models_with_forecast FROM reco.item_demand;

TRUNCATE reco.models CASCADE;
TRUNCATE reco.deployments, reco.recommendations, reco.triggers, reco.notification_candidates CASCADE;
DELETE FROM reco.email_templates;
DELETE FROM reco.placement_weights WHERE placement = 'home_demand';
SELECT count(*) AS forecasts_left FROM reco.item_demand;
SELECT reset();
