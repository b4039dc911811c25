#!/usr/bin/env bash
# recommend's latency while a training runs beside it, at two priorities, and with no training,
# interleaved (issue #19): 6 pgbench clients calling
# reco.recommend at RATE calls/s in all (customers with a cart of 3, as bench/recommend.sh),
# and after 6 s, in another session, reco.train('als', '{"tune": false}') (or, for "none", 28 s
# of nothing). The priorities: reco.training_nice = 10 (the default) and 20 (the training
# threads in the idle scheduling class); the backend's own thread keeps its priority in both.
# Per run: the training's time, and the p99 of the calls that ended while it ran
# and of those that ended from its "storing ALS vectors" step on (the backend's own work:
# writing vectors and nearest-item lists, the HNSW builds), against the same windows with no
# training.
#   bench/train_beside_serving.sh [SCALE=medium] [ROUNDS=3] [RATE=300]
# Release build, project cluster; uses bench/recommend.sh's database (built if missing) and
# prunes the models its trainings leave.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-medium}
ROUNDS=${2:-3}
RATE=${3:-300}
DB=reco_bench_serve_$SCALE
PGBENCH=/usr/lib/postgresql/15/bin/pgbench
PORT=${RECO_PGPORT:-28815}
OUT=target/bench-train-beside-serving-$SCALE.txt
W=$(mktemp -d)
chmod 755 "$W"
source bench/lib.sh
echo "bench/train_beside_serving.sh $SCALE $ROUNDS $RATE   ($(date -u +%FT%TZ), $(nproc) cores)" | tee $OUT
demo_db $DB "$SCALE" | tee -a $OUT
request_tables $DB "$("${PSQL[@]}" -d $DB -At -c "SELECT model_id FROM reco.models WHERE status = 'deployed'")"
cat > $W/reco.sql <<'SQL'
\set n random(1, 2000)
SELECT r.* FROM bench_req b, reco.recommend(b.customer_id, 10, jsonb_build_object('cart', b.cart)) r WHERE b.n = :n;
SQL
chmod a+r $W/reco.sql
for round in $(seq 1 "$ROUNDS"); do
  for mode in none nice10 idle; do
    rm -f $W/lat.*
    $PGBENCH -h 127.0.0.1 -p $PORT -U postgres -n -c 6 -j 2 -R "$RATE" -T 45 -l --log-prefix=$W/lat -f $W/reco.sql $DB > $W/pgbench.out 2>&1 &
    # (the clients' first calls attach the model; the windows start after them)
    sleep 6
    t0=$(date +%s.%N)
    if [ $mode = none ]; then
      sleep 28
      store=14
    else
      setup="SET reco.training_nice = $([ $mode = idle ] && echo 20 || echo 10)"
      "${PSQL[@]}" -d $DB -c "$setup" -c "SELECT reco.train('als', '{\"tune\": false}')" > $W/train.out 2>&1
      store=$(grep -o "storing ALS vectors ([0-9.]*s)" $W/train.out | grep -o "[0-9.]*s)" | tr -d 's)')
    fi
    t1=$(date +%s.%N)
    wait
    python3 - "$W" "$t0" "$t1" "$store" "$mode" "$round" <<'PY' | tee -a $OUT
import glob, sys
w, a, b, s, mode, rnd = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
whole, late = [], []
for f in glob.glob(w + '/lat.*'):
    for line in open(f):
        p = line.split()
        # pgbench's log: client, transaction, latency (us), script, end time (s, us)
        t, ms = int(p[4]) + int(p[5]) / 1e6, int(p[2]) / 1000
        if a <= t <= b:
            whole.append(ms)
            if t >= a + s:
                late.append(ms)
def p99(x):
    x = sorted(x)
    return x[int(len(x) * 0.99)] if x else float('nan')
what = {'none': 'no training', 'nice10': 'training, threads at nice 10 (default)', 'idle': 'training, threads in the idle class'}[mode]
print(f"round {rnd}, {what}: {b - a:.1f} s; recommend p99 {p99(whole):.2f} ms ({len(whole)} calls), "
      f"from {s:.1f} s on (storing, indexes) {p99(late):.2f} ms ({len(late)} calls)")
PY
  done
done
"${PSQL[@]}" -d $DB -At -c "SELECT reco.prune_models(1)" >/dev/null
rm -rf $W
echo "figures in $OUT"
