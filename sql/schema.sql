-- pg_reco canonical model. Loaded first (bootstrap); functions come after.
-- Identifiers use COLLATE "C": byte order is their meaning, and btree compares are memcmp.
-- Every timestamp is timestamptz (UTC on output with TimeZone = UTC); money is bigint minor units
-- with an ISO 4217 currency beside it.

-- Roles, created before any object so every file can grant to them; the allow-list per role
-- (docs/security.md) is in finalize.sql and each area's file. Roles are created once per
-- cluster; the grants are the extension's.
--   reco_owner     NOLOGIN, not a superuser: owns the definer functions (prosecdef) and
--                  reco.item_vectors (so training can index it), holds just what they need,
--                  and alone reads reco.secrets. Nobody is granted membership in it.
--   reco_reader    serving and reading; reco_writer (ingest, capture) includes it; reco_admin
--                  (train, deploy, forget, demo) includes reco_writer.
--   reco_customer  a customer-facing session: its own preferences, after enter_customer_scope.
--   reco_reporting dashboards and analysts: activity, orders and KPIs under pseudonyms, no
--                  identity column and no way to compute a pseudonym.
-- Nobody but the owner has TRIGGER, TRUNCATE or REFERENCES on any table.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'reco_owner') THEN
        CREATE ROLE reco_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'reco_reader') THEN CREATE ROLE reco_reader NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'reco_writer') THEN CREATE ROLE reco_writer NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'reco_admin') THEN CREATE ROLE reco_admin NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'reco_customer') THEN CREATE ROLE reco_customer NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'reco_reporting') THEN CREATE ROLE reco_reporting NOLOGIN; END IF;
END $$;
GRANT reco_reader TO reco_writer;
GRANT reco_writer TO reco_admin;

CREATE TABLE reco.customers (
    customer_id   text COLLATE "C" PRIMARY KEY CHECK (length(customer_id) BETWEEN 1 AND 256),
    timezone      text,
    email_opt_in  boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    attributes    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    email         text,
    phone         text,
    name          text
);
COMMENT ON TABLE reco.customers IS 'Customers known to pg_reco; created by ingestion when first seen.';  -- and privacy.sql

CREATE TABLE reco.items (
    item_id     text COLLATE "C" PRIMARY KEY CHECK (length(item_id) BETWEEN 1 AND 256),
    group_id    text COLLATE "C",
    title       text,
    category    text,
    brand       text,
    price       numeric CHECK (price >= 0),
    currency    char(3),
    attributes  jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE reco.items IS 'Sellable items (SKUs). group_id ties the size/color variants of one product; attributes holds size, color, tags.';
CREATE INDEX items_group_idx ON reco.items (group_id) WHERE group_id IS NOT NULL;
CREATE INDEX items_category_idx ON reco.items (category) WHERE active;
-- the serving stock check: stock_buyable_idx, then "not one of the (few) inactive items"
CREATE INDEX items_inactive_idx ON reco.items (item_id) WHERE NOT active;

CREATE TABLE reco.stock (
    item_id      text COLLATE "C" PRIMARY KEY REFERENCES reco.items ON DELETE CASCADE,
    available    integer NOT NULL DEFAULT 0,
    backordered  boolean NOT NULL DEFAULT false,
    restock_at   timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    back_in_stock_at timestamptz
);
COMMENT ON TABLE reco.stock IS 'Live stock. An item is buyable when active, available > 0 and not backordered.';
COMMENT ON COLUMN reco.stock.restock_at IS 'When the item is expected back (set by the OMS while it is out of stock).';
COMMENT ON COLUMN reco.stock.back_in_stock_at IS 'Set by a trigger when an update makes the item available again (available from <= 0 to > 0, or backordered to not). Recommendations say "back in stock in your size" for reco.back_in_stock_days after it.';
CREATE INDEX stock_buyable_idx ON reco.stock (item_id) WHERE available > 0 AND NOT backordered;

CREATE FUNCTION reco._stock_back_in_stock() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
BEGIN
    NEW.back_in_stock_at := now();
    RETURN NEW;
END $$;
-- the WHEN clause keeps ordinary stock updates free of the function call
CREATE TRIGGER stock_back_in_stock BEFORE UPDATE OF available, backordered ON reco.stock FOR EACH ROW
WHEN ((OLD.available <= 0 OR OLD.backordered) AND NEW.available > 0 AND NOT NEW.backordered)
EXECUTE FUNCTION reco._stock_back_in_stock();

CREATE TABLE reco.orders (
    order_id        text COLLATE "C" PRIMARY KEY,
    channel         text COLLATE "C" NOT NULL,
    external_id     text COLLATE "C" NOT NULL,
    customer_id     text COLLATE "C" REFERENCES reco.customers ON DELETE SET NULL,
    placed_at       timestamptz NOT NULL,
    currency        char(3) NOT NULL,
    subtotal_minor  bigint NOT NULL,
    discount_minor  bigint NOT NULL DEFAULT 0,
    shipping_minor  bigint NOT NULL DEFAULT 0,
    tax_minor       bigint NOT NULL DEFAULT 0,
    total_minor     bigint NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded')),
    country         char(2),
    email           text,
    delivery_speed  text CHECK (delivery_speed IN ('standard', 'express', 'same_day', 'pickup')),
    canonical_hash  bigint NOT NULL,
    ingested_at     timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_channel_external_id_key UNIQUE (channel, external_id)
);
COMMENT ON TABLE reco.orders IS 'Canonical orders from every channel. order_id is channel:external_id; amounts are integer minor units of currency.';
COMMENT ON COLUMN reco.orders.canonical_hash IS 'Hash of the canonical form; a replayed payload with the same hash changes nothing.';
CREATE INDEX orders_customer_idx ON reco.orders (customer_id, placed_at DESC);
CREATE INDEX orders_placed_brin ON reco.orders USING brin (placed_at);  -- orders arrive in time order

CREATE TABLE reco.order_lines (
    order_id          text COLLATE "C" NOT NULL REFERENCES reco.orders ON DELETE CASCADE,
    line_no           integer NOT NULL CHECK (line_no > 0),
    item_id           text COLLATE "C" NOT NULL,  -- must be in reco.items: checked per statement, see below
    qty               integer NOT NULL CHECK (qty > 0),
    unit_price_minor  bigint NOT NULL CHECK (unit_price_minor >= 0),
    discount_minor    bigint NOT NULL DEFAULT 0,
    size              text,
    color             text,
    PRIMARY KEY (order_id, line_no)
);
COMMENT ON TABLE reco.order_lines IS 'Lines of canonical orders: standardized size code and palette color.';
CREATE INDEX order_lines_item_idx ON reco.order_lines (item_id);

-- order_lines.item_id -> items is enforced by statement-level triggers instead of a foreign key.
-- A foreign key checks every line on its own (one executor start-up and one KEY SHARE row lock
-- per line: a third of ingest time), and concurrent ingests that sell the same popular item
-- share-lock one item row from many transactions, which PostgreSQL records as MultiXacts. The
-- triggers give the same guarantees with one anti-join per statement:
--  * a line must name an existing item (23503, like the foreign key);
--  * an item that order lines name cannot be deleted, renamed or truncated away (23503 / 0A000).
-- Deleting items is rare (retire them with active = false); it waits for order lines being
-- written and holds new ones off until it commits, so no line can slip in for a deleted item.
CREATE FUNCTION reco._order_lines_item_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    missing text;
BEGIN
    SELECT n.item_id INTO missing
    FROM new_rows n
    WHERE NOT EXISTS (SELECT 1 FROM reco.items i WHERE i.item_id = n.item_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'order line refers to item "%", which is not in reco.items', missing
            USING ERRCODE = '23503', TABLE = 'order_lines', COLUMN = 'item_id',
                  HINT = 'insert the item into reco.items first (reco.ingest_order creates missing items itself)';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER order_lines_item_check_ins AFTER INSERT ON reco.order_lines
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION reco._order_lines_item_check();
CREATE TRIGGER order_lines_item_check_upd AFTER UPDATE ON reco.order_lines
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION reco._order_lines_item_check();

CREATE FUNCTION reco._items_in_use_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    used text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        -- AFTER TRUNCATE runs once every table of the statement is emptied
        IF EXISTS (SELECT 1 FROM reco.order_lines) THEN
            RAISE EXCEPTION 'cannot truncate reco.items: reco.order_lines refers to its items'
                USING ERRCODE = '0A000', HINT = 'truncate reco.order_lines (or reco.orders) in the same statement';
        END IF;
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM reco.items i WHERE i.item_id = o.item_id)) THEN
        RETURN NULL;  -- an update that kept every item_id: nothing to check, nothing to lock
    END IF;
    LOCK TABLE reco.order_lines IN SHARE MODE;  -- lines being written now commit first; new ones wait
    SELECT o.item_id INTO used
    FROM old_rows o
    WHERE NOT EXISTS (SELECT 1 FROM reco.items i WHERE i.item_id = o.item_id)
      AND EXISTS (SELECT 1 FROM reco.order_lines l WHERE l.item_id = o.item_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'item "%" is still named by order lines', used
            USING ERRCODE = '23503', TABLE = 'items', COLUMN = 'item_id',
                  HINT = 'retire the item with UPDATE reco.items SET active = false; order history keeps its lines';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER items_in_use_del AFTER DELETE ON reco.items
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION reco._items_in_use_check();
CREATE TRIGGER items_in_use_upd AFTER UPDATE ON reco.items
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION reco._items_in_use_check();
CREATE TRIGGER items_in_use_truncate AFTER TRUNCATE ON reco.items
FOR EACH STATEMENT EXECUTE FUNCTION reco._items_in_use_check();

CREATE TABLE reco.events (
    event_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id  text COLLATE "C",
    session_id   text COLLATE "C",
    item_id      text COLLATE "C",
    kind         text NOT NULL CHECK (kind IN ('view', 'click', 'cart_add', 'cart_remove', 'purchase', 'rating',
                                               'return', 'impression', 'email_open', 'email_click', 'email_delivered',
                                               'email_bounce', 'unsubscribe')),
    value        double precision,
    channel      text,
    device       text,
    occurred_at  timestamptz NOT NULL CHECK (occurred_at >= '1970-01-01 00:00:00+00' AND occurred_at < 'infinity'),
    order_id     text COLLATE "C",
    context      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(context) = 'object'),
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    shard_key    text COLLATE "C",
    CHECK (customer_id IS NOT NULL OR session_id IS NOT NULL)
);
COMMENT ON TABLE reco.events IS 'The clickstream and purchases. value: dwell seconds (view), quantity (cart_add, cart_remove, purchase, return), 0-5 (rating). '
    'The highest-volume table, so it has no foreign keys: the capture functions create the customer first, order updates '
    'replace their own events by order_id, and forgetting a customer deletes their events explicitly.';
COMMENT ON COLUMN reco.events.shard_key IS 'Whose event it is: the customer id, or ''s:'' || session_id for an anonymous one. Written by every insert; '
    'on Citus it is the distribution column (anonymous events cannot be distributed by a NULL customer_id), see docs/citus.md.';
CREATE INDEX events_customer_recent_idx ON reco.events (customer_id, occurred_at DESC);
-- A customer's purchases, ratings and returns (what they own; whether they bought an item)
-- without reading their views: serving reads them for a customer with more events than its
-- history reads, and a customer with thousands of views cost every call that many heap reads
-- (bench/soak.sh found it: 21 ms for 5 purchases among 5 573 events).
CREATE INDEX events_customer_owned_idx ON reco.events (customer_id, item_id)
    WHERE kind IN ('purchase', 'rating', 'return') AND item_id IS NOT NULL;
CREATE INDEX events_session_recent_idx ON reco.events (session_id, occurred_at DESC) WHERE session_id IS NOT NULL;
CREATE INDEX events_occurred_brin ON reco.events USING brin (occurred_at);
CREATE INDEX events_order_idx ON reco.events (order_id) WHERE order_id IS NOT NULL;

CREATE TABLE reco.ingest_errors (
    error_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel      text NOT NULL,
    entity       text NOT NULL CHECK (entity IN ('order', 'event')),
    payload      jsonb,
    sqlstate     char(5) NOT NULL,
    message      text NOT NULL,
    json_path    text,
    hint         text,
    received_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE reco.ingest_errors IS 'Dead letters: every payload a batch ingest could not take, with the reason. Nothing is dropped silently.';
CREATE INDEX ingest_errors_received_idx ON reco.ingest_errors (received_at);

CREATE TABLE reco.channel_mappings (
    channel     text COLLATE "C" NOT NULL,
    field       text COLLATE "C" NOT NULL,
    path        text,
    value       jsonb,
    transform   text,
    zone        text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, field),
    CHECK ((path IS NULL) <> (value IS NULL))
);
COMMENT ON TABLE reco.channel_mappings IS 'Data-driven channels: canonical field -> JSON path (or constant value) + transform. Rows for a built-in channel override its fields.';

-- The extension's secrets: the key of customer tokens and keyed customer hashes. Readable by
-- the owner role only (see finalize.sql); rotate by updating the row (new connections use it).
CREATE TABLE reco.secrets (
    name  text COLLATE "C" PRIMARY KEY,
    key   bytea NOT NULL CHECK (length(key) >= 32)
);
COMMENT ON TABLE reco.secrets IS 'pg_reco''s secret keys (hmac: customer tokens, keyed customer hashes). Only reco_owner reads it.';

-- Customers forgotten by reco.forget_customer, by keyed hash only (no id): ingestion does not
-- create them again.
CREATE TABLE reco.forgotten_customers (
    customer_key  text COLLATE "C" PRIMARY KEY,
    forgotten_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE reco.forgotten_customers IS 'Tombstones of forgotten customers: reco.customer_key(id), never the id. Events of a forgotten id are not stored again; orders are stored without it. Delete a row to let the id be created again.';

-- A restore (pg_dump brings the key of the old database) replaces the key CREATE EXTENSION made,
-- so tokens and forget tombstones keep working across a dump and restore.
CREATE FUNCTION reco._secrets_upsert() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
BEGIN
    UPDATE reco.secrets SET key = NEW.key WHERE name = NEW.name;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER secrets_upsert BEFORE INSERT ON reco.secrets FOR EACH ROW EXECUTE FUNCTION reco._secrets_upsert();
