-- pg_reco 0.1.0 → 0.2.0 (ALTER EXTENSION pg_reco UPDATE TO '0.2.0').
-- What changed is in CHANGELOG.md; tests/integration/tests/upgrade.rs checks that a 0.1.0
-- database updated with this script keeps its rows and deployed model and has the schema of a
-- fresh 0.2.0 install.
\echo Use "ALTER EXTENSION pg_reco UPDATE" to load this file. \quit

-- Event kinds for messages: delivered, bounced, unsubscribed (which clears consent).
ALTER TABLE reco.events DROP CONSTRAINT events_kind_check,
    ADD CONSTRAINT events_kind_check CHECK (kind IN ('view', 'click', 'cart_add', 'cart_remove', 'purchase', 'rating', 'return', 'impression', 'email_open', 'email_click', 'email_delivered', 'email_bounce', 'unsubscribe'));
ALTER TABLE reco.event_weight_overrides DROP CONSTRAINT event_weight_overrides_kind_check,
    ADD CONSTRAINT event_weight_overrides_kind_check CHECK (kind IN ('view', 'click', 'cart_add', 'cart_remove', 'purchase', 'rating', 'return', 'impression', 'email_open', 'email_click', 'email_delivered', 'email_bounce', 'unsubscribe'));
-- @include sql/event_weights.sql

-- A customer's purchases, ratings and returns without reading their views (schema.sql; one scan
-- of the events table).
CREATE INDEX events_customer_owned_idx ON reco.events (customer_id, item_id)
    WHERE kind IN ('purchase', 'rating', 'return') AND item_id IS NOT NULL;

-- Whose row it is, written by every insert: the distribution column on Citus (docs/citus.md).
-- Rows from 0.1.0 keep NULL here until reco.distribute() fills them.
ALTER TABLE reco.events ADD COLUMN shard_key text COLLATE "C";
COMMENT ON COLUMN reco.events.shard_key IS 'Whose event it is: the customer id, or ''s:'' || session_id for an anonymous one. Written by every insert; '
    'on Citus it is the distribution column (anonymous events cannot be distributed by a NULL customer_id), see docs/citus.md.';
ALTER TABLE reco.recommendations ADD COLUMN shard_key text COLLATE "C";
COMMENT ON COLUMN reco.recommendations.shard_key IS 'Whose list it is: the customer id, ''s:'' || session_id, or '''' for a list with neither. '
    'Written by every insert; on Citus it is the distribution column, see docs/citus.md.';

-- Notifications (triggers, candidates, templates, the pgmq queue): the Rust functions, then
-- the tables and SQL functions that use them.
-- @generated pg_reco::api::notify::
-- @include sql/notify.sql

-- Pseudonymous customer ids: identity columns, the reporting role, reco.pseudonym.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'reco_reporting') THEN CREATE ROLE reco_reporting NOLOGIN; END IF;
END $$;
ALTER TABLE reco.customers ADD COLUMN email text, ADD COLUMN phone text, ADD COLUMN name text;
-- @generated pg_reco::api::privacy::
-- (granted before the owner changes, as a fresh install does: the ACLs then read the same)
REVOKE ALL ON FUNCTION reco.pseudonym(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reco.pseudonym(text, text) TO reco_owner, reco_reader, reco_customer;
ALTER FUNCTION reco.pseudonym(text, text) OWNER TO reco_owner;
-- @include sql/privacy.sql

-- Consent with provenance (the tables are in notify.sql above): the function that records a
-- customer's decision, for the OMS and for the customer's own session.
-- @generated pg_reco::api::prefs::consent::
REVOKE ALL ON FUNCTION reco.set_consent(text, text, boolean, text, jsonb, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reco.set_consent(text, text, boolean, text, jsonb, timestamptz) TO reco_writer, reco_customer;
ALTER FUNCTION reco.set_consent(text, text, boolean, text, jsonb, timestamptz) OWNER TO reco_owner;

-- Experiments: the assignment hash and the report's statistics, then the table and functions.
-- @generated pg_reco::api::experiments::
-- @include sql/experiments.sql

-- The trainings reaper takes its locks before its update (Citus refuses a volatile function in
-- the WHERE clause of an UPDATE of a reference table).
CREATE OR REPLACE FUNCTION reco._reap_trainings() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    n integer;
    orphans bigint[];
BEGIN
    -- the locks first, then the update: Citus (docs/citus.md) plans no volatile function in the
    -- WHERE clause of an UPDATE of a distributed or reference table
    SELECT array_agg(m.model_id) INTO orphans FROM reco.models m
     WHERE m.status = 'training' AND pg_catalog.pg_try_advisory_xact_lock(1919247215, (m.model_id % 2147483647)::int4);
    IF orphans IS NULL THEN
        RETURN 0;
    END IF;
    UPDATE reco.models m SET status = 'failed', finished_at = pg_catalog.now(),
           error = coalesce(error, 'the training ended without finishing: its backend (pid ' || backend_pid || ') exited or its transaction rolled back')
     WHERE m.status = 'training' AND m.model_id = ANY (orphans);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- Scale-out on Citus: reco.distribute() (docs/citus.md).
-- @include sql/citus.sql

-- Recommendation KPIs (experiments.sql above) and the business targets beside their values.
-- @include sql/kpis.sql

-- Demand: the forecast stored with each model, days of cover, the placement weight, the backtest.
-- @generated pg_reco::api::demand::
-- @include sql/demand.sql

-- Deploying loads the new model into the shared model cache before the switch commits.
-- @generated pg_reco::api::serve::_preload_model
REVOKE ALL ON FUNCTION reco._preload_model(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reco._preload_model(bigint) TO reco_admin;
-- @include sql/deploy_switch.sql

-- category_settings.max_per_list is applied now (it was recorded only).
COMMENT ON TABLE reco.category_settings IS 'Per category: repeatable (consumables: items already bought may be recommended again) '
    'and max_per_list (at most this many of the category in a list reco.recommend serves, beside reco.diversity_penalty and '
    'reco.max_per_category; given way only when the list could not be filled otherwise).';
