-- Run once after the regression database is (re)created.
\getenv abs_srcdir PG_ABS_SRCDIR
CREATE EXTENSION pg_reco CASCADE;
SET client_min_messages = warning;
-- The fixture payloads the engine's tests use, one per built-in channel.
CREATE TABLE public.fixtures (channel text PRIMARY KEY, payload jsonb NOT NULL);
\set dir :abs_srcdir/../../engine/tests/fixtures
\set p `cat :dir/shopify.json`
INSERT INTO fixtures VALUES ('shopify', :'p');
\set p `cat :dir/woocommerce.json`
INSERT INTO fixtures VALUES ('woocommerce', :'p');
\set p `cat :dir/amazon.json`
INSERT INTO fixtures VALUES ('amazon', :'p');
\set p `cat :dir/pos.json`
INSERT INTO fixtures VALUES ('pos', :'p');
\set p `cat :dir/web.json`
INSERT INTO fixtures VALUES ('web', :'p');
\set p `cat :dir/mobile.json`
INSERT INTO fixtures VALUES ('mobile', :'p');
GRANT SELECT ON fixtures TO PUBLIC;
SELECT channel FROM fixtures ORDER BY 1;
-- try(sql): runs a statement and shows the error a user would get: SQLSTATE, message, hint.
-- (its search path is pinned: a test's temporary types must not shadow its own variables)
CREATE FUNCTION public.try(sql text) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE st text; msg text; hnt text; det text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hnt = PG_EXCEPTION_HINT, det = PG_EXCEPTION_DETAIL;
    RETURN st || ': ' || msg || coalesce(E'\n  DETAIL: ' || nullif(det, ''), '') || coalesce(E'\n  HINT: ' || nullif(hnt, ''), '');
END $$;
-- reset(): empties the canonical model between test files.
CREATE FUNCTION public.reset() RETURNS void LANGUAGE sql AS $$
    TRUNCATE reco.events, reco.order_lines, reco.orders, reco.stock, reco.items, reco.preferences,
             reco.preference_revocations, reco.preference_policy, reco.customers, reco.ingest_errors, reco.channel_mappings,
             reco.pseudonymized_channels, reco.consents, reco.consent_log;
$$;
-- a known key (reco.secrets; CREATE EXTENSION draws a random one), so pseudonyms and keyed
-- hashes in the expected output are the same on every run: a change to how pseudonyms are made
-- (which would split every pseudonymous customer's history in two) fails the tests
UPDATE reco.secrets SET key = sha256('pg_reco regression tests') WHERE name = 'hmac';
