-- Demand: each model's per-item demand forecast (made at training from the order lines), days
-- of cover against live stock, a placement weight for demand-aware ranking, and the forecast's
-- backtest against a naive "same day last week" forecast. The engine's demand module holds the
-- method (engine/src/demand.rs); docs/reference.md, "Demand".

-- The placement weight: 0 (off) on every built-in row (docs/benchmarks.md, "Demand-aware
-- ranking", gives the measurement behind that default).
ALTER TABLE reco.placement_weights ADD COLUMN demand real NOT NULL DEFAULT 0 CHECK (demand >= 0 AND demand <= 10);
COMMENT ON COLUMN reco.placement_weights.demand IS 'Demand-aware ranking (0 = off): items forecast to sell well with healthy '
    'cover go up, items likely to sell out before an order placed now arrives (reco.demand_lead_days) go down; '
    'at 1 the adjustment moves a score by up to half the largest score the blend gives. Needs a model trained with a forecast.';

CREATE TABLE reco.item_demand (
    model_id    bigint NOT NULL REFERENCES reco.models ON DELETE CASCADE,
    item_id     text COLLATE "C" NOT NULL,
    per_day     real NOT NULL CHECK (per_day >= 0),
    by_weekday  real[] NOT NULL CHECK (pg_catalog.array_length(by_weekday, 1) = 7),
    PRIMARY KEY (model_id, item_id)
);
COMMENT ON TABLE reco.item_demand IS 'Per model, each item''s forecast units sold per day at the end of its training data: '
    'by_weekday[1..7] (1 = Monday), per_day their mean. From the order lines of the 56 days before the training day, '
    'decayed (half-life 10 days, with a trend term) and with weekday seasonality (the shop''s profile, the item''s own as its sales allow). '
    'Items with no sale in those days have no row (forecast 0).';

-- Days of cover, live: the deployed model's forecast against the stock as it is now.
CREATE VIEW reco.demand AS
SELECT d.item_id, d.per_day, d.by_weekday, s.available, s.backordered,
       CASE WHEN s.item_id IS NULL OR s.available <= 0 OR s.backordered THEN 0::float8
            WHEN d.per_day > 0 THEN s.available / d.per_day::float8
            ELSE 'Infinity'::float8 END AS days_of_cover,
       d.model_id
FROM reco.item_demand d
LEFT JOIN reco.stock s ON s.item_id = d.item_id
WHERE d.model_id = (SELECT m.model_id FROM reco.models m WHERE m.status = 'deployed');
COMMENT ON VIEW reco.demand IS 'The deployed model''s demand forecast per item beside live stock: days_of_cover = available ÷ per_day '
    '(0 when not available, Infinity when nothing is forecast to sell). The low_stock trigger''s max_days_of_cover reads it.';

REVOKE ALL ON FUNCTION reco.demand_backtest(integer, timestamptz, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reco.demand_backtest(integer, timestamptz, float8, float8) TO reco_reader, reco_reporting;
GRANT SELECT ON reco.item_demand, reco.demand TO reco_reader, reco_reporting;
GRANT INSERT, DELETE ON reco.item_demand TO reco_admin;
SELECT pg_catalog.pg_extension_config_dump('reco.item_demand', '');
