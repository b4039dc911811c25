#!/usr/bin/env bash
# Training benchmark: pg_reco's ALS side by side with the `implicit` library (installed from
# PyPI into a throwaway venv under target/), on the same medium demo data and temporal holdout,
# then pg_reco's training time and peak memory per kind.
#   bench/train.sh [SCALE] [THREADS]     (default: medium 2)
# Prints the figures and the command; needs the release build installed (make install-release)
# and the project cluster (scripts/cluster start).
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-medium}
THREADS=${2:-2}
DB=reco_bench_train
FACTORS=64 ITERS=15 REG=0.05 ALPHA=2 HOLDOUT=0.2
PSQL=(psql -X -q -h 127.0.0.1 -p "${RECO_PGPORT:-28815}" -U postgres)
VENV=target/bench-venv
[[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
$VENV/bin/python -c "import implicit, threadpoolctl" 2>/dev/null || $VENV/bin/pip install -q implicit threadpoolctl
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
"${PSQL[@]}" -d $DB -c "CREATE EXTENSION pg_reco CASCADE"
echo "== load_demo('$SCALE')"
"${PSQL[@]}" -d $DB -At -c "SELECT reco.load_demo('$SCALE')" 2>/dev/null
CSV=target/bench-train-events.csv
"${PSQL[@]}" -d $DB -c "\\copy (SELECT e.customer_id, e.item_id, e.kind, w.weight, e.value, (extract(epoch FROM e.occurred_at) * 1000000)::bigint
  FROM reco.events e JOIN reco.event_weights w USING (kind)
  WHERE e.customer_id IS NOT NULL AND e.item_id IS NOT NULL AND w.weight <> 0) TO '$PWD/$CSV' CSV"
PARAMS="{\"factors\": $FACTORS, \"iterations\": $ITERS, \"regularization\": $REG, \"alpha\": $ALPHA, \"holdout\": $HOLDOUT, \"eval_users\": 1000000, \"report_loss\": false, \"refit\": false, \"hnsw\": false}"
echo "== pg_reco: reco.train('als', '$PARAMS') with reco.training_threads = $THREADS (every customer evaluated)"
"${PSQL[@]}" -d $DB -At -c "SET reco.training_threads = $THREADS" -c "SET client_min_messages = notice" \
  -c "SELECT reco.train('als', '$PARAMS')" 2> target/bench-train-notices.log >/dev/null
# the ALS fit alone, from the progress NOTICEs: the "als (holdout)" phase to its last iteration
secs() { grep -E "$1" target/bench-train-notices.log | tail -1 | sed -E 's/.*\(([0-9.]+)s\)$/\1/'; }
echo "pg_reco ALS fit: $(echo "$(secs "als \(holdout\) iteration $ITERS/") - $(secs ': als \(holdout\) \(')" | bc)s"
# the raw ranking is what implicit's figure measures (seen items excluded); the served list is
# what reco.recommend returns (docs/reference.md, "What is evaluated is what is served")
"${PSQL[@]}" -d $DB -At -c "SELECT 'pg_reco ALS: ndcg@10 ' || round((metrics->'raw'->>'ndcg')::numeric, 4) || '  recall@10 ' || round((metrics->'raw'->>'recall')::numeric, 4)
    || '  (served list: ndcg@10 ' || round((metrics->>'ndcg')::numeric, 4) || ')  users ' || (metrics->>'users') || '  (' || n_customers || ' customers, ' || n_items || ' items)'
  FROM reco.models ORDER BY model_id DESC LIMIT 1"
echo "== implicit, same events, split, confidence and metric"
$VENV/bin/python bench/train_implicit.py "$CSV" $FACTORS $ITERS $REG $ALPHA $THREADS $HOLDOUT
echo "== a whole reco.train('als', '{\"tune\": false}'), phase by phase (from its NOTICEs; each phase runs until the next)"
"${PSQL[@]}" -d $DB -At -c "SET reco.training_threads = $THREADS" -c "SET client_min_messages = notice" \
  -c "SELECT reco.train('als', '{\"tune\": false}')" 2> target/bench-train-als-notices.log >/dev/null
grep -vE "iteration [0-9]+/|read [0-9]+00000 events" target/bench-train-als-notices.log | sed -E 's/^NOTICE: +train als model [0-9]+: //' \
  | awk 'BEGIN { row = "  %-60s %6.1fs\n" }
         /ready in/ { split($0, a, "ready in "); sub(/s;.*/, "", a[2]); printf row, prev, a[2] - t0; printf row, "total", a[2]; next }
         match($0, /\([0-9.]+s\)$/) { t = substr($0, RSTART + 1, RLENGTH - 3) + 0; name = substr($0, 1, RSTART - 2)
           if (name ~ /^read /) { printf row, name, t - t0; t0 = t; prev = ""; next }
           if (prev != "") printf row, prev, t - t0
           prev = name; t0 = t }'
echo "== reco.train per kind: seconds, peak memory (the full run: holdout fit, evaluation of 5000 customers, refit, storing, HNSW); defaults, and without tuning"
for kind in als cooccurrence content popularity hybrid; do
  "${PSQL[@]}" -d $DB -At -c "SET reco.training_threads = $THREADS" -c "SET client_min_messages = warning" \
    -c "SELECT reco.train('$kind')" >/dev/null
done
"${PSQL[@]}" -d $DB -At -c "SET reco.training_threads = $THREADS" -c "SET client_min_messages = warning" \
  -c "SELECT reco.train('hybrid', '{\"tune\": false}')" >/dev/null
"${PSQL[@]}" -d $DB -c "SELECT key AS hybrid_member, round((value->>'ndcg')::numeric, 4) AS ndcg, round((value->>'recall')::numeric, 4) AS recall
  FROM reco.models, jsonb_each(metrics->'members') WHERE model_id = (SELECT max(model_id) FROM reco.models) ORDER BY 2 DESC"
"${PSQL[@]}" -d $DB -c "SELECT model_id, kind, params->>'tune' AS tune, metrics ? 'tuning' AS tuned, n_customers, n_items, n_events, round(train_seconds::numeric, 1) AS seconds,
    pg_size_pretty(peak_memory_bytes) AS peak_memory, round((metrics->>'ndcg')::numeric, 4) AS ndcg_served, round((metrics->'raw'->>'ndcg')::numeric, 4) AS ndcg_raw,
    round((metrics->>'recall')::numeric, 4) AS recall_served
  FROM reco.models ORDER BY model_id"
echo "command: bench/train.sh $SCALE $THREADS"
