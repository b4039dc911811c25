-- Loaded last: objects that use the functions defined in Rust.

CREATE FUNCTION reco._channel_mappings_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
BEGIN
    PERFORM reco._check_mapping_row(NEW.channel, NEW.field, NEW.path, NEW.value, NEW.transform, NEW.zone);
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER channel_mappings_check BEFORE INSERT OR UPDATE ON reco.channel_mappings
FOR EACH ROW EXECUTE FUNCTION reco._channel_mappings_check();

-- The mapping of one channel as the JSON object normalize_order(channel, payload, mapping) takes.
CREATE FUNCTION reco.channel_mapping(channel text) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, reco, pg_temp AS $$
    SELECT jsonb_object_agg(m.field, jsonb_strip_nulls(jsonb_build_object(
               'path', m.path, 'value', m.value, 'transform', m.transform, 'zone', m.zone)))
    FROM reco.channel_mappings m
    WHERE m.channel = channel_mapping.channel
$$;
COMMENT ON FUNCTION reco.channel_mapping(text) IS 'The rows of reco.channel_mappings for one channel as a mapping object, or NULL when it has none.';

-- Preferences: the ledger is append-only except for marking a revocation.
CREATE FUNCTION reco._preferences_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
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
-- repeats within a transaction. The payload is reco.customer_key(customer_id), a keyed hash,
-- never the id itself (ids are often e-mail addresses, and any role can LISTEN).
CREATE FUNCTION reco._preferences_notify() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_catalog.pg_notify('reco_preferences', reco.customer_key(d.customer_id)) FROM (SELECT DISTINCT customer_id FROM old_rows) d;
    ELSE
        PERFORM pg_catalog.pg_notify('reco_preferences', reco.customer_key(d.customer_id)) FROM (SELECT DISTINCT customer_id FROM new_rows) d;
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

-- Reporting: each customer's resolved preferences, one row per category.
CREATE VIEW reco.preferences_current AS
SELECT c.customer_id, r.key AS category, r.value -> 'value' AS value, r.value ->> 'source' AS source,
       (r.value ->> 'observed_at')::timestamptz AS observed_at, (r.value ->> 'confidence')::float8 AS confidence,
       r.value ->> 'why' AS why
FROM (SELECT DISTINCT p.customer_id FROM reco.preferences p WHERE p.revoked_at IS NULL) c,
     LATERAL jsonb_each(reco.resolve_preferences(c.customer_id)) r;
COMMENT ON VIEW reco.preferences_current IS 'One row per customer and category: the value resolve_preferences chooses without a request context.';

-- The business metrics (preference capture and utilization, reco.kpis) are in kpis.sql.

-- The roles themselves are created first, in schema.sql.

-- The secret behind customer tokens and keyed customer hashes: 256 random bits
-- (gen_random_uuid draws from pg_strong_random), readable by the owner role only.
INSERT INTO reco.secrets (name, key)
SELECT 'hmac', pg_catalog.decode(pg_catalog.replace(pg_catalog.gen_random_uuid()::pg_catalog.text || pg_catalog.gen_random_uuid()::pg_catalog.text
                                                  || pg_catalog.gen_random_uuid()::pg_catalog.text, '-', ''), 'hex')
ON CONFLICT (name) DO NOTHING;

-- Functions: nobody by default, then each role its list.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA reco FROM PUBLIC;
DO $$
DECLARE
    grants constant jsonb := '{
      "reco_reader": ["alternatives", "cache_info", "channel_mapping", "complements", "currency_exponent", "customer_key", "pseudonym",
                      "filter_by_preferences", "money_amount", "normalize_event", "normalize_order",
                      "normalize_order_mapped", "popular", "recommend", "resolve_preferences", "resolve_preferences_at",
                      "similar_items", "standardize_color", "standardize_country", "standardize_currency", "standardize_money",
                      "standardize_size", "standardize_timestamp", "warm_cache", "customer_scope"],
      "reco_writer": ["capture_preference", "capture_preferences", "customer_token", "infer_all_preferences", "infer_preferences",
                      "ingest_event", "ingest_events", "ingest_order", "ingest_orders", "record_event", "revoke_preference",
                      "set_consent", "set_preference"],
      "reco_admin":  ["_forgotten_ids", "_lock_training", "_reap_trainings", "_deploy", "_preload_model", "_check_mapping_row", "_index_item_vectors", "_drop_item_vector_indexes", "deploy", "evaluate", "forget_customer", "load_demo", "prune_models", "schedule_training", "train"],
      "reco_customer": ["alternatives", "capture_preference", "capture_preferences", "customer_scope", "enter_customer_scope", "pseudonym",
                      "filter_by_preferences", "resolve_preferences", "revoke_preference", "set_consent", "set_preference"],
      "reco_owner":  ["channel_mapping", "customer_key", "pseudonym"]
    }';
    r record;
BEGIN
    FOR r IN SELECT g.key AS role, p.oid::pg_catalog.regprocedure AS fn
               FROM jsonb_each(grants) g, jsonb_array_elements_text(g.value) f(name)
               JOIN pg_catalog.pg_proc p ON p.proname = f.name AND p.pronamespace = 'reco'::pg_catalog.regnamespace LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %I', r.fn, r.role);
    END LOOP;
END $$;

-- The owner role owns every definer function (prosecdef) (so none runs as a superuser) and
-- reco.item_vectors with its per-model HNSW indexes.
ALTER TABLE reco.item_vectors OWNER TO reco_owner;
DO $$
DECLARE f pg_catalog.regprocedure;
BEGIN
    FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p WHERE p.pronamespace = 'reco'::pg_catalog.regnamespace AND p.prosecdef LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s OWNER TO reco_owner', f);
    END LOOP;
END $$;
-- CREATE: DefineIndex wants it for the HNSW indexes; no caller can act as reco_owner
GRANT USAGE, CREATE ON SCHEMA reco TO reco_owner;
GRANT USAGE ON SCHEMA reco TO reco_reader, reco_customer;
GRANT SELECT ON reco.secrets TO reco_owner;
GRANT SELECT, INSERT ON reco.forgotten_customers TO reco_owner;
GRANT SELECT, INSERT, UPDATE, DELETE ON reco.customers, reco.preference_revocations TO reco_owner;
GRANT SELECT, INSERT, DELETE ON reco.events, reco.order_lines TO reco_owner;
GRANT SELECT, INSERT, UPDATE ON reco.orders TO reco_owner;
GRANT SELECT, INSERT ON reco.items TO reco_owner;
GRANT INSERT ON reco.ingest_errors TO reco_owner;
GRANT SELECT ON reco.channel_mappings, reco.preference_categories, reco.preference_policy, reco.models TO reco_owner;
GRANT SELECT, INSERT, DELETE, UPDATE (revoked_at) ON reco.preferences TO reco_owner;
GRANT SELECT, DELETE ON reco.customer_vectors, reco.recommendations TO reco_owner;

-- Tables: readers read (never the secret, nor the tombstones), log what they showed.
GRANT SELECT ON reco.customers, reco.items, reco.stock, reco.orders, reco.order_lines, reco.events, reco.ingest_errors,
    reco.channel_mappings, reco.preference_categories, reco.preference_policy, reco.preferences, reco.preference_revocations,
    reco.event_weight_overrides, reco.event_weights, reco.models, reco.deployments, reco.item_vectors, reco.customer_vectors,
    reco.item_neighbors, reco.item_knn, reco.item_popularity, reco.segment_popularity, reco.category_settings,
    reco.placement_weights, reco.recommendations, reco.preferences_current, reco.preference_capture_rate,
    reco.preference_utilization_rate TO reco_reader;
GRANT INSERT ON reco.recommendations TO reco_reader;
-- Writers keep the catalogue and stock current; orders, events and the preference ledger are
-- written through the functions only.
GRANT INSERT, UPDATE ON reco.items, reco.stock TO reco_writer;
GRANT UPDATE (timezone, email_opt_in, attributes) ON reco.customers TO reco_writer;
-- Admins manage the catalogue, settings and models; they do not rewrite the ledger.
GRANT INSERT, UPDATE, DELETE ON reco.customers, reco.items, reco.stock, reco.orders, reco.order_lines, reco.events,
    reco.ingest_errors, reco.channel_mappings, reco.preference_categories, reco.preference_policy, reco.event_weight_overrides,
    reco.models, reco.deployments, reco.customer_vectors, reco.item_neighbors, reco.item_knn, reco.item_popularity,
    reco.segment_popularity, reco.category_settings, reco.placement_weights, reco.recommendations TO reco_admin;
GRANT INSERT, DELETE ON reco.item_vectors TO reco_admin;
GRANT UPDATE ON reco.event_weights TO reco_admin;
GRANT DELETE ON reco.preferences, reco.preference_revocations TO reco_admin;
GRANT SELECT, DELETE ON reco.forgotten_customers TO reco_admin;
GRANT USAGE, SELECT ON SEQUENCE reco.models_model_id_seq TO reco_admin;
-- A customer-facing session: the catalogue (filter, alternatives) and its own ledger rows.
GRANT SELECT ON reco.preference_categories, reco.preference_policy, reco.preferences, reco.preference_revocations,
    reco.items, reco.stock TO reco_customer;

-- Row-level security on the ledger: staff see every row; the owner role's functions write for
-- the customer they authorized; a customer-facing session sees only the customer of its scope
-- (reco.customer_scope(), which only a verified token sets).
ALTER TABLE reco.preferences ENABLE ROW LEVEL SECURITY;
ALTER TABLE reco.preference_revocations ENABLE ROW LEVEL SECURITY;
CREATE POLICY staff ON reco.preferences TO reco_reader USING (true) WITH CHECK (true);
CREATE POLICY owner_functions ON reco.preferences TO reco_owner USING (true) WITH CHECK (true);
CREATE POLICY customer_self ON reco.preferences TO reco_customer USING (customer_id = reco.customer_scope());
CREATE POLICY staff ON reco.preference_revocations TO reco_reader USING (true) WITH CHECK (true);
CREATE POLICY owner_functions ON reco.preference_revocations TO reco_owner USING (true) WITH CHECK (true);
CREATE POLICY customer_self ON reco.preference_revocations TO reco_customer USING (customer_id = reco.customer_scope());

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
SELECT pg_catalog.pg_extension_config_dump('reco.secrets', '');
SELECT pg_catalog.pg_extension_config_dump('reco.forgotten_customers', '');
