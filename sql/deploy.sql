-- Deploying, rolling back, pruning and scheduling models. Training itself is reco.train (Rust).

-- reco._deploy, which the deploy functions below call, is in deploy_switch.sql.

CREATE FUNCTION reco.deploy(model_id bigint) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, reco, pg_temp AS $$ SELECT reco._deploy(model_id, 'model_id') $$;
COMMENT ON FUNCTION reco.deploy(bigint) IS 'Deploys one model (ready or retired) in one transaction; the previously deployed model is retired. Returns the model id.';

CREATE FUNCTION reco.deploy(strategy text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    target bigint;
    current bigint;
BEGIN
    IF strategy IS NULL THEN
        RAISE EXCEPTION 'strategy is NULL' USING ERRCODE = '22004', HINT = 'strategies: best_score, most_recent, rollback; or pass a model id';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('pg_reco deploy'));
    CASE strategy
    WHEN 'best_score' THEN
        SELECT m.model_id INTO target FROM reco.models m
         WHERE m.status IN ('ready', 'deployed') AND (m.metrics->>'ndcg') IS NOT NULL
         ORDER BY (m.metrics->>'ndcg')::float8 DESC, m.model_id DESC LIMIT 1;
        IF target IS NULL THEN
            RAISE EXCEPTION 'no ready model has offline metrics to compare' USING ERRCODE = '55000',
                HINT = 'train one with evaluation on: SELECT reco.train(''hybrid'')';
        END IF;
    WHEN 'most_recent' THEN
        SELECT m.model_id INTO target FROM reco.models m WHERE m.status IN ('ready', 'deployed')
         ORDER BY m.finished_at DESC NULLS LAST, m.model_id DESC LIMIT 1;
        IF target IS NULL THEN
            RAISE EXCEPTION 'no model is ready to deploy' USING ERRCODE = '55000', HINT = 'train one: SELECT reco.train()';
        END IF;
    WHEN 'rollback' THEN
        SELECT m.model_id INTO current FROM reco.models m WHERE m.status = 'deployed';
        IF current IS NULL THEN
            RAISE EXCEPTION 'no model is deployed, so there is nothing to roll back' USING ERRCODE = '55000',
                HINT = 'deploy a model with reco.deploy(model_id)';
        END IF;
        -- the model that was live before the current one was deployed forward (rollbacks skipped,
        -- so rolling back twice goes two steps back)
        SELECT d.previous_model_id INTO target FROM reco.deployments d
         WHERE d.model_id = current AND d.strategy <> 'rollback' ORDER BY d.deployment_id DESC LIMIT 1;
        IF target IS NULL THEN
            RAISE EXCEPTION 'model % was the first one deployed: there is nothing to roll back to', current USING ERRCODE = '55000',
                HINT = 'deploy another model with reco.deploy(model_id)';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM reco.models m WHERE m.model_id = target) THEN
            RAISE EXCEPTION 'model %, deployed before model %, has been pruned', target, current USING ERRCODE = '55000',
                HINT = 'deploy another model with reco.deploy(model_id)';
        END IF;
    ELSE
        RAISE EXCEPTION 'deployment strategy "%" is not known', strategy USING ERRCODE = '22023',
            HINT = 'strategies: best_score, most_recent, rollback; or pass a model id';
    END CASE;
    RETURN reco._deploy(target, strategy);
END $$;
COMMENT ON FUNCTION reco.deploy(text) IS 'Deploys by strategy: best_score (highest holdout NDCG among ready models), most_recent, or rollback (the model live before the current one).';

-- A running training holds an advisory lock on its model id until its transaction ends,
-- taken before its registry row is written (reco.train). A row in status training whose lock
-- nobody holds belongs to a training that ended without finishing: its backend exited or its
-- transaction rolled back. No view of other roles' backends (pg_stat_activity) is needed.
CREATE FUNCTION reco._lock_training(model_id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, reco, pg_temp AS $$
    SELECT pg_catalog.pg_advisory_xact_lock(1919247215, (model_id % 2147483647)::int4)  -- 1919247215 = 'reco'
$$;

-- Marks the trainings that ended without finishing as failed; returns how many.
CREATE FUNCTION reco._reap_trainings() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    n integer;
    orphans bigint[];
BEGIN
    -- the locks first, then the update: Citus (docs/citus.md) plans no volatile function in the
    -- WHERE clause of an UPDATE of a distributed or reference table
    SELECT array_agg(m.model_id) INTO orphans FROM reco.models m
     WHERE m.status = 'training' AND pg_catalog.pg_try_advisory_xact_lock(1919247215, (m.model_id % 2147483647)::int4);
    IF orphans IS NULL THEN
        RETURN 0;
    END IF;
    UPDATE reco.models m SET status = 'failed', finished_at = pg_catalog.now(),
           error = coalesce(error, 'the training ended without finishing: its backend (pid ' || backend_pid || ') exited or its transaction rolled back')
     WHERE m.status = 'training' AND m.model_id = ANY (orphans);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- The model's HNSW index on one space of reco.item_vectors. A definer function owned by
-- reco_owner, the table's owner (CREATE INDEX needs ownership), so reco_admin trains without
-- owning the table; it can build only this one shape of index.
CREATE FUNCTION reco._index_item_vectors(model_id bigint, space text, dims integer) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    vs text;
BEGIN
    IF model_id IS NULL OR space IS NULL OR space NOT IN ('als', 'content') OR dims IS NULL OR dims NOT BETWEEN 1 AND 16000 THEN
        RAISE EXCEPTION 'cannot index space % of model % with % dimensions', coalesce(space, 'NULL'), coalesce(model_id::text, 'NULL'),
            coalesce(dims::text, 'NULL') USING ERRCODE = '22023', HINT = 'spaces: als, content; 1 to 16000 dimensions';
    END IF;
    SELECT pg_catalog.quote_ident(n.nspname) INTO vs FROM pg_catalog.pg_extension e
      JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector';
    EXECUTE pg_catalog.format('CREATE INDEX %I ON reco.item_vectors USING hnsw ((v::%s.vector(%s)) %s.%s) WHERE model_id = %s AND space = %L',
        'item_vectors_' || model_id || '_' || space || '_hnsw', vs, dims, vs,
        CASE space WHEN 'als' THEN 'vector_ip_ops' ELSE 'vector_cosine_ops' END, model_id, space);
END $$;

-- Drops the HNSW indexes of the given models (prune_models), as their owner.
CREATE FUNCTION reco._drop_item_vector_indexes(models bigint[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    idx record;
    n integer := 0;
BEGIN
    FOR idx IN SELECT c.relname FROM pg_catalog.pg_class c
                WHERE c.relnamespace = 'reco'::pg_catalog.regnamespace AND c.relkind = 'i'
                  AND c.relname ~ '^item_vectors_[0-9]+_[a-z]+_hnsw$'
                  AND pg_catalog.substring(c.relname, '^item_vectors_([0-9]+)_')::bigint = ANY (models) LOOP
        EXECUTE pg_catalog.format('DROP INDEX reco.%I', idx.relname);
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

CREATE FUNCTION reco.prune_models(keep integer DEFAULT 5) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    victims bigint[];
BEGIN
    IF keep IS NULL OR keep < 0 THEN
        RAISE EXCEPTION 'keep must be 0 or more, not %', coalesce(keep::text, 'NULL') USING ERRCODE = '22023',
            HINT = 'keep is how many ready or retired models to keep besides the deployed one';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('pg_reco deploy'));
    PERFORM reco._reap_trainings();  -- then prune them with the other failures
    SELECT coalesce(array_agg(model_id), '{}') INTO victims FROM (
        SELECT model_id FROM reco.models WHERE status = 'failed'
        UNION ALL
        SELECT model_id FROM (
            SELECT model_id, row_number() OVER (ORDER BY model_id DESC) AS n
              FROM reco.models WHERE status IN ('ready', 'retired')
        ) r WHERE n > keep
    ) v;
    -- the rollback target of the deployed model stays
    victims := array_remove(victims, (SELECT d.previous_model_id FROM reco.deployments d
        JOIN reco.models m ON m.model_id = d.model_id AND m.status = 'deployed'
        WHERE d.strategy <> 'rollback' ORDER BY d.deployment_id DESC LIMIT 1));
    PERFORM reco._drop_item_vector_indexes(victims);
    DELETE FROM reco.models WHERE model_id = ANY (victims);
    RETURN cardinality(victims);
END $$;
COMMENT ON FUNCTION reco.prune_models(integer) IS 'Deletes failed models and all but the newest `keep` ready or retired ones, with everything they stored; '
    'never the deployed model or its rollback target. Returns how many were deleted.';

CREATE FUNCTION reco.schedule_training(cron text, kind text DEFAULT 'hybrid', deploy text DEFAULT 'best_score') RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    command text;
    job bigint;
BEGIN
    IF kind IS NULL OR kind NOT IN ('hybrid', 'als', 'cooccurrence', 'content', 'popularity') THEN
        RAISE EXCEPTION 'model kind "%" is not known', kind USING ERRCODE = '22023',
            HINT = 'kinds: hybrid, als, cooccurrence, content, popularity';
    END IF;
    IF deploy IS NULL OR deploy NOT IN ('best_score', 'most_recent', 'none') THEN
        RAISE EXCEPTION 'deploy "%" is not a strategy a schedule can use', deploy USING ERRCODE = '22023',
            HINT = 'best_score, most_recent, or none (train only)';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in database %', current_database() USING ERRCODE = '55000',
            HINT = format('add pg_cron to shared_preload_libraries, set cron.database_name = %L in postgresql.conf, restart, '
                          'then CREATE EXTENSION pg_cron; in this database', current_database());
    END IF;
    command := format('SELECT reco.train(%L)', kind);
    IF deploy <> 'none' THEN
        command := command || format('; SELECT reco.deploy(%L)', deploy);
    END IF;
    -- one schedule per kind: scheduling again replaces it
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job USING 'pg_reco train ' || kind, cron, command;
    RETURN job;
END $$;
COMMENT ON FUNCTION reco.schedule_training(text, text, text) IS 'Schedules training (and deployment) with pg_cron; returns the cron job id. One schedule per kind.';
