-- Serving: settings the OMS and DBAs tune per category and per placement, and the log of
-- recommendations shown (for attribution of later clicks and orders).

CREATE TABLE reco.category_settings (
    category        text COLLATE "C" PRIMARY KEY,
    repeatable      boolean NOT NULL DEFAULT false,
    max_per_list    integer CHECK (max_per_list > 0),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE reco.category_settings IS 'Per category: repeatable (consumables: items already bought may be recommended again) '
    'and max_per_list (at most this many of the category in a list reco.recommend serves, beside reco.diversity_penalty and '
    'reco.max_per_category; given way only when the list could not be filled otherwise).';

CREATE TABLE reco.placement_weights (
    placement     text COLLATE "C" PRIMARY KEY CHECK (placement ~ '^[a-z_]{1,32}$'),
    popularity    real NOT NULL DEFAULT 1 CHECK (popularity >= 0),
    cooccurrence  real NOT NULL DEFAULT 1 CHECK (cooccurrence >= 0),
    content       real NOT NULL DEFAULT 1 CHECK (content >= 0),
    als           real NOT NULL DEFAULT 1 CHECK (als >= 0),
    session_boost real NOT NULL DEFAULT 3 CHECK (session_boost >= 1),
    complements_first boolean NOT NULL DEFAULT false,
    alternatives  boolean NOT NULL DEFAULT false,
    description   text,
    builtin       boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE reco.placement_weights IS 'Per placement, multipliers on the deployed model''s blend weights (popularity, co-occurrence, content, ALS) '
    'and how much more this session''s events weigh than older history; with complements_first, what goes with the cart '
    '(other categories than the cart''s) comes before more of the cart''s own categories; with alternatives, those are offered as '
    'alternatives to the cart item of their category (an abandoned cart''s page). Edit the rows to tune a placement; '
    'add rows for your own placements. pg_dump saves the rows you add (builtin = false); re-apply edits of built-in rows after a restore.';
INSERT INTO reco.placement_weights (placement, popularity, cooccurrence, content, als, session_boost, complements_first, alternatives, description, builtin) VALUES
    ('home', 1, 1, 1, 1, 3, false, false, 'home page and listings: the blend as trained', true),
    ('cart', 1, 0.5, 3, 1, 3, true, true, 'cart page and abandoned carts: what goes with the cart first, then alternatives to the cart items (similar items weigh more)', true),
    ('checkout', 1, 3, 0.5, 1, 3, true, false, 'checkout: add-ons that go with the cart (bought together weighs more)', true),
    ('post_purchase', 0.5, 3, 0.3, 1, 3, true, false, 'after the order: accessories for what was just bought (pass the order''s items as cart)', true),
    ('email', 1, 1, 1, 1, 1, false, false, 'campaigns: no live session, history only', true);

CREATE TABLE reco.recommendations (
    rec_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id  text COLLATE "C",
    session_id   text COLLATE "C",
    placement    text NOT NULL,
    model_id     bigint,
    items        text[] NOT NULL,
    scores       real[] NOT NULL,
    context      jsonb NOT NULL DEFAULT '{}',
    shown_at     timestamptz NOT NULL DEFAULT now(),
    shard_key    text COLLATE "C"
);
COMMENT ON TABLE reco.recommendations IS 'One row per logged recommendation list (context "log": true): what was shown, in order. '
    'Events carrying {"rec_id": ...} in their context are attributed to it.';
COMMENT ON COLUMN reco.recommendations.shard_key IS 'Whose list it is: the customer id, ''s:'' || session_id, or '''' for a list with neither. '
    'Written by every insert; on Citus it is the distribution column, see docs/citus.md.';
CREATE INDEX recommendations_customer_idx ON reco.recommendations (customer_id, shown_at DESC);
CREATE INDEX recommendations_shown_brin ON reco.recommendations USING brin (shown_at);
