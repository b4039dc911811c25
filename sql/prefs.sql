-- Customer preferences: categories as data, an append-only ledger, revocations, policy.

CREATE TABLE reco.preference_categories (
    name            text COLLATE "C" PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    value_type      text NOT NULL CHECK (value_type IN ('size', 'color', 'text', 'enum', 'price_range')),
    family          text CHECK (family IN ('tops', 'bottoms', 'shoes', 'any')),
    allowed_values  text[] NOT NULL DEFAULT '{}',
    allowed_sources text[] NOT NULL DEFAULT '{checkout,survey,profile,kiosk,inferred_orders,inferred_returns,inferred_browsing}',
    description     text,
    builtin         boolean NOT NULL DEFAULT false,
    CHECK ((value_type = 'size') = (family IS NOT NULL)),
    CHECK (value_type <> 'enum' OR cardinality(allowed_values) > 0)
);
COMMENT ON TABLE reco.preference_categories IS 'Preference categories are data: a value type (size per garment family, color, text, enum, price_range) and the sources allowed to set them.';
INSERT INTO reco.preference_categories (name, value_type, family, allowed_values, description, builtin) VALUES
    ('size_tops', 'size', 'tops', '{}', 'letter size for tops', true),
    ('size_bottoms', 'size', 'bottoms', '{}', 'letter or waist/inseam size for bottoms', true),
    ('size_shoes', 'size', 'shoes', '{}', 'EU shoe size', true),
    ('color', 'color', NULL, '{}', 'favourite color (palette)', true),
    ('brand', 'text', NULL, '{}', 'favourite brand', true),
    ('price_range', 'price_range', NULL, '{}', 'typical price range in minor units', true),
    ('delivery_speed', 'enum', NULL, '{standard,express,same_day,pickup}', 'preferred delivery speed', true),
    ('channel', 'enum', NULL, '{web,mobile,store,marketplace,email}', 'preferred shopping channel', true),
    ('notification_tone', 'enum', NULL, '{minimal,standard,promotional}', 'how much and how we write to the customer', true);

CREATE TABLE reco.preference_policy (
    category        text COLLATE "C" PRIMARY KEY REFERENCES reco.preference_categories ON DELETE CASCADE,
    explicit_ttl    interval NOT NULL DEFAULT '180 days' CHECK (explicit_ttl >= '0'),
    min_confidence  double precision NOT NULL DEFAULT 0.7 CHECK (min_confidence BETWEEN 0 AND 1)
);
COMMENT ON TABLE reco.preference_policy IS 'Per-category precedence: an inferred value beats an explicit one only when newer by more than explicit_ttl and at least min_confidence. Categories without a row use 180 days and 0.7.';

CREATE TABLE reco.preferences (
    preference_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id    text COLLATE "C" NOT NULL REFERENCES reco.customers ON DELETE CASCADE,
    category       text COLLATE "C" NOT NULL REFERENCES reco.preference_categories,
    value          jsonb NOT NULL,
    source         text NOT NULL,
    explicit       boolean NOT NULL,
    confidence     double precision NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    evidence       integer,
    channel        text,
    observed_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);
COMMENT ON TABLE reco.preferences IS 'Append-only preference ledger: an edit is a new row, a revoke sets revoked_at on the category''s rows. Never updated otherwise.';
CREATE INDEX preferences_customer_idx ON reco.preferences (customer_id, category, observed_at DESC);

CREATE TABLE reco.preference_revocations (
    customer_id  text COLLATE "C" NOT NULL REFERENCES reco.customers ON DELETE CASCADE,
    category     text COLLATE "C" NOT NULL REFERENCES reco.preference_categories,
    revoked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, category)
);
COMMENT ON TABLE reco.preference_revocations IS 'Categories a customer revoked: inference must not set them again; a later explicit capture lifts the revocation.';
