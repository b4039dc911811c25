-- Pseudonymous customer ids: a customer id that is personal data (an e-mail address, an
-- international phone number, any id of a channel in reco.pseudonymized_channels) is replaced
-- at ingest by a keyed pseudonym; the identity lives in reco.customers only; the reporting role
-- sees no direct identifier; forgetting deletes the identity. (setup.sql pins the key.)
SET timezone = 'UTC';
SELECT reset();
TRUNCATE reco.recommendations;
INSERT INTO reco.items (item_id, title, category, price, currency) VALUES
    ('mug', 'Mug', 'kitchen', 9, 'EUR'), ('tee', 'Tee', 'tops', 12, 'EUR');
INSERT INTO reco.stock (item_id, available) VALUES ('mug', 10), ('tee', 10);

-- reco.pseudonym: by form; case and spacing do not matter; a pseudonym stays itself
SELECT reco.pseudonym('Ana@Example.com') AS ana, reco.pseudonym(' ana@example.COM') = reco.pseudonym('Ana@Example.com') AS same,
       reco.pseudonym('+49 30 1234567') AS phone, reco.pseudonym('0049-30-1234567') = reco.pseudonym('+49 30 1234567') AS same_phone,
       reco.pseudonym('c42') AS plain, reco.pseudonym('207119551') AS digits;
SELECT reco.pseudonym(reco.pseudonym('ana@example.com')) = reco.pseudonym('ana@example.com') AS stays;
SELECT reco.pseudonym('ana@example.com') :: text AS pseudonym \gset ana_

-- events: the e-mail address becomes the pseudonym; the address is kept as identity
SELECT reco.record_event('Ana@Example.com', 'mug', 'view', value => 30, occurred_at => '2026-03-01 10:00+00') > 0 AS recorded;
SELECT reco.ingest_event('web', '{"event": "add_to_cart", "user_id": "ana@example.com", "sku": "mug", "ts": 1772359200000}') IS NOT NULL AS ingested;
SELECT customer_id = :'ana_pseudonym' AS is_pseudonym, count(*) FROM reco.events GROUP BY 1;
-- an international phone number likewise
SELECT reco.ingest_event('mobile', '{"event": "view_item", "user_id": "+965 2222-3333", "sku": "tee", "ts": 1772359200000}') IS NOT NULL AS ingested;
SELECT customer_id = :'ana_pseudonym' AS is_ana, customer_id = reco.pseudonym('+96522223333') AS is_the_phone, email, phone
FROM reco.customers ORDER BY 1, 2;
SELECT try($$SELECT reco.pseudonym(NULL)$$);

-- orders: Amazon's buyer e-mail as the id; the order's own e-mail field moves to the identity
SELECT reco.ingest_order(channel, payload) FROM fixtures WHERE channel IN ('amazon', 'shopify') ORDER BY 1;
SELECT o.order_id, o.customer_id, o.email AS order_email, c.email AS identity_email
FROM reco.orders o JOIN reco.customers c USING (customer_id) ORDER BY 1;
SELECT DISTINCT e.customer_id FROM reco.events e JOIN reco.orders o USING (order_id) ORDER BY 1;

-- a channel configured to pseudonymize every id (a loyalty card number)
INSERT INTO reco.pseudonymized_channels (channel) VALUES ('pos');
SELECT reco.record_event('L-88231', 'tee', 'view', channel => 'pos', occurred_at => '2026-03-01 11:00+00') > 0 AS recorded;
SELECT reco.record_event('L-88231', 'tee', 'view', channel => 'web', occurred_at => '2026-03-01 11:00+00') > 0 AS recorded;
SELECT channel, customer_id FROM reco.events WHERE item_id = 'tee' ORDER BY 1;
SELECT reco.pseudonym('L-88231', 'pos') AS pos_id, reco.pseudonym('L-88231', 'web') AS web_id, reco.pseudonym('L-88231') AS no_channel;
SELECT split_part(try($$INSERT INTO reco.pseudonymized_channels (channel) VALUES ('Point of Sale')$$), E'\n', 1) AS try;

-- every function taking a customer id maps a personal one: serving, preferences, tokens, send time
SELECT count(*) AS served FROM reco.recommend('ANA@example.com', 2, '{"log": true}');
SELECT customer_id = :'ana_pseudonym' AS logged_under_the_pseudonym FROM reco.recommendations;
SELECT reco.set_preference('ana@example.com', 'size_tops', 'M') > 0 AS set;
SELECT customer_id = :'ana_pseudonym' AS ledger_under_the_pseudonym FROM reco.preferences;
SELECT reco.resolve_preferences('Ana@Example.com') -> 'size_tops' ->> 'value' AS resolved;
SELECT reco.enter_customer_scope(reco.customer_token('ana@example.com'), local => true) = :'ana_pseudonym' AS scoped;
SELECT reco.best_send_time('ana@example.com', '2026-03-02 06:00+00', explore => 0) IS NOT NULL AS send_time;

-- as the roles that call them, in a new connection (no key read yet in this backend: functions
-- that run as their caller ask reco.pseudonym, which runs as the owner)
\c
SET ROLE reco_reader;
SELECT reco.pseudonym('ana@example.com') = :'ana_pseudonym' AS reader_maps;
SELECT count(*) AS reader_served FROM reco.recommend('Ana@Example.com', 2, '{"log": true}');
SELECT reco.resolve_preferences('ana@example.com') -> 'size_tops' ->> 'value' AS reader_resolves;
RESET ROLE;
SELECT count(*) AS logged_for_ana FROM reco.recommendations WHERE customer_id = :'ana_pseudonym';
SET ROLE reco_customer;
SELECT reco.pseudonym('ana@example.com') = :'ana_pseudonym' AS customer_session_maps;
RESET ROLE;
SET timezone = 'UTC';

-- nothing but reco.customers' identity columns holds the address: every text and jsonb column
-- of every table of the schema is searched
CREATE TEMP TABLE found (tbl text, col text, n bigint);
DO $$
DECLARE r record; n bigint;
BEGIN
    FOR r IN SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
             WHERE c.relnamespace = 'reco'::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
               AND a.atttypid IN ('text'::regtype, 'jsonb'::regtype, 'text[]'::regtype) LOOP
        EXECUTE format('SELECT count(*) FROM reco.%I WHERE %I::text ILIKE ''%%ana@example.com%%'' OR %I::text ILIKE ''%%5vlh04mgfmjh9h5@%%''',
                       r.relname, r.attname, r.attname) INTO n;
        IF n > 0 THEN INSERT INTO found VALUES (r.relname, r.attname, n); END IF;
    END LOOP;
END $$;
SELECT * FROM found ORDER BY 1, 2;

-- the reporting role: activity, orders and KPIs under pseudonyms; no identity, no pseudonym function
SET ROLE reco_reporting;
SELECT count(*) AS events, count(DISTINCT customer_id) AS customers FROM reco.events;
SELECT count(customer_id) AS order_customers, sum(total_minor) AS revenue_minor FROM reco.orders;
SELECT count(*) AS customers FROM (SELECT customer_id, created_at FROM reco.customers) c;
SELECT try($$SELECT email FROM reco.customers$$);
SELECT try($$SELECT * FROM reco.customers$$);
SELECT try($$SELECT email FROM reco.orders$$);
SELECT try($$SELECT attributes FROM reco.customers$$);
SELECT try($$SELECT payload FROM reco.ingest_errors$$);
SELECT try($$SELECT reco.pseudonym('ana@example.com')$$);
SELECT try($$SELECT reco.customer_key('ana@example.com')$$);
SELECT try($$SELECT key FROM reco.secrets$$);
SELECT try($$SELECT * FROM reco.recommend('x')$$);
SELECT count(*) >= 0 AS kpis FROM reco.notification_kpis;
RESET ROLE;

-- what 0.1.0 stored: a customer under the address itself, and a tombstone of an address
-- forgotten then. Forgetting by the address removes the rows under both; a customer forgotten
-- under the address stays forgotten under its pseudonym.
INSERT INTO reco.customers (customer_id) VALUES ('legacy@example.com');
INSERT INTO reco.events (customer_id, item_id, kind, occurred_at) VALUES ('legacy@example.com', 'mug', 'view', '2025-01-01 00:00+00');
SELECT reco.record_event('legacy@example.com', 'tee', 'view', occurred_at => '2026-03-01 12:00+00') > 0 AS recorded;
SELECT reco.forget_customer('Legacy@Example.com') -> 'events' AS legacy_events, reco.forget_customer('legacy@example.com') -> 'customers' AS again;
SELECT count(*) AS legacy_rows FROM reco.events WHERE customer_id IN ('legacy@example.com', reco.pseudonym('legacy@example.com'));
INSERT INTO reco.forgotten_customers (customer_key) VALUES (reco.customer_key('gone@example.com'));
SELECT reco.record_event('gone@example.com', 'mug', 'view', occurred_at => '2026-03-01 12:00+00') IS NULL AS gone_stays_forgotten;
SELECT count(*) AS gone_rows FROM reco.customers WHERE customer_id = reco.pseudonym('gone@example.com');

-- after the update from 0.1.0, a superuser moves what was stored under addresses and numbers
INSERT INTO reco.customers (customer_id, email_opt_in, attributes) VALUES ('Mig@Example.com', true, '{"segment": "b"}'), ('+44 20 7946 0958', false, '{}'), ('@handle', false, '{}');
INSERT INTO reco.events (customer_id, item_id, kind, occurred_at) VALUES
    ('Mig@Example.com', 'mug', 'view', '2025-01-01 00:00+00'), ('+44 20 7946 0958', 'tee', 'view', '2025-01-01 00:00+00'),
    ('@handle', 'tee', 'view', '2025-01-01 00:00+00');
INSERT INTO reco.preference_revocations (customer_id, category, revoked_at) VALUES ('Mig@Example.com', 'color', '2025-01-02 00:00+00');
INSERT INTO reco.orders (order_id, channel, external_id, customer_id, placed_at, currency, subtotal_minor, total_minor, status, email, canonical_hash)
VALUES ('web:m1', 'web', 'm1', 'Mig@Example.com', '2025-01-01 00:00+00', 'EUR', 900, 900, 'paid', 'MIG@example.com', 9);
SET ROLE reco_admin;
SELECT try($$SELECT reco.pseudonymize_existing()$$);
RESET ROLE;
SELECT try($$SELECT reco.pseudonymize_existing(0)$$);
SELECT reco.pseudonymize_existing(1) AS moved, reco.pseudonymize_existing() AS moved_then, reco.pseudonymize_existing() AS nothing_left;
SELECT c.customer_id = reco.pseudonym('mig@example.com') AS is_mig, c.customer_id = reco.pseudonym('+442079460958') AS is_phone,
       c.email, c.phone, c.email_opt_in, c.attributes, (SELECT count(*) FROM reco.events e WHERE e.customer_id = c.customer_id) AS events
FROM reco.customers c WHERE c.customer_id IN (reco.pseudonym('mig@example.com'), reco.pseudonym('+442079460958'), '@handle') ORDER BY 1, 2;
SELECT count(*) AS revocations_moved FROM reco.preference_revocations WHERE customer_id = reco.pseudonym('mig@example.com');
SELECT customer_id = reco.pseudonym('mig@example.com') AS order_moved, email AS order_email FROM reco.orders WHERE order_id = 'web:m1';
SELECT count(*) AS left_under_addresses FROM reco.events WHERE customer_id IN ('Mig@Example.com', '+44 20 7946 0958');

-- forgetting by the address deletes the identity with the rest; the pseudonym is not created again
SELECT reco.forget_customer('ana@example.com') - 'orders_anonymized' AS forgotten;
SELECT count(*) AS rows_of_ana FROM reco.customers WHERE email = 'ana@example.com' OR customer_id = :'ana_pseudonym';
SELECT count(*) AS events_of_ana FROM reco.events WHERE customer_id = :'ana_pseudonym';
SELECT reco.record_event('ana@example.com', 'mug', 'view', occurred_at => '2026-03-02 10:00+00') IS NULL AS not_stored_again;
DELETE FROM reco.pseudonymized_channels;
