-- The event weights training reads: the built-in ones (in the view) under a DBA's overrides.
-- Written to run both in CREATE EXTENSION and in an update script (OR REPLACE), so a release
-- that adds an event kind or changes a default weight includes this file in its update.
CREATE OR REPLACE VIEW reco.event_weights AS
SELECT d.kind, coalesce(o.weight, d.weight) AS weight, d.weight AS default_weight, o.kind IS NOT NULL AS overridden, d.description
  FROM (VALUES
    ('view', 1::float8, 'looked at the item'),
    ('click', 2, 'clicked a recommendation or a listing'),
    ('cart_add', 4, 'put it in the cart'),
    ('cart_remove', -2, 'took it out again: cancels half a cart add'),
    ('purchase', 8, 'bought it (per order line)'),
    ('rating', 6, 'scaled by (stars - 2) / 3: 5 stars +6, 3 stars +2, 2 stars 0, 1 star -2'),
    ('return', -8, 'returned it: cancels the purchase'),
    ('impression', 0, 'was shown it: no signal of interest'),
    ('email_open', 0, 'opened an email: not about one item'),
    ('email_click', 2, 'clicked the item in an email'),
    ('email_delivered', 0, 'a message reached the customer: not about one item'),
    ('email_bounce', 0, 'a message could not be delivered'),
    ('unsubscribe', 0, 'opted out of a channel (clears its consent)')
  ) AS d(kind, weight, description)
  LEFT JOIN reco.event_weight_overrides o ON o.kind = d.kind;
COMMENT ON VIEW reco.event_weights IS 'How much each kind of event says about liking an item, for training. Ratings are scaled by (stars - 2) / 3; '
    'negative weights (returns, cart removals) cancel positive ones; a customer-item pair counts only when its sum is positive. '
    'UPDATE it to change a weight.';

CREATE OR REPLACE FUNCTION reco._event_weights_update() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, reco, pg_temp AS $$
BEGIN
    IF NEW.kind IS DISTINCT FROM OLD.kind THEN
        RAISE EXCEPTION 'the kind of an event weight cannot change' USING ERRCODE = '22023', HINT = 'update the weight only';
    END IF;
    IF NEW.weight NOT BETWEEN -1000 AND 1000 THEN
        RAISE EXCEPTION 'event weight % for % is out of range', NEW.weight, OLD.kind USING ERRCODE = '22023',
            HINT = 'weights lie between -1000 and 1000; negative ones cancel positive ones';
    END IF;
    IF NEW.weight IS NULL OR NEW.weight = OLD.default_weight THEN
        DELETE FROM reco.event_weight_overrides WHERE kind = OLD.kind;
    ELSE
        INSERT INTO reco.event_weight_overrides (kind, weight) VALUES (OLD.kind, NEW.weight)
        ON CONFLICT (kind) DO UPDATE SET weight = EXCLUDED.weight, updated_by = current_user, updated_at = now();
    END IF;
    RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER event_weights_update INSTEAD OF UPDATE ON reco.event_weights
    FOR EACH ROW EXECUTE FUNCTION reco._event_weights_update();
