#!/usr/bin/env bash
# Training memory: what each reco.train kind (and reco.evaluate, reco.load_demo) really uses,
# beside what training estimated before it started (reco.training_memory_limit refuses on the
# estimate). The backend's private memory (RssAnon in /proc/PID/status: shared buffers it
# touches are not its own) is sampled every 20 ms; the figure is the peak above its level
# before the call.
#   bench/train_memory.sh [SCALE] [DB]     (default: medium reco_bench_train_memory)
#   ONLY='hybrid|evaluate' bench/train_memory.sh large reco_bench_serve_large
#                                           (only the calls whose label matches the regex ONLY;
#                                           a DB that has data is used as it is)
# Needs the release build installed (make install-release) and the project cluster running.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-medium}
DB=${2:-reco_bench_train_memory}
PSQL=(psql -X -q -h 127.0.0.1 -p "${RECO_PGPORT:-28815}" -U postgres)

# run SQL in its own backend; print "peak private MB above the start" and the estimate NOTICE
measure() {
  local label=$1 sql=$2 log=target/bench-train-memory-$DB.log
  [[ -z ${ONLY:-} || $label =~ $ONLY ]] || return 0
  local app="train_memory_$$_$RANDOM"
  PGAPPNAME=$app "${PSQL[@]}" -d "$DB" -At -c "SET client_min_messages = notice" -c "SELECT pg_sleep(0.3)" -c "$sql" >"$log.out" 2>"$log" &
  local client=$! pid="" base=0 peak=0 kb
  # the backend, found by its application_name (it sleeps 0.3 s before the call)
  while [[ -z $pid ]] && kill -0 $client 2>/dev/null; do
    pid=$("${PSQL[@]}" -d postgres -At -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$app'" 2>/dev/null || true)
    sleep 0.02
  done
  [[ -n $pid ]] && base=$(awk '/^RssAnon:/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
  while kill -0 $client 2>/dev/null; do
    kb=$(awk '/^RssAnon:/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
    ((kb > peak)) && peak=$kb
    sleep 0.02
  done
  wait $client || { echo "$label failed:"; cat "$log"; return 1; }
  local est
  est=$(grep -oE 'estimated memory [0-9.]+ [MGk]B' "$log" | head -1 | sed 's/estimated memory //' || true)
  printf '  %-44s peak %7.0f MB   estimate %s\n' "$label" "$(((peak - base) / 1024))" "${est:-—}"
}

if ! "${PSQL[@]}" -d "$DB" -Atc "SELECT 1 FROM reco.items LIMIT 1" >/dev/null 2>&1; then
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
  "${PSQL[@]}" -d "$DB" -c "CREATE EXTENSION pg_reco CASCADE"
  fresh=1
fi
echo "== $SCALE: private memory of one backend, peak above its level before the call"
if [[ ${fresh:-0} == 1 ]]; then
  measure "load_demo('$SCALE')" "SELECT reco.load_demo('$SCALE')"
fi
"${PSQL[@]}" -d "$DB" -At -c "SELECT 'data: ' || (SELECT count(*) FROM reco.events) || ' events, ' || (SELECT count(*) FROM reco.order_lines)
  || ' order lines, ' || (SELECT count(*) FROM reco.customers) || ' customers, ' || (SELECT count(*) FROM reco.items) || ' items'"
for kind in popularity cooccurrence content als hybrid; do
  measure "train('$kind', tune off)" "SELECT reco.train('$kind', '{\"tune\": false}')"
done
measure "train('hybrid') (defaults: tune auto)" "SELECT reco.train('hybrid')"
measure "evaluate()" "SELECT reco.evaluate()"
echo "command: bench/train_memory.sh $SCALE $DB"
