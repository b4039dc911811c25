-- Experiments: arms checked on insert, deterministic assignment, recommend serving and logging
-- the customer's arm, e-mail triggers taking the arm's copy style, and the report's statistics.
SET timezone = 'UTC';
SELECT reset();
TRUNCATE reco.models CASCADE;
TRUNCATE reco.deployments, reco.recommendations, reco.triggers, reco.experiments CASCADE;
DELETE FROM reco.email_templates;
INSERT INTO reco.items (item_id, title, category, price, currency) VALUES
    ('phone', 'Phone', 'phones', 499, 'EUR'), ('case', 'Case', 'accessories', 19, 'EUR'), ('charger', 'Charger', 'accessories', 25, 'EUR');
INSERT INTO reco.stock (item_id, available) VALUES ('phone', 10), ('case', 10), ('charger', 10);
INSERT INTO reco.placement_weights (placement, popularity, cooccurrence, content, als, description) VALUES ('checkout_b', 2, 1, 1, 1, 'experiment arm');

-- bad rows: each an error naming the value, with a hint
SELECT try($$INSERT INTO reco.experiments (name, surface, arms) VALUES ('x', 'checkout', '[{"name": "control", "weight": 1}]')$$);
SELECT try($$INSERT INTO reco.experiments (name, surface, arms) VALUES ('x', 'checkout', '[{"name": "control", "weight": 1}, {"name": "b", "weight": 0}]')$$);
SELECT try($$INSERT INTO reco.experiments (name, surface, arms) VALUES ('x', 'checkout', '[{"name": "a", "weight": 1}, {"name": "a", "weight": 1}]')$$);
SELECT try($$INSERT INTO reco.experiments (name, surface, arms) VALUES ('x', 'checkout', '[{"name": "a", "weight": 1}, {"name": "b", "weight": 1, "colour": "red"}]')$$);
SELECT try($$INSERT INTO reco.experiments (name, surface, arms) VALUES ('x', 'checkout', '[{"name": "a", "weight": 1}, {"name": "b", "weight": 1, "model_id": 999}]')$$);
SELECT try($$INSERT INTO reco.experiments (name, surface, arms) VALUES ('x', 'checkout', '[{"name": "a", "weight": 1}, {"name": "b", "weight": 1, "placement": "nowhere"}]')$$);
SELECT try($$INSERT INTO reco.experiments (name, surface, arms) VALUES ('x', 'kiosk', '[{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]')$$);
SELECT try($$INSERT INTO reco.experiments (name, surface, arms) VALUES ('x', 'trigger:nope', '[{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]')$$);

-- a checkout experiment: half the customers get the checkout_b weights
INSERT INTO reco.experiments (name, surface, arms, salt, starts_at, planned_units) VALUES ('checkout_weights', 'checkout',
    '[{"name": "control", "weight": 50}, {"name": "b", "weight": 50, "placement": "checkout_b"}]', 'salt-1', '2026-01-01', 1000);
SELECT try($$INSERT INTO reco.experiments (name, surface, arms, starts_at) VALUES ('other', 'checkout', '[{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]', '2026-02-01')$$);

-- assignment: computed from the salt, the same on every call, close to the weights
SELECT reco.experiment_arm('checkout_weights', 'c1') AS c1, reco.experiment_arm('checkout_weights', 'c1') AS again,
       reco.experiment_arm('checkout_weights', 'c2') AS c2, reco.experiment_arm('checkout_weights', NULL) AS no_unit;
SELECT reco.experiment_arm('checkout_weights', 'c' || i) AS arm, count(*) FROM generate_series(1, 10000) i GROUP BY 1 ORDER BY 1;
SELECT try($$SELECT reco.experiment_arm('nope', 'c1')$$);
-- an e-mail address is assigned by its pseudonym, as recommend sees it
SELECT reco.experiment_arm('checkout_weights', 'Ana@Example.com') = reco.experiment_arm('checkout_weights', reco.pseudonym('ana@example.com')) AS by_pseudonym;

-- recommend serves the customer's arm and logs it with the list
SELECT count(*) AS served FROM generate_series(1, 6) i, reco.recommend('c' || i, 2, '{"placement": "checkout", "log": true, "now": "2026-03-01T10:00:00Z"}');
SELECT count(*) AS served FROM reco.recommend('c1', 2, '{"placement": "home", "log": true, "now": "2026-03-01T10:00:00Z"}');
SELECT customer_id, placement, context ->> 'experiment' AS experiment, context ->> 'arm' AS arm,
       CASE WHEN context ? 'experiment' THEN context ->> 'arm' = reco.experiment_arm('checkout_weights', customer_id) END AS matches
FROM reco.recommendations ORDER BY rec_id;
-- before the experiment starts, nothing is logged for it; a logged context passed back is accepted
SELECT count(*) AS served FROM reco.recommend('c3', 2, '{"placement": "checkout", "log": true, "now": "2025-12-01T10:00:00Z", "experiment": "x", "arm": "y"}');
SELECT context ->> 'experiment' AS experiment, context ->> 'arm' AS arm FROM reco.recommendations WHERE customer_id = 'c3' ORDER BY rec_id DESC LIMIT 1;

-- the report: 4 000 logged lists, clicks planted at 10% for control and 13% for b; cart adds
-- the same in both; a purchase rate too small to tell
TRUNCATE reco.recommendations RESTART IDENTITY;
INSERT INTO reco.recommendations (customer_id, placement, items, scores, context, shown_at)
SELECT 'u' || i, 'checkout', '{case}', '{1}', jsonb_build_object('experiment', 'checkout_weights', 'arm', reco.experiment_arm('checkout_weights', 'u' || i)),
       '2026-03-01'
FROM generate_series(1, 4000) i;
INSERT INTO reco.events (customer_id, item_id, kind, occurred_at, context)
SELECT r.customer_id, 'case', k.kind, '2026-03-01 01:00+00', jsonb_build_object('rec_id', r.rec_id)
FROM reco.recommendations r CROSS JOIN (VALUES ('click'), ('cart_add'), ('purchase')) k(kind)
WHERE CASE k.kind
        WHEN 'click' THEN (r.rec_id % 100) < CASE r.context ->> 'arm' WHEN 'b' THEN 13 ELSE 10 END
        WHEN 'cart_add' THEN (r.rec_id % 100) < 5
        ELSE (r.rec_id % 1000) < CASE r.context ->> 'arm' WHEN 'b' THEN 4 ELSE 3 END END;
SELECT metric, arm, units, trials, successes, round(rate::numeric, 4) AS rate, round(rate_low::numeric, 4) AS low, round(rate_high::numeric, 4) AS high,
       round(diff::numeric, 4) AS diff, round(relative::numeric, 3) AS rel, round(p_value::numeric, 4) AS p,
       round(p_sequential::numeric, 4) AS p_any_time, round(mde::numeric, 4) AS mde,
       underpowered, round(srm_p::numeric, 3) AS srm_p, verdict
FROM reco.experiment_report('checkout_weights');
-- the report reads running tallies: trials kept as lists are logged, successes folded in from
-- the events by reco.fold_attribution (pg_cron), the events past its watermark read by the report
-- itself. The same figures before the fold, part way and after, and as reading every list and
-- event (what it does on Citus, where the triggers are dropped), with a second click on a list, a
-- rec_id written '007' and one that is not a number in the mix
INSERT INTO reco.events (customer_id, item_id, kind, occurred_at, context)
SELECT r.customer_id, 'case', 'click', '2026-03-01 02:00+00', jsonb_build_object('rec_id', r.rec_id)
FROM reco.recommendations r WHERE r.rec_id % 100 < 3;
INSERT INTO reco.events (customer_id, item_id, kind, occurred_at, context) VALUES
    ('u1', 'case', 'click', '2026-03-01 02:00+00', jsonb_build_object('rec_id', '00' || (SELECT max(rec_id) FROM reco.recommendations))),
    ('u1', 'case', 'cart_add', '2026-03-01 02:00+00', '{"rec_id": "x1"}');
CREATE TEMP TABLE tallied AS SELECT * FROM reco.experiment_report('checkout_weights');
SELECT count(DISTINCT (arm, metric)) AS tallied_before_the_fold FROM reco.experiment_tallies WHERE experiment = 'checkout_weights';
-- part way: at most max_events event ids from the first past the watermark (all but the last 300)
SELECT events > 0 AS folded_some, successes > 0 AS counted_some, behind > 0 AS more_to_fold
FROM reco.fold_attribution(max_events => (SELECT max(event_id) - 300 - min(event_id) FROM reco.events
                                          WHERE event_id > (SELECT event_id FROM reco.experiment_watermark)));
SELECT (SELECT count(*) FROM (TABLE tallied EXCEPT SELECT * FROM reco.experiment_report('checkout_weights')) d) AS differences_part_way;
SELECT events > 0 AS folded_the_rest, behind AS behind, watermark = (SELECT max(event_id) FROM reco.events) AS up_to_the_last FROM reco.fold_attribution();
SELECT events, successes, behind FROM reco.fold_attribution(wait => '0');
SELECT count(DISTINCT (arm, metric)) AS tallied FROM reco.experiment_tallies WHERE experiment = 'checkout_weights';
-- (the first and second fold's successes: the clicks, cart adds and purchases of distinct lists)
SELECT sum(n) FILTER (WHERE metric <> 'trials') AS successes_tallied FROM reco.experiment_tallies WHERE experiment = 'checkout_weights';
SELECT (SELECT count(*) FROM (TABLE tallied EXCEPT SELECT * FROM reco.experiment_report('checkout_weights')) d) AS differences_after_the_fold;
SELECT try($$SELECT * FROM reco.fold_attribution(max_events => 0)$$);
SELECT try($$SELECT * FROM reco.fold_attribution(wait => '-1 second')$$);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT try($$SELECT * FROM reco.fold_attribution()$$);
ROLLBACK;
BEGIN;
DROP TRIGGER recommendations_experiment_tally ON reco.recommendations;
SELECT reco._experiment_tallied() AS tallied_without_the_trigger,
       (SELECT count(*) FROM (TABLE tallied EXCEPT SELECT * FROM reco.experiment_report('checkout_weights')) d) AS differences;
ROLLBACK;
-- forgetting a customer takes their lists, successes and unit out of the tallies too
SELECT r.customer_id AS forgotten FROM reco.recommendations r
WHERE EXISTS (SELECT 1 FROM reco.events e WHERE e.kind = 'click' AND e.context ->> 'rec_id' = r.rec_id::text)
ORDER BY r.rec_id LIMIT 1 \gset
SELECT reco.forget_customer(:'forgotten') ->> 'experiment_units' AS units_forgotten;
-- (the id may start afresh: later tests use it)
DELETE FROM reco.forgotten_customers WHERE customer_key = reco.customer_key(:'forgotten');
SELECT t.units - a.units AS units_less, t.trials - a.trials AS trials_less, t.successes - a.successes AS successes_less
FROM tallied t JOIN reco.experiment_report('checkout_weights') a USING (metric, arm) WHERE t.metric = 'click' AND t.units <> a.units;
DROP TABLE tallied;
CREATE TEMP TABLE tallied AS SELECT * FROM reco.experiment_report('checkout_weights');
BEGIN;
DROP TRIGGER recommendations_experiment_tally ON reco.recommendations;
SELECT (SELECT count(*) FROM (TABLE tallied EXCEPT SELECT * FROM reco.experiment_report('checkout_weights')) d) AS differences_after_forgetting;
ROLLBACK;
DROP TABLE tallied;
-- the same report as a self-contained page (tests/integration/tests/report.rs renders it in Chromium)
SELECT p LIKE '<!DOCTYPE html>%' AS html, (length(p) - length(replace(p, '<svg', ''))) / 4 AS charts,
       p LIKE '%<td class="verdict better">better</td>%' AS b_better, p LIKE '%class="banner srm"%' AS banner, p LIKE '%<script%' AS script
FROM reco.experiment_report('checkout_weights', format => 'html') p;
-- a split that logged 60/40 for a 50/50 experiment: the sample ratio mismatch withholds the verdict
-- (the lists logged again, a fifth of b's under control; the log is append-only, so TRUNCATE)
TRUNCATE reco.recommendations, reco.events;
SELECT count(*) AS tallies_after_truncate FROM reco.experiment_tallies;
SELECT event_id AS watermark_after_truncate FROM reco.experiment_watermark;
INSERT INTO reco.recommendations (customer_id, placement, items, scores, context, shown_at)
SELECT 'u' || i, 'checkout', '{case}', '{1}',
       jsonb_build_object('experiment', 'checkout_weights', 'arm',
                          CASE WHEN reco.experiment_arm('checkout_weights', 'u' || i) = 'b' AND i % 5 = 0 THEN 'control'
                               ELSE reco.experiment_arm('checkout_weights', 'u' || i) END),
       '2026-03-01'
FROM generate_series(1, 4000) i;
INSERT INTO reco.events (customer_id, item_id, kind, occurred_at, context)
SELECT r.customer_id, 'case', 'click', '2026-03-01 01:00+00', jsonb_build_object('rec_id', r.rec_id)
FROM reco.recommendations r WHERE (r.rec_id % 100) < CASE r.context ->> 'arm' WHEN 'b' THEN 13 ELSE 10 END;
SELECT DISTINCT metric, round(srm_p::numeric, 6) AS srm_p, verdict FROM reco.experiment_report('checkout_weights') WHERE arm = 'b' ORDER BY 1;
SELECT p LIKE '%class="banner srm"%' AS banner, p LIKE '%verdict better%' AS verdict FROM reco.experiment_report('checkout_weights', format => 'html') p;
SELECT try($$SELECT reco.experiment_report('checkout_weights', format => 'pdf')$$);
SELECT try($$SELECT reco.experiment_report('nope', format => 'html')$$);
SELECT try($$SELECT * FROM reco.experiment_report('nope')$$);
SELECT try($$SELECT * FROM reco.experiment_report('checkout_weights', alpha => 1.5)$$);

-- an e-mail trigger split between copy styles: each message takes its customer's arm's style
INSERT INTO reco.email_templates (name, style, subject, text_body) VALUES
    ('cart', 'default', 'Your cart', '{% for i in items %}{{ i.title }}{% endfor %}'),
    ('cart', 'playful', 'Psst', '{% for i in items %}{{ i.title }}{% endfor %}');
INSERT INTO reco.triggers (name, kind, template, params) VALUES ('cart', 'abandoned_cart', 'cart', '{"wait_hours": 4, "show": "cart"}');
SELECT try($$INSERT INTO reco.experiments (name, surface, arms) VALUES ('x', 'trigger:cart', '[{"name": "a", "weight": 1}, {"name": "b", "weight": 1, "style": "gothic"}]')$$);
INSERT INTO reco.experiments (name, surface, arms, salt, starts_at) VALUES ('cart_tone', 'trigger:cart',
    '[{"name": "control", "weight": 1}, {"name": "playful", "weight": 1, "style": "playful"}]', 'salt-2', '2026-01-01');
INSERT INTO reco.customers (customer_id, email_opt_in) SELECT 'm' || i, true FROM generate_series(1, 6) i;
SELECT count(reco.record_event('m' || i, 'phone', 'cart_add', value => 1, occurred_at => '2026-03-02 09:00+00')) FROM generate_series(1, 6) i;
SELECT * FROM reco.run_triggers(now => '2026-03-02 15:00+00');
SELECT c.customer_id, reco.experiment_arm('cart_tone', c.customer_id) AS arm, c.style, r.context ->> 'arm' AS logged_arm
FROM reco.notification_candidates c JOIN reco.recommendations r USING (rec_id) ORDER BY 1;

-- an arm naming another trained model: each customer is served by their arm's model, and a
-- backend keeps both models, so alternating customers of the two arms reloads nothing
-- (a catalogue of 3 000 more items, not in stock, makes each model a few hundred kB)
INSERT INTO reco.items (item_id, title, category, price, currency)
SELECT 'filler-' || i, 'A filler item with a title of some length ' || i, 'filler', 10, 'EUR' FROM generate_series(1, 3000) i;
SET client_min_messages = warning;
SELECT reco.deploy(reco.train('popularity')) AS deployed_model \gset
SELECT reco.train('popularity') AS arm_model \gset
RESET client_min_messages;
INSERT INTO reco.experiments (name, surface, arms, salt, starts_at) VALUES ('home_model', 'home',
    jsonb_build_array('{"name": "control", "weight": 1}'::jsonb, jsonb_build_object('name', 'b', 'weight', 1, 'model_id', :arm_model)), 'salt-3', '2026-01-01');
SELECT reco.experiment_arm('home_model', 'h1') AS h1, reco.experiment_arm('home_model', 'h2') AS h2, reco.experiment_arm('home_model', 'h3') AS h3;
SELECT count(*) AS served FROM generate_series(1, 3) i, reco.recommend('h' || i, 2, '{"placement": "home", "log": true, "now": "2026-03-01T10:00:00Z"}');
SELECT customer_id, context ->> 'arm' AS arm,
       model_id = CASE context ->> 'arm' WHEN 'b' THEN :arm_model ELSE :deployed_model END AS served_by_the_arms_model
FROM reco.recommendations WHERE context ->> 'experiment' = 'home_model' ORDER BY customer_id;
SELECT (reco.cache_info() ->> 'loads')::int AS loads_before \gset
SELECT count(*) AS served FROM generate_series(1, 20) n, reco.recommend('h' || (n % 3 + 1), 2, '{"placement": "home", "now": "2026-03-01T10:00:00Z"}');
SELECT (reco.cache_info() ->> 'loads')::int - :loads_before AS reloads, jsonb_array_length(reco.cache_info() -> 'models') AS models_held;
-- once the experiment stops and another model is deployed, the next load lets both go
UPDATE reco.experiments SET stops_at = now() - interval '1 second' WHERE name = 'home_model';
SET client_min_messages = warning;
SELECT reco.deploy(reco.train('popularity')) AS new_model \gset
RESET client_min_messages;
SELECT count(*) AS served FROM reco.recommend('h1', 2, '{"placement": "home"}');
SELECT jsonb_path_query_array(reco.cache_info(), '$.models[*].model_id') = jsonb_build_array(:new_model) AS holds_only_the_new_model;
-- a cap of one and a half models holds one: each switch of arm lets the other model go
UPDATE reco.experiments SET stops_at = NULL WHERE name = 'home_model';
SELECT (reco.cache_info() ->> 'bytes')::int AS model_bytes \gset
SELECT :model_bytes > 200000 AS sizeable;
SELECT set_config('reco.cache_max_memory', (:model_bytes * 3 / 2 / 1024) || 'kB', false) IS NOT NULL AS capped;
SELECT (reco.cache_info() ->> 'loads')::int AS loads_before \gset
-- h1 (control, the deployed model, held), h2 and h3 (arm b), then again: two switches each way
SELECT count(*) AS served FROM generate_series(0, 5) i, reco.recommend('h' || (i % 3 + 1), 2, '{"placement": "home", "now": "2026-03-01T10:00:00Z"}');
SELECT (reco.cache_info() ->> 'loads')::int - :loads_before AS loads, jsonb_array_length(reco.cache_info() -> 'models') AS models_held,
       (reco.cache_info() ->> 'held_bytes')::int <= :model_bytes * 3 / 2 AS within_the_cap;
RESET reco.cache_max_memory;
DELETE FROM reco.items WHERE category = 'filler';

-- roles: readers read assignments and reports; admins run experiments
SELECT sum(n) AS trials_before FROM reco.experiment_tallies WHERE experiment = 'checkout_weights' AND metric = 'trials' \gset
SET ROLE reco_reader;
SELECT reco.experiment_arm('checkout_weights', 'c1') AS reader_assigns, count(*) > 0 AS reader_reports FROM reco.experiment_report('checkout_weights');
-- a list the reader logs is tallied (by the owner's trigger); the reader cannot write tallies
SELECT count(*) AS logged FROM reco.recommend('c9', 2, '{"placement": "checkout", "log": true, "now": "2026-03-01T10:00:00Z"}');
SELECT try($$UPDATE reco.experiment_tallies SET n = n + 1000$$);
SELECT try($$INSERT INTO reco.experiment_units VALUES ('checkout_weights', 'b', 'fake')$$);
SELECT try($$SELECT * FROM reco._experiment_forget('c9')$$);
SELECT try($$SELECT * FROM reco.fold_attribution()$$);
SELECT try($$UPDATE reco.experiment_watermark SET event_id = 0$$);
SELECT try($$INSERT INTO reco.experiments (name, surface, arms) VALUES ('y', 'home', '[{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]')$$);
RESET ROLE;
SELECT sum(n) - :trials_before AS trials_added_by_the_reader FROM reco.experiment_tallies WHERE experiment = 'checkout_weights' AND metric = 'trials';
SET ROLE reco_reporting;
SELECT count(*) > 0 AS reporting_reports FROM reco.experiment_report('checkout_weights');
SELECT length(reco.experiment_report('checkout_weights', format => 'html')) > 0 AS reporting_page;
SELECT try($$SELECT * FROM reco.fold_attribution()$$);
RESET ROLE;
-- the DBA's pg_cron job folds as the admin role
SET ROLE reco_admin;
SELECT behind FROM reco.fold_attribution();
RESET ROLE;
SET ROLE reco_admin;
UPDATE reco.experiments SET stops_at = '2026-04-01' WHERE name = 'checkout_weights';
RESET ROLE;
-- stopped mid-flight, its logged lists stay attributable: a click after the stop on a list of b
-- not clicked before counts, before the fold and after it
SELECT successes AS clicks_before_the_stop FROM reco.experiment_report('checkout_weights') WHERE metric = 'click' AND arm = 'b' \gset
INSERT INTO reco.events (customer_id, item_id, kind, occurred_at, context)
SELECT r.customer_id, 'case', 'click', '2026-04-02 10:00+00', jsonb_build_object('rec_id', r.rec_id)
FROM reco.recommendations r
WHERE r.context ->> 'experiment' = 'checkout_weights' AND r.context ->> 'arm' = 'b'
  AND NOT EXISTS (SELECT 1 FROM reco.events e WHERE e.kind = 'click' AND e.context ->> 'rec_id' = r.rec_id::text)
ORDER BY r.rec_id LIMIT 1;
SELECT successes - :clicks_before_the_stop AS click_after_the_stop FROM reco.experiment_report('checkout_weights') WHERE metric = 'click' AND arm = 'b';
SELECT behind FROM reco.fold_attribution();
SELECT successes - :clicks_before_the_stop AS click_after_the_stop_folded FROM reco.experiment_report('checkout_weights') WHERE metric = 'click' AND arm = 'b';
-- Customers who see several lists: a customer's lists are clicked together, so the report's
-- variance is over customers, not lists. 400 customers of a cart experiment see 5 lists each;
-- one in ten clicks every list, the others none
INSERT INTO reco.experiments (name, surface, arms, salt, starts_at) VALUES ('repeat', 'cart',
    '[{"name": "control", "weight": 1}, {"name": "b", "weight": 1}]', 'salt-r', '2026-01-01');
INSERT INTO reco.recommendations (customer_id, placement, items, scores, context, shown_at)
SELECT 'r' || i, 'cart', '{case}', '{1}', jsonb_build_object('experiment', 'repeat', 'arm', reco.experiment_arm('repeat', 'r' || i)), '2026-03-01'
FROM generate_series(1, 400) i, generate_series(1, 5) v;
INSERT INTO reco.events (customer_id, item_id, kind, occurred_at, context)
SELECT r.customer_id, 'case', 'click', '2026-03-01 01:00+00', jsonb_build_object('rec_id', r.rec_id)
FROM reco.recommendations r WHERE r.context ->> 'experiment' = 'repeat' AND substr(r.customer_id, 2)::int % 10 = 0;
-- (a second click on a clicked list is not a second success, for the unit either)
INSERT INTO reco.events (customer_id, item_id, kind, occurred_at, context)
SELECT r.customer_id, 'case', 'click', '2026-03-01 02:00+00', jsonb_build_object('rec_id', r.rec_id)
FROM reco.recommendations r WHERE r.context ->> 'experiment' = 'repeat' AND r.customer_id = 'r10';
SELECT arm, lists, click, count(*) AS units FROM reco.experiment_units WHERE experiment = 'repeat' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
CREATE TEMP TABLE unfolded AS SELECT * FROM reco.experiment_report('repeat');
SELECT behind FROM reco.fold_attribution();
SELECT arm, lists, click, count(*) AS units FROM reco.experiment_units WHERE experiment = 'repeat' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT (SELECT count(*) FROM (TABLE unfolded EXCEPT SELECT * FROM reco.experiment_report('repeat')) d) AS differences_after_the_fold;
DROP TABLE unfolded;
SELECT arm, units, trials, successes, round(rate::numeric, 3) AS rate, round(rate_low::numeric, 3) AS low, round(rate_high::numeric, 3) AS high,
       round(p_value::numeric, 4) AS p, verdict
FROM reco.experiment_report('repeat') WHERE metric = 'click';
-- beside the figures that take every list as its own trial: an interval about √5 as wide (each
-- customer's five lists count as one), as 400 customers clicking or not would give
WITH r AS (SELECT * FROM reco.experiment_report('repeat') WHERE metric = 'click'),
     a AS (SELECT array_agg(arm ORDER BY arm <> 'control') AS arms, array_agg(units ORDER BY arm <> 'control') AS units,
                  array_agg(trials ORDER BY arm <> 'control') AS trials, array_agg(successes ORDER BY arm <> 'control') AS successes FROM r)
SELECT s.arm, round(((r.rate_high - r.rate_low) / (s.rate_high - s.rate_low))::numeric, 2) AS interval_wider_by
FROM a, reco._experiment_stats(a.arms, ARRAY[1, 1]::float8[], a.units, a.trials, a.successes, NULL, 0.05) s JOIN r USING (arm)
ORDER BY s.arm <> 'control';
-- the same figures read from the lists (Citus, trigger surfaces)
CREATE TEMP TABLE tallied AS SELECT * FROM reco.experiment_report('repeat');
BEGIN;
DROP TRIGGER recommendations_experiment_tally ON reco.recommendations;
SELECT (SELECT count(*) FROM (TABLE tallied EXCEPT SELECT * FROM reco.experiment_report('repeat')) d) AS differences_reading_the_lists;
ROLLBACK;
DROP TABLE tallied;
SELECT try($$SELECT * FROM reco._experiment_stats(ARRAY['a', 'b'], ARRAY[1, 1]::float8[], ARRAY[1, 1]::int8[], ARRAY[1, 1]::int8[], ARRAY[0, 0]::int8[], NULL, 0.05, ARRAY[1, 2, 3]::float8[])$$);
TRUNCATE reco.recommendations, reco.triggers, reco.experiments RESTART IDENTITY CASCADE;
DELETE FROM reco.placement_weights WHERE placement = 'checkout_b';
