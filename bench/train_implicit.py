"""The `implicit` baseline for bench/train.sh: the same events, the same temporal holdout,
the same confidence (1 + alpha * weight) and the same metric formulas as pg_reco's
reco.evaluate, so the two ALS implementations compare on equal terms.

usage: train_implicit.py EVENTS_CSV FACTORS ITERATIONS REGULARIZATION ALPHA THREADS HOLDOUT
EVENTS_CSV columns: customer_id, item_id, kind, weight, value, occurred_at_us
"""
import csv, math, sys, time
from collections import defaultdict

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits
import implicit

path, factors, iters, reg, alpha, threads, holdout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])

users, items = {}, {}
rows = []  # (u, i, contribution, at)
with open(path) as f:
    for cid, iid, kind, weight, value, at in csv.reader(f):
        w = float(weight)
        if kind == "rating":  # (stars - 2) / 3, as in engine/src/models/dataset.rs
            w = w * ((min(max(float(value), 0.0), 5.0) - 2.0) / 3.0) if value else 0.0
        u = users.setdefault(cid, len(users))
        i = items.setdefault(iid, len(items))
        rows.append((u, i, w, int(at)))

# holdout: per customer, the events of the last `holdout` share of distinct timestamps
times = defaultdict(set)
for u, _, _, at in rows:
    times[u].add(at)
cut = {}
for u, ts in times.items():
    ts = sorted(ts)
    if len(ts) < 2:
        continue
    n_test = min(max(int(math.floor(len(ts) * holdout + 0.5)), 1), len(ts) - 1)
    cut[u] = ts[len(ts) - n_test]

def matrix(sel):
    acc = defaultdict(float)
    for u, i, w, at in rows:
        if sel(u, at):
            acc[(u, i)] += w
    keys = [(k, v) for k, v in acc.items() if v > 1e-6]
    r = np.array([k[0] for k, _ in keys]); c = np.array([k[1] for k, _ in keys]); v = np.array([x for _, x in keys], dtype=np.float32)
    return sp.csr_matrix((v, (r, c)), shape=(len(users), len(items)))

train = matrix(lambda u, at: u not in cut or at < cut[u])
test = matrix(lambda u, at: u in cut and at >= cut[u])
conf = train.copy()
conf.data = 1.0 + alpha * conf.data

model = implicit.cpu.als.AlternatingLeastSquares(factors=factors, iterations=iters, regularization=reg, alpha=1.0,
                                                  num_threads=threads, random_state=42, calculate_training_loss=False)
# implicit recommends a single-threaded BLAS (its own threads do the work)
with threadpool_limits(limits=1, user_api="blas"):
    t0 = time.perf_counter()
    model.fit(conf, show_progress=False)
    fit_s = time.perf_counter() - t0

# evaluation: customers with held-out items not seen in training, items seen excluded
eval_users, truth = [], []
for u in range(len(users)):
    seen = set(train.indices[train.indptr[u]:train.indptr[u + 1]])
    t = set(test.indices[test.indptr[u]:test.indptr[u + 1]]) - seen
    if t:
        eval_users.append(u); truth.append(t)
k = 10
ids, _ = model.recommend(np.array(eval_users), train[eval_users], N=k, filter_already_liked_items=True)
ndcg = recall = 0.0
for rec, t in zip(ids, truth):
    hits = [1 if i in t else 0 for i in rec[:k]]
    ideal = min(k, len(t))
    dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
    idcg = sum(1 / math.log2(r + 2) for r in range(ideal))
    ndcg += dcg / idcg
    recall += sum(hits) / ideal
n = len(eval_users)
print(f"implicit {implicit.__version__}: fit {fit_s:.2f}s  ndcg@10 {ndcg / n:.4f}  recall@10 {recall / n:.4f}  users {n}  "
      f"({len(users)} customers, {len(items)} items, {train.nnz} train pairs)")
