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

-- Roles. Created once per cluster; the grants are the extension's.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reco_reader') THEN CREATE ROLE reco_reader NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reco_writer') THEN CREATE ROLE reco_writer NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reco_admin') THEN CREATE ROLE reco_admin NOLOGIN; END IF;
END $$;
GRANT reco_reader TO reco_writer;
GRANT reco_writer TO reco_admin;

GRANT USAGE ON SCHEMA reco TO reco_reader;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA reco FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA reco TO reco_reader;
REVOKE EXECUTE ON FUNCTION reco._check_mapping_row(text, text, text, jsonb, text, text) FROM reco_reader;
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
GRANT ALL ON ALL TABLES IN SCHEMA reco TO reco_admin;
