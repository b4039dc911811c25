-- Notifications: templates, triggers, candidates, rendering with live price and stock, the
-- pgmq queue. Every call pins now, so the answers hold at any hour and on any date.
SET timezone = 'UTC';
SELECT reset();
TRUNCATE reco.models CASCADE;
TRUNCATE reco.deployments, reco.recommendations, reco.triggers CASCADE;
DELETE FROM reco.email_templates;
CREATE EXTENSION IF NOT EXISTS pgmq;
SELECT * FROM reco.setup_queues();

-- a small shop: a phone, its case and charger, a t-shirt; three customers
INSERT INTO reco.items (item_id, title, brand, category, price, currency) VALUES
    ('phone', 'Nova phone <5G>', 'Nova', 'phones', 499, 'EUR'),
    ('case', 'Nova case', 'Nova', 'accessories', 19.9, 'EUR'),
    ('charger', 'Fast charger', 'Volt', 'accessories', 25, 'EUR'),
    ('tee', 'Plain tee', 'Loom', 'tops', 12.5, 'EUR'),
    ('yen-mug', 'Mug', 'Kiln', 'kitchen', 1500, 'JPY');
INSERT INTO reco.stock (item_id, available) VALUES ('phone', 3), ('case', 40), ('charger', 12), ('tee', 0), ('yen-mug', 8);
INSERT INTO reco.customers (customer_id, timezone, email_opt_in, attributes) VALUES
    ('alice', 'Europe/Berlin', true, '{"name": "Alice"}'),
    ('bob', NULL, false, '{}'),
    ('carol', 'America/New_York', true, '{"notification_tone": "playful"}'),
    ('dave', 'Not/AZone', true, '{}');
-- best sellers in the month before (no model is deployed: recommend offers them)
SELECT count(reco.record_event('shopper' || n, i, 'purchase', value => 1, occurred_at => '2026-02-20 12:00+00'))
FROM generate_series(1, 3) n, unnest(ARRAY['case', 'charger', 'yen-mug']) i;

-- Templates: a valid one per style, then every kind of bad one
INSERT INTO reco.email_templates (name, subject, html_body, text_body, link_base) VALUES ('cart',
 '{{ customer.name or "Hello" }}, your cart is waiting',
 '<p>{% for item in items %}<a href="{{ item.link }}">{{ item.title }}</a> {{ item.price }}<br>{% endfor %}</p>',
 'Still thinking?{% for item in items %}
- {{ item.title }}: {{ item.price }} ({{ item.availability }}) {{ item.link }}{% endfor %}',
 'https://shop.example/p/');
INSERT INTO reco.email_templates (name, style, subject, text_body) VALUES ('cart', 'playful',
 'Psst, {{ items|length }} things miss you', '{% for item in items %}{{ item.title|upper }} {{ item.price }}
{% endfor %}');
INSERT INTO reco.email_templates (name, style, subject, text_body) VALUES ('cart', 'premium',
 'Your selection is reserved', '{% for item in items %}{{ item.title }}, {{ item.price }}
{% endfor %}');
SELECT try($$INSERT INTO reco.email_templates (name, subject, text_body) VALUES ('bad', 'Hi', E'line one\n {% for item in items %}{{ item.title }')$$);
SELECT try($$INSERT INTO reco.email_templates (name, subject, text_body) VALUES ('bad', 'Hi {{ customer.name }}', E'ok\nand {{ coupon_code }}')$$);
SELECT try($$INSERT INTO reco.email_templates (name, subject, text_body) VALUES ('bad', 'Hi', '{% for item in items %}{{ item.colour }}{% endfor %}')$$);
SELECT try($$INSERT INTO reco.email_templates (name, subject, text_body) VALUES ('bad', 'Hi', '{% for i in range(100000) %}{% for j in range(100000) %}.{% endfor %}{% endfor %}')$$);
SELECT try($$INSERT INTO reco.email_templates (name, subject, text_body) VALUES ('bad', 'Hi', '{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}')$$);
SELECT try($$INSERT INTO reco.email_templates (name, subject, text_body) VALUES ('bad', 'Hi', '{{ "x" * 1000000 }}')$$);
-- memory: fuel counts instructions, not bytes; a string doubled on each of 40 lines, or
-- repeated 50 million times in one step, stops at the 32 MB budget (and this backend goes on)
SELECT try(format($$INSERT INTO reco.email_templates (name, subject, text_body) VALUES ('bad', 'Hi', %L)$$,
    '{% set s = "abcdefgh" %}' || repeat('{% set s = s ~ s %}', 40) || '{{ s|length }}'));
SELECT try($$INSERT INTO reco.email_templates (name, subject, text_body) VALUES ('bad', 'Hi', '{{ ("x" * 50000000)|length }}')$$);
SELECT try($$INSERT INTO reco.email_templates (name, channel, subject, text_body) VALUES ('bad', 'fax', 'Hi', 'x')$$);
SELECT try($$UPDATE reco.email_templates SET text_body = '{{ nope }}' WHERE name = 'cart' AND style = 'default'$$);
SELECT try($$UPDATE reco.notification_channels SET default_timezone = 'Mars/Olympus' WHERE channel = 'email'$$);
SELECT try($$UPDATE reco.notification_channels SET quiet_end = 24 WHERE channel = 'email'$$);
-- NULLs meet the NOT NULL constraints, not an internal error in the check triggers (SQLsmith
-- found the XX000 with: insert into reco.notification_channels values (cast(null as text), 90,
-- ..., pg_catalog.text(cast(null as xml)), ...) on conflict ... do update ...)
SELECT try($$UPDATE reco.notification_channels SET default_timezone = pg_catalog.text(cast(null as xml)) WHERE channel = 'email'$$);
SELECT try($$UPDATE reco.notification_channels SET quiet_start = NULL WHERE channel = 'email'$$);
SELECT split_part(try($$INSERT INTO reco.email_templates (name, subject, text_body) VALUES ('x', NULL, 'y')$$), E'\n', 1) AS error;
SELECT split_part(try($$INSERT INTO reco.email_templates (name, subject, text_body) VALUES ('x', 'y', NULL)$$), E'\n', 1) AS error;
SELECT try($$SELECT reco._send_after(now(), NULL, NULL, 21, 8)$$);

-- Triggers: parameters are checked per kind, the template and channels must exist
SELECT try($$INSERT INTO reco.triggers (name, kind, template, params) VALUES ('t', 'abandoned_cart', 'cart', '{"wait_minutes": 5}')$$);
SELECT try($$INSERT INTO reco.triggers (name, kind, template, params) VALUES ('t', 'abandoned_cart', 'cart', '{"wait_hours": -1}')$$);
SELECT try($$INSERT INTO reco.triggers (name, kind, template, params) VALUES ('t', 'abandoned_cart', 'cart', '{"show": "everything"}')$$);
SELECT try($$INSERT INTO reco.triggers (name, kind, template) VALUES ('t', 'abandoned_cart', 'no_such_template')$$);
SELECT try($$INSERT INTO reco.triggers (name, kind, template, channels) VALUES ('t', 'abandoned_cart', 'cart', '{email,fax}')$$);
SELECT try($$INSERT INTO reco.triggers (name, kind, template) VALUES ('t', 'birthday', 'cart')$$);
INSERT INTO reco.triggers (name, kind, template, params, items) VALUES
    ('cart_itself', 'abandoned_cart', 'cart', '{"wait_hours": 4, "show": "cart"}', 2),
    ('cart_related', 'abandoned_cart', 'cart', '{"wait_hours": 4}', 2);
UPDATE reco.triggers SET enabled = false WHERE name = 'cart_related';

-- Alice and Bob (no consent) leave carts on Monday morning; Carol and Dave (a time zone that
-- is not one) in the evening
SELECT count(reco.record_event(c, i, 'cart_add', value => 1, occurred_at => t)) FROM (VALUES
    ('alice', 'phone', '2026-03-02 09:00+00'::timestamptz), ('alice', 'tee', '2026-03-02 09:01+00'),
    ('alice', 'case', '2026-03-02 09:02+00'), ('bob', 'phone', '2026-03-02 09:00+00'),
    ('carol', 'charger', '2026-03-02 21:00+00'), ('dave', 'case', '2026-03-02 21:00+00')) v(c, i, t);
SELECT count(reco.record_event('alice', 'case', 'cart_remove', value => 1, occurred_at => '2026-03-02 09:03+00'));

-- Dave ordered phones twice in February (orders only, so best sellers stay as they are): his
-- price band is the catalogue's top quartile, and the template has a premium style
INSERT INTO reco.orders (order_id, channel, external_id, customer_id, placed_at, currency, subtotal_minor, total_minor, status, canonical_hash)
VALUES ('web:d1', 'web', 'd1', 'dave', '2026-02-10 10:00+00', 'EUR', 49900, 49900, 'paid', 1),
       ('web:d2', 'web', 'd2', 'dave', '2026-02-20 10:00+00', 'EUR', 49900, 49900, 'paid', 2);
INSERT INTO reco.order_lines (order_id, line_no, item_id, qty, unit_price_minor) VALUES ('web:d1', 1, 'phone', 1, 49900), ('web:d2', 1, 'phone', 1, 49900);

-- 15:00 UTC: Alice's cart is six hours old; Carol's is too young
SELECT * FROM reco.run_triggers(now => '2026-03-02 15:00+00');
SELECT customer_id, trigger_name, subject, items, reasons, send_at, style, rec_id IS NULL AS no_rec_id FROM reco.email_candidates ORDER BY candidate_id;
-- idempotent: the same run, or a later one, records nothing new within the cooldown
SELECT * FROM reco.run_triggers(now => '2026-03-02 15:00+00');
-- 03:00 UTC on Tuesday: Carol's cart is old enough, but it is 22:00 in New York, inside the
-- quiet hours (21–8): she gets it at 08:00 her time; Dave's zone is not one, so UTC's rules apply
SELECT * FROM reco.run_triggers(now => '2026-03-03 03:00+00');
SELECT customer_id, items, send_at, style FROM reco.email_candidates WHERE customer_id IN ('carol', 'dave') ORDER BY 1;

-- the related items are what goes with the cart (reco.complements; with no model deployed,
-- best sellers), logged with a rec_id
UPDATE reco.triggers SET enabled = true WHERE name = 'cart_related';
SELECT * FROM reco.run_triggers(now => '2026-03-03 03:00+00', only_trigger => 'cart_related');
SELECT customer_id, items, rec_id IS NOT NULL AS has_rec_id, (SELECT placement FROM reco.recommendations r WHERE r.rec_id = c.rec_id) AS logged_as
FROM reco.email_candidates c WHERE trigger_name = 'cart_related' ORDER BY 1;
-- product focus: once Alice is known to like Kiln (the mug's brand), the mug comes first
BEGIN;
SELECT reco.capture_preference('alice', 'brand', 'Kiln', 'profile') IS NOT NULL AS captured;
DELETE FROM reco.notification_candidates WHERE trigger_name = 'cart_related' AND customer_id = 'alice';
UPDATE reco.triggers SET last_run_at = NULL WHERE name = 'cart_related';
SELECT * FROM reco.run_triggers(now => '2026-03-03 03:00+00', only_trigger => 'cart_related');
SELECT customer_id, items FROM reco.email_candidates c WHERE trigger_name = 'cart_related' AND customer_id = 'alice';
ROLLBACK;
UPDATE reco.triggers SET enabled = false WHERE name = 'cart_related';

-- Rendering: live price in exact minor units, availability, escaped HTML, links with the rec_id
SELECT candidate_id AS alice_cart FROM reco.notification_candidates WHERE customer_id = 'alice' AND trigger_name = 'cart_itself' \gset
SELECT subject, html_body, text_body, items, skipped, dropped_reason FROM reco.render(:alice_cart, now => '2026-03-02 15:00+00');
-- the copy style follows the customer's notification tone
SELECT subject, text_body FROM reco.render((SELECT candidate_id FROM reco.notification_candidates WHERE customer_id = 'carol' AND trigger_name = 'cart_itself'));
-- the phone sells out: the message shows what is left; with nothing left, it is dropped
UPDATE reco.stock SET available = 0 WHERE item_id = 'phone';
SELECT items, skipped, dropped_reason FROM reco.render(:alice_cart, now => '2026-03-02 15:00+00');
UPDATE reco.stock SET backordered = true WHERE item_id = 'case';
SELECT items, skipped, dropped_reason FROM reco.render(:alice_cart, now => '2026-03-02 15:00+00');
UPDATE reco.stock SET backordered = false WHERE item_id = 'case';
-- back in stock: said so
UPDATE reco.stock SET available = 30 WHERE item_id = 'phone';
SELECT items, text_body FROM reco.render(:alice_cart, now => now());
SELECT try($$SELECT * FROM reco.render(NULL)$$);
SELECT try(format($$SELECT * FROM reco.render(%s, channel => 'push')$$, :alice_cart));
SELECT * FROM reco.render(-1);
-- a batch: one row per id, in the array's order, each as reco.render renders it; a missing
-- candidate or a NULL id is a dropped row, the others render
SELECT candidate_id AS carol_cart FROM reco.notification_candidates WHERE customer_id = 'carol' AND trigger_name = 'cart_itself' \gset
SELECT b.candidate_id = :alice_cart AS alice, b.candidate_id = :carol_cart AS carol, b.items, b.dropped_reason,
       CASE WHEN b.candidate_id IS NOT NULL THEN (b.subject, b.html_body, b.text_body, b.items, b.skipped, b.dropped_reason) IS NOT DISTINCT FROM
       (SELECT (r.subject, r.html_body, r.text_body, r.items, r.skipped, r.dropped_reason) FROM reco.render(b.candidate_id, now => now()) r) END AS as_render
FROM reco.render_batch(ARRAY[:carol_cart, -1, NULL, :alice_cart, :carol_cart], now => now()) WITH ORDINALITY b ORDER BY b.ordinality;
SELECT count(*) AS none FROM reco.render_batch('{}');
-- more ids than one statement reads (256): every row, in order
SELECT count(*) AS rows, bool_and(b.candidate_id = CASE WHEN b.ordinality % 2 = 1 THEN :alice_cart ELSE :carol_cart END) AS in_order,
       count(*) FILTER (WHERE b.dropped_reason IS NULL) AS rendered
FROM reco.render_batch(ARRAY(SELECT CASE WHEN n % 2 = 1 THEN :alice_cart ELSE :carol_cart END FROM generate_series(1, 600) n)::bigint[], now => now())
     WITH ORDINALITY b;
SELECT try($$SELECT * FROM reco.render_batch(NULL)$$);
SELECT try(format($$SELECT * FROM reco.render_batch(ARRAY[%s], channel => 'push')$$, :alice_cart));
-- the template is found with the candidate (one statement): the customer's locale before 'en',
-- the newest active version; with none active for the channel the message is dropped, naming it
BEGIN;
UPDATE reco.customers SET attributes = attributes || '{"locale": "de"}' WHERE customer_id = 'alice';
INSERT INTO reco.email_templates (name, locale, subject, text_body) VALUES ('cart', 'de', 'Ihr Warenkorb wartet', 'de');
INSERT INTO reco.email_templates (name, locale, version, subject, text_body) VALUES ('cart', 'de', 2, 'Ihr Warenkorb wartet (v2)', 'de v2');
INSERT INTO reco.email_templates (name, locale, version, active, subject, text_body) VALUES ('cart', 'de', 3, false, 'inactive', 'v3');
SELECT subject, text_body FROM reco.render(:alice_cart, now => '2026-03-02 15:00+00');
UPDATE reco.email_templates SET active = false WHERE name = 'cart';
SELECT subject, items, dropped_reason FROM reco.render(:alice_cart, now => '2026-03-02 15:00+00');
ROLLBACK;
-- render runs its statements with their generic plans and leaves the session's setting as it was
SET plan_cache_mode = force_custom_plan;
SELECT dropped_reason FROM reco.render(:alice_cart, now => now());
SELECT try(format($$SELECT * FROM reco.render(%s, channel => 'push')$$, :alice_cart)) IS NOT NULL AS raised;
SELECT current_setting('plan_cache_mode') AS plan_cache_mode;
RESET plan_cache_mode;
-- a template within its budget on the sample's short titles (13 bytes doubled 19 times: 7 MB)
-- but over it on the shop's (100 bytes: 52 MB) stops at render time, every time, and the
-- backend goes on
BEGIN;
UPDATE reco.email_templates SET text_body = '{% set t = items[0].title %}' || repeat('{% set t = t ~ t %}', 19) || '{{ t|length }}'
 WHERE name = 'cart';
UPDATE reco.items SET title = repeat('x', 100);
SELECT try(format($$SELECT * FROM reco.render(%s, now => '2026-03-02 15:00+00')$$, :alice_cart));
SELECT try(format($$SELECT * FROM reco.render(%s, now => '2026-03-02 15:00+00')$$, :alice_cart));
ROLLBACK;
SELECT items, dropped_reason FROM reco.render(:alice_cart, now => '2026-03-02 15:00+00');

-- Sending: due candidates go on the queue, one message per channel with consent and under the
-- caps; a replay queues nothing
SELECT try($$SELECT * FROM reco.send_due(max_messages => 0)$$);
SELECT try($$SELECT * FROM reco.send_due(shards => 3)$$);
SELECT try($$SELECT * FROM reco.send_due(shard => 2, shards => 2)$$);
SELECT try($$SELECT * FROM reco.run_triggers(now => NULL)$$);
SELECT try($$SELECT * FROM reco.run_triggers(only_trigger => 'nope')$$);
SELECT c.customer_id, s.channel, s.msg_id IS NOT NULL AS queued, s.outcome
FROM reco.send_due(now => '2026-03-03 09:00+00') s JOIN reco.notification_candidates c USING (candidate_id) ORDER BY 1, 2, 4;
SELECT * FROM reco.send_due(now => '2026-03-03 09:00+00');
SELECT customer_id, trigger_name, status, status_reason FROM reco.notification_candidates ORDER BY 1, 2;
SELECT queue_name, queue_length FROM pgmq.metrics_all() WHERE queue_name = 'reco_email';
-- a message holds ids only; the worker renders it
SELECT message - 'idempotency_key' - 'candidate_id' AS message, message ? 'idempotency_key' AS keyed FROM pgmq.read('reco_email', 30, 10) ORDER BY msg_id LIMIT 1;
-- a failed delivery comes back later, twice as late each time, and goes to the dead-letter
-- queue after max_attempts reads
SELECT min(msg_id) AS first_msg FROM pgmq.q_reco_email \gset
SELECT reco.retry_message('email', :first_msg, base => '1 minute') - clock_timestamp() BETWEEN '59 s' AND '60 s' AS back_in_a_minute;
UPDATE pgmq.q_reco_email SET read_ct = 3, vt = now() WHERE msg_id = :first_msg;
SELECT reco.retry_message('email', :first_msg, base => '1 minute') - clock_timestamp() BETWEEN '239 s' AND '240 s' AS back_in_four;
SELECT reco.retry_message('email', :first_msg, max_attempts => 3) AS dead_lettered;
SELECT (SELECT message ->> 'attempts' FROM pgmq.q_reco_email_dlq) AS attempts,
       (SELECT count(*) FROM pgmq.q_reco_email WHERE msg_id = :first_msg) AS left_on_queue;
SELECT try(format($$SELECT reco.retry_message('email', %s)$$, :first_msg));
SELECT try($$SELECT reco.retry_message('fax', 1)$$);
SELECT try($$SELECT reco.retry_message('email', 1, max_attempts => 0)$$);
-- the cap: one e-mail a day. Alice's second candidate (the related items) waits until her
-- first message is a day old, then goes
SELECT send_at, status_reason FROM reco.notification_candidates WHERE customer_id = 'alice' AND status = 'pending';
SELECT s.outcome FROM reco.send_due(now => '2026-03-03 15:00+00') s ORDER BY 1;
SELECT s.outcome FROM reco.send_due(now => '2026-03-04 09:00+00') s WHERE s.candidate_id IN (SELECT candidate_id FROM reco.notification_candidates WHERE customer_id = 'alice');
-- a candidate not sent within its trigger's cooldown expires
SELECT s.outcome FROM reco.send_due(now => '2026-03-11 09:00+00') s ORDER BY 1;
-- nothing in stock to show at send time: dropped, with the reason
INSERT INTO reco.notification_candidates (customer_id, trigger_name, subject, items, reasons, send_at, created_at)
VALUES ('dave', 'cart_itself', 'tee-only', '{tee}', '{""}', '2026-03-11 09:30+00', '2026-03-11 09:30+00');
SELECT s.outcome FROM reco.send_due(now => '2026-03-11 10:00+00') s ORDER BY 1;
SELECT status, status_reason FROM reco.notification_candidates WHERE subject = 'tee-only';
-- bought since: Carol bought the charger before her message went out (at 08:00 her time)
SELECT count(reco.record_event('carol', 'charger', 'cart_add', value => 1, occurred_at => '2026-03-11 01:00+00'));
SELECT * FROM reco.run_triggers(now => '2026-03-11 06:00+00', only_trigger => 'cart_itself');
SELECT count(reco.record_event('carol', 'charger', 'purchase', value => 1, occurred_at => '2026-03-11 06:10+00'));
SELECT send_at FROM reco.email_candidates WHERE customer_id = 'carol';
SELECT s.outcome FROM reco.send_due(now => '2026-03-11 13:00+00') s ORDER BY 1;

-- Other kinds: a long view, a first day, an order's accessories
INSERT INTO reco.email_templates (name, subject, text_body) VALUES ('picks', 'For you', '{% for item in items %}{{ item.title }}
{% endfor %}');
INSERT INTO reco.triggers (name, kind, template, params, items) VALUES
    ('long_look', 'long_view', 'picks', '{"min_seconds": 180, "wait_minutes": 30}', 2),
    ('welcome', 'first_day', 'picks', '{"wait_hours": 24}', 2),
    ('accessories', 'post_purchase', 'picks', '{"wait_hours": 2}', 2);
SELECT count(reco.record_event('alice', 'phone', 'view', value => v, session_id => 's9', occurred_at => t)) FROM (VALUES
    (100, '2026-03-05 10:00+00'::timestamptz), (90, '2026-03-05 10:05+00'), (60, '2026-03-05 11:00+00')) x(v, t);
SELECT count(reco.record_event('bob', 'tee', 'view', value => 400, session_id => 's10', occurred_at => '2026-03-05 10:00+00'));
UPDATE reco.customers SET created_at = '2026-03-04 09:00+00' WHERE customer_id = 'carol';
INSERT INTO reco.orders (order_id, channel, external_id, customer_id, placed_at, currency, subtotal_minor, total_minor, status, canonical_hash)
VALUES ('web:1', 'web', '1', 'alice', '2026-03-05 08:00+00', 'EUR', 49900, 49900, 'paid', 1);
INSERT INTO reco.order_lines (order_id, line_no, item_id, qty, unit_price_minor) VALUES ('web:1', 1, 'phone', 1, 49900);
SELECT * FROM reco.run_triggers(now => '2026-03-05 12:00+00') WHERE trigger_name IN ('long_look', 'welcome', 'accessories');
SELECT customer_id, trigger_name, subject, anchors FROM reco.notification_candidates
WHERE trigger_name IN ('long_look', 'welcome', 'accessories') ORDER BY 2, 1;

-- Send time: Erin opens e-mails around 19:00 in Berlin, the population around 09:00 UTC. Her
-- 20 machine opens at noon (a mail client fetching images) do not count.
INSERT INTO reco.customers (customer_id, timezone, email_opt_in) VALUES ('erin', 'Europe/Berlin', true), ('frank', NULL, true);
SELECT count(reco.record_event('erin', NULL, CASE WHEN d % 3 = 0 THEN 'email_click' ELSE 'email_open' END,
                               occurred_at => '2026-02-01 18:10+00'::timestamptz + make_interval(days => d)))
FROM generate_series(1, 9) d;
SELECT count(reco.record_event('erin', NULL, 'email_open', occurred_at => '2026-02-01 12:00+00'::timestamptz + make_interval(days => d),
                               context => '{"machine_open": true}'))
FROM generate_series(1, 20) d;
SELECT count(reco.record_event('shopper' || n, NULL, 'email_open', occurred_at => '2026-02-01 09:05+00'::timestamptz + make_interval(days => d)))
FROM generate_series(1, 3) n, generate_series(1, 10) d;
SELECT reco.best_send_time('erin', '2026-03-02 06:00+00', explore => 0) AS erin,
       reco.best_send_time('frank', '2026-03-02 06:00+00', explore => 0) AS frank_like_everyone,
       reco.best_send_time('frank', '2026-03-02 06:00+00', within_hours => 2, explore => 0) AS frank_within_two_hours,
       reco.best_send_time('erin', '2026-03-02 21:30+00', explore => 0) AS erin_after_quiet_hours;
-- about a tenth of the choices explore another allowed hour (deterministic per customer and
-- day), over the 80 days the population's engagement is recent enough to learn from
SELECT count(*) FILTER (WHERE t <> reco.best_send_time('erin', a, explore => 0)) AS explored_of_80
FROM generate_series('2026-03-02 06:00+00'::timestamptz, '2026-03-02 06:00+00'::timestamptz + interval '79 days', interval '1 day') a,
     LATERAL (SELECT reco.best_send_time('erin', a) AS t) x;
SELECT try($$SELECT reco.best_send_time(NULL)$$);
SELECT try($$SELECT reco.best_send_time('erin', within_hours => 0)$$);
SELECT try($$SELECT reco.best_send_time('erin', explore => 2)$$);
SELECT try($$SELECT reco.best_send_time('erin', channel => 'fax')$$);

-- Delivery, bounce and unsubscribe come back as events carrying the message's rec_id; an
-- unsubscribe clears the consent of its channel (e-mail when none is named)
UPDATE reco.customers SET attributes = attributes || '{"consent": {"push": true}}' WHERE customer_id = 'frank';
SELECT count(reco.record_event('frank', NULL, k, context => c)) FROM (VALUES
    ('email_delivered', '{"rec_id": 7}'::jsonb), ('email_bounce', '{"rec_id": 8}'), ('unsubscribe', '{"rec_id": 7, "channel": "push"}')) v(k, c);
SELECT email_opt_in, attributes -> 'consent' AS consent FROM reco.customers WHERE customer_id = 'frank';
SELECT count(reco.record_event('frank', NULL, 'unsubscribe'));
SELECT email_opt_in, attributes -> 'consent' AS consent FROM reco.customers WHERE customer_id = 'frank';
SELECT (reco.normalize_event('web', '{"event": "delivered", "user_id": "frank", "ts": 1709302000000}') ->> 'kind') AS delivered,
       (reco.normalize_event('web', '{"event": "bounced", "user_id": "frank", "ts": 1709302000000}') ->> 'kind') AS bounced,
       (reco.normalize_event('web', '{"event": "unsubscribed", "user_id": "frank", "ts": 1709302000000}') ->> 'kind') AS unsubscribed;
SELECT kind, weight FROM reco.event_weights WHERE kind IN ('email_delivered', 'email_bounce', 'unsubscribe') ORDER BY 1;

-- Roles: readers see candidates and render; only admins run triggers and send
SET ROLE reco_reader;
SELECT count(*) > 0 AS reader_sees_candidates FROM reco.email_candidates;
SELECT dropped_reason IS NULL AS reader_renders FROM reco.render(:alice_cart, now => now());
SELECT count(*) FILTER (WHERE dropped_reason IS NULL) AS reader_renders_a_batch FROM reco.render_batch(ARRAY[:alice_cart, -1], now => now());
SELECT reco.best_send_time('erin', '2026-03-02 06:00+00', explore => 0) AS reader_picks_send_times;
SELECT try($$SELECT * FROM reco.run_triggers()$$);
SELECT try($$SELECT * FROM reco.send_due()$$);
SELECT try($$INSERT INTO reco.triggers (name, kind, template) VALUES ('x', 'long_view', 'picks')$$);
SELECT try($$SELECT * FROM reco.setup_queues()$$);
RESET ROLE;
SET ROLE reco_admin;
SELECT sum(candidates) AS admin_runs_finds_nothing_new FROM reco.run_triggers(now => '2026-03-05 12:00+00');
SELECT c.trigger_name, s.outcome FROM reco.send_due(now => '2026-03-05 12:00+00') s JOIN reco.notification_candidates c USING (candidate_id) ORDER BY 1, 2;
SELECT try($$SELECT * FROM reco.setup_queues()$$);
RESET ROLE;

-- Low stock: items to clear, for customers interested in their category. Gina looked at
-- winter things; the hat has 4 left, the gloves sell 2 a day (10 days of cover), the scarf is
-- seasonal
INSERT INTO reco.items (item_id, title, category, price, currency, attributes) VALUES
    ('scarf', 'Wool scarf', 'winter', 30, 'EUR', '{"tags": ["seasonal"]}'), ('gloves', 'Gloves', 'winter', 20, 'EUR', '{}'),
    ('hat', 'Hat', 'winter', 15, 'EUR', '{}'), ('socks', 'Socks', 'winter', 5, 'EUR', '{}');
INSERT INTO reco.stock (item_id, available) VALUES ('scarf', 50), ('gloves', 20), ('hat', 4), ('socks', 200);
SELECT count(reco.record_event('shopper' || (1 + n % 3), 'gloves', 'purchase', value => 2, occurred_at => '2026-03-20 12:00+00'::timestamptz - make_interval(days => n)))
FROM generate_series(0, 27) n;
INSERT INTO reco.customers (customer_id, email_opt_in) VALUES ('gina', true);
SELECT reco.record_event('gina', 'socks', 'view', value => 20, occurred_at => '2026-03-20 10:00+00') > 0 AS viewed;
INSERT INTO reco.triggers (name, kind, template, params) VALUES ('winter', 'low_stock', 'cart', '{"max_available": 5}');
SELECT * FROM reco.run_triggers(now => '2026-03-21 12:00+00', only_trigger => 'winter');
SELECT customer_id, subject, reasons FROM reco.email_candidates WHERE trigger_name = 'winter' ORDER BY 2;
UPDATE reco.triggers SET params = '{"max_available": 5, "max_days_of_cover": 14, "seasonal": true}', last_run_at = NULL WHERE name = 'winter';
SELECT * FROM reco.run_triggers(now => '2026-03-21 12:00+00', only_trigger => 'winter');
SELECT customer_id, subject, reasons FROM reco.email_candidates WHERE trigger_name = 'winter' ORDER BY 2;
SELECT try($$UPDATE reco.triggers SET params = '{"seasonal": "yes"}' WHERE name = 'winter'$$);
SELECT try($$UPDATE reco.triggers SET params = '{"max_days_of_cover": 0}' WHERE name = 'winter'$$);

-- Forgetting a customer deletes their candidates and sends; a worker holding a message of
-- theirs renders nothing
SELECT reco.forget_customer('alice') -> 'notification_candidates' AS candidates, reco.forget_customer('alice') -> 'notification_candidates' AS again;
SELECT count(*) AS alice_rows FROM reco.notification_candidates WHERE customer_id = 'alice';
SELECT count(*) AS alice_sends FROM reco.notification_sends WHERE customer_id = 'alice';
SELECT dropped_reason FROM reco.render(:alice_cart);

-- Consent with provenance: every decision is logged with its source, evidence and time; the
-- one in force is the latest by when the customer decided. Frank's unsubscribes above:
SELECT channel, granted, source, evidence ? 'event_id' AS names_event, evidence -> 'rec_id' AS rec_id, decided_at IS NOT NULL AS dated
FROM reco.consent_log WHERE customer_id = 'frank' ORDER BY consent_id;
SELECT channel, granted, source, recorded_by FROM reco.consents WHERE customer_id = 'frank' ORDER BY channel;
-- he opts in again on the account page; the mirror column follows
SELECT reco.set_consent('frank', 'email', true, 'account_page', '{"form": "prefs_v2"}') AS in_force;
SELECT email_opt_in FROM reco.customers WHERE customer_id = 'frank';
-- an import of an older decision is logged but does not override the newer one
SELECT reco.set_consent('frank', 'email', false, 'crm_import', decided_at => '2026-03-01 00:00+00') AS in_force;
SELECT granted, source, evidence FROM reco.consents WHERE customer_id = 'frank' AND channel = 'email';
SELECT count(*) AS email_decisions FROM reco.consent_log WHERE customer_id = 'frank' AND channel = 'email';
-- a new customer's consent creates the customer; an OMS write of the mirror column is a decision too
SELECT reco.set_consent('hank', 'push', true, 'app_onboarding', decided_at => '2026-03-30 09:00+00') AS hank_push;
UPDATE reco.customers SET email_opt_in = true WHERE customer_id = 'hank';
SELECT channel, granted, source FROM reco.consents WHERE customer_id = 'hank' ORDER BY channel;
SELECT attributes -> 'consent' AS mirror FROM reco.customers WHERE customer_id = 'hank';
-- a write of the mirror column while a decision made later is in force (one recorded from
-- another clock, say) is logged, but the column goes back to the decision in force
INSERT INTO reco.customers (customer_id) VALUES ('ivy');
SELECT reco.set_consent('ivy', 'email', true, 'account_page') AS ivy_email;
UPDATE reco.consents SET decided_at = now() + interval '1 hour' WHERE customer_id = 'ivy';
UPDATE reco.customers SET email_opt_in = false WHERE customer_id = 'ivy';
SELECT granted, source FROM reco.consents WHERE customer_id = 'ivy';
SELECT email_opt_in FROM reco.customers WHERE customer_id = 'ivy';
SELECT granted, source FROM reco.consent_log WHERE customer_id = 'ivy' ORDER BY consent_id;
-- a bulk write of the mirror columns records one decision per row and channel that changed
-- (the lookup of the consent in force is planned per row: bench/consent.sh measures it); a
-- write that changes nothing records nothing
INSERT INTO reco.customers (customer_id) SELECT 'bulk-' || g FROM generate_series(1, 300) g;
-- (an insert that opts in records its decisions too)
INSERT INTO reco.customers (customer_id, email_opt_in, attributes)
SELECT 'bulk-new-' || g, true, '{"consent": {"push": false, "in_app": true}}' FROM generate_series(1, 5) g;
SELECT channel, granted, source, count(*) FROM reco.consent_log WHERE customer_id LIKE 'bulk-new-%' GROUP BY 1, 2, 3 ORDER BY 1;
UPDATE reco.customers SET email_opt_in = true, attributes = attributes || '{"consent": {"push": true, "fax": true}}'
WHERE customer_id LIKE 'bulk-%';
UPDATE reco.customers SET email_opt_in = g.e
FROM (SELECT 'bulk-' || g AS c, g % 3 = 0 AS e FROM generate_series(1, 300) g) g WHERE customer_id = g.c;
SELECT channel, granted, count(*) FROM reco.consents WHERE customer_id LIKE 'bulk-%' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT source, granted, count(*) FROM reco.consent_log WHERE customer_id LIKE 'bulk-%' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) FILTER (WHERE email_opt_in) AS opted, count(*) FILTER (WHERE attributes -> 'consent' ->> 'push' = 'true') AS push
FROM reco.customers WHERE customer_id LIKE 'bulk-%';
DELETE FROM reco.customers WHERE customer_id LIKE 'bulk-%' OR customer_id = 'ivy';
DELETE FROM reco.consent_log WHERE customer_id LIKE 'bulk-%' OR customer_id = 'ivy';
-- bad input: each names the value, with a hint
SELECT try($$SELECT reco.set_consent(NULL, 'email', true, 'form')$$);
SELECT try($$SELECT reco.set_consent('hank', 'fax', true, 'form')$$);
SELECT try($$SELECT reco.set_consent('hank', 'email', NULL, 'form')$$);
SELECT try($$SELECT reco.set_consent('hank', 'email', true, 'Sign Up Form')$$);
SELECT try($$SELECT reco.set_consent('hank', 'email', true, 'form', '[1, 2]')$$);
SELECT try(format($$SELECT reco.set_consent('hank', 'email', true, 'form', %L)$$, jsonb_build_object('doc', repeat('x', 5000))));
SELECT try($$SELECT reco.set_consent('hank', 'email', true, 'form', decided_at => 'infinity')$$);
SELECT split_part(try($$SELECT reco.set_consent('hank', 'email', true, 'form', decided_at => '2999-01-01 00:00+00')$$), ' (now', 1) AS future;
-- who may record: a reader may not; a customer's own session may, for its customer only
-- (the evidence says so); nobody writes the tables directly
SET ROLE reco_reader;
SELECT try($$SELECT reco.set_consent('hank', 'email', false, 'form')$$);
SELECT count(*) > 0 AS reader_sees_consents FROM reco.consents;
RESET ROLE;
SET ROLE reco_writer;
SELECT try($$INSERT INTO reco.consents VALUES ('hank', 'email', true, 'x', '{}', now(), now(), 'me', 1)$$);
SELECT try($$UPDATE reco.consent_log SET granted = true$$);
RESET ROLE;
CREATE ROLE regress_account_page LOGIN;
GRANT reco_customer TO regress_account_page;
SELECT reco.customer_token('hank', '10 minutes') AS hank_token \gset
SET ROLE regress_account_page;
SELECT try($$SELECT reco.set_consent('hank', 'push', false, 'account_page')$$) AS before_scope;
SELECT reco.enter_customer_scope(:'hank_token', local => false) AS scope;
SELECT reco.set_consent('hank', 'push', false, 'account_page') AS hank_push_now;
SELECT try($$SELECT reco.set_consent('frank', 'email', false, 'account_page')$$) AS other_customer;
SELECT customer_id, channel, granted FROM reco.consents ORDER BY 1, 2;
SELECT count(DISTINCT customer_id) AS customers_in_log FROM reco.consent_log;
RESET ROLE;
RESET reco.customer_scope;
DROP ROLE regress_account_page;
SELECT source, evidence, recorded_by FROM reco.consents WHERE customer_id = 'hank' AND channel = 'push';
-- forgetting a customer removes their decisions
SELECT reco.forget_customer('frank') -> 'consent_log' AS log_rows, reco.forget_customer('frank') -> 'consents' AS again;
SELECT count(*) AS frank_consent_rows FROM reco.consent_log WHERE customer_id = 'frank';

-- Late events: a view logged after the run that covered its time still counts (within
-- lookback_hours), because each run also reads the events logged since the last one
INSERT INTO reco.triggers (name, kind, template, params, items) VALUES
    ('late_look', 'long_view', 'picks', '{"min_seconds": 180, "wait_minutes": 60, "lookback_hours": 24}', 2),
    ('late_order', 'post_purchase', 'picks', '{"wait_hours": 2, "lookback_hours": 24}', 2);
SELECT * FROM reco.run_triggers(now => '2026-04-01 12:00+00') WHERE trigger_name LIKE 'late%';
SELECT * FROM reco.run_triggers(now => '2026-04-01 13:00+00') WHERE trigger_name LIKE 'late%';
-- logged now: a 4-minute look at 10:30 (before 13:00's window, 11:00 to 12:00) and one
-- 30 hours ago (past the lookback); an order placed at 09:00 reaches the OMS late too
SELECT count(reco.record_event('hank', i, 'view', value => 240, session_id => 'late-' || i, occurred_at => t)) FROM (VALUES
    ('phone', '2026-04-01 10:30+00'::timestamptz), ('tee', '2026-03-31 07:00+00')) x(i, t);
SELECT reco.ingest_order('web', '{"id": "L-1", "customer_id": "hank", "created_ms": 1775034000000, "currency": "EUR", "status": "paid",
        "cart": {"items": [{"sku": "phone", "quantity": 1, "unit_price": "499.00"}], "totals": {"subtotal": "499.00", "total": "499.00"}}}') AS late_order;
SELECT * FROM reco.run_triggers(now => '2026-04-01 14:00+00') WHERE trigger_name LIKE 'late%';
SELECT trigger_name, subject, anchors FROM reco.notification_candidates WHERE trigger_name LIKE 'late%' ORDER BY 1;
-- a later run finds nothing new: the late events were read once, the cooldown holds
SELECT * FROM reco.run_triggers(now => '2026-04-01 15:00+00') WHERE trigger_name LIKE 'late%';
SELECT last_event_id = (SELECT max(event_id) FROM reco.events) AS watermark_at_last_event FROM reco.triggers WHERE name = 'late_look';

-- send_due's stock check: an item taken off sale counts as gone whatever its stock, and one
-- buyable item among gone ones (out of stock, off sale) keeps the message
UPDATE reco.items SET active = false WHERE item_id = 'gloves';
INSERT INTO reco.notification_candidates (customer_id, trigger_name, subject, items, reasons, send_at, created_at)
VALUES ('dave', 'cart_itself', 'off-sale', '{gloves}', '{""}', '2026-05-04 08:30+00', '2026-05-04 08:30+00'),
       ('dave', 'cart_itself', 'one-left', '{tee,gloves,hat}', '{"","",""}', '2026-05-04 08:30+00', '2026-05-04 08:30+00');
SELECT c.subject, s.outcome FROM reco.send_due(now => '2026-05-04 09:00+00') s JOIN reco.notification_candidates c USING (candidate_id)
WHERE c.subject IN ('off-sale', 'one-left') ORDER BY 1;
SELECT subject, status, status_reason FROM reco.notification_candidates WHERE subject IN ('off-sale', 'one-left') ORDER BY 1;
UPDATE reco.items SET active = true WHERE item_id = 'gloves';

-- Back in stock in your size: a linen shirt in white S and M and blue M, all sold out. Ivy looked
-- at the white M, Jack at the blue M, Kim at the white S; Liam looked at the white M and bought
-- it. The white M comes back: Ivy (the item she looked at) and Jack (another colour in his size)
-- are told; Kim (another size) and Liam (bought it) are not.
INSERT INTO reco.items (item_id, group_id, title, category, price, currency, attributes) VALUES
    ('shirt-m', 'shirt', 'Linen shirt', 'tops', 39, 'EUR', '{"size": "M", "color": "white"}'),
    ('shirt-s', 'shirt', 'Linen shirt', 'tops', 39, 'EUR', '{"size": "S", "color": "white"}'),
    ('shirt-blue-m', 'shirt', 'Linen shirt', 'tops', 39, 'EUR', '{"size": "M", "color": "blue"}');
INSERT INTO reco.stock (item_id, available) VALUES ('shirt-m', 0), ('shirt-s', 0), ('shirt-blue-m', 0);
INSERT INTO reco.customers (customer_id, email_opt_in) VALUES ('ivy', true), ('jack', true), ('kim', true), ('liam', true);
SELECT count(reco.record_event(c, i, 'view', value => 60, session_id => 'shirt-' || c, occurred_at => '2026-05-10 10:00+00')) FROM (VALUES
    ('ivy', 'shirt-m'), ('jack', 'shirt-blue-m'), ('kim', 'shirt-s'), ('liam', 'shirt-m')) x(c, i);
SELECT count(reco.record_event('liam', 'shirt-m', 'purchase', value => 1, occurred_at => '2026-05-10 11:00+00'));
INSERT INTO reco.triggers (name, kind, template, params, items) VALUES ('restock', 'back_in_stock', 'picks', '{"interest_days": 30}', 1);
SELECT * FROM reco.run_triggers(now => '2026-05-11 09:00+00') WHERE trigger_name = 'restock';
-- (the stamp is the update's own time; pinned here to the shop's clock)
UPDATE reco.stock SET available = 5 WHERE item_id = 'shirt-m';
UPDATE reco.stock SET back_in_stock_at = '2026-05-11 10:00+00' WHERE item_id = 'shirt-m';
SELECT * FROM reco.run_triggers(now => '2026-05-11 12:00+00') WHERE trigger_name = 'restock';
SELECT customer_id, subject, items, reasons FROM reco.notification_candidates WHERE trigger_name = 'restock' ORDER BY 1;
