# Shared by the bench scripts (source it): PSQL, and demo_db DB SCALE, which makes sure DB holds
# the demo data at SCALE with a hybrid trained and deployed (kept for reruns; built only when
# DB has no deployed model) and says how long building it took.
PSQL=(scripts/cluster psql -q -v ON_ERROR_STOP=1)

demo_db() {
  local db=$1 scale=$2 t0
  if "${PSQL[@]}" -d "$db" -At -c "SELECT 1 FROM reco.models WHERE status = 'deployed'" 2>/dev/null | grep -q 1; then
    return
  fi
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
  t0=$(date +%s)
  "${PSQL[@]}" -d "$db" -v scale="$scale" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION pg_reco CASCADE;
SELECT reco.load_demo(:'scale') - 'seconds' AS loaded;
VACUUM ANALYZE;
SELECT reco.deploy(reco.train('hybrid')) AS deployed;
SQL
  echo "loaded and trained in $(( $(date +%s) - t0 )) s"
}

# timeit LABEL SQL: runs SQL $RUNS times in database $DB, each in its own session (no warm plan
# cache), and appends "LABEL: t1 t2 ... ms; best t ms" to $OUT.
timeit() {
  local times=() t
  for _ in $(seq "$RUNS"); do
    t=$("${PSQL[@]}" -d "$DB" -At <<SQL | grep -o 'Time: [0-9.]*' | awk '{print $2}'
\timing on
$2
SQL
)
    times+=("$t")
  done
  printf '%s: %s ms; best %s ms\n' "$1" "${times[*]}" "$(printf '%s\n' "${times[@]}" | sort -n | head -1)" | tee -a "$OUT"
}

# request_tables DB MODEL: bench_buyable (the buyable items, numbered from 0) and bench_req
# (2 000 customers with a learned vector of MODEL, numbered from 1, each with a cart of three
# buyable items), made afresh: the requests of bench/recommend.sh and bench/soak.sh.
request_tables() {
  "${PSQL[@]}" -d "$1" -v m="$2" <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_req, bench_buyable;
CREATE TABLE bench_buyable AS
  SELECT row_number() OVER (ORDER BY s.item_id) - 1 AS k, s.item_id FROM reco.stock s JOIN reco.items i USING (item_id)
  WHERE s.available > 0 AND NOT s.backordered AND i.active;
CREATE UNIQUE INDEX ON bench_buyable (k);
CREATE TABLE bench_req AS
  SELECT n, customer_id,
         ARRAY(SELECT item_id FROM bench_buyable WHERE k IN ((n * 7919) % b.cnt, (n * 104729 + 1) % b.cnt, (n * 1299709 + 2) % b.cnt)) AS cart
  FROM (SELECT row_number() OVER (ORDER BY hashtext(customer_id), customer_id) AS n, customer_id
          FROM reco.customer_vectors WHERE model_id = :m AND space = 'als' ORDER BY hashtext(customer_id), customer_id LIMIT 2000) c,
       (SELECT count(*) AS cnt FROM bench_buyable) b;
CREATE UNIQUE INDEX ON bench_req (n);
ANALYZE bench_req;
SQL
}

# reset_due DB: the notification candidates back to what bench/notify.sh's triggers left
# (public.bench_due), the sends and the reco_email queue emptied, then VACUUM ANALYZE (what
# autovacuum does between a day's triggers and the next send). Used by bench/notify.sh and
# bench/send_due.sh to queue the same candidates again.
reset_due() {
  "${PSQL[@]}" -d "$1" -q <<'SQL'
SET client_min_messages = warning;
TRUNCATE reco.notification_sends;
UPDATE reco.notification_candidates n SET status = 'pending', status_reason = NULL, sent_at = NULL, send_at = b.send_at
FROM public.bench_due b WHERE n.candidate_id = b.candidate_id;
SELECT pgmq.purge_queue('reco_email') \g /dev/null
TRUNCATE pgmq.a_reco_email;
VACUUM ANALYZE reco.notification_candidates, reco.notification_sends, pgmq.q_reco_email, pgmq.a_reco_email;
SQL
}
