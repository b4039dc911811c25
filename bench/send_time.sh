#!/usr/bin/env bash
# Send-time choice on the demo data with planted habits (issue #17), through the served function:
# the share of each customer's next e-mail open that lands within ±1 hour (time of day, in the
# customer's zone) of the slot reco.best_send_time() chooses, beside the population's best hour
# and a fixed 10:00.
#   bench/send_time.sh [SCALE=medium] [CUSTOMERS=2000] [SEED=0.7]
# Release build, project cluster. The database (reco_bench_sendtime_SCALE: the demo data with a
# deployed hybrid) is built once and kept; each run replaces the planted engagement.
# What is planted, seeded, for CUSTOMERS demo customers, each given one of eight IANA zones:
# - a habit: the hour they read e-mail, 08:00 (30%), 12:00 (20%) or 20:00 (50%) local time;
# - 8 weeks of history before the day measured: 1 to 3 opens a week at the habit hour (a normal
#   spread of 40 minutes), a click after a third of them, one open a week at a random hour, and
#   one machine open a week at 12:00 UTC (a mail client fetching images, flagged
#   "machine_open": true: the profile must leave it out);
# - the next open, on the day measured, at the habit hour with the same spread.
# The strategies, for a message due at the day's 00:00 UTC (within 24 hours, no quiet hours):
#   served      reco.best_send_time(customer, that time) with its default exploration (0.1)
#   no explore  the same with explore => 0
#   population  the hour of day (local) most of the planted opens fall in, for everybody
#   fixed       10:00 local
# (each as the start of its hour, as best_send_time's slots are)
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-medium}
N=${2:-2000}
SEED=${3:-0.7}
DB=reco_bench_sendtime_$SCALE
OUT=target/bench-send-time-$SCALE.txt
source bench/lib.sh
mkdir -p target
echo "bench/send_time.sh $SCALE $N $SEED   ($(date -u +%FT%TZ), $(nproc) cores)" | tee $OUT
demo_db $DB "$SCALE" | tee -a $OUT
"${PSQL[@]}" -d $DB -v n="$N" -v seed="$SEED" <<'SQL' | tee -a $OUT
SET client_min_messages = warning;
DELETE FROM reco.events WHERE context ? 'bench_send_time';
UPDATE reco.notification_channels SET quiet_start = 0, quiet_end = 0 WHERE channel = 'email';
SELECT setseed(:seed);
-- the measured day: the day after the data's last
CREATE TEMP TABLE d AS SELECT date_trunc('day', max(occurred_at)) + interval '1 day' AS day FROM reco.events;
CREATE TEMP TABLE who AS
SELECT c.customer_id, (ARRAY['UTC', 'Europe/Berlin', 'Europe/London', 'America/New_York', 'America/Los_Angeles',
                             'Asia/Tokyo', 'Asia/Kolkata', 'Australia/Sydney'])[1 + (row_number() OVER (ORDER BY c.customer_id)) % 8] AS tz,
       (SELECT CASE WHEN r < 0.3 THEN 8 WHEN r < 0.5 THEN 12 ELSE 20 END FROM (SELECT random() + 0 * length(c.customer_id) AS r) x) AS habit
FROM (SELECT customer_id FROM reco.customers WHERE customer_id LIKE 'demo-c%' ORDER BY hashtext(customer_id), customer_id LIMIT :n) c;
UPDATE reco.customers cu SET timezone = w.tz FROM who w WHERE cu.customer_id = w.customer_id;
-- a local time on day k before the measured day, at hour h with a normal spread of 40 minutes
-- (Box-Muller), as timestamptz
CREATE FUNCTION pg_temp.at(tz text, k int, h float8, spread boolean) RETURNS timestamptz LANGUAGE sql VOLATILE AS $$
  SELECT (((SELECT day FROM d)::timestamp - make_interval(days => k))
          + make_interval(secs => 3600 * (h + CASE WHEN spread THEN (2.0 / 3) * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) ELSE 0 END)))
         AT TIME ZONE tz $$;
CREATE TEMP TABLE planted AS
-- habit opens: 1 to 3 a week over 8 weeks
SELECT w.customer_id, pg_temp.at(w.tz, 1 + floor(random() * 56)::int, w.habit, true) AS t, 'email_open' AS kind, false AS machine
FROM who w, generate_series(1, 8) wk, LATERAL generate_series(1, 1 + floor(random() * 3 + 0 * wk)::int) j
UNION ALL
-- one open a week at a random hour
SELECT w.customer_id, pg_temp.at(w.tz, 7 * wk - floor(random() * 7)::int, floor(random() * 24), false), 'email_open', false
FROM who w, generate_series(1, 8) wk
UNION ALL
-- one machine open a week at 12:00 UTC
SELECT w.customer_id, (SELECT day FROM d) - make_interval(days => 7 * wk - floor(random() * 7)::int) + interval '12 hours', 'email_open', true
FROM who w, generate_series(1, 8) wk;
-- a click two minutes after a third of the habit and random opens
INSERT INTO planted SELECT customer_id, t + interval '2 minutes', 'email_click', false FROM planted WHERE NOT machine AND random() < 1.0 / 3;
INSERT INTO reco.events (customer_id, item_id, kind, value, channel, occurred_at, context)
SELECT customer_id, NULL, kind, 1, 'email', t, jsonb_build_object('bench_send_time', true) || CASE WHEN machine THEN '{"machine_open": true}'::jsonb ELSE '{}'::jsonb END
FROM planted;
-- the next open, on the measured day (local), not stored
CREATE TEMP TABLE next_open AS SELECT w.customer_id, w.tz, w.habit, pg_temp.at(w.tz, 0, w.habit, true) AS t FROM who w;
ANALYZE reco.events;
-- time of day in the customer's zone, in hours; within ±1 hour of another, around midnight too
CREATE FUNCTION pg_temp.tod(t timestamptz, tz text) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
  SELECT extract(epoch FROM (t AT TIME ZONE tz)::time) / 3600 $$;
CREATE FUNCTION pg_temp.near(a float8, b float8) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT least(abs(a - b), 24 - abs(a - b)) <= 1 $$;
CREATE TEMP TABLE population AS
SELECT floor(pg_temp.tod(p.t, w.tz)) AS hour FROM planted p JOIN who w USING (customer_id)
WHERE NOT p.machine AND p.kind = 'email_open' GROUP BY 1 ORDER BY count(*) DESC LIMIT 1;
\timing on
CREATE TEMP TABLE chosen AS
SELECT o.customer_id, o.tz, o.habit, o.t AS next_open,
       reco.best_send_time(o.customer_id, (SELECT day FROM d)) AS served,
       reco.best_send_time(o.customer_id, (SELECT day FROM d), explore => 0) AS no_explore
FROM next_open o;
\timing off
SELECT count(*) AS customers,
       (SELECT count(*) FROM planted) AS planted_events,
       (SELECT hour FROM population) AS population_hour,
       round(avg(pg_temp.near(pg_temp.tod(served, tz), pg_temp.tod(next_open, tz))::int), 3) AS served,
       round(avg(pg_temp.near(pg_temp.tod(no_explore, tz), pg_temp.tod(next_open, tz))::int), 3) AS no_explore,
       round(avg(pg_temp.near((SELECT hour FROM population), pg_temp.tod(next_open, tz))::int), 3) AS population,
       round(avg(pg_temp.near(10, pg_temp.tod(next_open, tz))::int), 3) AS fixed_10
FROM chosen;
-- the machine opens at 12:00 UTC are left out: no slot lands there but for a customer whose
-- habit is that hour
SELECT count(*) FILTER (WHERE floor(pg_temp.tod(no_explore, 'UTC')) = 12 AND NOT pg_temp.near(pg_temp.tod(no_explore, tz), habit))
       AS slots_at_the_machine_hour
FROM chosen;
-- how the slots sit: the chosen time of day against the habit
SELECT habit, count(*) AS customers, round(avg(pg_temp.tod(no_explore, tz))::numeric, 2) AS mean_slot_no_explore
FROM chosen GROUP BY 1 ORDER BY 1;
SQL
echo "command: bench/send_time.sh $SCALE $N $SEED" | tee -a $OUT
