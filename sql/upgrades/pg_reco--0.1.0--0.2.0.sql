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

-- Experiments: the assignment hash and the report's statistics, then the table and functions.
-- @generated pg_reco::api::experiments::
-- @include sql/experiments.sql

-- Scale-out on Citus: reco.distribute() (docs/citus.md).
-- @include sql/citus.sql
