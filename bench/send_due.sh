#!/usr/bin/env bash
# reco.send_due() alone, repeated from the same state: the candidates bench/notify.sh's triggers
# left (its database, reco_bench_notify_SCALE, must exist), the sends and the queue emptied, then
# VACUUM ANALYZE (what autovacuum does between a day's triggers and the next send). Each round
# prints the call's wall time and, with EXPLAIN=1, its main statement's plan (auto_explain,
# nested statements, timing per node).
#   bench/send_due.sh [SCALE=medium] [ROUNDS=3]
# Release build, project cluster; install the SQL under test with ALTER EXTENSION or rerun
# bench/notify.sh (its database keeps the functions it was created with).
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-medium}
ROUNDS=${2:-3}
DB=reco_bench_notify_$SCALE
source bench/lib.sh
now_s() { date +%s.%N; }
RUN_AT=$("${PSQL[@]}" -d $DB -At -c "SELECT run_at FROM public.bench_run_at")
N=$("${PSQL[@]}" -d $DB -At -c "SELECT count(*) FROM public.bench_due")
for r in $(seq 1 "$ROUNDS"); do
  reset_due $DB
  PRE=""
  if [ "${EXPLAIN:-0}" = 1 ]; then
    PRE="LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; SET auto_explain.log_analyze = on; SET auto_explain.log_format = text; SET client_min_messages = log; SET auto_explain.log_level = notice;"
  fi
  t0=$(now_s)
  "${PSQL[@]}" -d $DB -At -c "$PRE SELECT outcome || ' ' || count(*) FROM reco.send_due(now => '$RUN_AT', max_messages => 1000000) GROUP BY outcome ORDER BY 1" > /tmp/send_due.$$.out 2>&1
  t1=$(now_s)
  Q=$("${PSQL[@]}" -d $DB -At -c "SELECT count(*) FROM pgmq.q_reco_email")
  echo "round $r: $N candidates checked, $Q queued in $(awk -v a=$t0 -v b=$t1 'BEGIN { printf "%.2f", b - a }') s = $(awk -v n=$Q -v a=$t0 -v b=$t1 'BEGIN { printf "%.0f", n / (b - a) }') messages/s"
  if [ "${EXPLAIN:-0}" = 1 ]; then cat /tmp/send_due.$$.out; fi
done
rm -f /tmp/send_due.$$.out
