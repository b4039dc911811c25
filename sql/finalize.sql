-- Loaded last: objects that use the functions defined in Rust.

CREATE FUNCTION reco._channel_mappings_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = reco, pg_catalog AS $$
BEGIN
    PERFORM reco._check_mapping_row(NEW.channel, NEW.field, NEW.path, NEW.value, NEW.transform, NEW.zone);
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER channel_mappings_check BEFORE INSERT OR UPDATE ON reco.channel_mappings
FOR EACH ROW EXECUTE FUNCTION reco._channel_mappings_check();

-- The mapping of one channel as the JSON object normalize_order(channel, payload, mapping) takes.
CREATE FUNCTION reco.channel_mapping(channel text) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = reco, pg_catalog AS $$
    SELECT jsonb_object_agg(m.field, jsonb_strip_nulls(jsonb_build_object(
               'path', m.path, 'value', m.value, 'transform', m.transform, 'zone', m.zone)))
    FROM reco.channel_mappings m
    WHERE m.channel = channel_mapping.channel
$$;
COMMENT ON FUNCTION reco.channel_mapping(text) IS 'The rows of reco.channel_mappings for one channel as a mapping object, or NULL when it has none.';

-- Preferences: the ledger is append-only except for marking a revocation.
CREATE FUNCTION reco._preferences_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = reco, pg_catalog AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL
       OR (NEW.customer_id, NEW.category, NEW.value, NEW.source, NEW.explicit, NEW.confidence, NEW.evidence,
           NEW.channel, NEW.observed_at, NEW.recorded_at)
          IS DISTINCT FROM (OLD.customer_id, OLD.category, OLD.value, OLD.source, OLD.explicit, OLD.confidence,
           OLD.evidence, OLD.channel, OLD.observed_at, OLD.recorded_at) THEN
        RAISE EXCEPTION 'preference % is history and cannot be changed', OLD.preference_id
            USING ERRCODE = '55000', HINT = 'capture a new value (reco.set_preference) or revoke the category (reco.revoke_preference)';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER preferences_append_only BEFORE UPDATE ON reco.preferences
FOR EACH ROW EXECUTE FUNCTION reco._preferences_append_only();

-- Every change tells caches (web, mobile, kiosk) which customer to drop: once per customer
-- and statement (statement-level triggers over transition tables), and PostgreSQL folds
-- repeats within a transaction.
CREATE FUNCTION reco._preferences_notify() RETURNS trigger
LANGUAGE plpgsql SET search_path = reco, pg_catalog AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('reco_preferences', d.customer_id) FROM (SELECT DISTINCT customer_id FROM old_rows) d;
    ELSE
        PERFORM pg_notify('reco_preferences', d.customer_id) FROM (SELECT DISTINCT customer_id FROM new_rows) d;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER preferences_notify_ins AFTER INSERT ON reco.preferences
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION reco._preferences_notify();
CREATE TRIGGER preferences_notify_upd AFTER UPDATE ON reco.preferences
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION reco._preferences_notify();
CREATE TRIGGER preferences_notify_del AFTER DELETE ON reco.preferences
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION reco._preferences_notify();
CREATE TRIGGER preference_revocations_notify_ins AFTER INSERT ON reco.preference_revocations
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION reco._preferences_notify();
CREATE TRIGGER preference_revocations_notify_upd AFTER UPDATE ON reco.preference_revocations
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION reco._preferences_notify();
CREATE TRIGGER preference_revocations_notify_del AFTER DELETE ON reco.preference_revocations
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION reco._preferences_notify();

-- Creates a customer the first time a preference names them. A session scoped to one customer
-- (SET reco.customer_id) may only name that customer.
CREATE FUNCTION reco._ensure_customer(customer_id text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = reco, pg_catalog AS $$
DECLARE scope text := nullif(current_setting('reco.customer_id', true), '');
BEGIN
    IF scope IS NOT NULL AND scope IS DISTINCT FROM _ensure_customer.customer_id THEN
        RAISE EXCEPTION 'customer % is outside this session''s scope', _ensure_customer.customer_id
            USING ERRCODE = '42501', HINT = 'this session has reco.customer_id = ' || scope;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM reco.customers c WHERE c.customer_id = _ensure_customer.customer_id) THEN
        INSERT INTO reco.customers (customer_id) VALUES (_ensure_customer.customer_id) ON CONFLICT DO NOTHING;
    END IF;
END $$;

-- Reporting: each customer's resolved preferences, one row per category.
CREATE VIEW reco.preferences_current AS
SELECT c.customer_id, r.key AS category, r.value -> 'value' AS value, r.value ->> 'source' AS source,
       (r.value ->> 'observed_at')::timestamptz AS observed_at, (r.value ->> 'confidence')::float8 AS confidence,
       r.value ->> 'why' AS why
FROM (SELECT DISTINCT p.customer_id FROM reco.preferences p WHERE p.revoked_at IS NULL) c,
     LATERAL jsonb_each(reco.resolve_preferences(c.customer_id)) r;
COMMENT ON VIEW reco.preferences_current IS 'One row per customer and category: the value resolve_preferences chooses without a request context.';

-- Business metrics. Capture rate: share of customers active in the window (an order or an
-- event) who captured at least one explicit preference in it. Utilization rate: share of the
-- last 30 days' orders, among those where the customer had a size or color preference at
-- order time, whose sized and colored lines all match it.
CREATE VIEW reco.preference_capture_rate AS
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

CREATE VIEW reco.preference_utilization_rate AS
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

-- Roles. Created once per cluster; the grants are the extension's.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reco_reader') THEN CREATE ROLE reco_reader NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reco_writer') THEN CREATE ROLE reco_writer NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reco_admin') THEN CREATE ROLE reco_admin NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reco_customer') THEN CREATE ROLE reco_customer NOLOGIN; END IF;
END $$;
GRANT reco_reader TO reco_writer;
GRANT reco_writer TO reco_admin;

GRANT USAGE ON SCHEMA reco TO reco_reader;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA reco FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA reco TO reco_reader;
REVOKE EXECUTE ON FUNCTION reco._check_mapping_row(text, text, text, jsonb, text, text), reco._ensure_customer(text),
    reco.forget_customer(text) FROM reco_reader;
REVOKE EXECUTE ON FUNCTION reco.infer_preferences(text), reco.infer_all_preferences(timestamptz) FROM reco_reader;
GRANT EXECUTE ON FUNCTION reco.infer_preferences(text), reco.infer_all_preferences(timestamptz) TO reco_writer;
GRANT EXECUTE ON FUNCTION reco.filter_by_preferences(text, text[]), reco.alternatives(text, text, integer) TO reco_customer;
REVOKE EXECUTE ON FUNCTION reco.capture_preference(text, text, text, text, timestamptz, text, double precision),
    reco.capture_preferences(text, jsonb, text, timestamptz, text), reco.set_preference(text, text, text),
    reco.revoke_preference(text, text) FROM reco_reader;
GRANT EXECUTE ON FUNCTION reco.capture_preference(text, text, text, text, timestamptz, text, double precision),
    reco.capture_preferences(text, jsonb, text, timestamptz, text), reco.set_preference(text, text, text),
    reco.revoke_preference(text, text), reco._ensure_customer(text) TO reco_writer, reco_customer;
GRANT EXECUTE ON FUNCTION reco.resolve_preferences(text, jsonb) TO reco_customer;
GRANT EXECUTE ON FUNCTION reco.forget_customer(text) TO reco_admin;
REVOKE EXECUTE ON FUNCTION reco.load_demo(text, integer) FROM reco_reader;
GRANT EXECUTE ON FUNCTION reco.load_demo(text, integer) TO reco_admin;
-- training and deployment are for admins; evaluate only reads
REVOKE EXECUTE ON FUNCTION reco.train(text, jsonb), reco.deploy(bigint), reco.deploy(text), reco._deploy(bigint, text),
    reco.prune_models(integer), reco.schedule_training(text, text, text), reco._event_weights_update() FROM reco_reader;
GRANT EXECUTE ON FUNCTION reco.train(text, jsonb), reco.deploy(bigint), reco.deploy(text), reco._deploy(bigint, text),
    reco.prune_models(integer), reco.schedule_training(text, text, text), reco._event_weights_update() TO reco_admin;
REVOKE EXECUTE ON FUNCTION reco.ingest_order(text, jsonb), reco.ingest_orders(text, jsonb),
    reco.record_event(text, text, text, double precision, timestamptz, jsonb, text, text, text),
    reco.ingest_event(text, jsonb), reco.ingest_events(text, jsonb) FROM reco_reader;
GRANT EXECUTE ON FUNCTION reco.ingest_order(text, jsonb), reco.ingest_orders(text, jsonb),
    reco.record_event(text, text, text, double precision, timestamptz, jsonb, text, text, text),
    reco.ingest_event(text, jsonb), reco.ingest_events(text, jsonb) TO reco_writer;
GRANT SELECT ON ALL TABLES IN SCHEMA reco TO reco_reader;
-- Writers ingest through the functions; they do not rewrite history directly.
GRANT INSERT ON reco.ingest_errors TO reco_writer;
GRANT INSERT, UPDATE ON reco.items, reco.stock, reco.customers TO reco_writer;
-- serving: recommend(context "log": true) records what it showed
GRANT INSERT ON reco.recommendations TO reco_reader;
-- The preference ledger: capture and revoke, never rewrite (the append-only trigger also
-- guards admins). Row-level security: staff roles see all rows; a customer-facing session
-- (role reco_customer with SET reco.customer_id) sees and edits only that customer's rows.
GRANT INSERT, UPDATE (revoked_at) ON reco.preferences TO reco_writer;
GRANT INSERT, UPDATE, DELETE ON reco.preference_revocations TO reco_writer;
GRANT USAGE ON SCHEMA reco TO reco_customer;
GRANT SELECT ON reco.preference_categories, reco.preference_policy TO reco_customer;
GRANT SELECT, INSERT, UPDATE (revoked_at) ON reco.preferences TO reco_customer;
GRANT SELECT, INSERT, UPDATE, DELETE ON reco.preference_revocations TO reco_customer;
ALTER TABLE reco.preferences ENABLE ROW LEVEL SECURITY;
ALTER TABLE reco.preference_revocations ENABLE ROW LEVEL SECURITY;
CREATE POLICY staff ON reco.preferences TO reco_reader USING (true) WITH CHECK (true);
CREATE POLICY customer_self ON reco.preferences TO reco_customer
    USING (customer_id = current_setting('reco.customer_id', true))
    WITH CHECK (customer_id = current_setting('reco.customer_id', true));
CREATE POLICY staff ON reco.preference_revocations TO reco_reader USING (true) WITH CHECK (true);
CREATE POLICY customer_self ON reco.preference_revocations TO reco_customer
    USING (customer_id = current_setting('reco.customer_id', true))
    WITH CHECK (customer_id = current_setting('reco.customer_id', true));
GRANT ALL ON ALL TABLES IN SCHEMA reco TO reco_admin;

-- pg_dump skips the data of an extension's tables unless they are registered here, so
-- without this a backup would hold the schema and none of the orders, events or preferences.
SELECT pg_catalog.pg_extension_config_dump('reco.customers', '');
SELECT pg_catalog.pg_extension_config_dump('reco.items', '');
SELECT pg_catalog.pg_extension_config_dump('reco.stock', '');
SELECT pg_catalog.pg_extension_config_dump('reco.orders', '');
SELECT pg_catalog.pg_extension_config_dump('reco.order_lines', '');
SELECT pg_catalog.pg_extension_config_dump('reco.events', '');
SELECT pg_catalog.pg_extension_config_dump('reco.ingest_errors', '');
SELECT pg_catalog.pg_extension_config_dump('reco.channel_mappings', '');
SELECT pg_catalog.pg_extension_config_dump('reco.preference_categories', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('reco.preference_policy', '');
SELECT pg_catalog.pg_extension_config_dump('reco.preferences', '');
SELECT pg_catalog.pg_extension_config_dump('reco.preference_revocations', '');
SELECT pg_catalog.pg_extension_config_dump('reco.event_weight_overrides', '');
SELECT pg_catalog.pg_extension_config_dump('reco.models', '');
SELECT pg_catalog.pg_extension_config_dump('reco.deployments', '');
SELECT pg_catalog.pg_extension_config_dump('reco.item_vectors', '');
SELECT pg_catalog.pg_extension_config_dump('reco.customer_vectors', '');
SELECT pg_catalog.pg_extension_config_dump('reco.item_neighbors', '');
SELECT pg_catalog.pg_extension_config_dump('reco.item_knn', '');
SELECT pg_catalog.pg_extension_config_dump('reco.item_popularity', '');
SELECT pg_catalog.pg_extension_config_dump('reco.segment_popularity', '');
SELECT pg_catalog.pg_extension_config_dump('reco.category_settings', '');
SELECT pg_catalog.pg_extension_config_dump('reco.placement_weights', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('reco.recommendations', '');
SELECT pg_catalog.pg_extension_config_dump('reco.recommendations_rec_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('reco.models_model_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('reco.deployments_deployment_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('reco.events_event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('reco.ingest_errors_error_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('reco.preferences_preference_id_seq', '');
