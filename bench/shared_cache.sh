#!/usr/bin/env bash
# The serving model's memory with N connections, one copy per backend (reco.shared_cache = off)
# beside one copy per server (on, with pg_reco preloaded), in one run:
#   bench/shared_cache.sh [SCALE] [CLIENTS...]      default: medium 1 8 32
#   RECO_BENCH_MODES="on" bench/shared_cache.sh ...  one mode only (default "off on"; at large a
#                                                    copy per backend is about 0.9 GB, so 32 of
#                                                    them do not fit a 24 GB machine)
# For each mode and N: N new connections each serve one recommendation, then stay open; the
# script sums their RSS and PSS (/proc/PID/smaps_rollup; PSS splits each shared page among the
# processes that map it, so a shared model counts once in the sum) and subtracts N idle
# backends' (connections that ran SELECT 1). It also times a new connection's first call:
# alone (nothing loaded), and when another backend has already loaded the model.
# Needs `make install-release` and a cluster started by scripts/cluster (it preloads pg_reco).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
SCALE=${1:-medium}
shift || true
CLIENTS=("${@:-1 8 32}")
read -ra CLIENTS <<<"${CLIENTS[*]}"
DB=reco_bench_serve_$SCALE  # the database bench/recommend.sh serves from
demo_db "$DB" "$SCALE"
OUT=target/bench-shared-cache-$SCALE.txt
: >"$OUT"
"${PSQL[@]}" -d "$DB" -At -c "SHOW shared_preload_libraries" | grep -q pg_reco || { echo "pg_reco is not preloaded: restart with scripts/cluster restart" >&2; exit 1; }
CUSTOMER=$("${PSQL[@]}" -d "$DB" -At -c "SELECT customer_id FROM reco.customers ORDER BY customer_id LIMIT 1")

# kB of RSS and PSS summed over the backends whose application_name is $1
mem() {
  local pids
  pids=$("${PSQL[@]}" -d "$DB" -At -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$1'")
  local rss=0 pss=0 r p
  for pid in $pids; do
    r=$(awk '/^Rss:/ {print $2}' "/proc/$pid/smaps_rollup")
    p=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")
    rss=$((rss + r)); pss=$((pss + p))
  done
  echo "$rss $pss $(wc -w <<<"$pids")"
}

# holds N connections named $1 open after each ran $2; waits until all have run it
hold() {
  local name=$1 sql=$2 n=$3 opts=$4
  for _ in $(seq "$n"); do
    PGOPTIONS="$opts" PGAPPNAME="$name" "${PSQL[@]}" -d "$DB" -At -c "$sql" -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
  done
  for _ in $(seq 600); do
    local done_
    done_=$("${PSQL[@]}" -d "$DB" -At -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$name' AND query LIKE 'SELECT pg_sleep%'")
    [[ $done_ -ge $n ]] && return
    sleep 0.5
  done
  echo "timed out waiting for $name" >&2; exit 1
}

release() {
  "${PSQL[@]}" -d "$DB" -At -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE 'bench_sc_%'" >/dev/null
  wait 2>/dev/null || true
}
trap release EXIT

# first-call time (ms) of a new connection with options $1
first_call() {
  PGOPTIONS="$1" "${PSQL[@]}" -d "$DB" -At <<SQL | grep -o 'Time: [0-9.]*' | awk '{print $2}'
\timing on
SELECT count(*) FROM reco.recommend('$CUSTOMER', 10);
SQL
}

printf '%-8s %4s %12s %12s %12s %12s %14s\n' mode N "RSS MB" "PSS MB" "model RSS" "model PSS" "PSS/backend" | tee -a "$OUT"
for mode in ${RECO_BENCH_MODES:-off on}; do
  opts="-c reco.shared_cache=$mode"
  for n in "${CLIENTS[@]}"; do
    # a fresh registry: another model deployed and back would do too; a restart is simplest
    scripts/cluster restart >/dev/null
    hold bench_sc_idle "SELECT 1" "$n" "$opts"
    read -r irss ipss _ < <(mem bench_sc_idle)
    hold bench_sc_serve "SELECT count(*) FROM reco.recommend('$CUSTOMER', 10)" "$n" "$opts"
    read -r rss pss cnt < <(mem bench_sc_serve)
    printf '%-8s %4d %12.1f %12.1f %12.1f %12.1f %14.1f\n' "$mode" "$cnt" "$(bc -l <<<"$rss/1024")" "$(bc -l <<<"$pss/1024")" \
      "$(bc -l <<<"($rss-$irss)/1024")" "$(bc -l <<<"($pss-$ipss)/1024")" "$(bc -l <<<"($pss-$ipss)/1024/$cnt")" | tee -a "$OUT"
    release
  done
done
# first calls: nothing loaded yet, then with the model already loaded by another backend
for mode in ${RECO_BENCH_MODES:-off on}; do
  scripts/cluster restart >/dev/null
  opts="-c reco.shared_cache=$mode"
  t1=$(first_call "$opts")
  t2=$(first_call "$opts")
  t3=$(first_call "$opts")
  echo "first call, $mode: nothing loaded ${t1} ms; loaded by another backend ${t2} ms, ${t3} ms" | tee -a "$OUT"
done
echo "written to $OUT"
