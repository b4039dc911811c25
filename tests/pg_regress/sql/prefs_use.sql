-- Inferred preferences, filtering by preferences, alternatives, and the business metrics.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SELECT reset();
-- a catalogue: a tee in 4 sizes x 2 colors, running shoes; brands and prices
INSERT INTO reco.items (item_id, group_id, title, category, brand, price, currency, attributes)
SELECT 'TEE-' || s || '-' || upper(c), 'TEE', 'Crew tee', 'tops', 'Acme', 25.00, 'EUR', jsonb_build_object('size', s, 'color', c)
FROM unnest('{S,M,L,XL}'::text[]) s, unnest('{navy,red}'::text[]) c;
INSERT INTO reco.items (item_id, group_id, title, category, brand, price, currency, attributes) VALUES
  ('RUN-42', 'RUN', 'Runner', 'shoes', 'Fleet', 90.00, 'EUR', '{"size": "EU42", "color": "black"}'),
  ('RUN-43', 'RUN', 'Runner', 'shoes', 'Fleet', 90.00, 'EUR', '{"size": "EU43", "color": "black"}'),
  ('CAP', NULL, 'Cap', 'hats', 'Zeta', 15.00, 'EUR', '{"size": "OS", "color": "navy"}');
INSERT INTO reco.stock (item_id, available, backordered)
SELECT item_id, CASE WHEN item_id IN ('TEE-L-NAVY', 'TEE-M-RED') THEN 0 ELSE 5 END, item_id = 'TEE-XL-RED' FROM reco.items;

-- c5 bought M navy and returned it "too small", then kept L twice (navy, navy) and a red L:
-- orders placed 20, 10, 5 and 2 days ago through the web channel
CREATE FUNCTION pg_temp.web_order(id text, cust text, days int, sku text, price text) RETURNS text LANGUAGE sql AS $$
  SELECT reco.ingest_order('web', jsonb_build_object('id', id, 'customer_id', cust, 'currency', 'EUR',
    'shipping', jsonb_build_object('method', 'Express delivery'),
    'created_ms', ((extract(epoch FROM now()) - days * 86400) * 1000)::bigint,
    'cart', jsonb_build_object('items', jsonb_build_array(jsonb_build_object('sku', sku, 'quantity', 1, 'unit_price', price,
      'options', (SELECT attributes FROM reco.items WHERE item_id = sku))))))
$$;
SELECT pg_temp.web_order('o1', 'c5', 20, 'TEE-M-NAVY', '25.00'), pg_temp.web_order('o2', 'c5', 10, 'TEE-L-NAVY', '25.00'),
       pg_temp.web_order('o3', 'c5', 5, 'TEE-L-NAVY', '20.00'), pg_temp.web_order('o4', 'c5', 2, 'TEE-L-RED', '30.00');
SELECT reco.record_event('c5', 'TEE-M-NAVY', 'return', 1, now() - interval '18 days', '{"reason": "too small"}') > 0 AS returned;
SELECT reco.record_event('c5', 'RUN-42', 'view', 45, now() - interval '1 day') > 0 AS viewed;

SELECT reco.infer_preferences('c5') AS rows_written;
SELECT category, value, source, confidence, evidence FROM reco.preferences WHERE customer_id = 'c5' ORDER BY category, source;
-- running it again with no new evidence writes nothing
SELECT reco.infer_preferences('c5') AS rows_written_again;
-- the customer revokes color; inference honours that
SELECT reco.revoke_preference('c5', 'color') AS marked;
SELECT reco.record_event('c5', 'TEE-S-NAVY', 'cart_add') > 0 AS carted;
SELECT reco.infer_all_preferences(now() - interval '1 day') AS rows_written_nightly;
SELECT count(*) AS color_rows_after_revoke FROM reco.preferences WHERE customer_id = 'c5' AND category = 'color' AND revoked_at IS NULL;
SELECT reco.resolve_preferences('c5')->'size_tops'->>'value' AS size_tops, reco.resolve_preferences('c5') ? 'color' AS has_color;

-- filter: c5 wears L and buys Acme (both inferred); no color preference now, so S and the
-- other brands' shoes and cap are filtered out, L in either color passes, unknown ids are dropped
SELECT * FROM reco.filter_by_preferences('c5', ARRAY['TEE-S-NAVY', 'TEE-L-NAVY', 'TEE-L-RED', 'RUN-42', 'CAP', 'NOPE']);
SELECT reco.set_preference('c5', 'color', 'navy') > 0 AS chose_navy;
SELECT * FROM reco.filter_by_preferences('c5', ARRAY['TEE-S-NAVY', 'TEE-L-NAVY', 'TEE-L-RED', 'RUN-42', 'CAP']);
SELECT reco.capture_preference('c5', 'price_range', '{"max": "22.00", "currency": "EUR"}', 'survey') > 0 AS budget;
SELECT * FROM reco.filter_by_preferences('c5', ARRAY['TEE-L-NAVY', 'CAP']);

-- alternatives for an item: the customer's size and color, in stock and not backordered
-- (L navy is out of stock, M red out of stock, XL red backordered)
SELECT * FROM reco.alternatives('c5', 'TEE-S-RED');
SELECT * FROM reco.alternatives('someone_new', 'TEE-L-NAVY', k => 3);
SELECT * FROM reco.alternatives('c5', 'CAP');
SELECT try($$SELECT * FROM reco.alternatives('c5', 'NOPE')$$);
SELECT try($$SELECT * FROM reco.alternatives('c5', 'CAP', k => 0)$$);

-- metrics: c5 and c6 are active, only c5 captured explicitly. Utilization judges each order
-- against the preferences at its time: o4 (L, red) fits the inferred L but not the then-inferred navy
SELECT pg_temp.web_order('o5', 'c6', 3, 'TEE-S-RED', '25.00');
SELECT window_days, active_customers, capturing_customers, rate FROM reco.preference_capture_rate ORDER BY 1;
SELECT reco.resolve_preferences_at('c5', now() - interval '3 days')->'size_tops'->>'value' AS size_three_days_ago;
SELECT * FROM reco.preference_utilization_rate;
