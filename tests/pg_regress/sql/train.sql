-- Training, the registry, deployment. Timings and exact metrics vary with the load date, so
-- this file asserts relations (better than, at least) rather than printing figures.
SET timezone = 'UTC';
SELECT reset();
TRUNCATE reco.models CASCADE;
TRUNCATE reco.deployments;
SELECT (reco.load_demo('small', 42) ->> 'customers') AS customers;
SET reco.training_threads = 2;
SET client_min_messages = warning;  -- progress NOTICEs carry timings
SELECT reco.train('hybrid') AS hybrid \gset
SELECT status, kind, n_customers, n_items, n_events > 15000 AS events, n_interactions > 5000 AS interactions,
       train_seconds > 0 AS timed, peak_memory_bytes >= 0 AS measured, data_from < data_to AS window,
       params->>'factors' AS factors, metrics->>'k' AS k, (metrics->>'users')::int > 300 AS evaluated_users
FROM reco.models WHERE model_id = :hybrid;
-- the blend weights sum to 1, and on the holdout the hybrid is at least as good as each member
SELECT round((SELECT sum(value::float8) FROM jsonb_each_text(blend))::numeric, 3) AS weight_sum,
       bool_and((metrics->>'ndcg')::float8 >= (m.value->>'ndcg')::float8) AS hybrid_beats_members,
       count(*) AS members
FROM reco.models, jsonb_each(metrics->'members') m WHERE model_id = :hybrid GROUP BY blend;
-- those figures are the served lists' (what reco.recommend would return on the holdout), with
-- the raw rankings' beside them; the blend is the best served of those tried
SELECT metrics ? 'raw' AS raw_beside, bool_and(m.value ? 'raw') AS members_raw_beside,
       jsonb_array_length(metrics->'blends_tried') >= 4 AS blends_tried,
       (metrics->>'ndcg')::float8 >= (SELECT max((t->>'ndcg')::float8) FROM jsonb_array_elements(metrics->'blends_tried') t
                                      WHERE NOT (t->>'step')::bool) - 1e-6 AS best_of_tried
FROM reco.models, jsonb_each(metrics->'members') m WHERE model_id = :hybrid GROUP BY metrics;
-- the served climb: at most blend_steps (default 8) steps after the members and the raw grid's
-- 6 best, marked as steps; the stored parameters say how many
SELECT count(*) FILTER (WHERE (t->>'step')::bool) <= 8 AS within_steps,
       count(*) FILTER (WHERE NOT (t->>'step')::bool) BETWEEN 4 AND 10 AS before_the_climb, min(params->>'blend_steps') AS blend_steps
FROM reco.models, jsonb_array_elements(metrics->'blends_tried') t WHERE model_id = :hybrid;
-- tuning: the default ("auto") searches data this small (interactions x trials within the
-- budget); every trial is recorded, and the parameters stored are the ones chosen
SELECT jsonb_array_length(metrics->'tuning'->'tried') >= 15 AS searched,
       (metrics->'tuning'->'chosen'->>'factors') = params->>'factors' AS stored_as_chosen,
       (metrics->'tuning'->>'skipped')::int AS skipped, params->>'tune' AS tune
FROM reco.models WHERE model_id = :hybrid;
-- and every member learned something: better than popularity except content (cold start)
SELECT m.key AS member, (m.value->>'ndcg')::float8 > 0 AS some_hits,
       (m.value->>'ndcg')::float8 >= (metrics->'members'->'popularity'->>'ndcg')::float8 AS beats_popularity
FROM reco.models, jsonb_each(metrics->'members') m WHERE model_id = :hybrid ORDER BY 1;
-- what it stored: ALS vectors for items and customers with interactions, content vectors for
-- every item, neighbours, popularity; HNSW indexes per model and space
SELECT space, count(*) > 500 AS many, min(vector_dims(v)) AS dims FROM reco.item_vectors WHERE model_id = :hybrid GROUP BY 1 ORDER BY 1;
SELECT count(*) AS customers_with_vectors FROM reco.customer_vectors WHERE model_id = :hybrid;
-- (basket and session pairs are above chance by construction; history pairs, customers who
-- liked both, are ranked by their shrunk cosine and may be near or below it)
SELECT source, count(*) > 200 AS many, bool_and(lift > 1) AS above_chance, bool_and(confidence BETWEEN 0 AND 1) AS confidences
FROM reco.item_neighbors WHERE model_id = :hybrid GROUP BY 1 ORDER BY 1;
SELECT count(*) > 500 AS popular_items, bool_and(cardinality(by_hour) = 24 AND cardinality(by_weekday) = 7) AS shapes
FROM reco.item_popularity WHERE model_id = :hybrid;
SELECT regexp_replace(indexname, '[0-9]+', 'N') AS index FROM pg_indexes WHERE tablename = 'item_vectors' AND indexname LIKE '%hnsw' ORDER BY 1;
-- planted complements: of each first category's cross-category basket neighbours, most are in
-- the planted second category
SELECT p.a AS category, p.b AS complement, round(avg((ib.category = p.b)::int), 1) >= 0.6 AS recovered, count(*) >= 5 AS enough
FROM (VALUES ('phones', 'phone_cases'), ('shoes', 'socks'), ('laptops', 'laptop_bags'), ('coffee', 'mugs'), ('jeans', 'belts')) p(a, b)
JOIN reco.items ia ON ia.category = p.a
JOIN reco.item_neighbors n ON n.item_id = ia.item_id AND n.model_id = :hybrid AND n.source = 'basket' AND n.cross_category
JOIN reco.items ib ON ib.item_id = n.neighbor_id
GROUP BY 1, 2 ORDER BY 1;
-- planted affinities: a customer's top 10 by ALS (inner product) falls mostly in their
-- segment's favourite categories
WITH fav(segment, category) AS (VALUES
    ('tech', 'phones'), ('tech', 'laptops'), ('tech', 'phone_cases'), ('tech', 'laptop_bags'),
    ('runners', 'shoes'), ('runners', 'socks'), ('runners', 'tees'),
    ('fashion', 'jeans'), ('fashion', 'dresses'), ('fashion', 'tees'), ('fashion', 'belts'), ('fashion', 'shoes'),
    ('coffee', 'coffee'), ('coffee', 'mugs')),
picked AS (
    SELECT c.customer_id, c.attributes->>'segment' AS segment, top.category
    FROM reco.customers c JOIN reco.customer_vectors cv ON cv.customer_id = c.customer_id AND cv.model_id = :hybrid
    CROSS JOIN LATERAL (
        SELECT i.category FROM reco.item_vectors iv JOIN reco.items i USING (item_id)
        WHERE iv.model_id = :hybrid AND iv.space = 'als' ORDER BY iv.v <#> cv.v LIMIT 10) top
    WHERE c.attributes->>'segment' <> 'mixed')
SELECT segment, round(avg((category IN (SELECT f.category FROM fav f WHERE f.segment = p.segment))::int), 1) >= 0.7 AS in_favourites
FROM picked p GROUP BY segment ORDER BY segment;

-- single kinds store only their own parts; evaluation can be skipped
SELECT reco.train('cooccurrence', '{"evaluate": false, "min_support": 1}') AS cooc \gset
SELECT kind, status, metrics IS NULL AS no_metrics, blend->>'cooccurrence' AS weight,
       (SELECT count(*) FROM reco.item_vectors v WHERE v.model_id = m.model_id) AS vectors,
       (SELECT count(*) > 0 FROM reco.item_neighbors n WHERE n.model_id = m.model_id) AS neighbours
FROM reco.models m WHERE model_id = :cooc;
SELECT reco.train('als', '{"factors": 8, "iterations": 3, "hnsw": false, "tune": false}') AS als \gset
SELECT kind, status, params->>'factors' AS factors, (SELECT min(vector_dims(v)) FROM reco.item_vectors v WHERE v.model_id = :als) AS dims,
       (SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'item_vectors_' || :als || '_%') AS indexes
FROM reco.models WHERE model_id = :als;

-- deployment: one at a time, by id or strategy, with history and rollback
SELECT reco.deploy(:als) = :als AS deployed_als;
SELECT reco.deploy('best_score') = :hybrid AS best_is_hybrid;
SELECT model_id = :hybrid AS is_hybrid, status FROM reco.models WHERE status = 'deployed';
SELECT status FROM reco.models WHERE model_id = :als;
SELECT reco.deploy('rollback') = :als AS rolled_back_to_als;
SELECT regexp_replace(try($$SELECT reco.deploy('rollback')$$), '[0-9]+', 'N', 'g') AS nothing_before;
SELECT reco.deploy('most_recent') = :als AS most_recent_is_als;
SELECT strategy, model_id = :hybrid AS hybrid, previous_model_id = :als AS from_als FROM reco.deployments ORDER BY deployment_id;
SELECT try($$SELECT reco.deploy(999999)$$);
SELECT try($$SELECT reco.deploy('newest')$$);

-- bad input
SELECT try($$SELECT reco.train('svd')$$);
SELECT try($$SELECT reco.train('als', '{"factor": 8}')$$);
SELECT try($$SELECT reco.train('als', '{"factors": 0}')$$);
SELECT try($$SELECT reco.train('als', '{"holdout": "a lot"}')$$);
SELECT try($$SELECT reco.train('als', '{"tune": "yes"}')$$);
SELECT try($$SELECT reco.train('als', '{"tune_budget_s": 0}')$$);
SELECT try($$SELECT reco.train('hybrid', '{"blend_steps": 101}')$$);
SELECT try($$SELECT reco.train('als', '[]')$$);
SELECT try($$SELECT reco.prune_models(-1)$$);
SELECT try($$SELECT reco.schedule_training('0 3 * * *', 'svd')$$);
SELECT try($$SELECT reco.schedule_training('0 3 * * *', 'als', 'rollback')$$);
-- pg_cron lives in another database (cron.database_name) here
SELECT regexp_replace(try($$SELECT reco.schedule_training('0 3 * * *')$$), 'database \w+', 'database D', 'g') AS no_cron;

-- a cancelled training leaves the deployed model alone and records its failure
SET statement_timeout = '150ms';
SELECT reco.train('hybrid');
RESET statement_timeout;
SELECT kind, status, error LIKE '57014: canceling statement%' AS cancelled, finished_at IS NOT NULL AS finished
FROM reco.models WHERE model_id = (SELECT max(model_id) FROM reco.models);
SELECT model_id = :als AS still_als FROM reco.models WHERE status = 'deployed';

-- event weights: the view shows defaults; UPDATE records an override, the default clears it
UPDATE reco.event_weights SET weight = 3 WHERE kind = 'view';
SELECT kind, weight, default_weight, overridden FROM reco.event_weights WHERE kind IN ('view', 'return') ORDER BY 1;
UPDATE reco.event_weights SET weight = 1 WHERE kind = 'view';
SELECT count(*) AS overrides FROM reco.event_weight_overrides;
SELECT try($$UPDATE reco.event_weights SET kind = 'glance' WHERE kind = 'view'$$);
SELECT split_part(try($$UPDATE reco.event_weights SET weight = 5000 WHERE kind = 'view'$$), E'\n', 1) AS out_of_range;

-- evaluate: every kind on the same holdout, nothing stored
SELECT count(*) AS models_before FROM reco.models \gset
SELECT e->'k' AS k, (SELECT array_agg(key ORDER BY key) FROM jsonb_object_keys(e->'kinds') key) AS kinds,
       (e->'kinds'->'hybrid'->>'ndcg')::float8 >= (e->'kinds'->'als'->>'ndcg')::float8 AS hybrid_at_least_als
FROM reco.evaluate('{"report_loss": false}') e;
SELECT count(*) = :models_before AS nothing_stored FROM reco.models;

-- pruning keeps the deployed model and its rollback target, drops failed ones and their indexes
SELECT reco.deploy(:hybrid) = :hybrid AS redeployed_hybrid;
SELECT reco.prune_models(0) AS pruned;
SELECT kind, status FROM reco.models ORDER BY model_id;
SELECT count(*) AS orphan_indexes FROM pg_indexes WHERE indexname ~ '^item_vectors_[0-9]+_'
  AND substring(indexname from '^item_vectors_([0-9]+)_')::bigint NOT IN (SELECT model_id FROM reco.models);

-- memory: a training, an evaluation or a demo load estimated above reco.training_memory_limit
-- is refused before it starts (54000, with the knob to lower in the hint), recording nothing
SELECT count(*) AS models_before FROM reco.models \gset
SET reco.training_memory_limit = '40MB';
SELECT try($$SELECT reco.train('hybrid', '{"tune": false}')$$);
SELECT try($$SELECT reco.evaluate()$$);
SELECT try($$SELECT reco.load_demo('medium')$$);
SELECT count(*) = :models_before AS nothing_recorded FROM reco.models;
RESET reco.training_memory_limit;
-- it protects the server, so only a superuser lifts it: not an admin
SET ROLE reco_admin;
SELECT try($$SET reco.training_memory_limit = 0$$);
SELECT try($$SELECT reco.train('popularity', '{"evaluate": false}')$$) AS admin_trains_within_the_default;
RESET ROLE;

-- a scheduled retrain (tune "auto", the default) reuses the search of the deployed model of its
-- kind when that search ran within retune_hours (default 24): the hyper-parameters and the blend
-- it chose, no trial and one blend served on the holdout
SELECT reco.train('hybrid', '{"report_loss": false}') AS warm \gset
SELECT (w.metrics->'tuning'->>'reused_from')::bigint = :hybrid AS reused_from_deployed,
       (w.metrics->'tuning'->>'searched_at')::timestamptz = h.finished_at AS searched_when_it_trained,
       NOT w.metrics->'tuning' ? 'tried' AS searched_nothing,
       jsonb_array_length(w.metrics->'blends_tried') AS blends_served,
       w.blend = h.blend AS same_blend,
       (SELECT bool_and(w.params->k = h.params->k) FROM unnest(array['factors', 'regularization', 'alpha', 'iterations',
               'history_shrinkage', 'neighbors', 'popularity_half_life_days']) k) AS same_values,
       w.metrics->'tuning'->'chosen' = h.metrics->'tuning'->'chosen' AS recorded
FROM reco.models w, reco.models h WHERE w.model_id = :warm AND h.model_id = :hybrid;
-- deployed in turn, it passes the same search on (as the admin role, which trains on a schedule)
SELECT reco.deploy(:warm) = :warm AS deployed_warm;
SET ROLE reco_admin;
SELECT reco.train('hybrid', '{"report_loss": false}') AS warm2 \gset
RESET ROLE;
SELECT (metrics->'tuning'->>'reused_from')::bigint = :warm AS reused_from_warm,
       (metrics->'tuning'->>'searched_at')::timestamptz = (SELECT finished_at FROM reco.models WHERE model_id = :hybrid) AS same_search,
       jsonb_array_length(metrics->'blends_tried') AS blends_served
FROM reco.models WHERE model_id = :warm2;
SELECT reco.deploy(:warm2) = :warm2 AS deployed_warm2;
-- a search 25 hours old is run again, unless retune_hours allows it; true always searches, and
-- retune_hours 0 searches at every training
UPDATE reco.models SET metrics = jsonb_set(metrics, '{tuning,searched_at}', to_jsonb(now() - interval '25 hours')) WHERE model_id = :warm2;
SELECT reco.train('hybrid', '{"report_loss": false}') AS aged \gset
SELECT reco.train('hybrid', '{"report_loss": false, "retune_hours": 48}') AS allowed \gset
SELECT reco.train('hybrid', '{"report_loss": false, "tune": true, "retune_hours": 48}') AS forced \gset
SELECT reco.train('hybrid', '{"report_loss": false, "retune_hours": 0}') AS every_time \gset
SELECT CASE model_id WHEN :aged THEN 'aged' WHEN :allowed THEN 'retune_hours 48' WHEN :forced THEN 'tune true'
                     ELSE 'retune_hours 0' END AS training,
       metrics->'tuning' ? 'tried' AS searched, coalesce((metrics->'tuning'->>'reused_from')::bigint = :warm2, false) AS reused,
       jsonb_array_length(metrics->'blends_tried') > 1 AS blend_chosen
FROM reco.models WHERE model_id IN (:aged, :allowed, :forced, :every_time) ORDER BY model_id;
-- a search time that is no timestamp (someone wrote it by hand) means a search and a warning,
-- not a failed training (it failed with 22007 before)
UPDATE reco.models SET metrics = jsonb_set(metrics, '{tuning,searched_at}', '"last tuesday"') WHERE model_id = :warm2;
SELECT reco.train('hybrid', '{"report_loss": false, "retune_hours": 48}') AS garbled \gset
SELECT metrics->'tuning' ? 'tried' AS searched FROM reco.models WHERE model_id = :garbled;
-- a deployed model that searched nothing (tune false) has nothing to pass on: auto decides as
-- before (this small data: a search)
SELECT reco.deploy(:als) = :als AS deployed_als;
SELECT reco.train('als', '{"factors": 8, "report_loss": false}') AS als2 \gset
SELECT metrics->'tuning' ? 'tried' AS searched, params->>'factors' AS factors FROM reco.models WHERE model_id = :als2;
SELECT try($$SELECT reco.train('als', '{"retune_hours": -1}')$$);
RESET client_min_messages;
