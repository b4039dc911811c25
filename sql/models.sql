-- Training: event weights, the model registry, deployments, and what each model stores.
-- Everything a model stores is keyed by its model_id and goes when the model is pruned.

-- The built-in weights live in the view; a DBA's changes are rows of event_weight_overrides
-- (what pg_dump saves), so the defaults can improve in an upgrade without clobbering them.
CREATE TABLE reco.event_weight_overrides (
    kind        text COLLATE "C" PRIMARY KEY CHECK (kind IN ('view', 'click', 'cart_add', 'cart_remove', 'purchase', 'rating',
                                                         'return', 'impression', 'email_open', 'email_click', 'email_delivered',
                                                         'email_bounce', 'unsubscribe')),
    weight      double precision NOT NULL CHECK (weight BETWEEN -1000 AND 1000),
    updated_by  text NOT NULL DEFAULT current_user,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE reco.event_weight_overrides IS 'Weights a DBA changed (UPDATE reco.event_weights writes here); delete a row to return to the default.';

-- The view reco.event_weights over these: sql/event_weights.sql.

CREATE TABLE reco.models (
    model_id           bigint PRIMARY KEY,
    kind               text NOT NULL CHECK (kind IN ('hybrid', 'als', 'cooccurrence', 'content', 'popularity')),
    params             jsonb NOT NULL DEFAULT '{}',
    status             text NOT NULL DEFAULT 'training' CHECK (status IN ('training', 'ready', 'deployed', 'retired', 'failed')),
    data_from          timestamptz,
    data_to            timestamptz,
    n_customers        bigint,
    n_items            bigint,
    n_events           bigint,
    n_interactions     bigint,
    train_seconds      double precision,
    peak_memory_bytes  bigint,
    metrics            jsonb,
    blend              jsonb,
    error              text,
    backend_pid        integer,
    created_by         text NOT NULL DEFAULT current_user,
    created_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    deployed_at        timestamptz,
    retired_at         timestamptz
);
CREATE SEQUENCE reco.models_model_id_seq OWNED BY reco.models.model_id;
ALTER TABLE reco.models ALTER COLUMN model_id SET DEFAULT nextval('reco.models_model_id_seq');
COMMENT ON TABLE reco.models IS 'The model registry: one row per training, with its data window, sizes, time, peak memory, offline metrics and status '
    '(training, ready, deployed, retired, failed). At most one model is deployed.';
COMMENT ON COLUMN reco.models.metrics IS 'Offline evaluation on a temporal holdout: k, ndcg, recall, hit_rate, map, coverage, users, and per member for a hybrid.';
COMMENT ON COLUMN reco.models.peak_memory_bytes IS 'Growth of the training backend''s peak resident memory during training.';
CREATE UNIQUE INDEX models_one_deployed ON reco.models ((true)) WHERE status = 'deployed';
CREATE INDEX models_status_idx ON reco.models (status, model_id DESC);

CREATE TABLE reco.deployments (
    deployment_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id           bigint NOT NULL,
    previous_model_id  bigint,
    strategy           text NOT NULL CHECK (strategy IN ('model_id', 'best_score', 'most_recent', 'rollback')),
    deployed_by        text NOT NULL DEFAULT current_user,
    deployed_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE reco.deployments IS 'Deployment history, newest last; rollback walks it back.';

CREATE TABLE reco.item_vectors (
    model_id  bigint NOT NULL REFERENCES reco.models ON DELETE CASCADE,
    space     text COLLATE "C" NOT NULL CHECK (space IN ('als', 'content')),
    item_id   text COLLATE "C" NOT NULL,
    v         vector NOT NULL,
    PRIMARY KEY (model_id, space, item_id)
);
COMMENT ON TABLE reco.item_vectors IS 'Item vectors per model: ALS factors (score: inner product) and content vectors (unit length: cosine). '
    'Each model and space gets a partial HNSW index on v::vector(dims).';

CREATE TABLE reco.customer_vectors (
    model_id     bigint NOT NULL REFERENCES reco.models ON DELETE CASCADE,
    space        text COLLATE "C" NOT NULL CHECK (space IN ('als')),
    customer_id  text COLLATE "C" NOT NULL,
    v            vector NOT NULL,
    PRIMARY KEY (model_id, space, customer_id)
);
COMMENT ON TABLE reco.customer_vectors IS 'Customer vectors per model (ALS factors).';

CREATE TABLE reco.item_neighbors (
    model_id        bigint NOT NULL REFERENCES reco.models ON DELETE CASCADE,
    item_id         text COLLATE "C" NOT NULL,
    source          text COLLATE "C" NOT NULL CHECK (source IN ('basket', 'session', 'history')),
    rank            integer NOT NULL,
    neighbor_id     text COLLATE "C" NOT NULL,
    support         integer NOT NULL,
    confidence      real NOT NULL,
    lift            real NOT NULL,
    score           real NOT NULL,
    cross_category  boolean NOT NULL,
    PRIMARY KEY (model_id, item_id, source, rank)
);
COMMENT ON TABLE reco.item_neighbors IS 'Co-occurrence neighbours per model: from orders (basket: "frequently bought together"), browsing sessions, '
    'and whole customer histories (history: item-kNN, customers who liked one liked the other). '
    'support = baskets (customers, for history) with both, confidence = support / those with item_id, lift = confidence / share with neighbor_id; '
    'score ranks (basket, session: confidence * ln(lift); history: cosine shrunk by support / (support + history_shrinkage)); '
    'cross_category marks complements.';

CREATE TABLE reco.item_knn (
    model_id   bigint NOT NULL REFERENCES reco.models ON DELETE CASCADE,
    space      text COLLATE "C" NOT NULL CHECK (space IN ('als', 'content')),
    item_id    text COLLATE "C" NOT NULL,
    item_no    integer NOT NULL CHECK (item_no >= 0),
    neighbors  integer[] NOT NULL,
    PRIMARY KEY (model_id, space, item_id)
);
COMMENT ON TABLE reco.item_knn IS 'Per model, space and item, its nearest items in that space, nearest first, as item_no of the same '
    'model (ALS: largest inner product; content: cosine), found at training with the model''s HNSW indexes when the catalogue '
    'has at least reco.hnsw_min_items items. A large catalogue''s ALS and content candidates come from the lists of the '
    'request''s anchors (kept in each backend''s model cache) instead of an index search per call. '
    'item_no numbers the model''s items; it is not stable across models.';

CREATE TABLE reco.item_popularity (
    model_id    bigint NOT NULL REFERENCES reco.models ON DELETE CASCADE,
    item_id     text COLLATE "C" NOT NULL,
    category    text,
    score       real NOT NULL,
    by_hour     real[] NOT NULL,
    by_weekday  real[] NOT NULL,
    PRIMARY KEY (model_id, item_id)
);
COMMENT ON TABLE reco.item_popularity IS 'Decayed popularity per model, with its spread over the 24 hours (UTC) and 7 weekdays (1 = Monday).';
CREATE INDEX item_popularity_rank_idx ON reco.item_popularity (model_id, score DESC);
CREATE INDEX item_popularity_category_idx ON reco.item_popularity (model_id, category, score DESC);

CREATE TABLE reco.segment_popularity (
    model_id    bigint NOT NULL REFERENCES reco.models ON DELETE CASCADE,
    segment     text COLLATE "C" NOT NULL,
    rank        integer NOT NULL CHECK (rank > 0),
    item_id     text COLLATE "C" NOT NULL,
    score       real NOT NULL,
    PRIMARY KEY (model_id, segment, rank)
);
COMMENT ON TABLE reco.segment_popularity IS 'Per model, the best sellers of each customer segment (reco.customers.attributes->>''segment''), '
    'decayed like item_popularity: the starter pack of a new customer whose segment is known.';
