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
