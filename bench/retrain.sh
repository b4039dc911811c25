#!/usr/bin/env bash
# A scheduled retrain with and without the deployed model's search (issue #19): on SCALE demo
# data, ROUNDS times, interleaved, reco.train('hybrid', '{"retune_hours": 0}') (searches the
# hyper-parameters and chooses the blend, as every training did before retune_hours), deployed,
# then reco.train('hybrid') with the defaults (reuses that search and blend). Per training: its
# seconds, the seconds its search and blend choice took (the "tuning" and "evaluation of the
# served lists" phases, from its NOTICEs), and its served and raw NDCG@10 on the holdout.
#   bench/retrain.sh [SCALE=medium] [ROUNDS=2]
# Release build, project cluster, a quiet server; uses bench/recommend.sh's database (built if
# missing), leaves the last reusing model deployed and prunes the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-medium}
ROUNDS=${2:-2}
DB=reco_bench_serve_$SCALE
OUT=target/bench-retrain-$SCALE.txt
source bench/lib.sh
echo "bench/retrain.sh $SCALE $ROUNDS   ($(date -u +%FT%TZ), $(nproc) cores)" | tee $OUT
demo_db $DB "$SCALE" | tee -a $OUT
N=$(mktemp)
# train PARAMS LABEL: one training, its figures appended to $OUT; its id in $id
train() {
  id=$("${PSQL[@]}" -d $DB -At -c "SET client_min_messages = notice" -c "SELECT reco.train('hybrid', '$1')" 2> "$N")
  # the search: from "tuning" to the holdout fit's first member; the blend's choice: from
  # "evaluation of the served lists" to the next step
  local search
  search=$(grep -vE "iteration [0-9]+/|read [0-9]+ events" "$N" | sed -E 's/^NOTICE: +train hybrid model [0-9]+: //' | awk '
    match($0, /\([0-9.]+s\)$/) { t = substr($0, RSTART + 1, RLENGTH - 3) + 0
      if (served != "" && ended == "") ended = t
      if ($0 ~ /^tuning \(/) tuning = t
      if ($0 ~ /^popularity \(/ && fit == "") fit = t
      if ($0 ~ /^evaluation of the served lists \(/) served = t }
    END { printf "%.1f + %.1f", (tuning != "" ? fit - tuning : 0), ended - served }')
  "${PSQL[@]}" -d $DB -At -c "SELECT format('%-34s model %s: %s s (search + blend choice %s s); served ndcg@10 %s, raw %s; %s blend(s) served; reused from %s',
      '$2', model_id, round(train_seconds::numeric, 1), '$search', round((metrics->>'ndcg')::numeric, 4), round((metrics->'raw'->>'ndcg')::numeric, 4),
      jsonb_array_length(metrics->'blends_tried'), coalesce(metrics->'tuning'->>'reused_from', 'none'))
    FROM reco.models WHERE model_id = $id" | tee -a $OUT
}
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round" | tee -a $OUT
  train '{"retune_hours": 0}' 'searching (retune_hours 0)'
  "${PSQL[@]}" -d $DB -At -c "SELECT reco.deploy($id)" >/dev/null
  train '{}' 'reusing (the defaults)'
  "${PSQL[@]}" -d $DB -At -c "SELECT reco.deploy($id)" >/dev/null
done
"${PSQL[@]}" -d $DB -At -c "SELECT reco.prune_models(1)" >/dev/null
rm -f "$N"
echo "command: bench/retrain.sh $SCALE $ROUNDS" | tee -a $OUT
