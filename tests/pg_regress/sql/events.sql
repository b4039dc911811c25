-- record_event / normalize_event / ingest_events: the clickstream.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SELECT reset();
SELECT reco.record_event('c42', 'CASE-X-BLK', 'view', 12.5, '2024-03-01T10:00:00Z', '{"rec_id": "r1"}', 's-9', 'web', 'iPhone') > 0 AS recorded;
SELECT customer_id, session_id, item_id, kind, value, channel, device, occurred_at, context FROM reco.events;
SELECT jsonb_pretty(reco.normalize_event('web', '{"event": "add_to_cart", "user_id": "c42", "sku": "PHONE-X-128",
    "ts": 1709301900000, "qty": 2, "device": "desktop", "placement": "cart"}'));
SELECT reco.normalize_event('mobile', '{"type": "rating", "userId": "c42", "itemId": "A", "rating": 8, "scale": 10,
    "timestamp": "2024-03-01T10:00:00Z"}')->'value' AS rating_on_5;
SELECT * FROM reco.ingest_events('web', '[
  {"event": "view_item", "user_id": "c7", "sku": "A", "dwell_seconds": 40, "timestamp": "2024-03-01T10:00:00Z"},
  {"name": "product_viewed", "clientId": "anon-1", "data": {"productVariant": {"sku": "B"}}, "timestamp": "2024-03-01T10:01:00Z"},
  {"event": "impression", "user_id": "c7", "items": [{"item_id": "A"}, {"item_id": "C"}], "rec_id": "r2", "timestamp": "2024-03-01T10:02:00Z"},
  {"event": "email_open", "user_id": "c7", "campaign": "spring", "timestamp": "2024-03-01T11:00:00Z"},
  {"event": "teleport", "user_id": "c7"},
  {"event": "view", "sku": "A"},
  {"event": "rating", "user_id": "c7", "sku": "A", "rating": 9}
]');
SELECT customer_id, session_id, item_id, kind, value, occurred_at, context FROM reco.events WHERE channel = 'web' ORDER BY event_id;
SELECT entity, sqlstate, message FROM reco.ingest_errors ORDER BY error_id;
SELECT try($$SELECT reco.record_event('c1', 'A', 'like')$$);
SELECT try($$SELECT reco.record_event(NULL, 'A', 'view')$$);
SELECT try($$SELECT reco.record_event('c1', NULL, 'cart_add')$$);
SELECT try($$SELECT reco.record_event('c1', 'A', 'rating', 11)$$);
SELECT try($$SELECT reco.record_event('c1', 'A', 'view', context => '[1]')$$);
