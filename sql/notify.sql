-- Notifications: triggers (rows, not code) turn behaviour into candidates; candidates carry
-- the deployed model's items; templates render them with live price and stock; sending puts
-- one message per channel on a pgmq queue. Loaded after the Rust functions it calls.

CREATE TABLE reco.notification_channels (
    channel           text COLLATE "C" PRIMARY KEY CHECK (channel IN ('email', 'push', 'in_app')),
    max_per_day       integer NOT NULL DEFAULT 1 CHECK (max_per_day >= 0),
    max_per_week      integer NOT NULL DEFAULT 3 CHECK (max_per_week >= 0),
    quiet_start       integer NOT NULL DEFAULT 21 CHECK (quiet_start BETWEEN 0 AND 23),
    quiet_end         integer NOT NULL DEFAULT 8 CHECK (quiet_end BETWEEN 0 AND 23),
    default_timezone  text NOT NULL DEFAULT 'UTC',
    queue             text NOT NULL CHECK (queue ~ '^[a-z_][a-z0-9_]{0,40}$'),
    builtin           boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE reco.notification_channels IS 'Per channel: the frequency caps per customer (messages per day and per rolling week), '
    'quiet hours in the customer''s local time (quiet_start to quiet_end; equal means none), the time zone of customers '
    'without one, and the pgmq queue its messages go to. Edit the rows to tune.';
INSERT INTO reco.notification_channels (channel, max_per_day, max_per_week, quiet_start, quiet_end, queue, builtin) VALUES
    ('email', 1, 3, 21, 8, 'reco_email', true),
    ('push', 2, 6, 21, 8, 'reco_push', true),
    ('in_app', 5, 20, 0, 0, 'reco_in_app', true);

-- A channel row: its time zone is an IANA name (checked by computing a send time with it).
CREATE FUNCTION reco._notification_channels_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
BEGIN
    -- NULLs are left to the NOT NULL constraints, checked after this trigger
    IF NEW.default_timezone IS NOT NULL AND NEW.quiet_start IS NOT NULL AND NEW.quiet_end IS NOT NULL THEN
        PERFORM reco._send_after(pg_catalog.now(), NULL, NEW.default_timezone, NEW.quiet_start, NEW.quiet_end);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER notification_channels_check BEFORE INSERT OR UPDATE ON reco.notification_channels
FOR EACH ROW EXECUTE FUNCTION reco._notification_channels_check();

-- best_send_time reads every customer's e-mail engagement of the last 90 days
CREATE INDEX events_email_engagement_idx ON reco.events (occurred_at) WHERE kind IN ('email_open', 'email_click');

-- Consent per customer and channel, with its provenance: every decision (given or withdrawn)
-- is a row of reco.consent_log, and reco.consents holds the one in force (the latest by when
-- the customer decided; a decision recorded late does not override a newer one). The sending
-- path (run_triggers, send_due) reads reco.consents only. reco.set_consent records a decision;
-- an unsubscribe event withdraws one; customers.email_opt_in and attributes.consent.<channel>
-- are kept as mirrors, and writing them records a decision too (source 'customers.<column>').
CREATE TABLE reco.consent_log (
    consent_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id  text COLLATE "C" NOT NULL,
    channel      text COLLATE "C" NOT NULL,
    granted      boolean NOT NULL,
    source       text NOT NULL CHECK (source ~ '^[a-z0-9_.:-]{1,64}$'),
    evidence     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(evidence) = 'object'),
    decided_at   timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    recorded_by  text NOT NULL
);
COMMENT ON TABLE reco.consent_log IS 'Every consent decision, append-only: customer, channel, given or withdrawn, where it came from '
    '(source: the form, the unsubscribe link, the account page, customers.email_opt_in ...; evidence: the event, message or '
    'form behind it), when the customer decided, when and by which role it was recorded. reco.forget_customer removes a customer''s.';
CREATE INDEX consent_log_customer_idx ON reco.consent_log (customer_id, channel, decided_at DESC);

CREATE TABLE reco.consents (
    customer_id  text COLLATE "C" NOT NULL REFERENCES reco.customers ON DELETE CASCADE,
    channel      text COLLATE "C" NOT NULL REFERENCES reco.notification_channels ON UPDATE CASCADE ON DELETE CASCADE,
    granted      boolean NOT NULL,
    source       text NOT NULL,
    evidence     jsonb NOT NULL DEFAULT '{}',
    decided_at   timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL,
    recorded_by  text NOT NULL,
    consent_id   bigint NOT NULL,
    PRIMARY KEY (customer_id, channel)
);
COMMENT ON TABLE reco.consents IS 'The consent in force per customer and channel (the latest decision in reco.consent_log, whose '
    'consent_id and provenance it repeats). No row means no consent. Written by reco.set_consent, unsubscribe events and writes '
    'of customers.email_opt_in / attributes.consent; read by reco.run_triggers and reco.send_due.';

-- Brings the customers' mirror columns (email_opt_in, attributes.consent.<channel>) in line
-- with the consents in force for the (customer, channel) pairs given. Their triggers see the
-- consent already in force and record nothing.
CREATE FUNCTION reco._consent_mirrors(customer_ids text[], channels text[]) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, reco, pg_temp AS $$
    UPDATE reco.customers cu
    SET email_opt_in = coalesce(m.email, cu.email_opt_in),
        attributes = CASE WHEN m.others IS NULL THEN cu.attributes
                          ELSE cu.attributes || jsonb_build_object('consent', coalesce(cu.attributes -> 'consent', '{}') || m.others) END
    FROM (SELECT k.customer_id AS cust, bool_or(k.granted) FILTER (WHERE k.channel = 'email') AS email,
                 jsonb_object_agg(k.channel, k.granted) FILTER (WHERE k.channel <> 'email') AS others
          FROM reco.consents k
          WHERE (k.customer_id, k.channel) IN (SELECT u.c, u.ch FROM unnest(customer_ids, channels) u(c, ch))
          GROUP BY k.customer_id) m
    WHERE cu.customer_id = m.cust
      AND (cu.email_opt_in IS DISTINCT FROM coalesce(m.email, cu.email_opt_in)
           OR (m.others IS NOT NULL AND NOT coalesce(cu.attributes -> 'consent', '{}') @> m.others))
$$;

-- Records consent decisions (one per element of the arrays; recorded_by names who recorded
-- them) in the log, makes each the one in force unless a later decision is already there, and
-- brings the customers' mirror columns in line. Returns the consent now in force for each
-- (customer, channel) given. The caller has checked the values; the customers exist.
-- (Custom plans: the unsubscribe trigger calls this once per event row, and the consent tables
-- grow within the statement that fires it; a plan cached while they were empty would scan them
-- on every row after.)
CREATE FUNCTION reco._record_consents(customer_ids text[], channels text[], given boolean[], sources text[],
                                      evidence jsonb[], decided_at timestamptz[], recorded_by text)
RETURNS TABLE (customer_id text, channel text, granted boolean)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, reco, pg_temp SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    WITH logged AS (
        INSERT INTO reco.consent_log (customer_id, channel, granted, source, evidence, decided_at, recorded_by)
        SELECT u.c, u.ch, u.g, u.s, coalesce(u.e, '{}'), u.d, recorded_by
        FROM unnest(customer_ids, channels, given, sources, evidence, decided_at) u(c, ch, g, s, e, d)
        RETURNING *)
    INSERT INTO reco.consents AS k (customer_id, channel, granted, source, evidence, decided_at, recorded_at, recorded_by, consent_id)
    SELECT DISTINCT ON (l.customer_id, l.channel) l.customer_id, l.channel, l.granted, l.source, l.evidence, l.decided_at,
           l.recorded_at, l.recorded_by, l.consent_id
    FROM logged l ORDER BY l.customer_id, l.channel, l.decided_at DESC, l.consent_id DESC
    ON CONFLICT ON CONSTRAINT consents_pkey DO UPDATE
    SET granted = excluded.granted, source = excluded.source, evidence = excluded.evidence, decided_at = excluded.decided_at,
        recorded_at = excluded.recorded_at, recorded_by = excluded.recorded_by, consent_id = excluded.consent_id
    WHERE k.decided_at <= excluded.decided_at;
    PERFORM reco._consent_mirrors(customer_ids, channels);
    RETURN QUERY
    SELECT DISTINCT u.c, u.ch, coalesce(k.granted, false)
    FROM unnest(customer_ids, channels) u(c, ch)
    LEFT JOIN reco.consents k ON k.customer_id = u.c AND k.channel = u.ch;
END $$;

-- The mirror columns as input: a write to customers.email_opt_in or attributes.consent.<channel>
-- (by the OMS, a bulk update, an insert) that differs from the consent in force records a
-- decision, source 'customers.email_opt_in' or 'customers.attributes', decided when written.
-- Definer: the writer may update the columns but not the consent tables.
-- A row trigger (Citus allows no statement triggers on distributed tables), so it does one
-- row's work by primary key: the decision logged, then made the one in force; the mirror needs
-- no write unless a later decision is already in force. The consent in force is read by a
-- statement planned on each call: a bulk UPDATE grows reco.consents as it goes, and a plan
-- cached while it was empty scanned it on every row after (a 100 000-row UPDATE took minutes,
-- growing with the square of the rows; now about 0.1 ms a row, bench/consent.sh).
CREATE FUNCTION reco._customers_consent() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    d record;
    logged reco.consent_log%ROWTYPE;
    applied boolean;
    in_force boolean;
BEGIN
    FOR d IN
        SELECT c.ch, c.g, c.src
        FROM (SELECT 'email' AS ch, NEW.email_opt_in AS g, 'customers.email_opt_in' AS src
              WHERE TG_OP = 'INSERT' OR OLD.email_opt_in IS DISTINCT FROM NEW.email_opt_in
              UNION ALL
              SELECT j.key, (j.value)::text::boolean, 'customers.attributes'
              FROM jsonb_each(CASE WHEN jsonb_typeof(NEW.attributes -> 'consent') = 'object' THEN NEW.attributes -> 'consent' ELSE '{}' END) j
              WHERE j.key <> 'email' AND jsonb_typeof(j.value) = 'boolean'
                AND j.key IN (SELECT x.channel FROM reco.notification_channels x)
                AND (TG_OP = 'INSERT' OR OLD.attributes -> 'consent' -> j.key IS DISTINCT FROM j.value)) c
    LOOP
        EXECUTE 'SELECT k.granted FROM reco.consents k WHERE k.customer_id = $1 AND k.channel = $2'
            INTO in_force USING NEW.customer_id, d.ch;
        CONTINUE WHEN d.g IS NOT DISTINCT FROM coalesce(in_force, false);
        INSERT INTO reco.consent_log (customer_id, channel, granted, source, decided_at, recorded_by)
        VALUES (NEW.customer_id, d.ch, d.g, d.src, pg_catalog.statement_timestamp(), session_user::text)
        RETURNING * INTO logged;
        applied := NULL;
        INSERT INTO reco.consents AS k (customer_id, channel, granted, source, evidence, decided_at, recorded_at, recorded_by, consent_id)
        VALUES (logged.customer_id, logged.channel, logged.granted, logged.source, logged.evidence, logged.decided_at,
                logged.recorded_at, logged.recorded_by, logged.consent_id)
        ON CONFLICT ON CONSTRAINT consents_pkey DO UPDATE
        SET granted = excluded.granted, source = excluded.source, evidence = excluded.evidence, decided_at = excluded.decided_at,
            recorded_at = excluded.recorded_at, recorded_by = excluded.recorded_by, consent_id = excluded.consent_id
        WHERE k.decided_at <= excluded.decided_at
        RETURNING true INTO applied;
        IF applied IS NULL THEN
            -- a decision made later is in force: the column goes back to it
            PERFORM reco._consent_mirrors(ARRAY[NEW.customer_id], ARRAY[d.ch]);
        END IF;
    END LOOP;
    RETURN NULL;
END $$;
-- (the WHEN clauses keep every other write to customers, ingest's inserts among them, free of the call)
CREATE TRIGGER customers_consent_ins AFTER INSERT ON reco.customers FOR EACH ROW
WHEN (NEW.email_opt_in OR NEW.attributes ? 'consent') EXECUTE FUNCTION reco._customers_consent();
CREATE TRIGGER customers_consent_upd AFTER UPDATE OF email_opt_in, attributes ON reco.customers FOR EACH ROW
WHEN (OLD.email_opt_in IS DISTINCT FROM NEW.email_opt_in OR OLD.attributes -> 'consent' IS DISTINCT FROM NEW.attributes -> 'consent')
EXECUTE FUNCTION reco._customers_consent();

-- What customers held before the consent tables (an update from 0.1.0): their opt-ins, as
-- decisions recorded now (evidence says so). A fresh install has no customers yet.
WITH opted AS (
    SELECT cu.customer_id AS c, 'email'::text AS ch FROM reco.customers cu WHERE cu.email_opt_in
    UNION ALL
    SELECT cu.customer_id, j.key
    FROM reco.customers cu,
         jsonb_each(CASE WHEN jsonb_typeof(cu.attributes -> 'consent') = 'object' THEN cu.attributes -> 'consent' ELSE '{}' END) j
    WHERE j.value = 'true' AND j.key IN (SELECT x.channel FROM reco.notification_channels x WHERE x.channel <> 'email'))
SELECT count(*) AS consents_recorded
FROM (SELECT reco._record_consents(array_agg(o.c), array_agg(o.ch), array_agg(true), array_agg('pg_reco_update'::text),
                                   array_agg('{"from": "customers columns before 0.2.0"}'::jsonb), array_agg(now()), current_user::text)
      FROM opted o HAVING count(*) > 0) x;

-- An unsubscribe event (reco.record_event(customer, NULL, 'unsubscribe', context => '{"channel":
-- "push"}'), e-mail when no channel is given) withdraws the customer's consent on that channel:
-- source 'unsubscribe', decided when the event occurred, the event and its message's rec_id as
-- evidence. A channel not in reco.notification_channels has no consent to withdraw. Definer:
-- whoever may write events may not write the consent tables.
CREATE FUNCTION reco._events_unsubscribe() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    ch constant text := coalesce(NEW.context ->> 'channel', 'email');
BEGIN
    IF EXISTS (SELECT 1 FROM reco.notification_channels x WHERE x.channel = ch)
       AND EXISTS (SELECT 1 FROM reco.customers cu WHERE cu.customer_id = NEW.customer_id) THEN
        PERFORM reco._record_consents(ARRAY[NEW.customer_id], ARRAY[ch], ARRAY[false], ARRAY['unsubscribe'],
                                      ARRAY[jsonb_strip_nulls(jsonb_build_object('event_id', NEW.event_id, 'rec_id', NEW.context -> 'rec_id'))],
                                      ARRAY[NEW.occurred_at], session_user::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER events_unsubscribe AFTER INSERT ON reco.events
FOR EACH ROW WHEN (NEW.kind = 'unsubscribe' AND NEW.customer_id IS NOT NULL) EXECUTE FUNCTION reco._events_unsubscribe();

CREATE TABLE reco.email_templates (
    template_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text COLLATE "C" NOT NULL CHECK (name ~ '^[a-z0-9_]{1,64}$'),
    version      integer NOT NULL DEFAULT 1 CHECK (version > 0),
    channel      text COLLATE "C" NOT NULL DEFAULT 'email' REFERENCES reco.notification_channels,
    locale       text COLLATE "C" NOT NULL DEFAULT 'en' CHECK (locale ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$'),
    style        text COLLATE "C" NOT NULL DEFAULT 'default' CHECK (style ~ '^[a-z0-9_]{1,32}$'),
    subject      text NOT NULL,
    html_body    text,
    text_body    text NOT NULL,
    link_base    text NOT NULL DEFAULT 'https://shop.example/item/' CHECK (link_base ~ '^https?://'),
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, channel, locale, style, version)
);
COMMENT ON TABLE reco.email_templates IS 'Message templates (minijinja, Jinja2 syntax) per name, channel, locale and copy style; '
    'the highest active version is used. Checked on insert and update: a syntax error or an unknown variable is an error '
    'with its line and column (docs/reference.md, "Templates", lists the variables).';

CREATE TABLE reco.triggers (
    name          text COLLATE "C" PRIMARY KEY CHECK (name ~ '^[a-z0-9_]{1,64}$'),
    kind          text NOT NULL CHECK (kind IN ('long_view', 'abandoned_cart', 'first_day', 'post_purchase', 'back_in_stock', 'low_stock')),
    enabled       boolean NOT NULL DEFAULT true,
    params        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    template      text COLLATE "C" NOT NULL,
    channels      text[] NOT NULL DEFAULT '{email}',
    cooldown      interval NOT NULL DEFAULT '7 days' CHECK (cooldown > '0'),
    priority      integer NOT NULL DEFAULT 100,
    items         integer NOT NULL DEFAULT 4 CHECK (items BETWEEN 1 AND 20),
    placement     text COLLATE "C" NOT NULL DEFAULT 'email' REFERENCES reco.placement_weights,
    last_run_at   timestamptz,
    last_event_id bigint
);
COMMENT ON TABLE reco.triggers IS 'One row per notification trigger; reco.run_triggers() turns what happened since its last run '
    'into candidates. params per kind (defaults in docs/reference.md): long_view {min_seconds, wait_minutes}, abandoned_cart '
    '{wait_hours, show: related|cart}, first_day {wait_hours}, post_purchase {wait_hours}, back_in_stock {interest_days}, '
    'low_stock {max_available, max_days_of_cover, seasonal, interest_days}; every kind takes lookback_hours (how far back a first run looks, '
    'and how late an event may be logged and still count). last_run_at and last_event_id are where the next run starts.';

CREATE TABLE reco.notification_candidates (
    candidate_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id   text COLLATE "C" NOT NULL,
    trigger_name  text COLLATE "C" NOT NULL REFERENCES reco.triggers ON UPDATE CASCADE ON DELETE CASCADE,
    subject       text COLLATE "C" NOT NULL,
    anchors       text[] NOT NULL DEFAULT '{}',
    items         text[] NOT NULL,
    reasons       text[] NOT NULL,
    rec_id        bigint,
    style         text COLLATE "C" NOT NULL DEFAULT 'default',
    send_at       timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'cancelled', 'dropped')),
    status_reason text,
    created_at    timestamptz NOT NULL,
    sent_at       timestamptz
);
COMMENT ON TABLE reco.notification_candidates IS 'What the triggers chose: per customer, trigger and subject (an item, an order, the cart) '
    'at most one within the trigger''s cooldown. items are the deployed model''s picks with spares (an item out of stock at '
    'render time is replaced by the next one); rec_id is their logged recommendation list, which links carry.';
-- (reco.send_due reads each trigger's due candidates from it in send order: what a call takes,
-- not every due candidate)
CREATE INDEX notification_candidates_due_idx ON reco.notification_candidates (trigger_name, send_at, candidate_id) WHERE status = 'pending';
CREATE INDEX notification_candidates_customer_idx ON reco.notification_candidates (customer_id, trigger_name, subject, created_at DESC);

CREATE TABLE reco.notification_sends (
    idempotency_key text COLLATE "C" PRIMARY KEY,
    candidate_id    bigint NOT NULL REFERENCES reco.notification_candidates ON DELETE CASCADE,
    customer_id     text COLLATE "C" NOT NULL,
    channel         text COLLATE "C" NOT NULL,
    msg_id          bigint,
    sent_at         timestamptz NOT NULL,
    trigger_name    text COLLATE "C" NOT NULL,
    template        text COLLATE "C" NOT NULL,
    style           text COLLATE "C" NOT NULL
);
COMMENT ON TABLE reco.notification_sends IS 'One row per message put on a queue; its key (customer, trigger, subject, cooldown window, '
    'channel) makes a replay enqueue nothing. Frequency caps count these rows; the KPIs (reco.notification_kpis) group them by '
    'the trigger, template and copy style they were sent with.';
CREATE INDEX notification_sends_customer_idx ON reco.notification_sends (customer_id, channel, sent_at DESC);
-- (the candidates' deletes cascade here: forget_customer, a deleted trigger, expired candidates)
CREATE INDEX notification_sends_candidate_idx ON reco.notification_sends (candidate_id);

CREATE VIEW reco.email_candidates AS
SELECT c.candidate_id, c.customer_id, c.trigger_name, t.kind AS trigger_kind, c.subject, c.items[1:t.items] AS items,
       c.reasons[1:t.items] AS reasons, c.send_at, t.template, c.style, t.channels, c.rec_id, c.created_at
FROM reco.notification_candidates c
JOIN reco.triggers t ON t.name = c.trigger_name
WHERE c.status = 'pending';
COMMENT ON VIEW reco.email_candidates IS 'Pending candidates: customer, trigger, the items to show (in order) with their reasons, '
    'when to send, the template and copy style, and the rec_id links carry. reco.send_due() queues the due ones.';

CREATE FUNCTION reco._email_templates_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
BEGIN
    PERFORM reco._check_template(NEW.name || ' v' || NEW.version, NEW.subject, NEW.html_body, NEW.text_body);
    RETURN NEW;
END $$;
CREATE TRIGGER email_templates_check BEFORE INSERT OR UPDATE ON reco.email_templates
FOR EACH ROW EXECUTE FUNCTION reco._email_templates_check();

-- A trigger row: parameters known for its kind and of the right type, channels known.
CREATE FUNCTION reco._triggers_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    allowed constant jsonb := '{
        "long_view": ["min_seconds", "wait_minutes", "lookback_hours"],
        "abandoned_cart": ["wait_hours", "show", "lookback_hours"],
        "first_day": ["wait_hours", "lookback_hours"],
        "post_purchase": ["wait_hours", "lookback_hours"],
        "back_in_stock": ["interest_days", "lookback_hours"],
        "low_stock": ["max_available", "max_days_of_cover", "seasonal", "interest_days", "lookback_hours"]}';
    k text;
    bad text;
BEGIN
    FOR k IN SELECT jsonb_object_keys(NEW.params) LOOP
        IF NOT (allowed -> NEW.kind) ? k THEN
            RAISE EXCEPTION 'trigger "%": % takes no parameter "%"', NEW.name, NEW.kind, k
                USING ERRCODE = '22023', HINT = pg_catalog.format('%s takes %s', NEW.kind, allowed -> NEW.kind);
        END IF;
        IF k = 'show' THEN
            IF NEW.params ->> k IS NULL OR NEW.params ->> k NOT IN ('related', 'cart') THEN
                RAISE EXCEPTION 'trigger "%": show is %, not related or cart', NEW.name, NEW.params -> k
                    USING ERRCODE = '22023', HINT = 'show: "related" offers what goes with the cart, "cart" the cart itself';
            END IF;
        ELSIF k = 'seasonal' THEN
            IF jsonb_typeof(NEW.params -> k) IS DISTINCT FROM 'boolean' THEN
                RAISE EXCEPTION 'trigger "%": seasonal is %, not true or false', NEW.name, NEW.params -> k
                    USING ERRCODE = '22023', HINT = 'seasonal: true also offers items tagged "seasonal" (items.attributes.tags)';
            END IF;
        ELSIF jsonb_typeof(NEW.params -> k) <> 'number' OR (NEW.params ->> k)::numeric <= 0 THEN
            RAISE EXCEPTION 'trigger "%": % is %, not a positive number', NEW.name, k, NEW.params -> k
                USING ERRCODE = '22023', HINT = pg_catalog.format('give %s as a number above 0, e.g. {"%s": 4}', k, k);
        END IF;
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM reco.email_templates x WHERE x.name = NEW.template AND x.channel = ANY (NEW.channels)) THEN
        RAISE EXCEPTION 'trigger "%": no template "%" for its channels %', NEW.name, NEW.template, NEW.channels
            USING ERRCODE = '42704', HINT = 'insert the template into reco.email_templates first (one per channel the trigger sends on)';
    END IF;
    SELECT x INTO bad FROM unnest(NEW.channels) x WHERE x IS NULL OR x NOT IN (SELECT channel FROM reco.notification_channels) LIMIT 1;
    IF FOUND OR cardinality(NEW.channels) IS NULL THEN
        RAISE EXCEPTION 'trigger "%": channel % is not in reco.notification_channels', NEW.name, coalesce(pg_catalog.quote_literal(bad), 'list is empty and')
            USING ERRCODE = '22023', HINT = 'channels are email, push or in_app';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER triggers_check BEFORE INSERT OR UPDATE ON reco.triggers
FOR EACH ROW EXECUTE FUNCTION reco._triggers_check();

-- The subjects a trigger finds between `since` and `now`: customer, subject, anchor items.
-- Late events: those logged with ids in (late_from, late_to] (since the last run) that
-- occurred before the window (since, now] but within lookback_hours count as if on time; the
-- cooldown keeps a subject found twice to one candidate.
CREATE FUNCTION reco._trigger_subjects(t reco.triggers, since timestamptz, now timestamptz,
                                       late_from bigint DEFAULT NULL, late_to bigint DEFAULT NULL)
RETURNS TABLE (customer_id text, subject text, anchors text[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    p constant jsonb := t.params;
    lookback constant interval := make_interval(hours => coalesce((p ->> 'lookback_hours')::int, 48));
    late constant boolean := late_from IS NOT NULL AND late_to > late_from;
BEGIN
    IF t.kind = 'long_view' THEN
        -- a product viewed for min_seconds or more in one session (dwell summed), wait_minutes
        -- ago or earlier, and not bought since; a view logged late brings the earlier views of
        -- its session and item with it
        RETURN QUERY
        WITH w AS (SELECT make_interval(mins => coalesce((p ->> 'wait_minutes')::int, 60)) AS w),
        late_keys AS MATERIALIZED (
            SELECT DISTINCT e.customer_id AS cust, coalesce(e.session_id, '') AS sess, e.item_id AS item
            FROM reco.events e, w
            WHERE late AND e.event_id > late_from AND e.event_id <= late_to
              AND e.kind = 'view' AND e.customer_id IS NOT NULL AND e.item_id IS NOT NULL
              AND e.occurred_at <= since - w.w AND e.occurred_at > now - lookback - w.w),
        views AS (
            SELECT e.customer_id AS cust, coalesce(e.session_id, '') AS sess, e.item_id AS item, e.value, e.occurred_at
            FROM reco.events e, w
            WHERE e.kind = 'view' AND e.customer_id IS NOT NULL AND e.item_id IS NOT NULL
              AND e.occurred_at > since - w.w AND e.occurred_at <= now - w.w
            UNION ALL
            SELECT e.customer_id, coalesce(e.session_id, ''), e.item_id, e.value, e.occurred_at
            FROM late_keys k, w, reco.events e
            WHERE e.customer_id = k.cust AND e.item_id = k.item AND coalesce(e.session_id, '') = k.sess AND e.kind = 'view'
              AND e.occurred_at <= since - w.w AND e.occurred_at > now - lookback - w.w)
        SELECT v.cust, v.item, ARRAY[v.item]
        FROM views v
        GROUP BY v.cust, v.sess, v.item
        HAVING sum(coalesce(v.value, 0)) >= coalesce((p ->> 'min_seconds')::float8, 180)
           AND NOT EXISTS (SELECT 1 FROM reco.events b WHERE b.customer_id = v.cust AND b.item_id = v.item
                           AND b.kind = 'purchase' AND b.occurred_at >= min(v.occurred_at));
    ELSIF t.kind = 'abandoned_cart' THEN
        -- the customer's last cart add is wait_hours old or older and nothing was bought since;
        -- the anchors are what is still in the cart
        RETURN QUERY
        WITH last_add AS (
            SELECT e.customer_id, max(e.occurred_at) AS at
            FROM reco.events e
            WHERE e.kind = 'cart_add' AND e.customer_id IS NOT NULL
              AND e.occurred_at > since - make_interval(hours => coalesce((p ->> 'wait_hours')::int, 4))
              AND e.occurred_at <= now
            GROUP BY e.customer_id
            UNION
            -- a cart add logged late: the customer's last add, whenever it was
            SELECT l.customer_id, (SELECT max(x.occurred_at) FROM reco.events x
                                   WHERE x.customer_id = l.customer_id AND x.kind = 'cart_add' AND x.occurred_at <= now)
            FROM (SELECT DISTINCT e.customer_id FROM reco.events e
                  WHERE late AND e.event_id > late_from AND e.event_id <= late_to AND e.kind = 'cart_add' AND e.customer_id IS NOT NULL
                    AND e.occurred_at <= since - make_interval(hours => coalesce((p ->> 'wait_hours')::int, 4))
                    AND e.occurred_at > now - lookback - make_interval(hours => coalesce((p ->> 'wait_hours')::int, 4))) l
        )
        SELECT l.customer_id, 'cart', array_agg(c.item_id ORDER BY c.last_at DESC)
        FROM last_add l
        CROSS JOIN LATERAL (
            SELECT e.item_id, max(e.occurred_at) AS last_at
            FROM reco.events e
            WHERE e.customer_id = l.customer_id AND e.item_id IS NOT NULL AND e.kind IN ('cart_add', 'cart_remove')
              AND e.occurred_at > l.at - interval '7 days' AND e.occurred_at <= l.at
            GROUP BY e.item_id
            HAVING sum(CASE WHEN e.kind = 'cart_add' THEN coalesce(e.value, 1) ELSE -coalesce(e.value, 1) END) > 0
        ) c
        WHERE l.at <= now - make_interval(hours => coalesce((p ->> 'wait_hours')::int, 4))
          AND NOT EXISTS (SELECT 1 FROM reco.events b WHERE b.customer_id = l.customer_id AND b.kind = 'purchase'
                          AND b.occurred_at > l.at AND b.occurred_at <= now)
        GROUP BY l.customer_id;
    ELSIF t.kind = 'first_day' THEN
        -- a customer first seen wait_hours ago (or earlier, within the window) who has not
        -- ordered: starter picks from what they browsed
        RETURN QUERY
        SELECT c.customer_id, 'welcome',
               coalesce((SELECT array_agg(v.item_id) FROM (
                   SELECT e.item_id FROM reco.events e WHERE e.customer_id = c.customer_id AND e.item_id IS NOT NULL
                     AND e.occurred_at <= now ORDER BY e.occurred_at DESC LIMIT 5) v), '{}')
        FROM reco.customers c
        WHERE c.created_at > since - make_interval(hours => coalesce((p ->> 'wait_hours')::int, 24))
          AND c.created_at <= now - make_interval(hours => coalesce((p ->> 'wait_hours')::int, 24))
          AND NOT EXISTS (SELECT 1 FROM reco.orders o WHERE o.customer_id = c.customer_id AND o.placed_at <= now);
    ELSIF t.kind = 'post_purchase' THEN
        -- an order confirmed wait_hours ago: accessories for what was bought
        RETURN QUERY
        SELECT o.customer_id, o.order_id::text, array_agg(DISTINCT l.item_id)
        FROM reco.orders o JOIN reco.order_lines l USING (order_id)
        WHERE o.customer_id IS NOT NULL AND o.status <> 'cancelled' AND l.item_id IS NOT NULL
          AND ((o.placed_at > since - make_interval(hours => coalesce((p ->> 'wait_hours')::int, 24))
                AND o.placed_at <= now - make_interval(hours => coalesce((p ->> 'wait_hours')::int, 24)))
               -- an order ingested late: its purchase events were logged since the last run
               OR (late AND o.order_id IN (SELECT e.order_id FROM reco.events e
                                           WHERE e.event_id > late_from AND e.event_id <= late_to AND e.kind = 'purchase' AND e.order_id IS NOT NULL)
                   AND o.placed_at <= since - make_interval(hours => coalesce((p ->> 'wait_hours')::int, 24))
                   AND o.placed_at > now - lookback - make_interval(hours => coalesce((p ->> 'wait_hours')::int, 24))))
        GROUP BY o.customer_id, o.order_id;
    ELSIF t.kind = 'back_in_stock' THEN
        -- an item available again since the last run, in the customer's size: for customers who
        -- viewed or carted it, or another variant of its product in the same size (another
        -- colour; a product without sizes: any variant), within interest_days, and did not buy
        -- what they looked at
        RETURN QUERY
        SELECT DISTINCT ON (e.customer_id, s.item_id) e.customer_id, s.item_id, ARRAY[s.item_id]
        FROM reco.stock s
        JOIN reco.items i ON i.item_id = s.item_id AND i.active
        JOIN reco.items v ON v.item_id = s.item_id
             OR (i.group_id IS NOT NULL AND v.group_id = i.group_id AND (v.attributes ->> 'size') IS NOT DISTINCT FROM (i.attributes ->> 'size'))
        JOIN reco.events e ON e.item_id = v.item_id AND e.kind IN ('view', 'cart_add') AND e.customer_id IS NOT NULL
             AND e.occurred_at > now - make_interval(days => coalesce((p ->> 'interest_days')::int, 30)) AND e.occurred_at <= now
        WHERE s.back_in_stock_at > since AND s.back_in_stock_at <= now AND s.available > 0 AND NOT s.backordered
          AND NOT EXISTS (SELECT 1 FROM reco.events b WHERE b.customer_id = e.customer_id AND b.item_id = v.item_id
                          AND b.kind = 'purchase' AND b.occurred_at >= e.occurred_at);
    ELSIF t.kind = 'low_stock' THEN
        -- items to clear: few units left (max_available), few days of cover (max_days_of_cover:
        -- the deployed model's demand forecast, reco.demand, as demand-aware ranking uses it;
        -- without a forecast, the sales rate of the last 28 days), or tagged seasonal
        -- (seasonal: true); for customers who viewed or carted that category within
        -- interest_days and have not bought the item
        RETURN QUERY
        WITH forecast AS MATERIALIZED (
            SELECT d.item_id, d.per_day::float8 AS per_day FROM reco.demand d WHERE p ? 'max_days_of_cover'),
        sold AS (
            SELECT f.item_id, f.per_day FROM forecast f
            UNION ALL
            SELECT e.item_id, sum(coalesce(e.value, 1)) / 28.0 AS per_day
            FROM reco.events e
            WHERE p ? 'max_days_of_cover' AND e.kind = 'purchase' AND e.item_id IS NOT NULL
              AND e.occurred_at > now - interval '28 days' AND e.occurred_at <= now
              AND NOT EXISTS (SELECT 1 FROM forecast)
            GROUP BY e.item_id),
        picked AS (
            SELECT i.item_id, i.category
            FROM reco.stock s
            JOIN reco.items i ON i.item_id = s.item_id AND i.active AND i.category IS NOT NULL
            LEFT JOIN sold d ON d.item_id = s.item_id
            WHERE s.available > 0 AND NOT s.backordered
              AND (s.available <= coalesce((p ->> 'max_available')::int, 5)
                   OR s.available <= (p ->> 'max_days_of_cover')::float8 * d.per_day
                   OR (coalesce((p ->> 'seasonal')::boolean, false) AND i.attributes -> 'tags' ? 'seasonal')))
        SELECT DISTINCT ON (e.customer_id, x.item_id) e.customer_id, x.item_id, ARRAY[x.item_id]
        FROM picked x
        JOIN reco.items v ON v.category = x.category AND v.active
        JOIN reco.events e ON e.item_id = v.item_id AND e.kind IN ('view', 'cart_add') AND e.customer_id IS NOT NULL
             AND (e.occurred_at > greatest(since, now - make_interval(days => coalesce((p ->> 'interest_days')::int, 14)))
                  -- interest logged late
                  OR (late AND e.event_id > late_from AND e.event_id <= late_to
                      AND e.occurred_at > now - make_interval(days => coalesce((p ->> 'interest_days')::int, 14))))
             AND e.occurred_at <= now
        WHERE NOT EXISTS (SELECT 1 FROM reco.events b WHERE b.customer_id = e.customer_id AND b.item_id = x.item_id AND b.kind = 'purchase');
    END IF;
END $$;

-- Runs every enabled trigger over what happened since its last run (the first run looks back
-- lookback_hours, default 48) and over the events logged since its last run that occurred
-- earlier (late events, within lookback_hours), and records candidates: one per customer, trigger and subject
-- within the trigger's cooldown, customers with consent on one of its channels only. Items come
-- from reco.recommend (the trigger's placement, the subject's items as the cart, logged).
CREATE FUNCTION reco.run_triggers(now timestamptz DEFAULT now(), only_trigger text DEFAULT NULL)
RETURNS TABLE (trigger_name text, candidates integer)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    t reco.triggers;
    s record;
    since timestamptz;
    n integer;
    picked text[];
    why text[];
    rec bigint;
    ch reco.notification_channels;
    bands float8[];
    banded boolean;
    band text;
    exp_name text;
    exp_arm jsonb;
    logged bigint;
BEGIN
    IF now IS NULL OR NOT isfinite(now) THEN
        RAISE EXCEPTION 'now is %, not a finite timestamp', coalesce(now::text, 'NULL')
            USING ERRCODE = '22004', HINT = 'leave now out to use the transaction''s time';
    END IF;
    IF only_trigger IS NOT NULL AND NOT EXISTS (SELECT 1 FROM reco.triggers x WHERE x.name = only_trigger) THEN
        RAISE EXCEPTION 'trigger "%" does not exist', only_trigger
            USING ERRCODE = '42704', HINT = 'SELECT name FROM reco.triggers lists them';
    END IF;
    -- one run at a time: concurrent runs would both pass the cooldown check
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('reco.run_triggers'));
    -- the last event id logged by a finished writer (reco._events_settled): events logged after
    -- a run with ids at most that are late events of the next. It waits for the writers at most
    -- a second, and skips the late events this round when they take longer, in REPEATABLE READ
    -- (whose snapshot would miss what it waited for) and on Citus (whose workers take ids from
    -- ranges of their own, and where the writers' trigger is dropped).
    logged := NULL;
    IF pg_catalog.current_setting('transaction_isolation') = 'read committed'
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g WHERE g.tgrelid = 'reco.events'::regclass AND g.tgname = 'events_writers') THEN
        logged := reco._events_settled('1 second');
    END IF;
    -- price bands for the copy style: the catalogue's lower and upper quartile of price
    SELECT percentile_cont(ARRAY[0.25, 0.75]) WITHIN GROUP (ORDER BY i.price) INTO bands
    FROM reco.items i WHERE i.active AND i.price > 0;
    FOR t IN SELECT * FROM reco.triggers x WHERE x.enabled AND (only_trigger IS NULL OR x.name = only_trigger)
             ORDER BY x.priority, x.name LOOP
        -- (least() skips NULLs, so the first run's NULL is handled apart)
        since := CASE WHEN t.last_run_at IS NULL THEN now - make_interval(hours => coalesce((t.params ->> 'lookback_hours')::int, 48))
                      ELSE least(t.last_run_at, now) END;
        n := 0;
        -- whether the trigger's template has a price-band style (else the band is not looked up)
        banded := EXISTS (SELECT 1 FROM reco.email_templates x WHERE x.name = t.template AND x.active AND x.style IN ('premium', 'value'));
        -- the subjects with no candidate within the cooldown, once each (a long view can be
        -- one in two sessions), whose customer consents on one of the trigger's channels:
        -- decided for the whole run in one statement. (Checked subject by subject, the cached
        -- plan of the cooldown check was the one made while the candidates table was empty, a
        -- scan of every candidate the run had recorded so far: quadratic, 51 of a run's 72 s in
        -- bench/notify.sh. The loop's cursor keeps the snapshot it opened with, and runs take
        -- turns, so what the loop records cannot change what it reads.)
        FOR s IN SELECT DISTINCT ON (j.customer_id, j.subject) j.*
                 FROM reco._trigger_subjects(t, since, now, t.last_event_id, logged) j
                 WHERE NOT EXISTS (
                         SELECT 1 FROM reco.notification_candidates c
                         WHERE c.customer_id = j.customer_id AND c.trigger_name = t.name AND c.subject = j.subject
                           AND c.created_at > now - t.cooldown)
                   AND EXISTS (
                         SELECT 1 FROM reco.consents k
                         WHERE k.customer_id = j.customer_id AND k.channel = ANY (t.channels) AND k.granted)
                 ORDER BY j.customer_id, j.subject LOOP
            picked := NULL;
            why := NULL;
            -- an experiment on this trigger (reco.experiments, surface trigger:<name>): the
            -- customer's arm, whose style the message takes; logged with the list
            exp_name := NULL;
            exp_arm := NULL;
            SELECT x.name, x.arms -> reco._assign(x.salt, s.customer_id,
                       ARRAY(SELECT (w.a ->> 'weight')::float8 FROM jsonb_array_elements(x.arms) WITH ORDINALITY w(a, o) ORDER BY w.o))
            INTO exp_name, exp_arm
            FROM reco.experiments x
            WHERE x.surface = 'trigger:' || t.name AND x.starts_at <= now AND (x.stops_at IS NULL OR x.stops_at > now)
            ORDER BY x.starts_at DESC LIMIT 1;
            IF (t.kind = 'abandoned_cart' AND t.params ->> 'show' = 'cart') OR t.kind IN ('back_in_stock', 'low_stock') THEN
                -- the subject itself: the cart, the item back in stock, the item to clear (with why:
                -- few left, in season, or selling faster than its stock lasts)
                SELECT s.anchors AS items_,
                       array_fill(CASE t.kind WHEN 'abandoned_cart' THEN 'in your cart' WHEN 'back_in_stock' THEN 'back in stock'
                                  ELSE (SELECT CASE WHEN st.available <= coalesce((t.params ->> 'max_available')::int, 5) THEN 'only a few left'
                                                    WHEN coalesce((t.params ->> 'seasonal')::boolean, false) AND i.attributes -> 'tags' ? 'seasonal'
                                                    THEN 'in season' ELSE 'selling fast' END
                                        FROM reco.stock st JOIN reco.items i ON i.item_id = st.item_id WHERE st.item_id = s.anchors[1]) END,
                                  ARRAY[cardinality(s.anchors)]) AS reasons_ INTO picked, why;
            ELSIF t.kind = 'long_view' THEN
                -- that product's alternatives and complements, alternately
                SELECT array_agg(d.item_id ORDER BY d.pos) AS items_, array_agg(d.reason ORDER BY d.pos) AS reasons_ INTO picked, why
                FROM (SELECT DISTINCT ON (u.item_id) u.item_id, u.reason, u.pos FROM (
                          SELECT x.item_id, x.reason, 2 * x.ord - 1 AS pos
                          FROM reco.similar_items(s.anchors[1], t.items) WITH ORDINALITY x(item_id, score, reason, ord)
                          UNION ALL
                          SELECT x.item_id, x.reason, 2 * x.ord
                          FROM reco.complements(s.anchors, t.items, s.customer_id) WITH ORDINALITY x(item_id, score, reason, ord)) u
                      WHERE u.item_id <> ALL (s.anchors) ORDER BY u.item_id, u.pos) d;
            ELSIF t.kind IN ('abandoned_cart', 'post_purchase') THEN
                -- what goes with the cart or the order
                SELECT array_agg(x.item_id ORDER BY x.ord) AS items_, array_agg(x.reason ORDER BY x.ord) AS reasons_ INTO picked, why
                FROM reco.complements(s.anchors, t.items * 2, s.customer_id) WITH ORDINALITY x(item_id, score, reason, ord);
            END IF;
            IF picked IS NOT NULL AND t.kind IN ('long_view', 'abandoned_cart', 'post_purchase')
               AND (t.kind <> 'abandoned_cart' OR t.params ->> 'show' IS DISTINCT FROM 'cart') THEN
                -- product focus: of what goes with the subject, the items that fit the customer's
                -- resolved preferences (size, colour, brand, price range: stated, or inferred
                -- from orders by reco.infer_preferences) come first, each part in its order
                SELECT array_agg(u.item ORDER BY f.item IS NULL, u.o), array_agg(u.reason ORDER BY f.item IS NULL, u.o)
                INTO picked, why
                FROM unnest(picked, why) WITH ORDINALITY u(item, reason, o)
                LEFT JOIN (SELECT DISTINCT x.item FROM reco.filter_by_preferences(s.customer_id, picked) x(item)) f ON f.item = u.item;
            END IF;
            IF picked IS NOT NULL THEN
                -- logged like a served list, so the message's links carry a rec_id
                INSERT INTO reco.recommendations (customer_id, placement, items, scores, context, shown_at, shard_key)
                VALUES (s.customer_id, t.placement, picked, array_fill(0::real, ARRAY[cardinality(picked)]),
                        jsonb_build_object('trigger', t.name, 'subject', s.subject)
                            || CASE WHEN exp_name IS NULL THEN '{}' ELSE jsonb_build_object('experiment', exp_name, 'arm', exp_arm ->> 'name') END,
                        now, s.customer_id)
                RETURNING reco.recommendations.rec_id INTO rec;
            ELSE
                -- first day, or nothing related known (no model yet): the deployed model's picks
                -- with the subject's items as the cart (cold start for a new customer)
                SELECT array_agg(r.item_id ORDER BY r.ord) AS items_, array_agg(r.reason ORDER BY r.ord) AS reasons_, max(r.rec_id) AS rec_
                INTO picked, why, rec
                FROM reco.recommend(s.customer_id, t.items * 2,
                                    jsonb_build_object('cart', to_jsonb(s.anchors), 'placement', t.placement, 'now', now, 'log', true))
                     WITH ORDINALITY r(item_id, score, reason, rec_id, ord);
            END IF;
            CONTINUE WHEN picked IS NULL;
            IF exp_name IS NOT NULL AND rec IS NOT NULL THEN
                -- a list reco.recommend logged: it carries the trigger's experiment, not one of its placement
                UPDATE reco.recommendations r SET context = r.context || jsonb_build_object('experiment', exp_name, 'arm', exp_arm ->> 'name')
                WHERE r.rec_id = rec AND r.context ->> 'experiment' IS DISTINCT FROM exp_name;
            END IF;
            SELECT * INTO ch FROM reco.notification_channels x WHERE x.channel = t.channels[1];
            -- the price band: the median catalogue price of what the customer ordered in the
            -- last year (two items at least), against the catalogue's quartiles
            band := NULL;
            IF banded AND bands[1] IS NOT NULL THEN
                SELECT CASE WHEN count(*) < 2 THEN NULL
                            WHEN percentile_cont(0.5) WITHIN GROUP (ORDER BY i.price) >= bands[2] THEN 'premium'
                            WHEN percentile_cont(0.5) WITHIN GROUP (ORDER BY i.price) <= bands[1] THEN 'value' END INTO band
                FROM reco.orders o JOIN reco.order_lines l USING (order_id) JOIN reco.items i ON i.item_id = l.item_id AND i.price > 0
                WHERE o.customer_id = s.customer_id AND o.status NOT IN ('cancelled', 'refunded')
                  AND o.placed_at > now - interval '365 days' AND o.placed_at <= now;
            END IF;
            -- the copy style: the customer's notification tone, else the price band, when the
            -- template has that style; else the default
            INSERT INTO reco.notification_candidates (customer_id, trigger_name, subject, anchors, items, reasons, rec_id, style, send_at, created_at)
            SELECT s.customer_id, t.name, s.subject, s.anchors, picked, why, rec,
                   coalesce(exp_arm ->> 'style',
                            (SELECT w.st FROM unnest(ARRAY[nullif(cu.attributes ->> 'notification_tone', ''), band]) WITH ORDINALITY w(st, o)
                             WHERE EXISTS (SELECT 1 FROM reco.email_templates x WHERE x.name = t.template AND x.active AND x.style = w.st)
                             ORDER BY w.o LIMIT 1), 'default'),
                   reco.best_send_time(s.customer_id, now, ch.channel), now
            FROM reco.customers cu WHERE cu.customer_id = s.customer_id;
            n := n + 1;
        END LOOP;
        UPDATE reco.triggers x SET last_run_at = now, last_event_id = coalesce(logged, x.last_event_id) WHERE x.name = t.name;
        trigger_name := t.name;
        candidates := n;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION reco.run_triggers(timestamptz, text) IS 'Runs the enabled triggers (or one) over what happened since their last run; returns the candidates each recorded. Schedule it with pg_cron every minute.';

-- Queues the due candidates, the triggers' priority first: one pgmq message per channel with
-- consent and room under its caps, in the same transaction as marking the candidate sent. A
-- replay queues nothing (idempotency key). A candidate whose subject was bought since is
-- cancelled, one past its trigger's cooldown expires, one with nothing in stock is dropped; one
-- whose every consenting channel is at its cap waits until the caps free (outside quiet hours).
-- Set-based: one statement decides the whole batch and one pgmq.send_batch per channel queues it.
-- Senders run one at a time per customer (transaction-level advisory locks on the customers'
-- parts): a second call for the same customers waits for the first to commit, then counts its
-- sends against the caps. Senders of different shards (shard i of shards n: the customers
-- whose hashtext(customer_id) & 63 is i modulo n) run at once, one per core.
-- (jit off: at a batch of about 10 000 candidates the statement's estimate passes jit_above_cost,
-- and compiling its 200-odd expressions took longer than running them: bench/notify.sh)
CREATE FUNCTION reco.send_due(now timestamptz DEFAULT now(), max_messages integer DEFAULT 1000,
                               shard integer DEFAULT 0, shards integer DEFAULT 1)
RETURNS TABLE (candidate_id bigint, channel text, msg_id bigint, outcome text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, reco, pg_temp SET jit = off AS $$
DECLARE
    qname text;
BEGIN
    IF now IS NULL OR NOT isfinite(now) THEN
        RAISE EXCEPTION 'now is %, not a finite timestamp', coalesce(now::text, 'NULL')
            USING ERRCODE = '22004', HINT = 'leave now out to use the transaction''s time';
    END IF;
    IF max_messages IS NULL OR max_messages < 1 THEN
        RAISE EXCEPTION 'max_messages is %, not a positive count', coalesce(max_messages::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'send at most this many candidates per call, e.g. 1000';
    END IF;
    IF shards IS NULL OR shards NOT IN (1, 2, 4, 8, 16, 32, 64) THEN
        RAISE EXCEPTION 'shards is %, not 1, 2, 4, 8, 16, 32 or 64', coalesce(shards::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'how many senders share the customers, e.g. one per core: 2 senders call with shards => 2, shard => 0 and 1';
    END IF;
    IF shard IS NULL OR shard < 0 OR shard >= shards THEN
        RAISE EXCEPTION 'shard is %, not 0 to % (shards is %)', coalesce(shard::text, 'NULL'), shards - 1, shards
            USING ERRCODE = '22023', HINT = 'each of the shards senders takes one shard, numbered from 0';
    END IF;
    IF pg_catalog.to_regnamespace('pgmq') IS NULL THEN
        RAISE EXCEPTION 'the pgmq extension is not installed in this database'
            USING ERRCODE = '55000', HINT = 'CREATE EXTENSION pgmq; scripts/bootstrap installs it';
    END IF;
    SELECT x.queue INTO qname FROM reco.notification_channels x
    WHERE NOT EXISTS (SELECT 1 FROM pgmq.meta m WHERE m.queue_name = x.queue) ORDER BY x.channel LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'pgmq queue "%" does not exist', qname
            USING ERRCODE = '55000', HINT = 'a superuser runs SELECT reco.setup_queues() once (and after adding a channel)';
    END IF;
    -- One sender at a time per customer, until its transaction ends: the caps and the used keys
    -- count the sends of committed senders only, so two at once for one customer (each taking
    -- other candidates, SKIP LOCKED) would both fill the customer's room, or queue one key twice.
    -- The customers fall in 64 parts (hashtext(customer_id) & 63); a sender of shard i of n
    -- takes the parts j with j % n = i, and holds a transaction lock on each (in order: no
    -- deadlock). Senders with overlapping parts, whatever their n, take turns; senders of
    -- disjoint shards run at once. The statement below takes its snapshot after the wait and
    -- sees the previous sender's sends.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('reco.send_due'), j)
    FROM pg_catalog.generate_series(shard, 63, shards) j ORDER BY j;
    RETURN QUERY
    WITH picked AS MATERIALIZED (
        -- the first max_messages due candidates, the triggers' priority first, then the earliest:
        -- each trigger's earliest max_messages from the due index, so a call reads about what
        -- it takes, not every due candidate (15 calls of 1 000 over 13 608 due had sorted them
        -- all each time)
        SELECT d.cid FROM reco.triggers t
        CROSS JOIN LATERAL (SELECT n.candidate_id AS cid, n.send_at FROM reco.notification_candidates n
                            WHERE n.trigger_name = t.name AND n.status = 'pending' AND n.send_at <= now
                              AND (shards = 1 OR (pg_catalog.hashtext(n.customer_id) & 63) % shards = shard)
                            ORDER BY n.send_at, n.candidate_id LIMIT max_messages) d
        ORDER BY t.priority, d.send_at, d.cid
        LIMIT max_messages),
    batch AS MATERIALIZED (
        -- those candidates, locked (SKIP LOCKED: one another transaction holds, e.g. one being
        -- forgotten or edited, is left for the next call), and
        -- what ends a candidate before any channel is looked at
        SELECT n.candidate_id AS cid, n.customer_id AS cust, n.trigger_name AS trig, n.subject AS subj, n.rec_id AS rec,
               t.template AS tmpl, n.style AS sty, n.send_at AS due, n.created_at AS made, t.channels AS chans, t.cooldown AS cool, t.priority AS prio,
               CASE WHEN t.kind <> 'post_purchase' AND EXISTS (
                        SELECT 1 FROM reco.events b WHERE b.customer_id = n.customer_id AND b.kind = 'purchase'
                          AND b.occurred_at > n.created_at AND b.occurred_at <= now AND b.item_id = ANY (n.anchors))
                    THEN 'cancelled: bought since'
                    WHEN now > n.created_at + t.cooldown THEN 'cancelled: expired'
                    -- (one index scan over the items' ids, not a nested loop per item)
                    WHEN NOT EXISTS (SELECT 1 FROM reco.stock s JOIN reco.items i ON i.item_id = s.item_id AND i.active
                                     WHERE s.item_id = ANY (n.items) AND s.available > 0 AND NOT s.backordered)
                    THEN 'dropped: every item is out of stock or gone' END AS verdict
        FROM reco.notification_candidates n JOIN reco.triggers t ON t.name = n.trigger_name
        WHERE n.candidate_id = ANY (ARRAY(SELECT p.cid FROM picked p)) AND n.status = 'pending' AND n.send_at <= now
        ORDER BY t.priority, n.send_at, n.candidate_id
        FOR UPDATE OF n SKIP LOCKED),
    pairs AS MATERIALIZED (
        -- each live candidate on each of its channels: consent and the idempotency key
        SELECT b.cid, b.cust, b.prio, b.due, b.rec, x.channel AS chan, x.queue, x.max_per_day, x.max_per_week,
               coalesce(k.granted, false) AS consent,
               reco.customer_key(b.cust) || '/' || b.trig || '/' || b.subj || '/'
                   || floor(extract(epoch FROM b.made) / extract(epoch FROM b.cool))::bigint || '/' || x.channel AS key
        FROM batch b JOIN reco.notification_channels x ON x.channel = ANY (b.chans)
        LEFT JOIN reco.consents k ON k.customer_id = b.cust AND k.channel = x.channel
        WHERE b.verdict IS NULL),
    keyed AS MATERIALIZED (
        -- a key already used (sent before, or a second candidate with the same key in this batch)
        SELECT p.*, EXISTS (SELECT 1 FROM reco.notification_sends s WHERE s.idempotency_key = p.key) AS used,
               row_number() OVER (PARTITION BY p.key ORDER BY p.prio, p.due, p.cid) AS key_rank
        FROM pairs p WHERE p.consent),
    open AS MATERIALIZED (
        -- consenting pairs with a fresh key, numbered per customer and channel in priority
        -- order, with the room the day and week caps leave
        SELECT k.*, row_number() OVER w AS nth, count(*) OVER w AS in_batch,
               least(k.max_per_day - (SELECT count(*) FROM reco.notification_sends s WHERE s.customer_id = k.cust
                                        AND s.channel = k.chan AND s.sent_at > now - interval '1 day'),
                     k.max_per_week - (SELECT count(*) FROM reco.notification_sends s WHERE s.customer_id = k.cust
                                        AND s.channel = k.chan AND s.sent_at > now - interval '7 days')) AS room
        FROM keyed k WHERE NOT k.used AND k.key_rank = 1
        WINDOW w AS (PARTITION BY k.cust, k.chan ORDER BY k.prio, k.due, k.cid ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)),
    queued AS MATERIALIZED (
        -- one pgmq.send_batch per channel; ROWS FROM zips its ids, which come back in the order
        -- of the messages, with the pairs they were made from
        SELECT q.cid, q.cust, c.chan, q.key, q.id
        -- (the arrays of one group are built from the same rows in the same order, so they zip;
        -- sorted once by candidate, not once per array)
        FROM (SELECT o.chan, min(o.queue) AS queue, array_agg(o.cid) AS cids, array_agg(o.cust) AS custs, array_agg(o.key) AS keys,
                     array_agg(jsonb_build_object('candidate_id', o.cid, 'channel', o.chan, 'rec_id', o.rec,
                                                  'idempotency_key', o.key, 'send_at', o.due)) AS msgs
              FROM (SELECT * FROM open o WHERE o.nth <= o.room ORDER BY o.chan, o.cid) o GROUP BY o.chan) c
        CROSS JOIN LATERAL ROWS FROM (unnest(c.cids), unnest(c.custs), unnest(c.keys), pgmq.send_batch(c.queue, c.msgs))
            AS q(cid, cust, key, id)),
    sends AS (
        INSERT INTO reco.notification_sends (idempotency_key, candidate_id, customer_id, channel, msg_id, sent_at, trigger_name, template, style)
        SELECT q.key, q.cid, q.cust, q.chan, q.id, now, b.trig, b.tmpl, b.sty FROM queued q JOIN batch b ON b.cid = q.cid
        ON CONFLICT ON CONSTRAINT notification_sends_pkey DO NOTHING),
    capped AS MATERIALIZED (
        -- consenting pairs over a cap, and when it frees: the send that must leave the window
        -- (this batch's m sends count, at now); both windows must have room
        SELECT o.cid, o.chan,
               greatest(
                   CASE WHEN o.max_per_day = 0 THEN 'infinity'
                        WHEN o.m >= o.max_per_day THEN now + interval '1 day'
                        ELSE (SELECT s.sent_at FROM reco.notification_sends s WHERE s.customer_id = o.cust AND s.channel = o.chan
                                AND s.sent_at > now - interval '1 day' ORDER BY s.sent_at DESC OFFSET o.max_per_day - o.m - 1 LIMIT 1)
                             + interval '1 day' END,
                   CASE WHEN o.max_per_week = 0 THEN 'infinity'
                        WHEN o.m >= o.max_per_week THEN now + interval '7 days'
                        ELSE (SELECT s.sent_at FROM reco.notification_sends s WHERE s.customer_id = o.cust AND s.channel = o.chan
                                AND s.sent_at > now - interval '7 days' ORDER BY s.sent_at DESC OFFSET o.max_per_week - o.m - 1 LIMIT 1)
                             + interval '7 days' END) AS frees
        FROM (SELECT o.*, least(greatest(o.room, 0), o.in_batch) AS m FROM open o WHERE o.nth > o.room) o),
    fates AS MATERIALIZED (
        -- per candidate, from one pass over what happened to it (no join: the batch's own row
        -- carries its columns)
        SELECT g.cid, g.cust, g.first_channel,
               CASE WHEN g.verdict IS NOT NULL THEN g.verdict
                    WHEN g.queued THEN 'sent'
                    WHEN NOT g.consent THEN 'cancelled: no consent on any of its channels'
                    WHEN g.until < g.made + g.cool THEN 'waiting'
                    WHEN g.until IS NOT NULL THEN 'cancelled: frequency cap until after the cooldown'
                    ELSE 'cancelled: already sent' END AS fate,
               g.until
        FROM (SELECT x.cid, max(x.cust) AS cust, max(x.first_channel) AS first_channel, max(x.verdict) AS verdict,
                     max(x.made) AS made, max(x.cool) AS cool, bool_or(x.queued) AS queued, bool_or(x.consent) AS consent,
                     max(x.until) AS until
              FROM (SELECT b.cid, b.cust, b.chans[1] AS first_channel, b.verdict, b.made, b.cool, false AS queued, false AS consent,
                           NULL::timestamptz AS until FROM batch b
                    UNION ALL SELECT q.cid, NULL, NULL, NULL, NULL, NULL, true, true, NULL FROM queued q
                    UNION ALL SELECT p.cid, NULL, NULL, NULL, NULL, NULL, false, true, NULL FROM pairs p WHERE p.consent
                    UNION ALL SELECT c.cid, NULL, NULL, NULL, NULL, NULL, false, true, c.frees FROM capped c) x
              GROUP BY x.cid) g),
    updated AS (
        UPDATE reco.notification_candidates n
        SET status = CASE WHEN f.fate = 'sent' THEN 'sent' WHEN f.fate = 'waiting' THEN 'pending'
                          WHEN f.fate LIKE 'dropped:%' THEN 'dropped' ELSE 'cancelled' END,
            status_reason = CASE WHEN f.fate = 'sent' THEN NULL
                                 WHEN f.fate = 'waiting' THEN 'waiting: frequency cap'
                                 WHEN f.fate = 'cancelled: expired' THEN 'expired: not sent within the trigger''s cooldown'
                                 ELSE regexp_replace(f.fate, '^[a-z]+: ', '') END,
            sent_at = CASE WHEN f.fate = 'sent' THEN now END,
            -- (the channel's quiet hours and the customer's time zone read for a waiting candidate
            -- only; the outer join keeps a missing channel's NULLs, which _send_after refuses)
            send_at = CASE WHEN f.fate = 'waiting'
                           THEN (SELECT reco._send_after(f.until, (SELECT cu.timezone FROM reco.customers cu WHERE cu.customer_id = f.cust),
                                                         x.default_timezone, x.quiet_start, x.quiet_end)
                                 FROM (SELECT) one LEFT JOIN reco.notification_channels x ON x.channel = f.first_channel)
                           ELSE n.send_at END
        FROM fates f
        -- (the batch's ids, for the primary key: joined on fates alone, whose size the planner
        -- guesses, a small batch hashed the whole table)
        WHERE n.candidate_id = f.cid AND n.candidate_id = ANY (ARRAY(SELECT b.cid FROM batch b)))
    SELECT b.cid, NULL::text, NULL::bigint, b.verdict FROM batch b WHERE b.verdict IS NOT NULL
    UNION ALL
    SELECT p.cid, p.chan::text, NULL::bigint, 'skipped: no consent' FROM pairs p WHERE NOT p.consent
    UNION ALL
    SELECT k.cid, k.chan::text, NULL::bigint, 'skipped: already sent' FROM keyed k WHERE k.used OR k.key_rank > 1
    UNION ALL
    SELECT c.cid, c.chan::text, NULL::bigint, 'skipped: frequency cap' FROM capped c
    UNION ALL
    SELECT q.cid, q.chan::text, q.id, 'queued' FROM queued q;
END $$;
COMMENT ON FUNCTION reco.send_due(timestamptz, integer, integer, integer) IS 'Queues due candidates on their channels'' pgmq queues (one message per channel, with an idempotency key); returns what happened to each. Workers read the queue and call reco.render(candidate_id) just before delivery.';

-- Creates each channel's pgmq queue and its dead-letter queue (<queue>_dlq) and lets reco_admin
-- send to them and workers (reco_admin) read, archive and delete. pgmq creates queue tables in
-- its own schema, so a superuser runs this once, and again after adding a channel.
CREATE FUNCTION reco.setup_queues() RETURNS SETOF text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    q text;
BEGIN
    IF pg_catalog.to_regnamespace('pgmq') IS NULL THEN
        RAISE EXCEPTION 'the pgmq extension is not installed in this database'
            USING ERRCODE = '55000', HINT = 'CREATE EXTENSION pgmq; scripts/bootstrap installs it';
    END IF;
    GRANT USAGE ON SCHEMA pgmq TO reco_admin;
    GRANT SELECT ON pgmq.meta TO reco_admin;
    FOR q IN SELECT x.queue FROM reco.notification_channels x UNION SELECT x.queue || '_dlq' FROM reco.notification_channels x ORDER BY 1 LOOP
        PERFORM pgmq.create(q);
        EXECUTE pg_catalog.format('GRANT SELECT, INSERT, UPDATE, DELETE ON pgmq.%I, pgmq.%I TO reco_admin', 'q_' || q, 'a_' || q);
        EXECUTE pg_catalog.format('GRANT USAGE, SELECT ON SEQUENCE pgmq.%I TO reco_admin', 'q_' || q || '_msg_id_seq');
        RETURN NEXT q;
    END LOOP;
END $$;
COMMENT ON FUNCTION reco.setup_queues() IS 'Creates the pgmq queue of every channel in reco.notification_channels and its dead-letter queue, and grants reco_admin their use. Run once as a superuser.';

-- A worker's failed delivery: retried later with exponential backoff (base × 2^(reads − 1),
-- from the message's read count), or moved to the channel's dead-letter queue once it was read
-- max_attempts times. Returns when it comes back, or NULL when it was dead-lettered.
CREATE FUNCTION reco.retry_message(channel text, msg_id bigint, max_attempts integer DEFAULT 5, base interval DEFAULT '30 seconds')
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    q text;
    m record;
    back timestamptz;
BEGIN
    IF max_attempts IS NULL OR max_attempts < 1 THEN
        RAISE EXCEPTION 'max_attempts is %, not a positive count', coalesce(max_attempts::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'how many reads a message gets before the dead-letter queue, e.g. 5';
    END IF;
    IF base IS NULL OR base <= '0' THEN
        RAISE EXCEPTION 'base is %, not a positive interval', coalesce(base::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'the first retry''s delay, e.g. ''30 seconds''';
    END IF;
    SELECT x.queue INTO q FROM reco.notification_channels x WHERE x.channel = retry_message.channel;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'channel % is not in reco.notification_channels', coalesce(pg_catalog.quote_literal(retry_message.channel), 'NULL')
            USING ERRCODE = '42704', HINT = 'channels are email, push or in_app';
    END IF;
    EXECUTE pg_catalog.format('SELECT read_ct, message, headers FROM pgmq.%I WHERE msg_id = $1 FOR UPDATE', 'q_' || q) INTO m USING msg_id;
    IF m IS NULL THEN
        RAISE EXCEPTION 'message % is not on queue %', msg_id, q
            USING ERRCODE = '42704', HINT = 'it was archived or deleted already, or belongs to another channel';
    END IF;
    IF m.read_ct >= max_attempts THEN
        PERFORM pgmq.send(q || '_dlq', m.message || jsonb_build_object('attempts', m.read_ct, 'dead_lettered_at', pg_catalog.now()));
        PERFORM pgmq.archive(q, msg_id);
        RETURN NULL;
    END IF;
    back := pg_catalog.clock_timestamp() + base * power(2, greatest(m.read_ct, 1) - 1);
    PERFORM pgmq.set_vt(q, msg_id, back);
    RETURN back;
END $$;
COMMENT ON FUNCTION reco.retry_message(text, bigint, integer, interval) IS 'For a worker whose delivery failed: hides the message until base × 2^(reads − 1) from now, or moves it to the dead-letter queue once it was read max_attempts times (returns NULL then).';

-- KPIs. A message's events carry its rec_id (links and tracking pixels do, see reco.render):
-- delivered, opened (machine opens left out), clicked, bounced, unsubscribed. An order is
-- attributed to the last click on a message by the same customer before it, within the
-- attribution window (7 days unless given), cancelled and refunded orders left out.
CREATE TABLE reco.notification_kpi_targets (
    metric  text COLLATE "C" PRIMARY KEY CHECK (metric IN ('open_rate', 'click_rate', 'conversion_rate')),
    target  double precision NOT NULL CHECK (target > 0 AND target <= 1)
);
COMMENT ON TABLE reco.notification_kpi_targets IS 'The targets the KPI views set each rate beside (a share of delivered messages). Edit the rows to change them.';
INSERT INTO reco.notification_kpi_targets VALUES ('open_rate', 0.25), ('click_rate', 0.035), ('conversion_rate', 0.012);

-- what the KPIs and experiment reports look up: the events that carry a rec_id, by it
CREATE INDEX events_rec_id_idx ON reco.events ((context ->> 'rec_id'), customer_id) WHERE context ? 'rec_id';

-- The arguments of the KPI functions: a finite period, the earlier end first, and a positive
-- attribution window (window_hint says what the window means to the calling function).
CREATE FUNCTION reco._check_kpi_period(since timestamptz, until timestamptz, attribution_window interval, window_hint text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, reco, pg_temp AS $$
BEGIN
    IF since IS NULL OR until IS NULL OR NOT isfinite(since) OR NOT isfinite(until) OR since > until THEN
        RAISE EXCEPTION 'since % and until % are not a finite period', coalesce(since::text, 'NULL'), coalesce(until::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'give two timestamps, the earlier first, e.g. since => now() - interval ''30 days''';
    END IF;
    IF attribution_window IS NULL OR attribution_window <= '0' THEN
        RAISE EXCEPTION 'attribution_window is %, not a positive interval', coalesce(attribution_window::text, 'NULL')
            USING ERRCODE = '22023', HINT = window_hint;
    END IF;
END $$;

CREATE FUNCTION reco.notification_kpis_for(since timestamptz DEFAULT now() - interval '90 days', until timestamptz DEFAULT now(),
                                           attribution_window interval DEFAULT '7 days')
RETURNS TABLE (day date, trigger_name text, template text, style text, channel text, sent bigint, delivered bigint,
               bounced bigint, opened bigint, clicked bigint, unsubscribed bigint, converted bigint, orders bigint,
               revenue jsonb, open_rate double precision, click_rate double precision, conversion_rate double precision,
               open_rate_target double precision, click_rate_target double precision, conversion_rate_target double precision)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, reco, pg_temp AS $$
BEGIN
    PERFORM reco._check_kpi_period(since, until, attribution_window, 'orders this long after a click count as its conversions, e.g. ''7 days''');
    RETURN QUERY
    WITH sends AS MATERIALIZED (
        SELECT s.idempotency_key AS key, s.customer_id AS cust, s.channel AS chan, s.sent_at, c.rec_id::text AS rec,
               s.trigger_name AS trig, s.template AS tmpl, s.style AS sty
        FROM reco.notification_sends s JOIN reco.notification_candidates c USING (candidate_id)
        WHERE s.sent_at >= since AND s.sent_at < until AND c.rec_id IS NOT NULL),
    evs AS MATERIALIZED (
        -- each message's events: those of its customer with its rec_id, on its channel (events
        -- without a channel in their context are e-mail's), after it was sent
        SELECT d.key, e.kind, e.occurred_at, e.context -> 'machine_open' = 'true' AS machine
        FROM sends d JOIN reco.events e ON e.context ? 'rec_id' AND e.context ->> 'rec_id' = d.rec AND e.customer_id = d.cust
             AND e.kind IN ('email_delivered', 'email_open', 'email_click', 'email_bounce', 'unsubscribe')
             AND coalesce(e.context ->> 'channel', 'email') = d.chan AND e.occurred_at >= d.sent_at),
    per_send AS (
        SELECT d.key, d.trig, d.tmpl, d.sty, d.chan, d.sent_at,
               bool_or(v.kind = 'email_bounce') AS bounced,
               -- an open or a click proves delivery when the sender reports none
               bool_or(v.kind IN ('email_delivered', 'email_click') OR (v.kind = 'email_open' AND NOT coalesce(v.machine, false))) AS delivered,
               bool_or(v.kind = 'email_open' AND NOT coalesce(v.machine, false)) OR bool_or(v.kind = 'email_click') AS opened,
               bool_or(v.kind = 'email_click') AS clicked,
               bool_or(v.kind = 'unsubscribe') AS unsubscribed
        FROM sends d LEFT JOIN evs v ON v.key = d.key
        GROUP BY d.key, d.trig, d.tmpl, d.sty, d.chan, d.sent_at),
    clicks AS (
        SELECT d.key, d.cust, v.occurred_at AS at
        FROM sends d JOIN evs v ON v.key = d.key AND v.kind = 'email_click'),
    attributed AS (
        -- last click: each order goes to the latest click before it within the window
        SELECT DISTINCT ON (o.order_id) o.order_id, k.key, o.total_minor, o.currency
        FROM clicks k JOIN reco.orders o ON o.customer_id = k.cust AND o.placed_at >= k.at
             AND o.placed_at < k.at + attribution_window AND o.status NOT IN ('cancelled', 'refunded')
        ORDER BY o.order_id, k.at DESC, k.key),
    conv AS (
        SELECT a.key, count(*) AS orders FROM attributed a GROUP BY a.key),
    money AS (
        -- revenue per group and currency, in major units
        SELECT y.d, y.trig, y.tmpl, y.sty, y.chan,
               jsonb_object_agg(y.cur, round(y.minor::numeric / (10::numeric ^ reco.currency_exponent(y.cur)), reco.currency_exponent(y.cur))) AS revenue
        FROM (SELECT (p.sent_at AT TIME ZONE 'UTC')::date AS d, p.trig, p.tmpl, p.sty, p.chan, a.currency::text AS cur,
                     sum(a.total_minor) AS minor
              FROM attributed a JOIN per_send p ON p.key = a.key GROUP BY 1, 2, 3, 4, 5, 6) y
        GROUP BY 1, 2, 3, 4, 5),
    targets AS (
        SELECT max(t.target) FILTER (WHERE t.metric = 'open_rate') AS o, max(t.target) FILTER (WHERE t.metric = 'click_rate') AS c,
               max(t.target) FILTER (WHERE t.metric = 'conversion_rate') AS v
        FROM reco.notification_kpi_targets t)
    SELECT g.d, g.trig::text, g.tmpl::text, g.sty::text, g.chan::text, g.sent, g.delivered, g.bounced, g.opened, g.clicked,
           g.unsubscribed, g.converted, g.orders, coalesce(m.revenue, '{}'),
           g.opened::float8 / nullif(g.delivered, 0), g.clicked::float8 / nullif(g.delivered, 0),
           g.converted::float8 / nullif(g.delivered, 0), t.o, t.c, t.v
    FROM (SELECT (p.sent_at AT TIME ZONE 'UTC')::date AS d, p.trig, p.tmpl, p.sty, p.chan, count(*) AS sent,
                 count(*) FILTER (WHERE p.delivered AND NOT coalesce(p.bounced, false)) AS delivered,
                 count(*) FILTER (WHERE p.bounced) AS bounced, count(*) FILTER (WHERE p.opened) AS opened,
                 count(*) FILTER (WHERE p.clicked) AS clicked, count(*) FILTER (WHERE p.unsubscribed) AS unsubscribed,
                 count(c.key) AS converted, coalesce(sum(c.orders), 0)::bigint AS orders
          FROM per_send p LEFT JOIN conv c ON c.key = p.key
          GROUP BY 1, 2, 3, 4, 5) g
    LEFT JOIN money m ON (m.d, m.trig, m.tmpl, m.sty, m.chan) = (g.d, g.trig, g.tmpl, g.sty, g.chan)
    CROSS JOIN targets t
    ORDER BY 1, 2, 3, 4, 5;
END $$;
COMMENT ON FUNCTION reco.notification_kpis_for(timestamptz, timestamptz, interval) IS 'Per day (UTC) of sending, trigger, template, copy style and channel: messages sent, delivered, bounced, opened (machine opens left out), clicked, unsubscribed; conversions (orders within attribution_window after a click, last click wins) and their revenue per currency; the rates per delivered message beside their targets (reco.notification_kpi_targets).';

CREATE VIEW reco.notification_kpis AS SELECT * FROM reco.notification_kpis_for();
COMMENT ON VIEW reco.notification_kpis IS 'reco.notification_kpis_for() over the last 90 days with a 7-day attribution window: sent, delivered, open, click and conversion rates and revenue per day, trigger, template, copy style and channel, beside the targets.';

-- (the owner first: the REVOKE below then records the privileges as a fresh install ends with them)
ALTER FUNCTION reco._events_unsubscribe() OWNER TO reco_owner;
ALTER FUNCTION reco._customers_consent() OWNER TO reco_owner;
REVOKE ALL ON FUNCTION reco._events_unsubscribe(), reco._customers_consent(), reco._record_consents(text[], text[], boolean[], text[], jsonb[], timestamptz[], text), reco._consent_mirrors(text[], text[]), reco.setup_queues(), reco.retry_message(text, bigint, integer, interval), reco._notification_channels_check(), reco._email_templates_check(), reco._triggers_check(), reco._trigger_subjects(reco.triggers, timestamptz, timestamptz, bigint, bigint),
    reco.run_triggers(timestamptz, text), reco.send_due(timestamptz, integer, integer, integer), reco._check_template(text, text, text, text),
    reco._send_after(timestamptz, text, text, integer, integer), reco.render(bigint, text, timestamptz), reco.render_batch(bigint[], text, timestamptz),
    reco.best_send_time(text, timestamptz, text, integer, double precision), reco.notification_kpis_for(timestamptz, timestamptz, interval),
    reco._check_kpi_period(timestamptz, timestamptz, interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reco.render(bigint, text, timestamptz), reco.render_batch(bigint[], text, timestamptz), reco.best_send_time(text, timestamptz, text, integer, double precision),
    reco.notification_kpis_for(timestamptz, timestamptz, interval), reco._check_kpi_period(timestamptz, timestamptz, interval, text) TO reco_reader;
GRANT EXECUTE ON FUNCTION reco._check_template(text, text, text, text), reco._send_after(timestamptz, text, text, integer, integer),
    reco._trigger_subjects(reco.triggers, timestamptz, timestamptz, bigint, bigint), reco.run_triggers(timestamptz, text), reco.send_due(timestamptz, integer, integer, integer),
    reco.retry_message(text, bigint, integer, interval) TO reco_admin;
GRANT SELECT ON reco.notification_channels, reco.email_templates, reco.triggers, reco.notification_candidates,
    reco.notification_sends, reco.email_candidates, reco.notification_kpi_targets, reco.notification_kpis TO reco_reader;
GRANT UPDATE (target) ON reco.notification_kpi_targets TO reco_admin;
GRANT INSERT, UPDATE, DELETE ON reco.notification_channels, reco.email_templates, reco.triggers, reco.notification_candidates,
    reco.notification_sends TO reco_admin;
GRANT SELECT, DELETE ON reco.notification_candidates, reco.notification_sends TO reco_owner;

-- Consent: staff read every row, a customer-scoped session its own; only the owner role's
-- functions and triggers write (reco.set_consent, unsubscribe events, the mirror columns).
GRANT EXECUTE ON FUNCTION reco._record_consents(text[], text[], boolean[], text[], jsonb[], timestamptz[], text), reco._consent_mirrors(text[], text[]) TO reco_owner;
GRANT SELECT ON reco.consents, reco.consent_log TO reco_reader, reco_customer;
GRANT SELECT, INSERT, UPDATE, DELETE ON reco.consents TO reco_owner;
GRANT SELECT, INSERT, DELETE ON reco.consent_log TO reco_owner;
GRANT SELECT ON reco.notification_channels TO reco_owner;
ALTER TABLE reco.consents ENABLE ROW LEVEL SECURITY;
ALTER TABLE reco.consent_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY staff ON reco.consents TO reco_reader USING (true);
CREATE POLICY owner_functions ON reco.consents TO reco_owner USING (true) WITH CHECK (true);
CREATE POLICY customer_self ON reco.consents TO reco_customer USING (customer_id = reco.customer_scope());
CREATE POLICY staff ON reco.consent_log TO reco_reader USING (true);
CREATE POLICY owner_functions ON reco.consent_log TO reco_owner USING (true) WITH CHECK (true);
CREATE POLICY customer_self ON reco.consent_log TO reco_customer USING (customer_id = reco.customer_scope());

SELECT pg_catalog.pg_extension_config_dump('reco.consents', '');
SELECT pg_catalog.pg_extension_config_dump('reco.consent_log', '');
SELECT pg_catalog.pg_extension_config_dump('reco.consent_log_consent_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('reco.notification_channels', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('reco.email_templates', '');
SELECT pg_catalog.pg_extension_config_dump('reco.email_templates_template_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('reco.triggers', '');
SELECT pg_catalog.pg_extension_config_dump('reco.notification_candidates', '');
SELECT pg_catalog.pg_extension_config_dump('reco.notification_candidates_candidate_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('reco.notification_sends', '');
