-- How many reasons that name an item ("because you bought X", "goes with X in your cart",
-- "bought together with X", "often viewed with X", "similar to X") name one of the pick's own
-- category or of a category bought together with it (a cross-category pair of the deployed
-- model's basket neighbours). Every customer with a history, at three pinned hours of the
-- data's last day. psql -v customers=N (0 = all).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE TEMP TABLE pairs AS
  SELECT DISTINCT a.category AS a, b.category AS b
    FROM reco.item_neighbors n JOIN reco.items a ON a.item_id = n.item_id JOIN reco.items b ON b.item_id = n.neighbor_id
   WHERE n.model_id = (SELECT model_id FROM reco.models WHERE status = 'deployed') AND n.source = 'basket';
CREATE TEMP TABLE titles AS SELECT title, min(category) AS category FROM reco.items GROUP BY title HAVING count(DISTINCT category) = 1;
CREATE TEMP TABLE served AS
  SELECT c.customer_id, h, x.item_id, x.reason
    FROM (SELECT DISTINCT customer_id FROM reco.events WHERE customer_id IS NOT NULL ORDER BY 1
          LIMIT nullif(:customers, 0)) c,
         unnest(ARRAY[3, 11, 19]) h,
         LATERAL reco.recommend(c.customer_id, 10,
                                jsonb_build_object('now', date_trunc('day', (SELECT max(occurred_at) FROM reco.events)) + make_interval(hours => h))) x;
CREATE TEMP TABLE named AS
  SELECT s.*, i.category AS pick,
         substring(s.reason FROM '^(?:because you viewed |because you bought |because you added |because you rated |goes with |bought together with |often viewed with |similar to )(.*?)(?: to your cart| highly| in your cart)?$') AS title
    FROM served s JOIN reco.items i USING (item_id);
SELECT count(DISTINCT customer_id) AS customers, count(*) AS rows,
       count(*) FILTER (WHERE n.title IS NOT NULL) AS naming_an_item,
       count(*) FILTER (WHERE n.title IS NOT NULL AND (t.category = n.pick OR EXISTS (SELECT 1 FROM pairs p WHERE (p.a, p.b) IN ((t.category, n.pick), (n.pick, t.category))))) AS related,
       round(100.0 * count(*) FILTER (WHERE n.title IS NOT NULL AND (t.category = n.pick OR EXISTS (SELECT 1 FROM pairs p WHERE (p.a, p.b) IN ((t.category, n.pick), (n.pick, t.category)))))
             / nullif(count(*) FILTER (WHERE n.title IS NOT NULL), 0), 2) AS related_pct
  FROM named n LEFT JOIN titles t USING (title);
SELECT n.reason, n.pick, t.category AS named_category, count(*)
  FROM named n LEFT JOIN titles t USING (title)
 WHERE n.title IS NOT NULL AND NOT (t.category IS NOT DISTINCT FROM n.pick OR EXISTS (SELECT 1 FROM pairs p WHERE (p.a, p.b) IN ((t.category, n.pick), (n.pick, t.category))))
 GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 10;
