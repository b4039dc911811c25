#!/usr/bin/env bash
# Accuracy on real public data, not in this repository: MovieLens 100K (GroupLens: 100 000
# ratings, 1-5 stars, of 1 682 movies by 943 users, 1997-98, with timestamps and genres).
# The files come from PyPI: the RecBole wheel ships them as its example dataset
# (recbole/dataset_example/ml-100k); `pip download` fetches the wheel into target/, nothing else.
#   bench/movielens.sh [THREADS=2]     (release build installed, project cluster running)
# Then bench/served_eval.py: what reco.recommend returns (trained on the training part only),
# scored on the same kind of split beside popularity, item-kNN, EASE and tuned implicit ALS.
# Loads the ratings through reco.record_event (kind 'rating', the stars as value, the rating's
# time), the movies as items (title; first genre as category, all genres as tags), trains every
# kind with default parameters on the same temporal holdout (each customer's last 20%), and the
# `implicit` library's ALS on the same events, split and metric (bench/train_implicit.py).
# Ratings count as in training everywhere: (stars - 2) / 3, so 3 stars is a weak interaction,
# 2 stars neutral and 1 star a dislike; only liked (4-5 star) held-out items are relevant.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-2}
DB=reco_bench_movielens
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${RECO_PGPORT:-28815}" -U postgres)
DIR=$PWD/target/movielens
VENV=target/bench-venv
OUT=target/bench-movielens.txt
mkdir -p "$DIR"
[[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
$VENV/bin/python -c "import implicit, threadpoolctl, psycopg, scipy" 2>/dev/null || $VENV/bin/pip install -q implicit threadpoolctl "psycopg[binary]" scipy
if [[ ! -s $DIR/ml-100k.inter || ! -s $DIR/ml-100k.item ]]; then
  $VENV/bin/pip download -q --no-deps recbole==1.2.1 -d "$DIR"
  $VENV/bin/python - "$DIR" <<'PY'
import sys, zipfile
d = sys.argv[1]
with zipfile.ZipFile(f"{d}/recbole-1.2.1-py3-none-any.whl") as z:
    for ext in ("inter", "item"):
        with open(f"{d}/ml-100k.{ext}", "wb") as f:
            f.write(z.read(f"recbole/dataset_example/ml-100k/ml-100k.{ext}"))
PY
fi
echo "bench/movielens.sh $THREADS   ($(date -u +%FT%TZ), $(nproc) cores)" | tee $OUT
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
"${PSQL[@]}" -d $DB <<SQL
SET client_min_messages = warning;
CREATE EXTENSION pg_reco CASCADE;
CREATE TEMP TABLE ml_ratings (user_id text, item_id text, rating float8, ts bigint);
CREATE TEMP TABLE ml_items (item_id text, title text, year text, genres text);
\\copy ml_ratings FROM program 'tail -n +2 $DIR/ml-100k.inter' WITH (FORMAT csv, DELIMITER E'\\t', QUOTE E'\\b')
\\copy ml_items FROM program 'tail -n +2 $DIR/ml-100k.item' WITH (FORMAT csv, DELIMITER E'\\t', QUOTE E'\\b')
INSERT INTO reco.items (item_id, title, category, attributes)
SELECT 'm' || item_id, title, nullif(split_part(genres, ' ', 1), ''),
       jsonb_build_object('tags', to_jsonb(string_to_array(nullif(genres, ''), ' ')), 'year', year)
FROM ml_items;
SELECT count(reco.record_event('u' || user_id, 'm' || item_id, 'rating', rating, to_timestamp(ts)))
FROM (SELECT * FROM ml_ratings ORDER BY ts, user_id, item_id) r \\g /dev/null
SQL
"${PSQL[@]}" -d $DB -At -c "SELECT 'loaded: ' || count(*) || ' ratings, ' || count(DISTINCT customer_id) || ' customers, ' || count(DISTINCT item_id) || ' movies, '
    || min(occurred_at)::date || ' .. ' || max(occurred_at)::date FROM reco.events WHERE kind = 'rating'" | tee -a $OUT
CSV=$DIR/events.csv
"${PSQL[@]}" -d $DB -c "\\copy (SELECT e.customer_id, e.item_id, e.kind, w.weight, e.value, (extract(epoch FROM e.occurred_at) * 1000000)::bigint
  FROM reco.events e JOIN reco.event_weights w USING (kind) WHERE w.weight <> 0) TO '$CSV' CSV"
for kind in popularity cooccurrence content als hybrid; do
  "${PSQL[@]}" -d $DB -At -c "SET reco.training_threads = $THREADS" -c "SET client_min_messages = warning" \
    -c "SELECT reco.train('$kind', '{\"eval_users\": 1000000, \"hnsw\": false}')" >/dev/null
done
echo "== pg_reco, default parameters, temporal holdout (last 20% of each customer), every customer evaluated" | tee -a $OUT
"${PSQL[@]}" -d $DB -c "SELECT kind, round((metrics->>'ndcg')::numeric, 4) AS ndcg_at_10, round((metrics->>'recall')::numeric, 4) AS recall_at_10,
    round((metrics->>'hit_rate')::numeric, 4) AS hit_rate, round((metrics->>'coverage')::numeric, 4) AS coverage, metrics->>'users' AS users,
    round(train_seconds::numeric, 1) AS seconds
  FROM reco.models ORDER BY model_id" | tee -a $OUT
"${PSQL[@]}" -d $DB -c "SELECT key AS hybrid_member, round((value->>'ndcg')::numeric, 4) AS ndcg_at_10, round((value->>'recall')::numeric, 4) AS recall_at_10
  FROM reco.models, jsonb_each(metrics->'members') WHERE model_id = (SELECT max(model_id) FROM reco.models) ORDER BY 2 DESC" | tee -a $OUT
"${PSQL[@]}" -d $DB -At -c "SELECT 'hybrid blend: ' || blend::text FROM reco.models WHERE kind = 'hybrid'" | tee -a $OUT
echo "== implicit ALS, same events, split, confidence (1 + 2 x weight), 64 factors, 15 iterations, regularization 0.05" | tee -a $OUT
$VENV/bin/python bench/train_implicit.py "$CSV" 64 15 0.05 2 "$THREADS" 0.2 | tee -a $OUT
echo "== what reco.recommend serves, beside EASE, item-kNN and tuned implicit ALS (bench/served_eval.py)" | tee -a $OUT
$VENV/bin/python bench/served_eval.py "$DIR" "host=127.0.0.1 port=${RECO_PGPORT:-28815} user=postgres dbname=postgres" "$THREADS" | tee -a $OUT
echo "command: bench/movielens.sh $THREADS" | tee -a $OUT
