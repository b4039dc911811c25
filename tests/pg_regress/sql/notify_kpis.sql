-- Notification KPIs: per day, trigger, template, copy style and channel, from the messages sent
-- and the events that carry their rec_id; orders within the attribution window after a click
-- (last click wins). Every timestamp is pinned.
SET timezone = 'UTC';
SELECT reset();
TRUNCATE reco.recommendations, reco.triggers CASCADE;
DELETE FROM reco.email_templates;
INSERT INTO reco.items (item_id, title, category, price, currency) VALUES ('case', 'Case', 'accessories', 19.9, 'EUR');
INSERT INTO reco.email_templates (name, channel, style, subject, text_body) VALUES
    ('cart', 'email', 'default', 'Your cart', '{% for i in items %}{{ i.title }}{% endfor %}'),
    ('cart', 'email', 'playful', 'Psst, your cart', '{% for i in items %}{{ i.title }}{% endfor %}'),
    ('cart', 'push', 'default', 'Your cart', '{{ items | length }} items');
INSERT INTO reco.triggers (name, kind, template, channels) VALUES ('cart', 'abandoned_cart', 'cart', '{email,push}');

-- seven messages: (customer, channel, style, sent at); each candidate gets a logged list (rec_id)
CREATE TEMP TABLE m (n int, cust text, chan text, sty text, at timestamptz);
INSERT INTO m VALUES
    (1, 'k1', 'email', 'default', '2026-03-02 09:00+00'),  -- delivered, opened, clicked, ordered two hours later
    (2, 'k2', 'email', 'default', '2026-03-02 09:00+00'),  -- delivered; a machine open only
    (3, 'k3', 'email', 'default', '2026-03-02 09:00+00'),  -- bounced
    (4, 'k4', 'email', 'default', '2026-03-02 09:00+00'),  -- nothing came back
    (5, 'k5', 'email', 'playful', '2026-03-02 09:00+00'),  -- clicked; the order was cancelled; unsubscribed
    (6, 'k6', 'push', 'default', '2026-03-03 09:00+00'),   -- a push opened (its event names the channel)
    (7, 'k1', 'email', 'default', '2026-03-03 09:00+00');  -- k1 again: clicked, ordered in yen
INSERT INTO reco.customers (customer_id) SELECT DISTINCT cust FROM m;
INSERT INTO reco.recommendations (customer_id, placement, items, scores, shown_at)
SELECT cust, 'email', '{case}', '{0}', at FROM m ORDER BY n;
CREATE TEMP TABLE r AS SELECT m.*, x.rec_id FROM m JOIN (SELECT rec_id, row_number() OVER (ORDER BY rec_id) AS n FROM reco.recommendations) x USING (n);
INSERT INTO reco.notification_candidates (customer_id, trigger_name, subject, items, reasons, rec_id, style, send_at, status, created_at, sent_at)
SELECT cust, 'cart', 'cart' || n, '{case}', '{x}', rec_id, sty, at, 'sent', at - interval '1 hour', at FROM r ORDER BY n;
INSERT INTO reco.notification_sends (idempotency_key, candidate_id, customer_id, channel, sent_at, trigger_name, template, style)
SELECT 'k' || r.n, c.candidate_id, r.cust, r.chan, r.at, 'cart', 'cart', r.sty
FROM r JOIN reco.notification_candidates c ON c.rec_id = r.rec_id;

SELECT count(reco.record_event(r.cust, NULL, e.kind, occurred_at => r.at + e.after,
                               context => jsonb_build_object('rec_id', r.rec_id) || e.ctx))
FROM r JOIN (VALUES
    (1, 'email_delivered', interval '1 minute', '{}'::jsonb), (1, 'email_open', '2 hours', '{}'), (1, 'email_click', '1 hour', '{}'),
    (2, 'email_delivered', '1 minute', '{}'), (2, 'email_open', '1 minute', '{"machine_open": true}'),
    (3, 'email_bounce', '1 minute', '{}'),
    (5, 'email_delivered', '1 minute', '{}'), (5, 'email_click', '3 hours', '{}'), (5, 'unsubscribe', '4 hours', '{}'),
    (6, 'email_open', '5 minutes', '{"channel": "push"}'),
    (7, 'email_delivered', '1 minute', '{}'), (7, 'email_click', '1 hour', '{}'),
    -- an event before the message went out is not its own
    (4, 'email_open', '-1 hour', '{}')) e(n, kind, after, ctx) USING (n);
-- an event of another customer carrying k4's rec_id is not k4's
SELECT count(reco.record_event('k2', NULL, 'email_click', occurred_at => '2026-03-02 10:00+00', context => jsonb_build_object('rec_id', rec_id)))
FROM r WHERE n = 4;

-- orders: k1 two hours after the first click (EUR 50.00), then a day after the second click
-- (JPY 1500: goes to the second, last click), then 20 days later (outside the window); k5's
-- cancelled order counts for nothing
INSERT INTO reco.orders (order_id, channel, external_id, customer_id, placed_at, currency, subtotal_minor, total_minor, status, canonical_hash) VALUES
    ('web:1', 'web', '1', 'k1', '2026-03-02 12:00+00', 'EUR', 5000, 5000, 'paid', 1),
    ('web:2', 'web', '2', 'k1', '2026-03-04 09:00+00', 'JPY', 1500, 1500, 'paid', 2),
    ('web:3', 'web', '3', 'k1', '2026-03-24 09:00+00', 'EUR', 900, 900, 'paid', 3),
    ('web:4', 'web', '4', 'k5', '2026-03-02 13:00+00', 'EUR', 7000, 7000, 'cancelled', 4);

SELECT * FROM reco.notification_kpis_for('2026-03-01', '2026-04-01');
-- a one-hour window: k1's orders came later than that after their clicks
SELECT day, style, channel, converted, orders, revenue FROM reco.notification_kpis_for('2026-03-01', '2026-04-01', '1 hour') WHERE converted > 0 OR channel = 'email';
-- the view: the last 90 days with the default window
SELECT (SELECT count(*) FROM reco.notification_kpis) = (SELECT count(*) FROM reco.notification_kpis_for()) AS view_is_the_default;
-- targets are editable
UPDATE reco.notification_kpi_targets SET target = 0.3 WHERE metric = 'open_rate';
SELECT DISTINCT open_rate_target FROM reco.notification_kpis_for('2026-03-01', '2026-04-01');
SELECT try($$UPDATE reco.notification_kpi_targets SET target = 2 WHERE metric = 'open_rate'$$);

-- bad arguments
SELECT try($$SELECT * FROM reco.notification_kpis_for('2026-04-01', '2026-03-01')$$);
SELECT try($$SELECT * FROM reco.notification_kpis_for('2026-03-01', 'infinity')$$);
SELECT try($$SELECT * FROM reco.notification_kpis_for(NULL, '2026-03-01')$$);
SELECT try($$SELECT * FROM reco.notification_kpis_for('2026-03-01', '2026-04-01', '-1 day')$$);

-- roles: readers (dashboards) read the KPIs; only admins change the targets
SET ROLE reco_reader;
SELECT count(*) AS reader_rows FROM reco.notification_kpis_for('2026-03-01', '2026-04-01');
SELECT try($$UPDATE reco.notification_kpi_targets SET target = 0.2$$);
RESET ROLE;
SET ROLE reco_admin;
UPDATE reco.notification_kpi_targets SET target = 0.25 WHERE metric = 'open_rate';
RESET ROLE;

-- leave no customers behind for the tests that follow
TRUNCATE reco.recommendations, reco.triggers CASCADE;
