-- pg_reco 0.1.0 → 0.2.0 (ALTER EXTENSION pg_reco UPDATE TO '0.2.0').
-- What changed is in CHANGELOG.md; tests/integration/tests/upgrade.rs checks that a 0.1.0
-- database updated with this script keeps its rows and deployed model and has the schema of a
-- fresh 0.2.0 install.
\echo Use "ALTER EXTENSION pg_reco UPDATE" to load this file. \quit

-- Notifications (triggers, candidates, templates, the pgmq queue): the Rust functions, then
-- the tables and SQL functions that use them.
-- @generated pg_reco::api::notify::
-- @include sql/notify.sql
