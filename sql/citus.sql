-- Scale-out on Citus: reco.distribute() turns a single-node install into a distributed one
-- (docs/citus.md says which table goes where and why). Nothing here runs, or needs Citus,
-- until it is called; a single-node install is unchanged.
--
-- CREATE EXTENSION pg_reco on a Citus coordinator is propagated: every worker gets the same
-- (extension-owned, empty) tables. Citus does not create shell tables or foreign keys on the
-- workers for extension-owned tables, it takes them as given, so every change of a key that
-- distribution needs is made on every node by reco._distribute_prepare(), the same function
-- run locally on each, before any table is distributed.

-- The key changes one node needs before its tables can be distributed, made in place and only
-- where not made yet (so a second run changes nothing). Called by reco.distribute() on the
-- coordinator and, through run_command_on_workers, on each worker.
CREATE FUNCTION reco._distribute_prepare() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    grp integer;
    t record;
    propagate constant text := current_setting('citus.enable_ddl_propagation');
BEGIN
    -- the coordinator's changes are its own: Citus must not forward them to the workers, where
    -- this same function makes them on each extension-owned table
    PERFORM set_config('citus.enable_ddl_propagation', 'off', true);

    -- a unique key must hold the distribution column
    IF NOT reco._key_is('reco.events'::regclass, 'p', ARRAY['shard_key', 'event_id']) THEN
        UPDATE reco.events SET shard_key = coalesce(customer_id, 's:' || session_id) WHERE shard_key IS NULL;
        ALTER TABLE reco.events ALTER COLUMN shard_key SET NOT NULL,
            DROP CONSTRAINT events_pkey, ADD CONSTRAINT events_pkey PRIMARY KEY (shard_key, event_id);
    END IF;
    IF NOT reco._key_is('reco.recommendations'::regclass, 'p', ARRAY['shard_key', 'rec_id']) THEN
        UPDATE reco.recommendations SET shard_key = coalesce(customer_id, 's:' || session_id, '') WHERE shard_key IS NULL;
        ALTER TABLE reco.recommendations ALTER COLUMN shard_key SET NOT NULL,
            DROP CONSTRAINT recommendations_pkey, ADD CONSTRAINT recommendations_pkey PRIMARY KEY (shard_key, rec_id);
    END IF;
    IF NOT reco._key_is('reco.preferences'::regclass, 'p', ARRAY['customer_id', 'preference_id']) THEN
        ALTER TABLE reco.preferences DROP CONSTRAINT preferences_pkey,
            ADD CONSTRAINT preferences_pkey PRIMARY KEY (customer_id, preference_id);
    END IF;
    IF NOT reco._key_is('reco.consent_log'::regclass, 'p', ARRAY['customer_id', 'consent_id']) THEN
        ALTER TABLE reco.consent_log DROP CONSTRAINT consent_log_pkey,
            ADD CONSTRAINT consent_log_pkey PRIMARY KEY (customer_id, consent_id);
    END IF;
    -- orders are distributed by order_id (a guest order has no customer, and forgetting one
    -- clears it): (channel, external_id) is unique because order_id is made of them; the
    -- constraint keeps its name (ingest's ON CONFLICT names it) with order_id in front
    IF NOT reco._key_is('reco.orders'::regclass, 'u', ARRAY['order_id', 'channel', 'external_id']) THEN
        ALTER TABLE reco.orders DROP CONSTRAINT IF EXISTS orders_customer_id_fkey,
            DROP CONSTRAINT orders_channel_external_id_key,
            ADD CONSTRAINT orders_channel_external_id_key UNIQUE (order_id, channel, external_id);
    END IF;
    IF NOT reco._key_is('reco.notification_candidates'::regclass, 'p', ARRAY['customer_id', 'candidate_id']) THEN
        ALTER TABLE reco.notification_sends DROP CONSTRAINT IF EXISTS notification_sends_candidate_id_fkey;
        ALTER TABLE reco.notification_candidates DROP CONSTRAINT notification_candidates_pkey,
            ADD CONSTRAINT notification_candidates_pkey PRIMARY KEY (customer_id, candidate_id);
        ALTER TABLE reco.notification_sends DROP CONSTRAINT notification_sends_pkey,
            ADD CONSTRAINT notification_sends_pkey PRIMARY KEY (customer_id, idempotency_key),
            ADD CONSTRAINT notification_sends_candidate_id_fkey FOREIGN KEY (customer_id, candidate_id)
                REFERENCES reco.notification_candidates (customer_id, candidate_id) ON DELETE CASCADE;
    END IF;
    -- Order lines name catalogue items: one node checks it with statement triggers over
    -- transition tables (schema.sql says why not a foreign key), which Citus cannot plan on a
    -- shard. A foreign key from a distributed table to a reference table is what Citus does
    -- support, with the same guarantees (a line names an existing item; an item named by lines
    -- cannot be deleted).
    DROP TRIGGER IF EXISTS order_lines_item_check_ins ON reco.order_lines;
    DROP TRIGGER IF EXISTS order_lines_item_check_upd ON reco.order_lines;
    DROP TRIGGER IF EXISTS items_in_use_del ON reco.items;
    DROP TRIGGER IF EXISTS items_in_use_upd ON reco.items;
    DROP TRIGGER IF EXISTS items_in_use_truncate ON reco.items;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conname = 'order_lines_item_id_fkey' AND conrelid = 'reco.order_lines'::regclass) THEN
        ALTER TABLE reco.order_lines ADD CONSTRAINT order_lines_item_id_fkey FOREIGN KEY (item_id) REFERENCES reco.items;
    END IF;
    -- The preference triggers NOTIFY caches of a change: on a shard the notification would reach
    -- listeners of that worker only, and Citus cannot commit a transaction over several nodes
    -- (two-phase) once it has notified. Caches on Citus expire instead (docs/citus.md).
    DROP TRIGGER IF EXISTS preferences_notify_ins ON reco.preferences;
    DROP TRIGGER IF EXISTS preferences_notify_upd ON reco.preferences;
    DROP TRIGGER IF EXISTS preferences_notify_del ON reco.preferences;
    DROP TRIGGER IF EXISTS preference_revocations_notify_ins ON reco.preference_revocations;
    DROP TRIGGER IF EXISTS preference_revocations_notify_upd ON reco.preference_revocations;
    DROP TRIGGER IF EXISTS preference_revocations_notify_del ON reco.preference_revocations;
    -- The experiment tallies (experiments.sql) are kept by a statement trigger over a transition
    -- table, which Citus cannot plan on a shard (and which would write a table of another
    -- placement), and by reco.fold_attribution: the report reads the lists instead, and the
    -- fold does nothing.
    -- (once: on a second run the tables are reference tables and the triggers are gone)
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
               WHERE tgrelid = 'reco.recommendations'::regclass AND tgname = 'recommendations_experiment_tally') THEN
        DROP TRIGGER IF EXISTS recommendations_experiment_tally ON reco.recommendations;
        DROP TRIGGER IF EXISTS recommendations_experiment_tally_truncate ON reco.recommendations;
        DROP TRIGGER IF EXISTS events_experiment_tally_truncate ON reco.events;
        DROP TRIGGER IF EXISTS events_writers ON reco.events;
        DELETE FROM reco.experiment_tallies;
        DELETE FROM reco.experiment_units;
        DELETE FROM reco.experiment_successes;
    END IF;
    -- Citus copies a reference table's rows into its shards with INSERTs; the restore upsert
    -- (schema.sql) would turn them into updates of nothing
    DROP TRIGGER IF EXISTS secrets_upsert ON reco.secrets;

    -- A worker runs delegated calls that insert rows (recommend logs its list, capture writes
    -- preferences): its identity sequences start in a range of their own, as Citus does for
    -- the sequences it creates, so ids stay unique across the cluster.
    grp := (SELECT groupid FROM pg_catalog.pg_dist_local_group);
    IF grp > 0 THEN
        FOR t IN SELECT s.seq FROM (VALUES ('reco.events', 'event_id'), ('reco.recommendations', 'rec_id'),
                                           ('reco.preferences', 'preference_id'), ('reco.notification_candidates', 'candidate_id'),
                                           ('reco.consent_log', 'consent_id'))
                                   AS v(tab, col), LATERAL (SELECT pg_get_serial_sequence(v.tab, v.col) AS seq) s
        LOOP
            -- never used (NULL) or below this worker's range
            IF coalesce((SELECT last_value FROM pg_catalog.pg_sequences WHERE format('%I.%I', schemaname, sequencename) = t.seq), 0) < (grp::bigint << 48) THEN
                PERFORM setval(t.seq, grp::bigint << 48);
            END IF;
        END LOOP;
    END IF;
    PERFORM set_config('citus.enable_ddl_propagation', propagate, true);
END $$;

-- Whether the table's primary key ('p') or a unique constraint ('u') is on exactly these
-- columns, in this order.
CREATE FUNCTION reco._key_is(tab regclass, kind "char", cols text[]) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_catalog.pg_constraint c
         WHERE c.conrelid = tab AND c.contype = kind
           AND ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                       JOIN pg_catalog.pg_attribute a ON a.attrelid = tab AND a.attnum = k.n ORDER BY k.o) = cols)
$$;

CREATE FUNCTION reco.distribute(shard_count integer DEFAULT NULL)
RETURNS TABLE (table_name regclass, placement text, rows_moved bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET client_min_messages = warning AS $$
DECLARE
    -- every table of the extension, once: reference tables in foreign-key order (a referenced
    -- table before the tables that refer to it), then the distributed ones, then the local one
    plan CONSTANT text[][] := ARRAY[
        -- catalogue and everything keyed by item or model, and the settings (small, read by
        -- every call: a copy on every node)
        ['reco.items', 'reference', NULL], ['reco.stock', 'reference', NULL],
        ['reco.models', 'reference', NULL], ['reco.deployments', 'reference', NULL],
        ['reco.item_vectors', 'reference', NULL], ['reco.item_knn', 'reference', NULL],
        ['reco.item_neighbors', 'reference', NULL], ['reco.item_popularity', 'reference', NULL],
        ['reco.item_demand', 'reference', NULL],
        ['reco.segment_popularity', 'reference', NULL], ['reco.category_settings', 'reference', NULL],
        ['reco.channel_mappings', 'reference', NULL], ['reco.event_weight_overrides', 'reference', NULL],
        ['reco.experiments', 'reference', NULL], ['reco.preference_categories', 'reference', NULL],
        ['reco.preference_policy', 'reference', NULL], ['reco.placement_weights', 'reference', NULL],
        ['reco.triggers', 'reference', NULL], ['reco.notification_channels', 'reference', NULL],
        ['reco.notification_kpi_targets', 'reference', NULL], ['reco.email_templates', 'reference', NULL],
        ['reco.pseudonymized_channels', 'reference', NULL], ['reco.secrets', 'reference', NULL],
        ['reco.forgotten_customers', 'reference', NULL],
        -- unused on Citus (the report reads the lists), placed so that nothing stays local
        ['reco.experiment_tallies', 'reference', NULL], ['reco.experiment_units', 'reference', NULL],
        ['reco.experiment_successes', 'reference', NULL], ['reco.experiment_watermark', 'reference', NULL],
        -- per customer, colocated: one customer's rows on one worker
        ['reco.customers', 'distributed', 'customer_id'], ['reco.preferences', 'distributed', 'customer_id'],
        ['reco.preference_revocations', 'distributed', 'customer_id'], ['reco.customer_vectors', 'distributed', 'customer_id'],
        ['reco.events', 'distributed', 'shard_key'], ['reco.recommendations', 'distributed', 'shard_key'],
        ['reco.notification_candidates', 'distributed', 'customer_id'], ['reco.notification_sends', 'distributed', 'customer_id'],
        ['reco.consents', 'distributed', 'customer_id'], ['reco.consent_log', 'distributed', 'customer_id'],
        -- orders by order id (guest orders have no customer), their lines with them
        ['reco.orders', 'distributed', 'order_id'], ['reco.order_lines', 'distributed', 'order_id']];
    -- the per-customer entry points: a call runs on the worker that holds the customer
    funcs CONSTANT text[] := ARRAY[
        'reco.recommend(text, integer, jsonb)', 'reco.resolve_preferences(text, jsonb)',
        'reco.resolve_preferences_at(text, timestamp with time zone)', 'reco.filter_by_preferences(text, text[])',
        'reco.alternatives(text, text, integer)', 'reco.best_send_time(text, timestamp with time zone, text, integer, double precision)',
        'reco.capture_preference(text, text, text, text, timestamp with time zone, text, double precision)',
        'reco.capture_preferences(text, jsonb, text, timestamp with time zone, text)',
        'reco.set_preference(text, text, text)', 'reco.revoke_preference(text, text)'];
    i integer;
    rel regclass;
    n bigint;
    failed text;
    moved regclass[] := '{}';
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RAISE EXCEPTION 'Citus is not installed in database "%"', current_database()
            USING ERRCODE = '0A000',
                  HINT = 'reco.distribute() is for a Citus coordinator: CREATE EXTENSION citus (with citus in shared_preload_libraries) and add workers first. A single-node install needs nothing.';
    END IF;
    IF shard_count IS NOT NULL AND (shard_count < 1 OR shard_count > 64000) THEN
        RAISE EXCEPTION 'shard_count % is out of range', shard_count
            USING ERRCODE = '22023', HINT = 'give 1 to 64000, or NULL for citus.shard_count';
    END IF;
    IF NOT (SELECT citus_is_coordinator()) THEN
        RAISE EXCEPTION 'reco.distribute() must run on the Citus coordinator'
            USING ERRCODE = '0A000', HINT = 'connect to the coordinator (pg_dist_node with groupid 0) and call it there';
    END IF;
    IF NOT pg_has_role((SELECT relowner FROM pg_catalog.pg_class WHERE oid = 'reco.events'::regclass), 'USAGE') THEN
        RAISE EXCEPTION 'permission denied: reco.distribute() must be run by the owner of pg_reco''s tables (%)',
                (SELECT relowner::regrole FROM pg_catalog.pg_class WHERE oid = 'reco.events'::regclass)
            USING ERRCODE = '42501', HINT = 'connect as the role that ran CREATE EXTENSION pg_reco (it owns the tables Citus must alter)';
    END IF;
    -- one at a time
    PERFORM pg_advisory_xact_lock(pg_catalog.hashtext('reco.distribute'));
    PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    IF shard_count IS NOT NULL THEN
        PERFORM set_config('citus.shard_count', shard_count::text, true);
    END IF;

    -- Citus runs a definer function's remote statements as its owner: reco_owner must be able to
    -- connect to the other nodes (docs/citus.md: restrict it to them in pg_hba.conf; it has no
    -- password, so password authentication alone keeps everyone else out). ALTER ROLE is
    -- propagated to every node.
    IF NOT (SELECT r.rolcanlogin FROM pg_catalog.pg_roles r WHERE r.rolname = 'reco_owner') THEN
        ALTER ROLE reco_owner LOGIN;
        RAISE WARNING 'reco_owner may now log in on every node: Citus connects as it for pg_reco''s definer functions'
            USING HINT = 'allow it only from the cluster''s nodes in pg_hba.conf (docs/citus.md, "Security")';
    END IF;

    -- the same key changes on every node, before any table is distributed
    PERFORM reco._distribute_prepare();
    SELECT string_agg(format('%s:%s: %s', r.nodename, r.nodeport, r.result), '; ') INTO failed
      FROM run_command_on_workers('SELECT reco._distribute_prepare()') r WHERE NOT r.success;
    IF failed IS NOT NULL THEN
        RAISE EXCEPTION 'preparing pg_reco''s tables failed on a worker: %', failed
            USING ERRCODE = '55000', HINT = 'every worker needs the same pg_reco version as the coordinator (CREATE EXTENSION propagates it; ALTER EXTENSION pg_reco UPDATE on a mismatch)';
    END IF;

    -- With DDL propagation on, distributing reco.items would first turn every local table that
    -- refers to it (stock, order lines) into a Citus local table with a shell on each worker,
    -- where the extension's own table of that name already is. Off, each table is distributed
    -- in turn, referenced tables first; the workers' tables and keys are the extension's.
    PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
    FOR i IN 1 .. array_length(plan, 1) LOOP
        rel := plan[i][1]::regclass;
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = rel) THEN
            table_name := rel; placement := plan[i][2]; rows_moved := 0;
            RETURN NEXT;
            CONTINUE;
        END IF;
        EXECUTE format('SELECT count(*) FROM %s', rel) INTO n;
        IF plan[i][2] = 'reference' THEN
            PERFORM create_reference_table(rel);
        ELSE
            PERFORM create_distributed_table(rel, plan[i][3],
                colocate_with => CASE WHEN rel = 'reco.customers'::regclass THEN 'none' ELSE 'reco.customers' END);
        END IF;
        IF n > 0 THEN
            moved := moved || rel;
        END IF;
        table_name := rel; placement := plan[i][2]; rows_moved := n;
        RETURN NEXT;
    END LOOP;
    -- the rows now live in the shards; the copies Citus leaves in the local tables go (once
    -- every table is distributed: a local table cannot refer to a truncated one)
    FOREACH rel IN ARRAY moved LOOP
        PERFORM truncate_local_data_after_distributing_table(rel);
    END LOOP;
    -- dead letters stay on the coordinator, where ingest runs
    table_name := 'reco.ingest_errors'::regclass; placement := 'local'; rows_moved := 0;
    RETURN NEXT;

    FOR i IN 1 .. array_length(funcs, 1) LOOP
        PERFORM create_distributed_function(funcs[i]::regprocedure, 'customer_id', colocate_with => 'reco.customers');
    END LOOP;
    PERFORM set_config('citus.enable_ddl_propagation', 'on', true);
    -- Citus serializes writes to a reference table with a lock that it grants only to a role
    -- that may update, delete or truncate the table: forget_customer (a definer function,
    -- reco_owner) inserts tombstones
    GRANT UPDATE ON reco.forgotten_customers TO reco_owner;
END $$;
COMMENT ON FUNCTION reco.distribute(integer) IS 'On a Citus coordinator: makes the catalogue and model tables reference tables, distributes the customer tables by customer, '
    'orders by order, and the per-customer functions by customer_id. Idempotent. See docs/citus.md.';
REVOKE ALL ON FUNCTION reco.distribute(integer), reco._distribute_prepare(), reco._key_is(regclass, "char", text[]) FROM PUBLIC;
