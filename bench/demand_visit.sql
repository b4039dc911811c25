-- The simulated visits of `make demo` section 10 and bench/demand.sh (psql \i from the
-- repository root). Expects temp tables visitors(customer_id, n) and
-- bought_categories(customer_id, category). pg_temp.visit(round, experiment): the visitors whose
-- n has round's parity get a home page of 4 (logged); responses, blind to the arm: a shown item
-- of a category the customer bought before is clicked 1 time in 8 (others 1 in 40), a click is
-- bought 1 time in 3 while stock lasts (each purchase takes a unit), recorded as events carrying
-- the list's rec_id. Returns the round's lists, clicks and purchases.
CREATE TEMP TABLE responses (rec_id bigint, customer_id text, item_id text, kind text);
CREATE FUNCTION pg_temp.visit(round int, experiment text) RETURNS TABLE (lists bigint, clicks bigint, purchases bigint)
LANGUAGE plpgsql AS $visit$
DECLARE
    before bigint := (SELECT coalesce(max(rec_id), 0) FROM reco.recommendations);
BEGIN
    PERFORM count(*) FROM visitors v, reco.recommend(v.customer_id, 4, '{"placement": "home", "log": true}') WHERE v.n % 2 = round % 2;
    TRUNCATE responses;
    INSERT INTO responses
    SELECT r.rec_id, r.customer_id, x.item_id, 'click'
    FROM reco.recommendations r CROSS JOIN LATERAL unnest(r.items) x(item_id) JOIN reco.items i USING (item_id)
    WHERE r.rec_id > before AND r.context ->> 'experiment' = experiment
      AND abs(hashtext(r.rec_id || x.item_id || round)) % 40 < CASE WHEN EXISTS (
              SELECT 1 FROM bought_categories b WHERE b.customer_id = r.customer_id AND b.category = i.category) THEN 5 ELSE 1 END;
    INSERT INTO responses
    SELECT c.rec_id, c.customer_id, c.item_id, 'purchase' FROM responses c JOIN reco.stock s USING (item_id)
    WHERE abs(hashtext(c.item_id || c.rec_id || 'buy')) % 3 = 0 AND s.available > 0 AND NOT s.backordered;
    UPDATE reco.stock s SET available = greatest(s.available - n.units, 0)
    FROM (SELECT item_id, count(*) AS units FROM responses WHERE kind = 'purchase' GROUP BY 1) n WHERE s.item_id = n.item_id;
    INSERT INTO reco.events (customer_id, item_id, kind, occurred_at, context)
    SELECT customer_id, item_id, kind, now(), jsonb_build_object('rec_id', rec_id) FROM responses;
    RETURN QUERY SELECT (SELECT count(*) FROM reco.recommendations WHERE rec_id > before),
                        count(*) FILTER (WHERE kind = 'click'), count(*) FILTER (WHERE kind = 'purchase') FROM responses;
END $visit$;
