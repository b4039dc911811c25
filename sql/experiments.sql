-- Experiments: a surface (a placement that reco.recommend serves, or an e-mail trigger) split
-- between arms by a deterministic hash of the experiment's salt and the customer (or session)
-- id. Assignment is computed, never stored. Loaded in the install and in the update script.

CREATE TABLE reco.experiments (
    name           text COLLATE "C" PRIMARY KEY CHECK (name ~ '^[a-z0-9_]{1,64}$'),
    surface        text COLLATE "C" NOT NULL CHECK (surface ~ '^(trigger:)?[a-z0-9_]{1,64}$'),
    arms           jsonb NOT NULL,
    salt           text NOT NULL DEFAULT pg_catalog.gen_random_uuid()::text CHECK (length(salt) BETWEEN 1 AND 200),
    starts_at      timestamptz NOT NULL DEFAULT now(),
    stops_at       timestamptz,
    planned_units  bigint CHECK (planned_units > 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (stops_at IS NULL OR stops_at > starts_at)
);
COMMENT ON TABLE reco.experiments IS 'A/B (or A/B/n) splits. surface: a placement (reco.recommend with that placement) or '
    'trigger:<name> (its e-mail candidates). arms: [{"name": "control", "weight": 50, ...}, ...], the first is control; an arm '
    'may name "model_id" (serve that model), "placement" (use that row of reco.placement_weights) or "style" (the copy '
    'style of a trigger''s messages). Assignment: reco.experiment_arm(name, unit). One experiment per surface at a time.';

-- An experiment row: arms well formed, what they name exists, no overlap on its surface.
CREATE FUNCTION reco._experiments_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    a jsonb;
    names text[] := '{}';
    other text;
    k text;
BEGIN
    IF NEW.arms IS NULL OR NEW.surface IS NULL OR NEW.name IS NULL OR NEW.starts_at IS NULL THEN
        RETURN NEW;  -- the NOT NULL constraints say it
    END IF;
    IF jsonb_typeof(NEW.arms) <> 'array' OR jsonb_array_length(NEW.arms) < 2 THEN
        RAISE EXCEPTION 'experiment "%": arms is %, not an array of two arms or more', NEW.name, NEW.arms
            USING ERRCODE = '22023', HINT = 'e.g. [{"name": "control", "weight": 50}, {"name": "b", "weight": 50, "placement": "checkout_b"}]';
    END IF;
    FOR a IN SELECT x FROM jsonb_array_elements(NEW.arms) x LOOP
        IF jsonb_typeof(a) <> 'object' OR jsonb_typeof(a -> 'name') IS DISTINCT FROM 'string' OR (a ->> 'name') !~ '^[a-z0-9_]{1,32}$' THEN
            RAISE EXCEPTION 'experiment "%": arm % has no valid name', NEW.name, a
                USING ERRCODE = '22023', HINT = 'each arm is an object with "name" (a-z, 0-9, _) and "weight"';
        END IF;
        IF (a ->> 'name') = ANY (names) THEN
            RAISE EXCEPTION 'experiment "%": two arms are named "%"', NEW.name, a ->> 'name'
                USING ERRCODE = '22023', HINT = 'arm names are unique within an experiment';
        END IF;
        names := names || (a ->> 'name');
        IF jsonb_typeof(a -> 'weight') IS DISTINCT FROM 'number' OR (a ->> 'weight')::numeric <= 0 THEN
            RAISE EXCEPTION 'experiment "%": arm "%" has weight %, not a positive number', NEW.name, a ->> 'name', coalesce(a -> 'weight', 'null')
                USING ERRCODE = '22023', HINT = 'weights are relative shares, e.g. 50 and 50, or 90 and 10';
        END IF;
        FOR k IN SELECT jsonb_object_keys(a) LOOP
            IF k NOT IN ('name', 'weight', 'model_id', 'placement', 'style') THEN
                RAISE EXCEPTION 'experiment "%": arm "%" has an unknown key "%"', NEW.name, a ->> 'name', k
                    USING ERRCODE = '22023', HINT = 'an arm takes name, weight and one of model_id, placement, style';
            END IF;
        END LOOP;
        IF a ? 'model_id' AND (jsonb_typeof(a -> 'model_id') IS DISTINCT FROM 'number'
                               OR NOT EXISTS (SELECT 1 FROM reco.models m WHERE m.model_id::numeric = (a ->> 'model_id')::numeric)) THEN
            RAISE EXCEPTION 'experiment "%": arm "%" names model %, which is not in reco.models', NEW.name, a ->> 'name', a -> 'model_id'
                USING ERRCODE = '42704', HINT = 'SELECT model_id, kind FROM reco.models lists them';
        END IF;
        IF a ? 'placement' AND NOT EXISTS (SELECT 1 FROM reco.placement_weights p WHERE p.placement = a ->> 'placement') THEN
            RAISE EXCEPTION 'experiment "%": arm "%" names placement %, which is not in reco.placement_weights', NEW.name, a ->> 'name', a -> 'placement'
                USING ERRCODE = '42704', HINT = 'add the row to reco.placement_weights first';
        END IF;
        IF a ? 'style' AND NOT EXISTS (
                SELECT 1 FROM reco.triggers t JOIN reco.email_templates x ON x.name = t.template AND x.style = a ->> 'style'
                WHERE 'trigger:' || t.name = NEW.surface) THEN
            RAISE EXCEPTION 'experiment "%": arm "%" names style %, which the template of % does not have', NEW.name, a ->> 'name', a -> 'style', NEW.surface
                USING ERRCODE = '42704', HINT = 'styles are for trigger:<name> surfaces; insert the styled template first';
        END IF;
    END LOOP;
    IF NEW.surface LIKE 'trigger:%' AND NOT EXISTS (SELECT 1 FROM reco.triggers t WHERE 'trigger:' || t.name = NEW.surface) THEN
        RAISE EXCEPTION 'experiment "%": surface % names no trigger', NEW.name, NEW.surface
            USING ERRCODE = '42704', HINT = 'SELECT name FROM reco.triggers lists them';
    END IF;
    IF NEW.surface NOT LIKE 'trigger:%' AND NOT EXISTS (SELECT 1 FROM reco.placement_weights p WHERE p.placement = NEW.surface) THEN
        RAISE EXCEPTION 'experiment "%": surface % is not a placement', NEW.name, NEW.surface
            USING ERRCODE = '42704', HINT = 'a surface is a placement of reco.placement_weights or trigger:<name>';
    END IF;
    -- one experiment per surface at a time (serialized: two inserts could both see no overlap)
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('reco.experiments'));
    SELECT e.name INTO other FROM reco.experiments e
    WHERE e.surface = NEW.surface AND e.name <> NEW.name
      AND tstzrange(e.starts_at, e.stops_at) && tstzrange(NEW.starts_at, NEW.stops_at) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'experiment "%" overlaps experiment "%" on surface %', NEW.name, other, NEW.surface
            USING ERRCODE = '23P01', HINT = 'stop the other one first: UPDATE reco.experiments SET stops_at = now() WHERE name = ...';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER experiments_check BEFORE INSERT OR UPDATE ON reco.experiments
FOR EACH ROW EXECUTE FUNCTION reco._experiments_check();

-- An experiment by name, or 42704.
CREATE FUNCTION reco._experiment(experiment text) RETURNS reco.experiments
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    e reco.experiments;
BEGIN
    SELECT * INTO e FROM reco.experiments x WHERE x.name = experiment;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'experiment % does not exist', coalesce(pg_catalog.quote_literal(experiment), 'NULL')
            USING ERRCODE = '42704', HINT = 'SELECT name FROM reco.experiments lists them';
    END IF;
    RETURN e;
END $$;

-- The arm of a unit (customer id, or session id) in an experiment: computed from the salt.
CREATE FUNCTION reco.experiment_arm(experiment text, unit text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    e reco.experiments;
    i integer;
BEGIN
    e := reco._experiment(experiment);
    IF unit IS NULL THEN
        RETURN NULL;
    END IF;
    i := reco._assign(e.salt, reco.pseudonym(unit), ARRAY(SELECT (a ->> 'weight')::float8 FROM jsonb_array_elements(e.arms) WITH ORDINALITY x(a, o) ORDER BY o));
    RETURN e.arms -> i ->> 'name';
END $$;
COMMENT ON FUNCTION reco.experiment_arm(text, text) IS 'The arm a customer (or session) id falls in: deterministic from the experiment''s salt, the same on every call.';

-- Running tallies for the report on placement surfaces, so the report reads a few rows per arm
-- instead of every logged list and event (issue #18: 10 million lists in well under 2 s). Trials
-- are counted as lists are logged (a statement trigger); successes, events carrying a list's
-- rec_id, are folded in afterwards by reco.fold_attribution (pg_cron, every minute) from a
-- watermark, so ingest pays nothing for them, and the report adds the events past the watermark
-- itself, so it is exact whenever the fold last ran. What is counted is what was logged: a list
-- purged later still counts; forgetting a customer takes their lists, successes and unit out
-- (reco._experiment_forget); TRUNCATE of the lists or events clears what they fed. A list logged
-- after events that carry its rec_id (a restore loads the events first) counts them when it is
-- logged; the tallies are not dumped. On Citus the triggers are dropped
-- (reco._distribute_prepare) and the report reads the lists.
CREATE TABLE reco.experiment_tallies (
    experiment  text COLLATE "C" NOT NULL,
    arm         text COLLATE "C" NOT NULL,
    metric      text COLLATE "C" NOT NULL,
    slot        int2 NOT NULL,
    n           bigint NOT NULL,
    PRIMARY KEY (experiment, arm, metric, slot)
);
COMMENT ON TABLE reco.experiment_tallies IS 'Per experiment, arm and metric (trials: lists logged; or an event kind: lists with at least one such event carrying their rec_id), the count, summed over slots (concurrent writers use different slots; -1 holds what forgetting customers took out). Kept by triggers; read by reco.experiment_report.';
CREATE TABLE reco.experiment_units (
    experiment  text COLLATE "C" NOT NULL,
    arm         text COLLATE "C" NOT NULL,
    unit        text COLLATE "C" NOT NULL,
    lists       bigint NOT NULL DEFAULT 0,
    click       bigint NOT NULL DEFAULT 0,
    cart_add    bigint NOT NULL DEFAULT 0,
    purchase    bigint NOT NULL DEFAULT 0,
    email_open  bigint NOT NULL DEFAULT 0,
    email_click bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment, arm, unit)
) WITH (fillfactor = 70);  -- (room for the counts' updates on the row's own page: no index entry per update)
COMMENT ON TABLE reco.experiment_units IS 'The units (customer id, or session id for anonymous traffic) an experiment''s arm has logged lists for, '
    'with how many lists and how many of those had a click, cart add, purchase, open or e-mail click: the sample-ratio test '
    'and the variance of each rate over units (a customer''s lists are not independent trials). reco.forget_customer removes a customer''s.';
CREATE TABLE reco.experiment_successes (
    rec_id      bigint NOT NULL,
    kind        text COLLATE "C" NOT NULL,
    experiment  text COLLATE "C" NOT NULL,
    arm         text COLLATE "C" NOT NULL,
    unit        text COLLATE "C",
    PRIMARY KEY (rec_id, kind)
);
-- forget_customer deletes by unit too (a list purged later leaves its successes)
CREATE INDEX experiment_successes_unit_idx ON reco.experiment_successes (unit);
COMMENT ON TABLE reco.experiment_successes IS 'The experiment lists (rec_id, with their experiment, arm and unit) that have had an event of each kind, so a second click on one list is not a second success. reco.forget_customer removes a customer''s (by unit).';
-- How far reco.fold_attribution has folded the events into the tallies: every event up to
-- event_id is counted (its writers had all finished when the fold read it); the report reads the
-- events after it itself. One row.
CREATE TABLE reco.experiment_watermark (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    event_id   bigint NOT NULL DEFAULT 0 CHECK (event_id >= 0),
    folded_at  timestamptz
);
INSERT INTO reco.experiment_watermark DEFAULT VALUES;
COMMENT ON TABLE reco.experiment_watermark IS 'The last event (event_id) whose rec_id reco.fold_attribution has counted in the experiment tallies, and when it ran; reco.experiment_report reads the events after it itself. One row.';

-- Whether the tallies are kept here (not on Citus, where the triggers are dropped).
CREATE FUNCTION reco._experiment_tallied() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, reco, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
                   WHERE tgrelid = 'reco.recommendations'::pg_catalog.regclass AND tgname = 'recommendations_experiment_tally')
$$;

-- Credits each list's first event of each kind (pairs of rec_id and kind, repeats allowed) to
-- its experiment's arm: a success row (so a repeat is not a second success), the unit's count and
-- the arm's tally. Lists outside an experiment, and pairs counted already, are skipped. Returns
-- the new successes. Called by the definer functions below only.
CREATE FUNCTION reco._experiment_credit(rec_ids bigint[], kinds text[]) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    WITH h AS MATERIALIZED (
        -- one probe of the lists' primary key per pair
        SELECT q.rec_id, q.kind, x.context ->> 'experiment' AS e, x.context ->> 'arm' AS a, coalesce(x.customer_id, x.session_id) AS unit
        FROM (SELECT DISTINCT p.rec_id, p.kind FROM unnest(rec_ids, kinds) p(rec_id, kind)) q
        JOIN reco.recommendations x ON x.rec_id = q.rec_id
        WHERE x.context ->> 'experiment' IS NOT NULL AND x.context ->> 'arm' IS NOT NULL),
    s AS (
        INSERT INTO reco.experiment_successes (rec_id, kind, experiment, arm, unit)
        SELECT h.rec_id, h.kind, h.e, h.a, h.unit FROM h
        ON CONFLICT DO NOTHING RETURNING experiment, arm, kind, unit),
    -- each new success counted for its list's unit
    per_unit AS (
        UPDATE reco.experiment_units u
           SET click = u.click + x.click, cart_add = u.cart_add + x.cart_add, purchase = u.purchase + x.purchase,
               email_open = u.email_open + x.email_open, email_click = u.email_click + x.email_click
          FROM (SELECT s.experiment, s.arm, s.unit, count(*) FILTER (WHERE s.kind = 'click') AS click,
                       count(*) FILTER (WHERE s.kind = 'cart_add') AS cart_add, count(*) FILTER (WHERE s.kind = 'purchase') AS purchase,
                       count(*) FILTER (WHERE s.kind = 'email_open') AS email_open, count(*) FILTER (WHERE s.kind = 'email_click') AS email_click
                  FROM s WHERE s.unit IS NOT NULL GROUP BY 1, 2, 3) x
         WHERE u.experiment = x.experiment AND u.arm = x.arm AND u.unit = x.unit),
    t AS (
        INSERT INTO reco.experiment_tallies AS t (experiment, arm, metric, slot, n)
        SELECT s.experiment, s.arm, s.kind, (pg_catalog.random() * 63)::int2, count(*) FROM s
        GROUP BY s.experiment, s.arm, s.kind
        ON CONFLICT (experiment, arm, metric, slot) DO UPDATE SET n = t.n + excluded.n)
    SELECT count(*) INTO n FROM s;
    RETURN n;
END $$;

-- Logged lists of an experiment: their units and one trial each; and events that already carry
-- their rec_id (a restore loads the events first) count as successes. Statement triggers over
-- the inserted rows, so a batch costs one upsert per arm: a per-row update of the same tally
-- would grow one row's version chain within a long transaction. Definer: the tallies are written
-- by the owner only, whoever logs the list. A statement without experiment lists returns at the
-- first check.
CREATE FUNCTION reco._experiment_tally_lists() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    ids bigint[];
    kinds text[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_lists l WHERE l.context ? 'experiment') THEN
        RETURN NULL;
    END IF;
    INSERT INTO reco.experiment_units AS u (experiment, arm, unit, lists)
    SELECT l.context ->> 'experiment', l.context ->> 'arm', coalesce(l.customer_id, l.session_id), count(*)
    FROM new_lists l
    WHERE l.context ->> 'experiment' IS NOT NULL AND l.context ->> 'arm' IS NOT NULL AND coalesce(l.customer_id, l.session_id) IS NOT NULL
    GROUP BY 1, 2, 3
    ON CONFLICT (experiment, arm, unit) DO UPDATE SET lists = u.lists + excluded.lists;
    INSERT INTO reco.experiment_tallies AS t (experiment, arm, metric, slot, n)
    SELECT l.context ->> 'experiment', l.context ->> 'arm', 'trials', (pg_catalog.random() * 63)::int2, count(*)
    FROM new_lists l WHERE l.context ->> 'experiment' IS NOT NULL AND l.context ->> 'arm' IS NOT NULL
    GROUP BY 1, 2
    ON CONFLICT (experiment, arm, metric, slot) DO UPDATE SET n = t.n + excluded.n;
    -- one probe of the events' rec_id index per list
    SELECT array_agg(l.rec_id), array_agg(k.kind) INTO ids, kinds
    FROM new_lists l, LATERAL (SELECT DISTINCT ev.kind FROM reco.events ev
                               WHERE ev.context ? 'rec_id' AND ev.context ->> 'rec_id' = l.rec_id::pg_catalog.text
                                 AND ev.kind IN ('click', 'cart_add', 'purchase', 'email_open', 'email_click')) k
    WHERE l.context ->> 'experiment' IS NOT NULL AND l.context ->> 'arm' IS NOT NULL;
    IF ids IS NOT NULL THEN
        PERFORM reco._experiment_credit(ids, kinds);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER recommendations_experiment_tally AFTER INSERT ON reco.recommendations
REFERENCING NEW TABLE AS new_lists FOR EACH STATEMENT EXECUTE FUNCTION reco._experiment_tally_lists();

-- Every statement that writes events holds a shared advisory lock (this database, key pair
-- 1919250531 / 1) until its transaction ends, so reco.fold_attribution can wait for the writers
-- in flight without a table lock (any table lock strong enough to wait for writers would also
-- wait for, and cancel, autovacuum of the events). Not a definer: it takes only that lock, and
-- names only pg_catalog's function with integer constants, so it needs no search path of its
-- own (setting one would double the few microseconds it adds to each statement).
CREATE FUNCTION reco._events_writing() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock_shared(1919250531, 1);
    RETURN NULL;
END $$;
CREATE TRIGGER events_writers BEFORE INSERT ON reco.events FOR EACH STATEMENT EXECUTE FUNCTION reco._events_writing();

-- Waits for the event writers in flight and returns the largest event id logged by a finished
-- writer: every id up to it belongs to a committed (or rolled back) transaction, since ids are
-- taken in order though commits need not be. It takes the advisory lock the writers share
-- (reco._events_writing) exclusively, at most `wait` (0: only if free; new writers queue behind
-- it meanwhile), reads the largest id in a statement after it, whose snapshot sees every writer
-- that finished, and releases the lock at once. NULL when a writer held on longer than `wait`.
-- 0 with no events. The caller runs in READ COMMITTED (a REPEATABLE READ snapshot would miss what
-- it waited for). Used by reco.fold_attribution and reco.run_triggers (late events).
CREATE FUNCTION reco._events_settled(wait interval) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    upto bigint;
BEGIN
    BEGIN
        IF wait <= '0' THEN
            IF NOT pg_catalog.pg_try_advisory_xact_lock(1919250531, 1) THEN
                RAISE EXCEPTION USING ERRCODE = 'lock_not_available';
            END IF;
        ELSE
            PERFORM pg_catalog.set_config('lock_timeout', greatest(1, (extract(epoch FROM wait) * 1000)::bigint) || 'ms', true);
            PERFORM pg_catalog.pg_advisory_xact_lock(1919250531, 1);
        END IF;
        SELECT coalesce(max(ev.event_id), 0) INTO upto FROM reco.events ev;
        -- released at once (and lock_timeout with it) by leaving the block through an error
        RAISE EXCEPTION USING ERRCODE = 'RF000';
    EXCEPTION
        WHEN SQLSTATE 'RF000' THEN RETURN upto;
        WHEN lock_not_available THEN RETURN NULL;
    END;
END $$;

-- Folds the events logged since the watermark into the tallies: each event carrying the rec_id
-- of an experiment's list (a click, cart add, purchase, open or e-mail click) makes the list's
-- first event of that kind a success of its arm. Ingest does none of this work (issue #18), and
-- the report reads the events past the watermark itself, so how often this runs changes only how
-- much the report reads: schedule it with pg_cron every minute.
-- Commit order: an event id is taken inside the inserting transaction, so a smaller id can
-- commit after a larger one. The fold first waits for the writers in flight: it takes the
-- advisory lock the writers share (reco._events_writing) exclusively, at most `wait` (new writers
-- queue behind it meanwhile), and releases it at once; every event id handed out before then
-- belongs to a finished transaction. If a writer's transaction lasts longer than `wait`, the fold
-- gives up this round (watermark unchanged) rather than stall ingest. At most max_events ids
-- past the watermark per call (`behind` says how many remain). Definer: the tallies are the
-- owner's.
CREATE FUNCTION reco.fold_attribution(max_events bigint DEFAULT 1000000, wait interval DEFAULT '1 second')
RETURNS TABLE (events bigint, successes bigint, watermark bigint, behind bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    lo bigint;
    upto bigint;
    hi bigint;
    ids bigint[];
    kinds text[];
BEGIN
    IF max_events IS NULL OR max_events < 1 THEN
        RAISE EXCEPTION 'max_events is %, not a positive number of events', coalesce(max_events::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'the default, 1000000, folds a million events per call';
    END IF;
    IF wait IS NULL OR wait < '0' OR wait > '1 hour' THEN
        RAISE EXCEPTION 'wait is %, not an interval from 0 to 1 hour', coalesce(wait::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'how long to wait for the event writers in flight, e.g. ''1 second''; 0 gives up at once';
    END IF;
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'reco.fold_attribution runs in READ COMMITTED, not %', pg_catalog.current_setting('transaction_isolation')
            USING ERRCODE = '25000', HINT = 'call it outside an explicit REPEATABLE READ or SERIALIZABLE transaction: it must see the events committed while it waited';
    END IF;
    IF NOT reco._experiment_tallied() THEN
        -- (on Citus the report reads the lists: nothing to fold)
        RETURN QUERY SELECT 0::bigint, 0::bigint, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    -- one fold at a time: a second waits here, then starts from where the first stopped
    SELECT w.event_id INTO lo FROM reco.experiment_watermark w WHERE w.one FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO reco.experiment_watermark DEFAULT VALUES ON CONFLICT DO NOTHING;
        SELECT w.event_id INTO lo FROM reco.experiment_watermark w WHERE w.one FOR UPDATE;
    END IF;
    upto := reco._events_settled(wait);
    IF upto IS NULL THEN
        RETURN QUERY SELECT 0::bigint, 0::bigint, lo, NULL::bigint;
        RETURN;
    END IF;
    -- (from the first event past the watermark: ids may jump, as after a TRUNCATE)
    lo := greatest(lo, coalesce((SELECT min(ev.event_id) FROM reco.events ev WHERE ev.event_id > lo), lo + 1) - 1);
    hi := least(coalesce(upto, lo), lo + max_events);
    IF hi <= lo THEN
        RETURN QUERY SELECT 0::bigint, 0::bigint, lo, 0::bigint;
        RETURN;
    END IF;
    SELECT array_agg((ev.context ->> 'rec_id')::bigint), array_agg(ev.kind) INTO ids, kinds
    FROM reco.events ev
    WHERE ev.event_id > lo AND ev.event_id <= hi AND ev.context ? 'rec_id'
      AND ev.kind IN ('click', 'cart_add', 'purchase', 'email_open', 'email_click')
      -- the report matches rec_ids as text: '007' is not list 7
      AND ev.context ->> 'rec_id' ~ '^(0|[1-9][0-9]{0,17})$';
    UPDATE reco.experiment_watermark w SET event_id = hi, folded_at = pg_catalog.clock_timestamp() WHERE w.one;
    RETURN QUERY SELECT coalesce(cardinality(ids), 0)::bigint,
                        CASE WHEN ids IS NULL THEN 0 ELSE reco._experiment_credit(ids, kinds) END, hi, greatest(upto - hi, 0);
END $$;
COMMENT ON FUNCTION reco.fold_attribution(bigint, interval) IS 'Counts the events logged since the last fold that carry an experiment list''s rec_id in the experiment tallies (a list''s first click, cart add, purchase, open or e-mail click is a success of its arm), after waiting at most `wait` for the event writers in flight; at most max_events event ids per call. Returns the events with a rec_id it read, the new successes, the watermark (last event id folded) and how many ids remain. Ingest does none of this; schedule it with pg_cron every minute. The report is exact either way.';

-- TRUNCATE of the lists clears every tally; of the events, the successes and the watermark.
CREATE FUNCTION reco._experiment_tally_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, reco, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'recommendations' THEN
        DELETE FROM reco.experiment_tallies;
        DELETE FROM reco.experiment_units;
    ELSE
        DELETE FROM reco.experiment_tallies WHERE metric <> 'trials';
        -- (event ids may start again from 1)
        UPDATE reco.experiment_watermark SET event_id = 0;
        UPDATE reco.experiment_units SET click = 0, cart_add = 0, purchase = 0, email_open = 0, email_click = 0
         WHERE click + cart_add + purchase + email_open + email_click > 0;
    END IF;
    DELETE FROM reco.experiment_successes;
    RETURN NULL;
END $$;
CREATE TRIGGER recommendations_experiment_tally_truncate AFTER TRUNCATE ON reco.recommendations
FOR EACH STATEMENT EXECUTE FUNCTION reco._experiment_tally_truncate();
CREATE TRIGGER events_experiment_tally_truncate AFTER TRUNCATE ON reco.events
FOR EACH STATEMENT EXECUTE FUNCTION reco._experiment_tally_truncate();

-- Forgetting a customer (reco.forget_customer, before their lists go): their lists and those
-- lists' successes leave the tallies, and their units go. One row per unit row removed.
CREATE FUNCTION reco._experiment_forget(customer_id text) RETURNS SETOF integer
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    c constant text := customer_id;
BEGIN
    -- (not kept on Citus: nothing to take out)
    IF NOT reco._experiment_tallied() THEN
        RETURN;
    END IF;
    WITH l AS (SELECT x.rec_id, x.context ->> 'experiment' AS e, x.context ->> 'arm' AS a
               FROM reco.recommendations x
               WHERE x.customer_id = c AND x.context ? 'experiment' AND x.context ? 'arm'),
         s AS (DELETE FROM reco.experiment_successes y WHERE y.unit = c RETURNING y.experiment AS e, y.arm AS a, y.kind),
         d AS (SELECT l.e, l.a, 'trials' AS metric, count(*) AS n FROM l GROUP BY 1, 2
               UNION ALL SELECT s.e, s.a, s.kind, count(*) FROM s GROUP BY 1, 2, 3)
    INSERT INTO reco.experiment_tallies AS t (experiment, arm, metric, slot, n)
    SELECT d.e, d.a, d.metric, -1, -d.n FROM d
    ON CONFLICT (experiment, arm, metric, slot) DO UPDATE SET n = t.n + excluded.n;
    RETURN QUERY DELETE FROM reco.experiment_units u WHERE u.unit = c RETURNING 1;
END $$;

-- The report, one row per metric and arm (control first). Trials are the lists logged for the
-- experiment (reco.recommendations whose context names it and the arm; for a trigger surface,
-- those that went out in a message); a trial succeeds when an event carrying its rec_id
-- follows: a click, a cart add, a purchase (placements); an open, a click, a purchase
-- (triggers). Units are the distinct customers (or sessions) per arm, for the sample-ratio test.
CREATE FUNCTION reco.experiment_report(experiment text, alpha double precision DEFAULT 0.05)
RETURNS TABLE (metric text, arm text, units bigint, trials bigint, successes bigint, rate double precision,
               rate_low double precision, rate_high double precision, diff double precision, diff_low double precision,
               diff_high double precision, relative double precision, p_value double precision, p_adjusted double precision,
               p_sequential double precision, mde double precision, underpowered boolean, srm_p double precision, verdict text)
-- (jit off: the estimates for the lists it does not read would have it compile for a second)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, reco, pg_temp SET jit = off AS $$
DECLARE
    e reco.experiments;
    metrics text[];
    tallied boolean;
    folded bigint;
BEGIN
    e := reco._experiment(experiment);
    IF alpha IS NULL OR alpha <= 0 OR alpha >= 1 THEN
        RAISE EXCEPTION 'alpha is %, not between 0 and 1', coalesce(alpha::text, 'NULL')
            USING ERRCODE = '22023', HINT = '0.05 gives 95% intervals and tests at the 5% level';
    END IF;
    metrics := CASE WHEN e.surface LIKE 'trigger:%' THEN ARRAY['email_open', 'email_click', 'purchase']
                    ELSE ARRAY['click', 'cart_add', 'purchase'] END;
    -- a placement's figures come from the running tallies; a trigger's (whose trials are the
    -- lists that went out in a message) and Citus's from the lists themselves
    tallied := e.surface NOT LIKE 'trigger:%' AND reco._experiment_tallied();
    -- (a value, not a subquery: the plan then reads the events past it by their primary key)
    folded := coalesce((SELECT w.event_id FROM reco.experiment_watermark w), 0);
    RETURN QUERY
    WITH arms AS (
        SELECT x.a ->> 'name' AS arm, (x.a ->> 'weight')::float8 AS weight, x.o
        FROM jsonb_array_elements(e.arms) WITH ORDINALITY x(a, o)),
    lists AS MATERIALIZED (
        SELECT r.rec_id, r.context ->> 'arm' AS arm, coalesce(r.customer_id, r.session_id) AS unit
        FROM reco.recommendations r
        WHERE NOT tallied AND r.context ->> 'experiment' = e.name
          AND (e.surface NOT LIKE 'trigger:%'
               OR EXISTS (SELECT 1 FROM reco.notification_candidates c JOIN reco.notification_sends s ON s.candidate_id = c.candidate_id
                          WHERE c.rec_id = r.rec_id))),
    hits AS MATERIALIZED (
        SELECT DISTINCT l.rec_id, ev.kind
        FROM lists l JOIN reco.events ev ON ev.context ? 'rec_id' AND ev.context ->> 'rec_id' = l.rec_id::text
        WHERE NOT tallied AND ev.kind = ANY (metrics)),
    -- the tallies' successes not folded in yet (reco.fold_attribution): events past the watermark
    -- carrying the rec_id of a list of this experiment, each list's first of a kind
    tail AS MATERIALIZED (
        SELECT x.context ->> 'arm' AS arm, coalesce(x.customer_id, x.session_id) AS unit, q.kind
        FROM (SELECT DISTINCT (ev.context ->> 'rec_id')::int8 AS rec_id, ev.kind FROM reco.events ev
              WHERE tallied AND ev.event_id > folded
                AND ev.context ? 'rec_id' AND ev.kind = ANY (metrics) AND ev.context ->> 'rec_id' ~ '^(0|[1-9][0-9]{0,17})$') q
        JOIN reco.recommendations x ON x.rec_id = q.rec_id
        WHERE x.context ->> 'experiment' = e.name AND x.context ->> 'arm' IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM reco.experiment_successes y WHERE y.rec_id = q.rec_id AND y.kind = q.kind)),
    tail_units AS (
        SELECT t.arm, t.unit, count(*) FILTER (WHERE t.kind = 'click') AS click, count(*) FILTER (WHERE t.kind = 'cart_add') AS cart_add,
               count(*) FILTER (WHERE t.kind = 'purchase') AS purchase, count(*) FILTER (WHERE t.kind = 'email_open') AS email_open,
               count(*) FILTER (WHERE t.kind = 'email_click') AS email_click
        FROM tail t WHERE t.unit IS NOT NULL GROUP BY 1, 2),
    -- per arm: units; per arm and metric ('trials' or a kind): the count
    per_arm AS MATERIALIZED (
        SELECT l.arm, count(DISTINCT l.unit) AS units FROM lists l GROUP BY l.arm
        UNION ALL
        SELECT u.arm, count(*) FROM reco.experiment_units u WHERE tallied AND u.experiment = e.name GROUP BY u.arm),
    per_metric AS MATERIALIZED (
        SELECT l.arm, 'trials' AS metric, count(*) AS n FROM lists l GROUP BY l.arm
        UNION ALL
        SELECT l.arm, h.kind, count(*) FROM hits h JOIN lists l ON l.rec_id = h.rec_id GROUP BY l.arm, h.kind
        UNION ALL
        SELECT t.arm, t.metric, sum(t.n)::bigint FROM reco.experiment_tallies t WHERE tallied AND t.experiment = e.name GROUP BY t.arm, t.metric
        UNION ALL
        SELECT t.arm, t.kind, count(*) FROM tail t GROUP BY t.arm, t.kind),
    -- per arm and metric, sums over units of their lists t and lists with a success s: units,
    -- Σt, Σs, Σt², Σs², Σst (the rates' variance over units, a customer's lists going together)
    unit_sums AS MATERIALIZED (
        SELECT p.arm, count(*)::float8 AS n, sum(p.t) AS t, sum(p.t * p.t) AS tt,
               sum(p.s1) AS s1, sum(p.s1 * p.s1) AS ss1, sum(p.s1 * p.t) AS st1, sum(p.s2) AS s2, sum(p.s2 * p.s2) AS ss2, sum(p.s2 * p.t) AS st2,
               sum(p.s3) AS s3, sum(p.s3 * p.s3) AS ss3, sum(p.s3 * p.t) AS st3, sum(p.s4) AS s4, sum(p.s4 * p.s4) AS ss4, sum(p.s4 * p.t) AS st4,
               sum(p.s5) AS s5, sum(p.s5 * p.s5) AS ss5, sum(p.s5 * p.t) AS st5
        FROM (SELECT u.arm, u.lists::float8 AS t, (u.click + coalesce(d.click, 0))::float8 AS s1, (u.cart_add + coalesce(d.cart_add, 0))::float8 AS s2,
                     (u.purchase + coalesce(d.purchase, 0))::float8 AS s3, (u.email_open + coalesce(d.email_open, 0))::float8 AS s4,
                     (u.email_click + coalesce(d.email_click, 0))::float8 AS s5
              FROM reco.experiment_units u LEFT JOIN tail_units d ON d.arm = u.arm AND d.unit = u.unit
              WHERE tallied AND u.experiment = e.name
              UNION ALL
              SELECT l.arm, count(*)::float8, count(*) FILTER (WHERE h.click)::float8, count(*) FILTER (WHERE h.cart_add)::float8,
                     count(*) FILTER (WHERE h.purchase)::float8, count(*) FILTER (WHERE h.email_open)::float8, count(*) FILTER (WHERE h.email_click)::float8
              FROM lists l
              LEFT JOIN (SELECT x.rec_id, bool_or(x.kind = 'click') AS click, bool_or(x.kind = 'cart_add') AS cart_add, bool_or(x.kind = 'purchase') AS purchase,
                                bool_or(x.kind = 'email_open') AS email_open, bool_or(x.kind = 'email_click') AS email_click
                         FROM hits x GROUP BY x.rec_id) h ON h.rec_id = l.rec_id
              WHERE NOT tallied AND l.unit IS NOT NULL GROUP BY l.arm, l.unit) p
        GROUP BY p.arm),
    moments AS MATERIALIZED (
        SELECT u.arm, k.metric, ARRAY[u.n, u.t, k.s, u.tt, k.ss, k.st] AS m
        FROM unit_sums u
        CROSS JOIN LATERAL (VALUES ('click', u.s1, u.ss1, u.st1), ('cart_add', u.s2, u.ss2, u.st2), ('purchase', u.s3, u.ss3, u.st3),
                                   ('email_open', u.s4, u.ss4, u.st4), ('email_click', u.s5, u.ss5, u.st5)) k(metric, s, ss, st)
        WHERE k.metric = ANY (metrics)),
    counts AS (
        SELECT a.arm, a.weight, a.o, m.metric,
               coalesce((SELECT p.units FROM per_arm p WHERE p.arm = a.arm), 0) AS units,
               coalesce((SELECT p.n FROM per_metric p WHERE p.arm = a.arm AND p.metric = 'trials'), 0) AS trials,
               coalesce((SELECT sum(p.n) FROM per_metric p WHERE p.arm = a.arm AND p.metric = m.metric), 0)::bigint AS successes,
               coalesce((SELECT x.m FROM moments x WHERE x.arm = a.arm AND x.metric = m.metric), ARRAY[0, 0, 0, 0, 0, 0]::float8[]) AS moments
        FROM arms a CROSS JOIN unnest(metrics) WITH ORDINALITY m(metric, mo)),
    grouped AS (
        SELECT c.metric, array_agg(c.arm ORDER BY c.o) AS arms, array_agg(c.weight ORDER BY c.o) AS weights,
               array_agg(c.units ORDER BY c.o) AS units, array_agg(c.trials ORDER BY c.o) AS trials,
               array_agg(c.successes ORDER BY c.o) AS successes,
               -- (one flat array, six values per arm in arm order)
               (SELECT array_agg(v.x ORDER BY c2.o, v.i) FROM counts c2, unnest(c2.moments) WITH ORDINALITY v(x, i) WHERE c2.metric = c.metric) AS moments
        FROM counts c GROUP BY c.metric)
    SELECT g.metric, s.arm, c.units, c.trials, c.successes, s.rate, s.rate_low, s.rate_high, s.diff, s.diff_low, s.diff_high,
           s.relative, s.p_value, s.p_adjusted, s.p_sequential, s.mde, s.underpowered, s.srm_p,
           CASE WHEN s.srm_p < 0.001 THEN 'sample ratio mismatch: no verdict'
                WHEN s.diff IS NULL AND c.o = 1 THEN 'control'
                WHEN s.diff IS NULL THEN 'no data'
                WHEN s.underpowered THEN 'underpowered'
                WHEN s.p_adjusted < alpha THEN CASE WHEN s.diff > 0 THEN 'better' ELSE 'worse' END
                ELSE 'no difference detected' END
    FROM grouped g
    CROSS JOIN LATERAL reco._experiment_stats(g.arms, g.weights, g.units, g.trials, g.successes, e.planned_units, alpha, g.moments) s
    JOIN counts c ON c.metric = g.metric AND c.arm = s.arm
    ORDER BY array_position(metrics, g.metric), c.o;
END $$;
COMMENT ON FUNCTION reco.experiment_report(text, double precision) IS 'Per metric and arm: trials, successes, the rate with a Wilson interval, the difference to control with its interval, the z-test p-value and its Holm adjustment, the always-valid (sequential) p-value, the minimum detectable effect, underpowered until the planned units, the sample-ratio-mismatch p-value (below 0.001: no verdict), and a verdict.';

COMMENT ON FUNCTION reco.experiment_report(text, text, double precision) IS 'The report as one self-contained HTML page (format => ''html''): per metric, SVG charts of the rates and the differences to control with their intervals, and the table of every figure; a sample ratio mismatch is a banner. No script, nothing fetched.';

REVOKE ALL ON FUNCTION reco._experiments_check(), reco._experiment(text), reco.experiment_arm(text, text), reco.experiment_report(text, double precision),
    reco.experiment_report(text, text, double precision),
    reco._assign(text, text, double precision[]),
    reco._experiment_stats(text[], double precision[], bigint[], bigint[], bigint[], bigint, double precision, double precision[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reco._experiment(text), reco.experiment_arm(text, text), reco.experiment_report(text, double precision),
    reco.experiment_report(text, text, double precision), reco._assign(text, text, double precision[]),
    reco._experiment_stats(text[], double precision[], bigint[], bigint[], bigint[], bigint, double precision, double precision[]) TO reco_reader, reco_reporting;
GRANT SELECT ON reco.experiments TO reco_reader, reco_reporting;
-- the tallies: written by the owner's definer triggers and forget_customer, read by the report
-- (the owner first, so the privileges recorded for the extension name it, as a fresh install's do)
ALTER FUNCTION reco._experiment_tally_lists() OWNER TO reco_owner;
ALTER FUNCTION reco._experiment_credit(bigint[], text[]) OWNER TO reco_owner;
ALTER FUNCTION reco._events_writing() OWNER TO reco_owner;
ALTER FUNCTION reco.fold_attribution(bigint, interval) OWNER TO reco_owner;
ALTER FUNCTION reco._experiment_tally_truncate() OWNER TO reco_owner;
REVOKE ALL ON FUNCTION reco._experiment_tallied(), reco._experiment_tally_lists(), reco._experiment_credit(bigint[], text[]), reco._events_writing(),
    reco.fold_attribution(bigint, interval), reco._experiment_tally_truncate(), reco._experiment_forget(text), reco._events_settled(interval) FROM PUBLIC;
-- (fold_attribution runs as the owner; run_triggers as the DBA's role)
GRANT EXECUTE ON FUNCTION reco._events_settled(interval) TO reco_admin, reco_owner;
GRANT EXECUTE ON FUNCTION reco._experiment_tallied() TO reco_reader, reco_reporting, reco_owner;
GRANT EXECUTE ON FUNCTION reco._experiment_forget(text), reco._experiment_credit(bigint[], text[]) TO reco_owner;
-- (the DBA's pg_cron job, and the owner's)
GRANT EXECUTE ON FUNCTION reco.fold_attribution(bigint, interval) TO reco_admin, reco_owner;
GRANT SELECT, INSERT, UPDATE, DELETE ON reco.experiment_tallies, reco.experiment_units, reco.experiment_successes TO reco_owner;
GRANT SELECT, INSERT, UPDATE ON reco.experiment_watermark TO reco_owner;
GRANT SELECT ON reco.recommendations TO reco_owner;
GRANT SELECT ON reco.experiment_tallies, reco.experiment_units, reco.experiment_watermark TO reco_reader, reco_reporting;
-- (the report reads the pairs past the watermark that are counted already)
GRANT SELECT ON reco.experiment_successes TO reco_reader, reco_reporting;
GRANT INSERT, UPDATE, DELETE ON reco.experiments TO reco_admin;
SELECT pg_catalog.pg_extension_config_dump('reco.experiments', '');
-- (the tallies are not dumped: restoring the lists and events fills them again, in either order)

-- Recommendation KPIs: what the logged lists ("log": true) led to, per day, placement, model,
-- experiment and arm. Attribution: an event that carries a list's rec_id in its context is that
-- list's; a click, cart add or purchase without one goes to the latest list shown to the
-- customer with that item at most attribution_window before it (last touch). A purchase's
-- revenue is its order line(s) of that item (price × quantity − line discount), in the order's
-- currency; cancelled and refunded orders count for nothing.
CREATE FUNCTION reco.recommendation_kpis_for(since timestamptz DEFAULT now() - interval '90 days', until timestamptz DEFAULT now(),
                                             attribution_window interval DEFAULT '1 day')
RETURNS TABLE (day date, placement text, model_id bigint, experiment text, arm text, impressions bigint, items_shown bigint,
               clicked bigint, carted bigint, converted bigint, orders bigint, revenue jsonb, ctr double precision,
               add_to_cart_rate double precision, conversion_rate double precision, rpm jsonb, aov jsonb)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, reco, pg_temp AS $$
BEGIN
    PERFORM reco._check_kpi_period(since, until, attribution_window, 'an event this long after a list showed its item is attributed to it, e.g. ''1 day''');
    RETURN QUERY
    WITH lists AS MATERIALIZED (
        SELECT r.rec_id, r.items, r.shown_at, (r.shown_at AT TIME ZONE 'UTC')::date AS d, r.placement AS pl, r.model_id AS mid,
               r.context ->> 'experiment' AS ex, r.context ->> 'arm' AS am
        FROM reco.recommendations r WHERE r.shown_at >= since AND r.shown_at < until),
    hits AS MATERIALIZED (
        -- events that carry the rec_id of the list the OMS showed
        SELECT l.rec_id, e.kind, e.order_id, e.item_id
        FROM lists l JOIN reco.events e ON e.context ? 'rec_id' AND e.context ->> 'rec_id' = l.rec_id::text
        WHERE e.kind IN ('click', 'cart_add', 'purchase') AND e.occurred_at >= l.shown_at
          AND (e.kind <> 'purchase' OR NOT EXISTS (SELECT 1 FROM reco.orders o WHERE o.order_id = e.order_id AND o.status IN ('cancelled', 'refunded')))
        UNION ALL
        -- events without one: the latest list that showed the customer the item (last touch)
        SELECT t.rec_id, e.kind, e.order_id, e.item_id
        FROM reco.events e
        CROSS JOIN LATERAL (SELECT r.rec_id FROM reco.recommendations r
                             WHERE r.customer_id = e.customer_id AND r.shown_at <= e.occurred_at
                               AND r.shown_at > e.occurred_at - attribution_window AND r.shown_at >= since AND r.shown_at < until
                               AND (e.item_id COLLATE "C") = ANY (r.items)
                             ORDER BY r.shown_at DESC, r.rec_id DESC LIMIT 1) t
        WHERE e.kind IN ('click', 'cart_add', 'purchase') AND NOT e.context ? 'rec_id' AND e.customer_id IS NOT NULL
          AND e.item_id IS NOT NULL AND e.occurred_at >= since AND e.occurred_at < until + attribution_window
          AND (e.kind <> 'purchase' OR NOT EXISTS (SELECT 1 FROM reco.orders o WHERE o.order_id = e.order_id AND o.status IN ('cancelled', 'refunded')))),
    per_list AS (
        SELECT h.rec_id, bool_or(h.kind = 'click') AS c, bool_or(h.kind = 'cart_add') AS a, bool_or(h.kind = 'purchase') AS p
        FROM hits h GROUP BY h.rec_id),
    money AS (
        -- line by line: each attributed purchase's lines of that item, once per list, order and item
        SELECT s.rec_id, s.order_id, o.currency::text AS cur, sum(ol.unit_price_minor * ol.qty - ol.discount_minor) AS minor
        FROM (SELECT DISTINCT h.rec_id, h.order_id, h.item_id FROM hits h WHERE h.kind = 'purchase' AND h.order_id IS NOT NULL) s
        JOIN reco.orders o ON o.order_id = s.order_id
        JOIN reco.order_lines ol ON ol.order_id = s.order_id AND ol.item_id = s.item_id
        GROUP BY 1, 2, 3),
    rev AS (
        SELECT l.d, l.pl, l.mid, l.ex, l.am, m.cur, reco.currency_exponent(m.cur) AS x, sum(m.minor)::numeric AS minor,
               count(DISTINCT m.order_id) AS n
        FROM money m JOIN lists l ON l.rec_id = m.rec_id GROUP BY 1, 2, 3, 4, 5, 6),
    grp AS (
        SELECT l.d, l.pl, l.mid, l.ex, l.am, count(*) AS shown, sum(cardinality(l.items))::bigint AS items,
               count(*) FILTER (WHERE p.c) AS c, count(*) FILTER (WHERE p.a) AS a, count(*) FILTER (WHERE p.p) AS p
        FROM lists l LEFT JOIN per_list p ON p.rec_id = l.rec_id GROUP BY 1, 2, 3, 4, 5)
    SELECT g.d, g.pl::text, g.mid, g.ex, g.am, g.shown, g.items, g.c, g.a, g.p,
           coalesce(r.n, 0)::bigint, coalesce(r.revenue, '{}'), g.c::float8 / g.shown, g.a::float8 / g.shown, g.p::float8 / g.shown,
           coalesce(r.rpm, '{}'), coalesce(r.aov, '{}')
    FROM grp g
    LEFT JOIN LATERAL (
        SELECT sum(v.n) AS n,
               jsonb_object_agg(v.cur, round(v.minor / 10::numeric ^ v.x, v.x)) AS revenue,
               jsonb_object_agg(v.cur, round(v.minor / 10::numeric ^ v.x * 1000 / g.shown, v.x)) AS rpm,
               jsonb_object_agg(v.cur, round(v.minor / 10::numeric ^ v.x / v.n, v.x)) AS aov
        FROM rev v WHERE (v.d, v.pl, v.mid, v.ex, v.am) IS NOT DISTINCT FROM (g.d, g.pl, g.mid, g.ex, g.am)) r ON true
    ORDER BY 1, 2, 3, 4, 5;
END $$;
COMMENT ON FUNCTION reco.recommendation_kpis_for(timestamptz, timestamptz, interval) IS 'Per day (UTC) the list was shown, placement, model, experiment and arm: logged lists (impressions), items shown, lists with a click, a cart add, a purchase attributed to them (its rec_id, else the latest list that showed the item within attribution_window: last touch), attributed orders and revenue per currency (line by line), CTR, add-to-cart and conversion rates per list, revenue per thousand lists (rpm) and per order (aov).';

CREATE VIEW reco.recommendation_kpis AS SELECT * FROM reco.recommendation_kpis_for();
COMMENT ON VIEW reco.recommendation_kpis IS 'reco.recommendation_kpis_for() over the last 90 days with a 1-day attribution window.';

REVOKE ALL ON FUNCTION reco.recommendation_kpis_for(timestamptz, timestamptz, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reco.recommendation_kpis_for(timestamptz, timestamptz, interval) TO reco_reader, reco_reporting;
GRANT SELECT ON reco.recommendation_kpis TO reco_reader, reco_reporting;
