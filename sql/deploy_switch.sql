-- The switch every deployment makes (reco.deploy, by id or strategy): in a file of its own,
-- loaded after the Rust functions it calls, so that the update script replaces it with the same
-- text a fresh install creates (CREATE OR REPLACE keeps its owner and grants).

CREATE OR REPLACE FUNCTION reco._deploy(target bigint, how text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
DECLARE
    m reco.models;
    current bigint;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'model_id is NULL' USING ERRCODE = '22004',
            HINT = 'pass a model id (SELECT model_id, kind, status FROM reco.models) or a strategy: best_score, most_recent, rollback';
    END IF;
    -- one deployment at a time: a second waits here, then sees the first one's result
    PERFORM pg_advisory_xact_lock(hashtext('pg_reco deploy'));
    SELECT * INTO m FROM reco.models WHERE model_id = target FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model % does not exist', target USING ERRCODE = '42704',
            HINT = 'SELECT model_id, kind, status, metrics FROM reco.models ORDER BY model_id DESC lists the models';
    END IF;
    IF m.status NOT IN ('ready', 'retired', 'deployed') THEN
        RAISE EXCEPTION 'model % is %, and only a ready or retired model can be deployed', target, m.status USING ERRCODE = '55000',
            HINT = CASE m.status WHEN 'training' THEN 'wait for its training to finish' ELSE 'train a new one with reco.train()' END;
    END IF;
    SELECT model_id INTO current FROM reco.models WHERE status = 'deployed' FOR UPDATE;
    IF current = target THEN
        RETURN target;
    END IF;
    -- the new model goes into the shared model cache first (when there is one and it fits), so
    -- the serving backends attach to it when this commits instead of all waiting for one of them
    -- to load it
    PERFORM reco._preload_model(target);
    UPDATE reco.models SET status = 'retired', retired_at = now() WHERE model_id = current;
    UPDATE reco.models SET status = 'deployed', deployed_at = now(), retired_at = NULL WHERE model_id = target;
    INSERT INTO reco.deployments (model_id, previous_model_id, strategy) VALUES (target, current, how);
    PERFORM pg_notify('reco_models', json_build_object('deployed', target, 'previous', current)::text);
    RETURN target;
END $$;
