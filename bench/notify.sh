#!/usr/bin/env bash
# Notifications at SCALE (default medium: 100 000 customers): triggers over a day of events,
# rendering beside the same template rendered outside the database, and the pgmq queue with 4
# workers. Release build, project cluster.
#   bench/notify.sh [SCALE=medium]
# Builds its own database each run (the demo data with a deployed hybrid, about 90 s at medium),
# so it measures the SQL just installed: an existing database keeps the functions it was created
# with until ALTER EXTENSION. Then it plants a day of behaviour after the data's last day: 10 000 customers browse (3 views in a
# session, 30-200 s each: some add up to a long view), 5 000 leave 1-3 items in the cart, every
# customer opted in. Then:
#   triggers   reco.run_triggers() over that day (abandoned cart: complements; the cart itself;
#              long view: alternatives and complements): seconds and candidates per second
#   render     reco.render() of every candidate, one backend (one core), then reco.render_batch()
#              of them all: emails per second, beside engine/examples/render_bench.rs with the
#              same template outside
#   enqueue    reco.send_due(): candidates checked (bought since, stock, consent, caps) and
#              queued per second
#   dequeue    4 pgbench clients reading 10 messages at a time and archiving them in one call:
#              messages/s; end to end (enqueue + dequeue); the same reading 50 at a time (the
#              worker loop docs/reference.md shows); again (10 a read) archiving each message in
#              its own call; and with workers that render each message, and with workers that
#              render a read's messages in one reco.render_batch call
#   shards     two senders at once (send_due's shards 0 and 1 of 2), then the 4 workers (50 a read)
#   pipeline   the sender (send_due, 1 000 a call) and the 4 workers at the same time, as in a
#              shop (tests/integration/src/bin/notify_pipeline.rs): 10 and 50 a read, two
#              senders with 50 a read, and 50 a read with rendering; each PIPELINE_RUNS times
#              (default 5), interleaved, with each one's median and range
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-medium}
DB=reco_bench_notify_$SCALE
PGBENCH=/usr/lib/postgresql/15/bin/pgbench
PORT=${RECO_PGPORT:-28815}
OUT=target/bench-notify-$SCALE.txt
source bench/lib.sh
mkdir -p target
echo "bench/notify.sh $SCALE   ($(date -u +%FT%TZ), $(nproc) cores)" | tee $OUT
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
demo_db $DB "$SCALE" | tee -a $OUT
now_s() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / (b - a) }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

"${PSQL[@]}" -d $DB -v tpl="$(cat bench/notify_template.json)" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgmq;
SELECT count(*) FROM reco.setup_queues() \g /dev/null
SELECT pgmq.purge_queue('reco_email') \g /dev/null
DELETE FROM reco.triggers;
DELETE FROM reco.email_templates;
DELETE FROM reco.events WHERE context ? 'bench_notify';
DELETE FROM reco.recommendations WHERE context ? 'trigger';
UPDATE reco.notification_channels SET quiet_start = 0, quiet_end = 0;
UPDATE reco.customers SET email_opt_in = true WHERE NOT email_opt_in;
-- (what autovacuum does after a bulk update, before the figures)
VACUUM ANALYZE reco.customers, reco.consents, reco.consent_log;
INSERT INTO reco.email_templates (name, subject, html_body, text_body)
SELECT 'bench', t->>'subject', t->>'html', t->>'text' FROM (SELECT :'tpl'::jsonb AS t) x;
INSERT INTO reco.triggers (name, kind, template, params, items, priority) VALUES
  ('cart_related', 'abandoned_cart', 'bench', '{"wait_hours": 4, "lookback_hours": 30}', 4, 10),
  ('cart_itself', 'abandoned_cart', 'bench', '{"wait_hours": 4, "show": "cart", "lookback_hours": 30}', 4, 20),
  ('long_look', 'long_view', 'bench', '{"min_seconds": 180, "wait_minutes": 30, "lookback_hours": 30}', 4, 30);
-- a day of behaviour after the data's last day
CREATE TEMP TABLE day AS SELECT date_trunc('day', max(occurred_at)) + interval '1 day' AS d FROM reco.events;
CREATE TEMP TABLE buyable AS SELECT s.item_id, row_number() OVER (ORDER BY s.item_id) AS n FROM reco.stock s JOIN reco.items i USING (item_id)
WHERE i.active AND s.available > 0 AND NOT s.backordered;
CREATE TEMP TABLE who AS SELECT customer_id, row_number() OVER (ORDER BY customer_id) AS n FROM reco.customers WHERE customer_id LIKE 'demo-c%';
SELECT setseed(0.42);
INSERT INTO reco.events (customer_id, session_id, item_id, kind, value, channel, occurred_at, context)
SELECT w.customer_id, 'bench-s' || w.n, b.item_id, 'view', 30 + floor(random() * 170), 'web',
       (SELECT d FROM day) + make_interval(secs => floor(random() * 72000)::int + v * 60), '{"bench_notify": true}'
FROM who w CROSS JOIN generate_series(1, 3) v
JOIN buyable b ON b.n = 1 + (w.n * 7 + v * 13) % (SELECT count(*) FROM buyable)
WHERE w.n % 10 = 0;
INSERT INTO reco.events (customer_id, session_id, item_id, kind, value, channel, occurred_at, context)
SELECT w.customer_id, 'bench-c' || w.n, b.item_id, 'cart_add', 1, 'web',
       (SELECT d FROM day) + make_interval(secs => floor(random() * 64800)::int + v), '{"bench_notify": true}'
FROM who w CROSS JOIN generate_series(1, 3) v
JOIN buyable b ON b.n = 1 + (w.n * 11 + v * 17) % (SELECT count(*) FROM buyable)
WHERE w.n % 20 = 1 AND v <= 1 + w.n % 3;
ANALYZE reco.events;
SELECT count(*) FILTER (WHERE kind = 'view') AS views, count(*) FILTER (WHERE kind = 'cart_add') AS cart_adds
FROM reco.events WHERE context ? 'bench_notify';
SQL
D=$("${PSQL[@]}" -d $DB -At -c "SELECT date_trunc('day', max(occurred_at)) FROM reco.events WHERE NOT context ? 'bench_notify'")
# the planted day ends a day after the data's last day; the run is at its end
RUN_AT=$("${PSQL[@]}" -d $DB -At -c "SELECT ('$D'::timestamptz + interval '1 day 23 hours 59 minutes')")

# triggers
t0=$(now_s)
"${PSQL[@]}" -d $DB -At -c "SET client_min_messages = warning; SELECT trigger_name || ' ' || candidates FROM reco.run_triggers(now => '$RUN_AT')" | tee -a $OUT
t1=$(now_s)
N=$("${PSQL[@]}" -d $DB -At -c "SELECT count(*) FROM reco.notification_candidates WHERE status = 'pending'")
echo "triggers: a day of $SCALE events in $(secs $t0 $t1) s, $N candidates = $(rate $N $t0 $t1) candidates/s" | tee -a $OUT
# what the triggers left, so that bench/send_due.sh can queue the same candidates again
"${PSQL[@]}" -d $DB -At -c "SET client_min_messages = warning; DROP TABLE IF EXISTS public.bench_due, public.bench_run_at; CREATE TABLE public.bench_due AS SELECT candidate_id, send_at FROM reco.notification_candidates WHERE status = 'pending'; SELECT '$RUN_AT' AS run_at INTO public.bench_run_at" >/dev/null

# render, in the database (one backend) and outside it (one thread), same template
t0=$(now_s)
R=$("${PSQL[@]}" -d $DB -At -c "SELECT count(*) FROM reco.notification_candidates c, reco.render(c.candidate_id, now => '$RUN_AT') r
                                 WHERE c.status = 'pending' AND r.dropped_reason IS NULL")
t1=$(now_s)
echo "render: $R emails in $(secs $t0 $t1) s = $(rate $R $t0 $t1) emails/s in one backend (live price and stock read per email)" | tee -a $OUT
# the same candidates through reco.render_batch (a statement reads 256 of them)
t0=$(now_s)
R=$("${PSQL[@]}" -d $DB -At -c "SELECT count(*) FROM reco.render_batch(ARRAY(SELECT candidate_id FROM reco.notification_candidates WHERE status = 'pending' ORDER BY candidate_id), now => '$RUN_AT') r
                                 WHERE r.dropped_reason IS NULL")
t1=$(now_s)
echo "render_batch: $R emails in $(secs $t0 $t1) s = $(rate $R $t0 $t1) emails/s in one backend (live price and stock read per email)" | tee -a $OUT
cargo run -q --release -p reco-engine --example render_bench -- bench/notify_template.json 200000 | tee -a $OUT

# enqueue: every due candidate checked and queued (one e-mail a day per customer: the rest wait)
te0=$(now_s)
"${PSQL[@]}" -d $DB -At -c "SELECT outcome || ' ' || count(*) FROM reco.send_due(now => '$RUN_AT', max_messages => 1000000) GROUP BY outcome ORDER BY 1" | tee -a $OUT
te1=$(now_s)
Q=$("${PSQL[@]}" -d $DB -At -c "SELECT count(*) FROM pgmq.q_reco_email")
echo "enqueue: $N candidates checked, $Q queued in $(secs $te0 $te1) s = $(rate $N $te0 $te1) candidates/s, $(rate $Q $te0 $te1) messages/s" | tee -a $OUT

# dequeue: 4 workers (pgbench clients) running SQL file $1, which takes up to $3 messages a
# transaction (default 10), until the Q queued messages are taken; sets t0, t1 and DONE,
# prints "$2: ..."
W=$(mktemp -d)
chmod a+rx $W
drain() {
  local read=${3:-10}
  chmod a+r "$1"
  t0=$(now_s)
  $PGBENCH -h 127.0.0.1 -p $PORT -U postgres -n -c 4 -j 4 -t $(( (Q + 4 * read - 1) / (4 * read) )) -f "$1" $DB > $W/pgbench.log 2>&1
  t1=$(now_s)
  local left
  left=$("${PSQL[@]}" -d $DB -At -c "SELECT count(*) FROM pgmq.q_reco_email")
  DONE=$(( Q - left ))
  echo "$2: 4 workers took $DONE messages in $(secs $t0 $t1) s = $(rate $DONE $t0 $t1) messages/s ($left left)" | tee -a $OUT
}
end_to_end() {
  echo "$1: $DONE messages queued and taken in $(awk -v a=$te0 -v b=$te1 -v c=$t0 -v d=$t1 'BEGIN { printf "%.2f", (b - a) + (d - c) }') s = $(awk -v n=$DONE -v a=$te0 -v b=$te1 -v c=$t0 -v d=$t1 'BEGIN { printf "%.0f", n / ((b - a) + (d - c)) }') messages/s" | tee -a $OUT
}
# the same messages again (from the archive, which is emptied) for each other worker loop
requeue() {
  "${PSQL[@]}" -d $DB -At -c "SELECT count(*) FROM pgmq.send_batch('reco_email', ARRAY(SELECT message FROM pgmq.a_reco_email ORDER BY msg_id))" -c "TRUNCATE pgmq.a_reco_email" >/dev/null
}
# workers reading 10, delivering, archiving the delivered ones in one call
echo "SELECT count(*) FROM pgmq.archive('reco_email', ARRAY(SELECT msg_id FROM pgmq.read('reco_email', 30, 10)));" > $W/dequeue10.sql
drain $W/dequeue10.sql "dequeue, 10 a read"
end_to_end "end to end, 10 a read"
# the worker loop docs/reference.md shows: the same, reading 50 (pgmq's read and archive plan
# their SQL on each call, so a call's cost is mostly fixed)
requeue
echo "SELECT count(*) FROM pgmq.archive('reco_email', ARRAY(SELECT msg_id FROM pgmq.read('reco_email', 30, 50)));" > $W/dequeue.sql
drain $W/dequeue.sql "dequeue, 50 a read" 50
end_to_end "end to end, 50 a read"
# a call to archive per message
requeue
echo "SELECT count(pgmq.archive('reco_email', msg_id)) FROM pgmq.read('reco_email', 30, 10);" > $W/dequeue1.sql
drain $W/dequeue1.sql "dequeue, archiving each message in its own call"
# workers that render each message before archiving it
requeue
# (one statement per transaction, archiving per message as before: the same statement with the
# array form inside ARRAY(...) took 7.9 s against 2.6-2.9 s, not yet explained)
echo "SELECT count(pgmq.archive('reco_email', m.msg_id)) FROM pgmq.read('reco_email', 30, 10) m, reco.render((m.message->>'candidate_id')::int8, now => '$RUN_AT') r WHERE r.dropped_reason IS NULL;" > $W/render.sql
drain $W/render.sql "dequeue and render, a render per message"
# workers that render a read's messages in one call (reco.render_batch), then archive them in
# one: 10 and 50 a read
for read in 10 50; do
requeue
cat > $W/render_batch.sql <<SQL
WITH m AS MATERIALIZED (SELECT msg_id, message FROM pgmq.read('reco_email', 30, $read)),
     r AS MATERIALIZED (SELECT count(*) AS rendered FROM reco.render_batch(ARRAY(SELECT (message->>'candidate_id')::int8 FROM m ORDER BY msg_id), now => '$RUN_AT')
                        WHERE dropped_reason IS NULL)
SELECT (SELECT rendered FROM r), (SELECT count(*) FROM pgmq.archive('reco_email', ARRAY(SELECT msg_id FROM m)));
SQL
drain $W/render_batch.sql "dequeue and render, a read's $read messages in one call" $read
done
# the queue as a shop with two cores runs it: two senders at once, each for its half of the
# customers (send_due's shard 0 and 1 of 2), then the 4 workers; from the triggers' state again
reset_due $DB
te0=$(now_s)
for shard in 0 1; do
  "${PSQL[@]}" -d $DB -At -c "SELECT count(*) FROM reco.send_due(now => '$RUN_AT', max_messages => 1000000, shard => $shard, shards => 2)" > /dev/null &
done
wait
te1=$(now_s)
Q2=$("${PSQL[@]}" -d $DB -At -c "SELECT count(*) FROM pgmq.q_reco_email")
echo "enqueue, two senders at once (shards 0 and 1 of 2): $N candidates checked, $Q2 queued in $(secs $te0 $te1) s = $(rate $Q2 $te0 $te1) messages/s" | tee -a $OUT
drain $W/dequeue.sql "dequeue after two senders, 50 a read" 50
end_to_end "end to end, two senders, 50 a read"
rm -rf $W
# the same queue as it runs in a shop: the sender (send_due, its default 1 000 a call, each call
# committed) and the 4 workers at the same time, from the triggers' state again
# (tests/integration/src/bin/notify_pipeline.rs)
# Each shape runs PIPELINE_RUNS times (default 5), the shapes interleaved, so that this
# machine's drift (±20% between minutes) falls on all of them alike; then each shape's median
# and range.
cargo build -q --release -p pg_reco_integration --bin notify_pipeline
SHAPES=("1 10 0" "1 50 0" "2 50 0" "1 50 1")
declare -A RATES
for round in $(seq 1 "${PIPELINE_RUNS:-5}"); do
  for shape in "${SHAPES[@]}"; do
    read -r senders read render <<< "$shape"
    reset_due $DB
    line=$(SENDERS=$senders READ=$read RENDER=$render RECO_TEST_DSN="$(scripts/cluster url)" target/release/notify_pipeline $DB "$RUN_AT")
    echo "round $round, $line" | tee -a $OUT
    RATES[$shape]+="$(awk '{ print $(NF-1) }' <<< "$line") "
  done
done
for shape in "${SHAPES[@]}"; do
  read -r senders read render <<< "$shape"
  echo "pipeline, $senders sender(s), $read a read$([ "$render" = 1 ] && echo ", workers rendering"): messages/s over ${PIPELINE_RUNS:-5} runs: $(tr ' ' '\n' <<< "${RATES[$shape]}" | grep . | sort -n | awk '{ v[NR] = $1 } END { printf "median %d, min %d, max %d", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR] }')" | tee -a $OUT
done
echo "figures in $OUT"
