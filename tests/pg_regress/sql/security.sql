-- Security: every role does its job with its own grants and no more, and the known attacks fail
-- (issue #14). Each attack runs as the role that would try it.
SET timezone = 'UTC';
SELECT reset();
TRUNCATE reco.models CASCADE;
TRUNCATE reco.deployments, reco.recommendations, reco.forgotten_customers;
CREATE ROLE regress_kiosk LOGIN;     GRANT reco_customer TO regress_kiosk;
CREATE ROLE regress_oms LOGIN;       GRANT reco_writer TO regress_oms;
CREATE ROLE regress_ops LOGIN;       GRANT reco_admin TO regress_ops;
CREATE ROLE regress_analyst LOGIN;   GRANT reco_reader TO regress_analyst;
-- an attacker's marker: what the shadowing functions below would do if they ever ran
CREATE TABLE public.pwned (who text, at timestamptz DEFAULT now());
GRANT INSERT, SELECT ON public.pwned TO PUBLIC;

-- 1. The privileged functions: owned by reco_owner (NOLOGIN, no superuser, no members), with a
-- search path that ends in pg_temp; nothing runs as a superuser.
SELECT rolsuper, rolcanlogin, rolbypassrls, rolcreaterole,
       (SELECT count(*) FROM pg_auth_members WHERE roleid = 'reco_owner'::regrole) AS members
FROM pg_roles WHERE rolname = 'reco_owner';
SELECT count(*) AS definer_functions,
       count(*) FILTER (WHERE proowner = 'reco_owner'::regrole) AS owned_by_reco_owner,
       count(*) FILTER (WHERE array_to_string(proconfig, ',') ~ '^search_path=pg_catalog, reco, pg_temp$') AS pg_temp_last
FROM pg_proc WHERE pronamespace = 'reco'::regnamespace AND prosecdef;
-- no role but the owner has TRIGGER, TRUNCATE or REFERENCES on anything, nor CREATE on the schemas
SELECT count(*) AS dangerous_grants FROM information_schema.table_privileges
WHERE table_schema = 'reco' AND grantee IN ('reco_reader', 'reco_writer', 'reco_admin', 'reco_customer', 'PUBLIC')
  AND privilege_type IN ('TRIGGER', 'TRUNCATE', 'REFERENCES');
SELECT r AS role, has_schema_privilege(r, 'reco', 'CREATE') AS create_in_reco, has_schema_privilege(r, 'public', 'CREATE') AS create_in_public,
       has_table_privilege(r, 'reco.secrets', 'SELECT') AS reads_the_key
FROM unnest(ARRAY['reco_reader', 'reco_writer', 'reco_admin', 'reco_customer']) r ORDER BY 1;

-- 1a. A customer-facing session shadows pg_catalog's text type with a temporary domain whose
-- check makes its owner a superuser, then calls the preference functions.
SELECT reco.customer_token('c1', '5 minutes') AS token \gset
SET ROLE regress_kiosk;
SELECT reco.enter_customer_scope(:'token') AS scope;
CREATE FUNCTION pg_temp.evil(t text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO public.pwned (who) VALUES (current_user);
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        EXECUTE 'ALTER ROLE regress_kiosk SUPERUSER';
    END IF;
    RETURN true; END $$;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.evil(VALUE));
CREATE DOMAIN pg_temp.jsonb AS pg_catalog.jsonb CHECK (pg_temp.evil(VALUE::pg_catalog.text));
CREATE DOMAIN pg_temp.float8 AS pg_catalog.float8 CHECK (pg_temp.evil(VALUE::pg_catalog.text));
CREATE DOMAIN pg_temp.timestamptz AS pg_catalog.timestamptz CHECK (pg_temp.evil(VALUE::pg_catalog.text));
CREATE FUNCTION pg_temp.now() RETURNS pg_catalog.timestamptz LANGUAGE sql AS $$ SELECT CASE WHEN pg_temp.evil('now') THEN pg_catalog.now() END $$;
CREATE FUNCTION pg_temp.notify_evil(a pg_catalog.text, b pg_catalog.text) RETURNS boolean LANGUAGE sql AS $$ SELECT pg_temp.evil(a) $$;
CREATE OPERATOR pg_temp.= (LEFTARG = pg_catalog.text, RIGHTARG = pg_catalog.text, FUNCTION = pg_temp.notify_evil);
SELECT reco.set_preference('c1', 'color', 'red') > 0 AS own_edit;
SELECT reco.capture_preferences('c1', '{"size_tops": "M"}', 'kiosk') AS captured;
SELECT reco.revoke_preference('c1', 'size_tops') AS revoked;
DISCARD TEMP;
RESET ALL;  -- the scope too
RESET ROLE;
SET timezone = 'UTC';
-- 1b. The same through the ingest functions, as a writer
SET ROLE regress_oms;
CREATE FUNCTION pg_temp.evil(t text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO public.pwned (who) VALUES (current_user);
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        EXECUTE 'ALTER ROLE regress_oms SUPERUSER';
    END IF;
    RETURN true; END $$;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.evil(VALUE));
CREATE DOMAIN pg_temp.jsonb AS pg_catalog.jsonb CHECK (pg_temp.evil(VALUE::pg_catalog.text));
CREATE DOMAIN pg_temp.int8 AS pg_catalog.int8 CHECK (pg_temp.evil(VALUE::pg_catalog.text));
CREATE DOMAIN pg_temp.timestamptz AS pg_catalog.timestamptz CHECK (pg_temp.evil(VALUE::pg_catalog.text));
SELECT reco.ingest_event('web', '{"event": "view", "user_id": "c2", "sku": "A1"}') > 0 AS ingested;
SELECT reco.record_event('c2', 'A1', 'cart_add') > 0 AS recorded;
SELECT inserted FROM reco.ingest_order('web', (SELECT payload FROM fixtures WHERE channel = 'web')) AS inserted;
SELECT reco.capture_preference('c2', 'color', 'blue', 'checkout') > 0 AS captured;
DISCARD TEMP;
-- and objects planted where the functions look: the reco schema and public are not writable
SELECT try($$CREATE FUNCTION reco.now() RETURNS timestamptz LANGUAGE sql AS 'SELECT now()'$$) AS plant_in_reco;
SELECT try($$CREATE FUNCTION public.text(x int) RETURNS text LANGUAGE sql AS 'SELECT ''x'''$$) AS plant_in_public;
RESET ROLE;
-- nothing the attackers planted ran, as anyone
SELECT who, count(*) FROM public.pwned GROUP BY 1;
SELECT rolname, rolsuper FROM pg_roles WHERE rolname IN ('regress_kiosk', 'regress_oms') ORDER BY 1;

-- 2. An admin cannot plant a trigger (it would fire inside the definer functions), truncate or
-- reference the tables
SET ROLE regress_ops;
CREATE FUNCTION pg_temp.grab() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO public.pwned (who) VALUES (current_user); RETURN NULL; END $$;
SELECT try($$CREATE TRIGGER grab AFTER INSERT ON reco.events FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.grab()$$) AS trigger_on_events;
SELECT try($$CREATE TRIGGER grab AFTER INSERT ON reco.customers FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.grab()$$) AS trigger_on_customers;
SELECT try($$TRUNCATE reco.events$$) AS truncate_events;
SELECT try($$CREATE TABLE pg_temp.ref (c text REFERENCES reco.customers)$$) AS references_customers;
SELECT try($$ALTER TABLE reco.item_vectors ADD COLUMN x int$$) AS alter_item_vectors;
SELECT try($$SELECT key FROM reco.secrets$$) AS read_the_key;
SELECT try($$SET reco.training_threads = 257$$) AS threads;
SELECT try($$SET reco.cache_max_memory = '100GB'$$) AS cache_limit;
RESET ROLE;
DISCARD TEMP;

-- 5. Each role's documented job as that role alone. The admin: load demo data, train with
-- HNSW indexes and nearest-item lists, evaluate, deploy, roll back, prune.
SET ROLE regress_ops;
SET client_min_messages = warning;
SET reco.hnsw_min_items = 1;  -- index-backed at this size: HNSW indexes and reco.item_knn
SET search_path = pg_catalog, pg_temp;  -- without public, where pgvector lives: names are qualified
SELECT (reco.load_demo('small', 42) ->> 'customers') AS customers;
SELECT reco.train('hybrid', '{"iterations": 5, "evaluate": false}') AS first \gset
SELECT reco.train('als', '{"iterations": 5, "tune": false}') AS second \gset
SELECT count(*) AS hnsw_indexes FROM pg_indexes WHERE schemaname = 'reco' AND indexname ~ ('^item_vectors_' || :first || '_');
SELECT count(*) > 0 AS knn_lists FROM reco.item_knn WHERE model_id = :first;
SELECT (reco.evaluate('{"iterations": 3}') -> 'kinds' ? 'hybrid') AS evaluated;
SELECT reco.deploy(:first) = :first AS deployed, reco.deploy(:second) = :second AS redeployed;
SELECT reco.deploy('rollback') = :first AS rolled_back;
SELECT reco.train('popularity', '{"evaluate": false}') AS third \gset
SELECT reco.prune_models(0) AS pruned;
SELECT count(*) AS indexes_of_pruned FROM pg_indexes WHERE schemaname = 'reco' AND indexname ~ ('^item_vectors_' || :third || '_');
SELECT model_id = :first AS deployed_kept, status FROM reco.models ORDER BY model_id;
RESET reco.hnsw_min_items;
RESET client_min_messages;
RESET search_path;
RESET ROLE;
-- the writer ingests and captures; the reader serves and reads; neither trains nor evaluates
SET ROLE regress_oms;
SELECT (reco.ingest_orders('web', jsonb_build_array((SELECT payload FROM fixtures WHERE channel = 'web')))).received AS batch;
SELECT try($$SELECT reco.train('popularity')$$) AS writer_trains;
RESET ROLE;
SET ROLE regress_analyst;
SELECT count(*) AS served FROM reco.recommend('demo-c0000001', 5, '{"now": "2026-01-01T12:00:00Z"}');
-- an HNSW search per call, from a session whose search path lacks pgvector's schema
SET search_path = pg_catalog, pg_temp;
SET reco.hnsw_min_items = 1;
SET reco.item_knn = off;
SELECT count(*) AS served_by_search, (reco.cache_info() -> 'scoring' ->> 'hnsw_searches')::int > 0 AS searched
FROM reco.recommend('demo-c0000001', 5, '{"now": "2026-01-01T12:00:00Z"}');
RESET reco.item_knn;
RESET reco.hnsw_min_items;
RESET search_path;
SELECT count(*) AS complements FROM reco.complements(ARRAY[(SELECT item_id FROM reco.items ORDER BY 1 LIMIT 1)], 3);
SELECT count(*) > 0 AS reads_models FROM reco.models;
SELECT try($$SELECT reco.evaluate()$$) AS reader_evaluates;
SELECT try($$SELECT reco.ingest_event('web', '{"event": "view", "user_id": "c9", "sku": "A1"}')$$) AS reader_ingests;
SELECT try($$SELECT reco.customer_token('c1')$$) AS reader_issues_tokens;
RESET ROLE;
-- the customer: its own preferences, filter and alternatives, after entering its scope
SELECT reco.customer_token('demo-c0000001') AS token \gset
SELECT item_id AS some_item FROM reco.items i JOIN reco.stock s USING (item_id) WHERE i.group_id IS NOT NULL AND s.available > 0 ORDER BY 1 LIMIT 1 \gset
SET ROLE regress_kiosk;
SELECT reco.enter_customer_scope(:'token') AS scope;
SELECT reco.set_preference('demo-c0000001', 'size_tops', 'M') > 0 AS edited;
SELECT reco.resolve_preferences('demo-c0000001') ? 'size_tops' AS resolved;
SELECT count(*) >= 0 AS filtered FROM reco.filter_by_preferences('demo-c0000001', ARRAY[:'some_item']);
SELECT count(*) >= 0 AS alternatives FROM reco.alternatives('demo-c0000001', :'some_item', 3);
SELECT try($$SELECT reco.customer_token('demo-c0000002')$$) AS customer_issues_tokens;
SELECT try($$SELECT * FROM reco.recommend('demo-c0000002')$$) AS customer_reads_others;
RESET ALL;
RESET ROLE;
SET timezone = 'UTC';
-- tokens: too long-lived, garbage, NULL
SELECT try($$SELECT reco.customer_token('c1', '2 days')$$) AS too_long;
SELECT try($$SELECT reco.enter_customer_scope('v1.6331.1.00')$$) AS garbage;
SELECT try($$SELECT reco.enter_customer_scope(NULL)$$) AS null_token;

-- 3. Times that would corrupt training are refused at the boundary (22008), the table refuses
-- them too, and serving at any instant, before 1970 included, answers
SELECT try($$SELECT reco.record_event('c1', 'A1', 'view', 1, '1969-12-31 23:59:59+00')$$) AS pre_epoch;
SELECT try($$SELECT reco.record_event('c1', 'A1', 'view', 1, 'infinity')$$) AS infinite;
SELECT regexp_replace(try($$SELECT reco.record_event('c1', 'A1', 'view', 1, now() + interval '1 day')$$),
                      '[0-9T:.-]{19,}Z', 'T', 'g') AS future;
SELECT try($$SELECT reco.ingest_event('web', '{"event": "view", "user_id": "c1", "sku": "A1", "ts": -1000}')$$) AS pre_epoch_payload;
SELECT split_part(try($$INSERT INTO reco.events (customer_id, kind, item_id, occurred_at) VALUES ('c1', 'view', 'A1', '1960-01-01')$$), E'\n', 1) AS direct_insert;
SELECT regexp_replace(try($$SELECT reco.capture_preference('c1', 'color', 'red', 'checkout', '2099-01-01 00:00:00+00')$$),
                      'now is [0-9T:.-]+Z', 'now is T') AS capture_in_2099;
SELECT count(*) AS served_in_1969 FROM reco.recommend('demo-c0000001', 5, '{"now": "1969-07-20T20:17:00Z"}');
SELECT count(*) AS popular_in_1969 FROM reco.popular(5, NULL, '{"now": "1969-07-20T20:17:00Z"}');
-- ids: length-limited, no invisible characters
SELECT try(format($$SELECT reco.record_event(%L, 'A1', 'view')$$, repeat('x', 257))) AS long_id;
SELECT try(format($$SELECT reco.record_event(%L, 'A1', 'view')$$, 'c' || chr(8238) || '1')) AS bidi_id;
SELECT try(format($$SELECT reco.record_event('c1', %L, 'view')$$, 'A' || chr(8203) || '1')) AS zero_width_item;
SELECT try($$SELECT reco.record_event('c1', 'A1', 'view', channel => 'Web Shop')$$) AS bad_channel;

-- 4. Cancellation: a training far longer than the timeout stops within about a second of it
-- (it ran for minutes before), and the failure is recorded
SET reco.training_threads = 2;
SET client_min_messages = warning;
SET statement_timeout = '1s';
SELECT clock_timestamp() AS t0 \gset
SELECT try($$SELECT reco.train('als', '{"factors": 512, "iterations": 200, "evaluate": false}')$$) AS timed_out;
RESET statement_timeout;
RESET client_min_messages;
SELECT clock_timestamp() - :'t0'::timestamptz < interval '4 seconds' AS stopped_promptly;
SELECT status, error LIKE '57014:%' AS cancelled FROM reco.models WHERE kind = 'als' ORDER BY model_id DESC LIMIT 1;

-- 7. Forget means forgotten: every table with a customer_id (or an experiment's unit) column is
-- covered (found from the catalog, so a new table cannot be missed), vectors and logs go, and a
-- late event does not bring the customer back
SELECT count(*) FILTER (WHERE NOT covered) AS tables_not_covered, string_agg(t, ', ' ORDER BY t) AS tables
FROM (SELECT c.relname AS t,
             c.relname = ANY (ARRAY['customers', 'preferences', 'preference_revocations', 'events', 'customer_vectors',
                                    'recommendations', 'orders', 'notification_candidates', 'notification_sends',
                                    'experiment_units', 'experiment_successes', 'consents', 'consent_log']) AS covered
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      WHERE c.relnamespace = 'reco'::regnamespace AND c.relkind IN ('r', 'p') AND a.attname IN ('customer_id', 'unit') AND NOT a.attisdropped) x;
SELECT count(*) > 0 AS has_vectors FROM reco.customer_vectors WHERE customer_id = 'demo-c0000001';
SELECT count(*) AS logged FROM reco.recommend('demo-c0000001', 3, '{"log": true, "now": "2026-01-01T12:00:00Z"}');
SELECT reco.forget_customer('demo-c0000001') - 'events' - 'preferences' - 'customer_vectors' - 'orders_anonymized' AS forgotten;
SELECT (SELECT count(*) FROM reco.customer_vectors WHERE customer_id = 'demo-c0000001') AS vectors,
       (SELECT count(*) FROM reco.recommendations WHERE customer_id = 'demo-c0000001') AS logs,
       (SELECT count(*) FROM reco.events WHERE customer_id = 'demo-c0000001') AS events;
SELECT reco.record_event('demo-c0000001', 'A1', 'view') AS late_event;
SELECT * FROM reco.ingest_events('web', '[{"event": "view", "user_id": "demo-c0000001", "sku": "A1"}]');
SELECT (SELECT count(*) FROM reco.customers WHERE customer_id = 'demo-c0000001') AS recreated,
       (SELECT count(*) FROM reco.events WHERE customer_id = 'demo-c0000001') AS late_events_stored;
SELECT reco.ingest_order('web', jsonb_set(payload, '{customer_id}', '"demo-c0000001"') || '{"id": "W-late"}') AS late_order
FROM fixtures WHERE channel = 'web';
SELECT customer_id IS NULL AND email IS NULL AS late_order_anonymous FROM reco.orders WHERE order_id = 'web:W-late';
SELECT try($$SELECT reco.capture_preference('demo-c0000001', 'color', 'red', 'checkout')$$) AS late_capture;
SELECT count(*) AS tombstones, bool_and(customer_key ~ '^[0-9a-f]{64}$') AS hashed_not_ids FROM reco.forgotten_customers;

-- 9. NOTIFY carries the keyed hash, never the id (the payload itself: tests/integration prefs.rs)
SELECT length(reco.customer_key('notify-me@example.com')) AS key_length,
       reco.customer_key('notify-me@example.com') <> 'notify-me@example.com' AS not_the_id,
       pg_get_functiondef('reco._preferences_notify'::regproc) ~ 'reco.customer_key\(d.customer_id\)' AS notifies_keys;
-- Every NULL argument of every public function: a specific error or NULL, never an internal
-- error (XX000) or a crash. Each call passes NULL in one position and sample values elsewhere.
CREATE FUNCTION pg_temp.null_sweep() RETURNS TABLE (fn text, arg int, sqlstate text, message text) LANGUAGE plpgsql AS $$
DECLARE
    p record; i int; args text[]; call text; st text; msg text;
    sample constant jsonb := '{"text": "''x''", "text[]": "''{x}''::text[]", "integer": "5", "bigint": "1", "jsonb": "''{}''::jsonb",
        "double precision": "1.0::float8", "timestamp with time zone": "now()", "interval": "''1 hour''::interval", "boolean": "true"}';
BEGIN
    FOR p IN SELECT pr.oid, pr.proname, pr.pronargs, pr.proretset,
                    array(SELECT format_type(t, NULL) FROM unnest(pr.proargtypes::oid[]) t) AS types
               FROM pg_proc pr WHERE pr.pronamespace = 'reco'::regnamespace AND pr.prokind = 'f'
                AND pr.prorettype <> 'trigger'::regtype AND pr.proname NOT LIKE '\_%'
                AND pr.proname NOT IN ('load_demo', 'schedule_training', 'forget_customer', 'enter_customer_scope', 'train', 'evaluate')
               ORDER BY 1 LOOP
        FOR i IN 1 .. p.pronargs LOOP
            args := array(SELECT CASE WHEN k = i THEN 'NULL::' || p.types[k] ELSE coalesce(sample ->> p.types[k], 'NULL') END
                            FROM generate_series(1, p.pronargs) k);
            call := format('SELECT %s reco.%I(%s)', CASE WHEN p.proretset THEN 'count(*) FROM' ELSE '' END, p.proname, array_to_string(args, ', '));
            BEGIN
                EXECUTE call;
                st := 'ok'; msg := NULL;
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
            END;
            fn := p.proname || '(' || array_to_string(p.types, ', ') || ')'; arg := i; sqlstate := st; message := msg;
            RETURN NEXT;
        END LOOP;
    END LOOP;
END $$;
SET client_min_messages = warning;
CREATE TEMP TABLE swept AS SELECT * FROM pg_temp.null_sweep();
RESET client_min_messages;
SELECT count(*) > 80 AS calls, count(*) FILTER (WHERE sqlstate = '22004') > 15 AS null_errors FROM swept;
SELECT fn, arg, sqlstate, message FROM swept WHERE sqlstate = 'XX000' OR sqlstate LIKE '58%' ORDER BY 1, 2;
SELECT try($$SELECT reco.train(NULL)$$) AS train_null, try($$SELECT reco.deploy(NULL::bigint)$$) AS deploy_null;

DROP TABLE public.pwned;
DROP OWNED BY regress_kiosk, regress_oms, regress_ops, regress_analyst;
DROP ROLE regress_kiosk, regress_oms, regress_ops, regress_analyst;
