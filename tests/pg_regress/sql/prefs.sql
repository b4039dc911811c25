-- Preferences: capture with standardization, precedence, context, revoke, forget, privacy.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SELECT reset();
-- values are standardized on the way in
SELECT reco.capture_preference('c1', 'size_tops', 'medium', 'checkout', '2023-01-10') > 0 AS captured;
SELECT reco.capture_preferences('c1', '{"color": "Charcoal", "size_shoes": "US 9", "delivery_speed": "Same Day",
    "price_range": {"min": "20", "max": 80.5, "currency": "eur"}, "brand": " Acme "}', 'survey', '2024-01-01');
SELECT category, value, source, explicit, confidence, observed_at FROM reco.preferences ORDER BY preference_id;

-- precedence, rule by rule
-- explicit beats a slightly newer inferred value
SELECT reco.capture_preference('c1', 'size_tops', 'L', 'inferred_orders', '2023-03-01', confidence => 0.9) > 0 AS captured;
SELECT reco.resolve_preferences('c1')->'size_tops'->>'value' AS size, reco.resolve_preferences('c1')->'size_tops'->>'why' AS why;
-- an inferred value newer by more than explicit_ttl (180 days) with enough confidence wins: the new size
SELECT reco.capture_preference('c1', 'size_tops', 'L', 'inferred_orders', '2024-06-01', confidence => 0.9) > 0 AS captured;
SELECT jsonb_pretty(reco.resolve_preferences('c1')->'size_tops');
-- ... unless the category's policy asks for more
INSERT INTO reco.preference_policy (category, explicit_ttl, min_confidence) VALUES ('size_tops', '730 days', 0.7);
SELECT reco.resolve_preferences('c1')->'size_tops'->>'value' AS size_with_two_year_ttl;
DELETE FROM reco.preference_policy;
-- a newer explicit value beats the older one; equal times break by source rank
SELECT reco.set_preference('c1', 'color', 'navy blue') > 0 AS edited;
SELECT reco.resolve_preferences('c1')->'color'->>'value' AS color, reco.resolve_preferences('c1')->'color'->'overrode' AS overrode;
SELECT reco.capture_preference('c2', 'brand', 'Zeta', 'survey', '2024-05-01') + reco.capture_preference('c2', 'brand', 'Alpha', 'checkout', '2024-05-01') > 0 AS captured;
SELECT reco.resolve_preferences('c2')->'brand'->>'value' AS brand_by_source_rank;
-- the request's context wins for that request only; other context keys are ignored
SELECT (reco.resolve_preferences('c1', '{"color": "Rot", "cart": ["A-1"], "size_shoes": "UK 8"}')->'color') - 'observed_at'::text AS color_in_context;
SELECT reco.resolve_preferences('c1', '{"color": "Rot"}')->'size_shoes'->>'value' AS shoes_untouched;

-- revoke one category, the others stay; the revocation is recorded (inference will honour it); an explicit choice lifts it
SELECT reco.revoke_preference('c1', 'color') AS rows_marked;
SELECT array_agg(k ORDER BY k) AS categories_left FROM jsonb_object_keys(reco.resolve_preferences('c1')) k;
SELECT category FROM reco.preference_revocations WHERE customer_id = 'c1';
SELECT reco.set_preference('c1', 'color', 'black') > 0 AS chosen_again;
SELECT reco.resolve_preferences('c1')->'color'->>'value' AS color, count(*) AS revocations_left
FROM reco.preference_revocations WHERE customer_id = 'c1';
-- history is kept: the ledger has every row, revoked ones marked
SELECT category, value, source, revoked_at IS NOT NULL AS revoked FROM reco.preferences WHERE customer_id = 'c1' AND category = 'color' ORDER BY preference_id;
SELECT try($$UPDATE reco.preferences SET value = '"XL"' WHERE customer_id = 'c1' AND category = 'size_tops'$$);

-- reporting view
SELECT customer_id, category, value, source FROM reco.preferences_current ORDER BY 1, 2;

-- bad input
SELECT try($$SELECT reco.capture_preference('c1', 'hat_size', 'M', 'checkout')$$);
SELECT try($$SELECT reco.capture_preference('c1', 'size_tops', 'banana', 'checkout')$$);
SELECT try($$SELECT reco.capture_preference('c1', 'color', 'blorange', 'survey')$$);
SELECT try($$SELECT reco.capture_preference('c1', 'size_tops', 'M', 'telepathy')$$);
SELECT try($$SELECT reco.capture_preference('c1', 'delivery_speed', 'teleport', 'checkout')$$);
SELECT try($$SELECT reco.capture_preference('c1', 'price_range', '{"min": "90", "max": "10", "currency": "EUR"}', 'survey')$$);
SELECT try($$SELECT reco.capture_preference('c1', 'size_tops', 'M', 'inferred_orders', confidence => 1.5)$$);
SELECT try($$SELECT reco.capture_preference('', 'size_tops', 'M', 'checkout')$$);
SELECT try($$SELECT reco.capture_preferences('c1', '{"color": "navy", "size_tops": "banana"}', 'survey')$$);
SELECT count(*) AS nothing_from_the_bad_form FROM reco.preferences WHERE customer_id = 'c1' AND value = '"navy"' AND source = 'survey';
SELECT try($$SELECT reco.resolve_preferences('c1', '{"size_tops": "banana"}')$$);

-- row-level security: a customer-facing session sees and edits only its own customer, the one
-- of the token the application's backend issued (reco.customer_token); SET cannot change it
CREATE ROLE regress_kiosk LOGIN;
GRANT reco_customer TO regress_kiosk;
SELECT reco.customer_token('c2', '10 minutes') AS token \gset
SET ROLE regress_kiosk;
SELECT try($$SELECT reco.set_preference('c2', 'color', 'green')$$) AS before_the_token;
SELECT reco.enter_customer_scope(:'token') AS scope;
SELECT DISTINCT customer_id FROM reco.preferences;
SELECT try($$SELECT reco.resolve_preferences('c1')$$) AS someone_else;
SELECT reco.set_preference('c2', 'color', 'green') > 0 AS own_edit;
SELECT try($$SELECT reco.set_preference('c1', 'color', 'green')$$);
SELECT try($$SET reco.customer_scope = 'c1'$$) AS forged_scope;
SELECT try($$SELECT set_config('reco.customer_scope', 'c1', false)$$) AS forged_scope_fn;
SET reco.customer_id = 'c1';  -- the old, forgeable setting means nothing any more
SELECT DISTINCT customer_id FROM reco.preferences;
SELECT try($$SELECT reco.enter_customer_scope(replace(:'token', 'v1.6332.', 'v1.6331.'))$$) AS tampered;
SELECT try($$INSERT INTO reco.preferences (customer_id, category, value, source, explicit, confidence, observed_at)
             VALUES ('c2', 'color', '"green"', 'profile', true, 1, now())$$) AS direct_insert;
SELECT try($$UPDATE reco.preferences SET revoked_at = '2000-01-01' WHERE customer_id = 'c2'$$) AS backdated_revoke;
SELECT try($$SELECT reco.revoke_preference('c1', 'size_tops')$$);
SELECT try($$SELECT reco.forget_customer('c1')$$);
RESET ALL;  -- a pool's DISCARD ALL: the scope goes with it
SELECT reco.customer_scope() IS NULL AS scope_cleared, count(*) AS rows_seen FROM reco.preferences;
-- for a transaction-mode pool: a scope that ends with the transaction
BEGIN;
SELECT reco.enter_customer_scope(:'token', local => true) AS local_scope, (SELECT count(DISTINCT customer_id) FROM reco.preferences) AS customers_seen;
COMMIT;
SELECT reco.customer_scope() IS NULL AS ended_with_the_transaction;
-- and one set in a transaction that rolls back is gone too
BEGIN;
SELECT reco.enter_customer_scope(:'token') IS NOT NULL AS entered;
ROLLBACK;
SELECT reco.customer_scope() IS NULL AS rolled_back;
RESET ROLE;
SELECT count(*) AS c1_rows_unchanged FROM reco.preferences WHERE customer_id = 'c1' AND revoked_at IS NULL;
DROP ROLE regress_kiosk;

-- forget: preferences, revocations and events go; orders keep their lines without the customer
SELECT reco.ingest_order('web', jsonb_set(payload, '{customer_id}', '"c1"')) FROM fixtures WHERE channel = 'web';
SELECT reco.record_event('c1', 'A', 'view') > 0 AS recorded;
SELECT reco.revoke_preference('c1', 'brand') AS marked;
SELECT reco.forget_customer('c1');
SELECT (SELECT count(*) FROM reco.preferences WHERE customer_id = 'c1') AS prefs,
       (SELECT count(*) FROM reco.events WHERE customer_id = 'c1') AS events,
       (SELECT count(*) FROM reco.customers WHERE customer_id = 'c1') AS customers,
       (SELECT customer_id IS NULL AND email IS NULL FROM reco.orders WHERE order_id = 'web:W-10001') AS order_anonymized,
       (SELECT count(*) FROM reco.order_lines WHERE order_id = 'web:W-10001') AS lines_kept;
SELECT reco.forget_customer('nobody');
