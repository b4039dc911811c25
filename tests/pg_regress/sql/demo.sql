-- load_demo: a small OMS with planted structure, through the normal ingestion path.
SET timezone = 'UTC';
SELECT reset();
SELECT reco.load_demo('small', 42) - 'seconds' AS loaded;
-- every order came through normalization: canonical, in EUR, with standard sizes and colors
SELECT count(*) AS orders, count(DISTINCT customer_id) AS customers, min(currency) AS currency,
       count(*) FILTER (WHERE delivery_speed = 'express') > 0 AS some_express FROM reco.orders;
SELECT count(*) FILTER (WHERE size IS NOT NULL) > 0 AS sized_lines, bool_and(size IS NULL OR size ~ '^(S|M|L|XL|XXL|W\d+L\d+|EU\d+)$') AS sizes_canonical
FROM reco.order_lines;
-- stock states: some out of stock, some backordered
SELECT count(*) FILTER (WHERE available = 0 AND NOT backordered) > 0 AS out_of_stock, count(*) FILTER (WHERE backordered) > 0 AS backordered
FROM reco.stock;
-- the planted complements: lift well above 1 (3 to 5 depending on the load date), unrelated pairs near 0.1
WITH baskets AS (
  SELECT l.order_id, array_agg(DISTINCT i.category) AS cats
  FROM reco.order_lines l JOIN reco.items i USING (item_id) GROUP BY l.order_id),
n AS (SELECT count(*)::float8 AS n FROM baskets)
SELECT a, b, round((count(*) FILTER (WHERE a = ANY(cats) AND b = ANY(cats)) / n.n
              / ((count(*) FILTER (WHERE a = ANY(cats)) / n.n) * (count(*) FILTER (WHERE b = ANY(cats)) / n.n)))::numeric, 1) > 2 AS lift_above_2
FROM baskets, n, (VALUES ('phones', 'phone_cases'), ('shoes', 'socks'), ('laptops', 'laptop_bags'), ('coffee', 'mugs'), ('jeans', 'belts'),
                         ('phones', 'socks')) p(a, b)
GROUP BY a, b, n.n ORDER BY a;
-- the clickstream has views, cart adds and returns with reasons
SELECT kind, count(*) > 0 AS present FROM reco.events GROUP BY kind ORDER BY kind;
SELECT count(*) > 0 AS returns_with_reason FROM reco.events WHERE kind = 'return' AND context ? 'reason';
-- the demand forecast against the naive ones on the demo's sales (sparse: a few units a day
-- per category, with a weekend lift), over the last eight weeks: per item and day against "the
-- same day last week", per item and week against "last week's units"
SELECT count(*) AS weeks, sum(wape * units) < sum(wape_naive * units) AS daily_better, sum(wape_week * units) < sum(wape_week_naive * units) AS weekly_better
FROM reco.demand_backtest(weeks => 8);
SELECT try($$SELECT reco.load_demo('small')$$);
SELECT try($$SELECT reco.load_demo('galactic')$$);
