#!/usr/bin/env bash
# A training's phases, from its progress NOTICEs: each kind trained once with "tune": false in
# DB (default reco_bench_train, which bench/train.sh builds), with the seconds at which each
# phase started and the holdout figures. Run it with one build installed, then another, in one
# sitting, to compare them (docs/benchmarks.md, "The evaluations, faster").
#   bench/train_phases.sh [DB] [KINDS]      (default: reco_bench_train "als hybrid")
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${1:-reco_bench_train}
KINDS=${2:-als hybrid}
PSQL=(psql -X -q -h 127.0.0.1 -p "${RECO_PGPORT:-28815}" -U postgres -d "$DB")
mkdir -p target
for kind in $KINDS; do
  log=target/bench-train-phases-$kind.log
  "${PSQL[@]}" -At -c "SET reco.training_threads = 2" -c "SET client_min_messages = notice" \
    -c "SELECT reco.train('$kind', '{\"tune\": false}')" 2> "$log" >/dev/null
  echo "== $kind (each phase: the second it started at)"
  grep -vE "iteration [0-9]+/|read [0-9]+00000 events" "$log" | sed -E 's/^NOTICE: +train [a-z]+ model [0-9]+: /  /'
done
echo "command: bench/train_phases.sh $DB \"$KINDS\""
