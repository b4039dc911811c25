-- Privacy: pseudonymous customer ids and the reporting role (docs/security.md, "Pseudonymous
-- customer ids"). Ingest replaces a customer id that is personal data by its keyed pseudonym
-- (api/privacy.rs); this file holds the channel setting and the reporting role's allow-list.
-- Loaded in the install and in the update script.

COMMENT ON TABLE reco.customers IS 'Customers known to pg_reco; created by ingestion when first seen. customer_id is a pseudonym '
    '(p_ and 32 hex digits) when the id a channel sent was personal data; the identity (email, phone, name, timezone, '
    'email_opt_in) is in this table only, for the sending path, and reco_reporting cannot read it.';
COMMENT ON COLUMN reco.customers.email IS 'Identity: the e-mail address (lower-cased), from an e-mail address sent as the customer id or an order''s e-mail field.';
COMMENT ON COLUMN reco.customers.phone IS 'Identity: the phone number (+ and digits), from a phone number sent as the customer id.';
COMMENT ON COLUMN reco.customers.name IS 'Identity: the name templates greet the customer with (customer.name; attributes.name when NULL).';

CREATE TABLE reco.pseudonymized_channels (
    channel   text COLLATE "C" PRIMARY KEY CHECK (channel ~ '^[a-z0-9_]{1,63}$'),
    added_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE reco.pseudonymized_channels IS 'Channels whose every customer id is personal data (a loyalty card number, a '
    'national phone number ...): ingest replaces each by its pseudonym. E-mail addresses and international phone numbers are '
    'pseudonymized on every channel. Ids stored before a channel was added stay as they were.';

-- What 0.1.0 stored before pseudonyms: a superuser runs this after ALTER EXTENSION pg_reco
-- UPDATE (again until it returns 0) to move customers stored under an e-mail address or phone
-- number to their pseudonyms, at most max_customers per call, each with every row that holds
-- the id (every table with a customer_id column, from the catalog); the address goes to the
-- identity columns. Then the e-mail addresses of old orders move to their customers' identity.
CREATE FUNCTION reco.pseudonymize_existing(max_customers integer DEFAULT 10000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    r reco.customers;
    p text;
    tbl text;
    tables text[];
    n bigint := 0;
BEGIN
    IF max_customers IS NULL OR max_customers < 1 THEN
        RAISE EXCEPTION 'max_customers is %, not a positive count', coalesce(max_customers::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'how many customers to move per call, e.g. 10000';
    END IF;
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'reco.pseudonymize_existing rewrites customer ids in every table; only a superuser may run it'
            USING ERRCODE = '42501', HINT = 'run it as the superuser who ran ALTER EXTENSION pg_reco UPDATE';
    END IF;
    SELECT array_agg(c.relname ORDER BY c.relname) INTO tables
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = 'customer_id' AND NOT a.attisdropped
    WHERE c.relnamespace = 'reco'::pg_catalog.regnamespace AND c.relkind = 'r' AND c.relname <> 'customers';
    FOR r IN SELECT * FROM reco.customers c
             WHERE (c.customer_id LIKE '%@%' OR c.customer_id ~ '^\s*(\+|00)') AND c.customer_id !~ '^p_[0-9a-f]{32}$'
             ORDER BY c.customer_id FOR UPDATE LOOP
        p := reco.pseudonym(r.customer_id);
        CONTINUE WHEN p = r.customer_id;  -- not an address or a number after all
        -- the pseudonym's row: new, or merged into the one ingest made since the update (whose
        -- values are the newer ones)
        INSERT INTO reco.customers AS x (customer_id, timezone, email_opt_in, created_at, attributes, email, phone, name)
        VALUES (p, r.timezone, r.email_opt_in, r.created_at, r.attributes,
                CASE WHEN position('@' IN r.customer_id) > 0 THEN lower(btrim(r.customer_id)) ELSE r.email END,
                CASE WHEN position('@' IN r.customer_id) = 0
                     THEN '+' || regexp_replace(regexp_replace(btrim(r.customer_id), '^00', ''), '[^0-9]', '', 'g') ELSE r.phone END,
                r.name)
        ON CONFLICT (customer_id) DO UPDATE
        SET created_at = least(x.created_at, excluded.created_at), timezone = coalesce(x.timezone, excluded.timezone),
            attributes = excluded.attributes || x.attributes, email = coalesce(x.email, excluded.email),
            phone = coalesce(x.phone, excluded.phone), name = coalesce(x.name, excluded.name);
        -- keys that hold the id: where both have a row, the pseudonym's (newer) wins
        DELETE FROM reco.customer_vectors v WHERE v.customer_id = r.customer_id
           AND EXISTS (SELECT 1 FROM reco.customer_vectors w WHERE w.customer_id = p AND w.model_id = v.model_id AND w.space = v.space);
        DELETE FROM reco.preference_revocations v WHERE v.customer_id = r.customer_id
           AND EXISTS (SELECT 1 FROM reco.preference_revocations w WHERE w.customer_id = p AND w.category = v.category);
        DELETE FROM reco.consents v WHERE v.customer_id = r.customer_id
           AND EXISTS (SELECT 1 FROM reco.consents w WHERE w.customer_id = p AND w.channel = v.channel);
        FOREACH tbl IN ARRAY tables LOOP
            EXECUTE pg_catalog.format('UPDATE reco.%I SET customer_id = $1 WHERE customer_id = $2', tbl) USING p, r.customer_id;
        END LOOP;
        DELETE FROM reco.customers WHERE customer_id = r.customer_id;
        n := n + 1;
        EXIT WHEN n >= max_customers;
    END LOOP;
    IF n < max_customers THEN
        -- every customer moved: the orders' e-mail field goes to the identity (the latest order's)
        UPDATE reco.customers c SET email = o.email
        FROM (SELECT DISTINCT ON (x.customer_id) x.customer_id, lower(btrim(x.email)) AS email
              FROM reco.orders x WHERE x.email IS NOT NULL AND x.customer_id IS NOT NULL
              ORDER BY x.customer_id, x.placed_at DESC) o
        WHERE c.customer_id = o.customer_id AND c.email IS NULL;
        UPDATE reco.orders SET email = NULL WHERE email IS NOT NULL;
    END IF;
    RETURN n;
END $$;
COMMENT ON FUNCTION reco.pseudonymize_existing(integer) IS 'After updating from 0.1.0: moves customers stored under an e-mail address or phone number, with all their rows, to their pseudonyms (at most max_customers per call; run until it returns 0), then the orders'' e-mail addresses to the identity columns. Superuser only.';
REVOKE ALL ON FUNCTION reco.pseudonymize_existing(integer) FROM PUBLIC;

-- The reporting role: activity, orders, catalogue, models and notification KPIs, all under
-- pseudonyms; not the identity columns of reco.customers, not orders.email, not the raw
-- payloads of reco.ingest_errors, not reco.pseudonym (which would let it compute the pseudonym
-- of a known address).
GRANT USAGE ON SCHEMA reco TO reco_reporting;
GRANT SELECT (customer_id, created_at) ON reco.customers TO reco_reporting;
GRANT SELECT (order_id, channel, external_id, customer_id, placed_at, currency, subtotal_minor, discount_minor, shipping_minor,
              tax_minor, total_minor, status, country, delivery_speed, ingested_at, updated_at) ON reco.orders TO reco_reporting;
GRANT SELECT ON reco.order_lines, reco.items, reco.stock, reco.events, reco.recommendations, reco.models, reco.deployments,
    reco.item_popularity, reco.category_settings, reco.placement_weights, reco.notification_candidates, reco.notification_sends,
    reco.notification_kpi_targets, reco.notification_kpis, reco.triggers, reco.email_templates, reco.notification_channels,
    reco.pseudonymized_channels TO reco_reporting;
GRANT EXECUTE ON FUNCTION reco.notification_kpis_for(timestamptz, timestamptz, interval), reco._check_kpi_period(timestamptz, timestamptz, interval, text),
    reco.currency_exponent(text) TO reco_reporting;

GRANT SELECT ON reco.pseudonymized_channels TO reco_reader, reco_owner;
-- the OMS keeps a customer's identity current (the time zone, opt-in and attributes: finalize.sql)
GRANT UPDATE (email, phone, name) ON reco.customers TO reco_writer;
GRANT INSERT, DELETE ON reco.pseudonymized_channels TO reco_admin;
SELECT pg_catalog.pg_extension_config_dump('reco.pseudonymized_channels', '');
