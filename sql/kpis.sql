-- Business metrics and targets. Kept in one file that a fresh install and the 0.1.0 → 0.2.0
-- update both run (the preference views existed in 0.1.0: CREATE OR REPLACE, same columns).

-- Business metrics. Capture rate: share of customers active in the window (an order or an
-- event) who captured at least one explicit preference in it. Utilization rate: share of the
-- last 30 days' orders, among those where the customer had a size or color preference at
-- order time, whose sized and colored lines all match it.
CREATE OR REPLACE VIEW reco.preference_capture_rate AS
SELECT w.days AS window_days,
       count(a.customer_id) AS active_customers,
       count(a.customer_id) FILTER (WHERE EXISTS (
           SELECT 1 FROM reco.preferences p
           WHERE p.customer_id = a.customer_id AND p.explicit AND p.observed_at >= now() - make_interval(days => w.days)))
         AS capturing_customers,
       round(count(a.customer_id) FILTER (WHERE EXISTS (
           SELECT 1 FROM reco.preferences p
           WHERE p.customer_id = a.customer_id AND p.explicit AND p.observed_at >= now() - make_interval(days => w.days)))::numeric
         / nullif(count(a.customer_id), 0), 4) AS rate
FROM (VALUES (7), (30), (90)) AS w(days)
LEFT JOIN LATERAL (
    SELECT o.customer_id FROM reco.orders o WHERE o.customer_id IS NOT NULL AND o.placed_at >= now() - make_interval(days => w.days)
    UNION
    SELECT e.customer_id FROM reco.events e WHERE e.customer_id IS NOT NULL AND e.occurred_at >= now() - make_interval(days => w.days)
) a ON true
GROUP BY w.days;
COMMENT ON VIEW reco.preference_capture_rate IS 'Share of active customers who captured an explicit preference, over 7, 30 and 90 days.';

CREATE OR REPLACE VIEW reco.preference_utilization_rate AS
WITH judged AS (
    SELECT o.order_id,
           bool_and(
               (l.size IS NULL OR p -> sc -> 'value' IS NULL OR p -> sc ->> 'value' = l.size)
               AND (l.color IS NULL OR p -> 'color' -> 'value' IS NULL OR p -> 'color' ->> 'value' = l.color)) AS matched,
           bool_or((l.size IS NOT NULL AND p -> sc IS NOT NULL) OR (l.color IS NOT NULL AND p ? 'color')) AS applicable
    FROM reco.orders o
    JOIN reco.order_lines l USING (order_id)
    CROSS JOIN LATERAL reco.resolve_preferences_at(o.customer_id, o.placed_at) AS p
    CROSS JOIN LATERAL (SELECT CASE WHEN l.size LIKE 'EU%' THEN 'size_shoes' WHEN l.size LIKE 'W%' THEN 'size_bottoms'
                                    WHEN l.size <> 'OS' THEN 'size_tops' END AS sc) AS f
    WHERE o.placed_at >= now() - interval '30 days' AND o.customer_id IS NOT NULL AND o.status <> 'cancelled'
    GROUP BY o.order_id
)
SELECT 30 AS window_days,
       count(*) FILTER (WHERE applicable) AS orders_with_preferences,
       count(*) FILTER (WHERE applicable AND matched) AS matching_orders,
       round((count(*) FILTER (WHERE applicable AND matched))::numeric / nullif(count(*) FILTER (WHERE applicable), 0), 4) AS rate
FROM judged;
COMMENT ON VIEW reco.preference_utilization_rate IS 'Share of the last 30 days'' orders whose sized/colored lines match the preferences resolved at order time.';

-- How long resolving one customer's preferences takes now: the 99th percentile of up to 200
-- lookups of customers who have preferences, in milliseconds (NULL when nobody has any).
CREATE FUNCTION reco._preference_lookup_ms(lookups int DEFAULT 200) RETURNS double precision
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    c text;
    t0 timestamptz;
    ms double precision[] := '{}';
BEGIN
    FOR c IN SELECT DISTINCT p.customer_id FROM reco.preferences p WHERE p.revoked_at IS NULL LIMIT greatest(lookups, 1) LOOP
        t0 := clock_timestamp();
        PERFORM reco.resolve_preferences(c);
        ms := ms || extract(epoch FROM clock_timestamp() - t0)::float8 * 1000;
    END LOOP;
    RETURN (SELECT percentile_disc(0.99) WITHIN GROUP (ORDER BY x) FROM unnest(ms) x);
END $$;

-- The business targets beside their current values (the last 30 days). The e-mail targets are
-- the rows of reco.notification_kpi_targets (edit them there); the others are the product's.
CREATE VIEW reco.kpis AS
WITH rec AS (
    SELECT sum(k.impressions) AS n, sum(k.clicked)::float8 / nullif(sum(k.impressions), 0) AS ctr,
           sum(k.converted)::float8 / nullif(sum(k.impressions), 0) AS conv
    FROM reco.recommendation_kpis_for(now() - interval '30 days', now()) k),
mail AS (
    SELECT sum(k.delivered) AS n, sum(k.opened)::float8 / nullif(sum(k.delivered), 0) AS open_rate,
           sum(k.clicked)::float8 / nullif(sum(k.delivered), 0) AS click_rate
    FROM reco.notification_kpis_for(now() - interval '30 days', now()) k),
t AS (
    SELECT max(x.target) FILTER (WHERE x.metric = 'open_rate') AS open_rate, max(x.target) FILTER (WHERE x.metric = 'click_rate') AS click_rate,
           max(x.target) FILTER (WHERE x.metric = 'conversion_rate') AS conversion_rate
    FROM reco.notification_kpi_targets x),
v (o, kpi, description, comparison, target, value, basis) AS (
    SELECT 1, 'recommendation_ctr', 'logged recommendation lists with a click attributed to them', '>', NULL::float8, rec.ctr, rec.n FROM rec
    UNION ALL
    SELECT 2, 'recommendation_conversion', 'logged recommendation lists with a purchase attributed to them', '>', t.conversion_rate, rec.conv, rec.n FROM rec, t
    UNION ALL
    SELECT 3, 'email_open_rate', 'delivered messages opened (machine opens left out)', '>', t.open_rate, mail.open_rate, mail.n FROM mail, t
    UNION ALL
    SELECT 4, 'email_click_rate', 'delivered messages clicked', '>', t.click_rate, mail.click_rate, mail.n FROM mail, t
    UNION ALL
    SELECT 5, 'preference_capture', 'active customers who captured an explicit preference', '>', 0.95, c.rate::float8, c.active_customers
    FROM reco.preference_capture_rate c WHERE c.window_days = 30
    UNION ALL
    SELECT 6, 'preference_utilization', 'orders with preferences whose sized and colored lines match them', '>', 0.80, u.rate::float8, u.orders_with_preferences
    FROM reco.preference_utilization_rate u
    UNION ALL
    SELECT 7, 'preference_lookup_ms', 'resolve_preferences, 99th percentile of up to 200 lookups now, in ms', '<', 200, reco._preference_lookup_ms(), NULL)
SELECT v.kpi, v.description, v.comparison, v.target, v.value,
       CASE WHEN v.target IS NULL OR v.value IS NULL THEN NULL WHEN v.comparison = '>' THEN v.value > v.target ELSE v.value < v.target END AS met,
       v.basis
FROM v ORDER BY v.o;
COMMENT ON VIEW reco.kpis IS 'Each business target beside its current value over the last 30 days: recommendation CTR (no target set) and conversion (per logged list, target as e-mail conversion), e-mail open and click rates (targets in reco.notification_kpi_targets), preference capture (> 95%) and utilization (> 80%), preference lookup time (< 200 ms); met is NULL without a target or data; basis is the count the rate is over.';

REVOKE ALL ON FUNCTION reco._preference_lookup_ms(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reco._preference_lookup_ms(integer) TO reco_reader;
GRANT SELECT ON reco.kpis TO reco_reader;
