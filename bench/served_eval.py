#!/usr/bin/env python3
"""What reco.recommend serves, scored on MovieLens 100K beside public baselines, one split.

    served_eval.py DATA_DIR DSN [THREADS]

DATA_DIR holds ml-100k.inter and ml-100k.item (bench/movielens.sh fetches them from the RecBole
wheel on PyPI). DSN is a libpq connection string to a cluster with pg_reco installed; the
database reco_bench_served is created anew.

The split: per user, the ratings of their last 20% of distinct timestamps are held out (the
engine's temporal holdout); relevant = held-out ratings of 4 stars or more on movies rated in
training. Every user with a relevant movie is evaluated, NDCG@10 with binary relevance.

- Baselines, on the training ratings as implicit interactions (numpy/scipy): popularity, cosine
  item-kNN, EASE (lambda 250), and the `implicit` library's ALS and BPR tuned on this holdout
  (grids).
- pg_reco: only the training ratings are loaded (reco.record_event, kind 'rating'), each kind
  is trained with defaults and deployed in turn, and reco.recommend(user, 10) is asked with the
  default context at the user's last training rating (`now` pinned), and again with
  diversity_penalty 0 (no diversity): the list a shop would show, as returned.

For A/B runs of a training parameter: RECO_TRAIN_PARAMS='{"blend_steps": 0}' adds keys to
every reco.train call, RECO_KINDS=hybrid trains only those kinds, RECO_BASELINES=0 skips the
baselines.
"""
import json
import os
import math
import sys
import time
from collections import defaultdict

import numpy as np
import psycopg
import scipy.sparse as sp

K = 10


def read(data_dir):
    ratings = []
    with open(f"{data_dir}/ml-100k.inter") as f:
        next(f)
        for line in f:
            u, i, r, t = line.rstrip("\n").split("\t")
            ratings.append((u, i, float(r), int(float(t))))
    items = {}
    with open(f"{data_dir}/ml-100k.item", encoding="utf-8", errors="replace") as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            items[parts[0]] = (parts[1], parts[3] if len(parts) > 3 else "")
    return ratings, items


def split(ratings, fraction=0.2):
    by_user = defaultdict(list)
    for x in ratings:
        by_user[x[0]].append(x)
    train, test = [], []
    for u, xs in by_user.items():
        times = sorted({x[3] for x in xs})
        if len(times) < 2:
            train.extend(xs)
            continue
        n_test = min(max(round(len(times) * fraction), 1), len(times) - 1)
        cut = times[len(times) - n_test]
        for x in xs:
            (test if x[3] >= cut else train).append(x)
    return train, test


def ndcg(ranked, relevant):
    dcg = sum(1.0 / math.log2(n + 2) for n, i in enumerate(ranked[:K]) if i in relevant)
    idcg = sum(1.0 / math.log2(n + 2) for n in range(min(len(relevant), K)))
    return dcg / idcg if idcg else 0.0


def evaluate(score_fn, users, relevant, seen, item_ids):
    """Mean NDCG@10 of the top 10 of score_fn(user row) with the user's training items left out."""
    out = []
    for u in users:
        s = np.asarray(score_fn(u), dtype=np.float64).copy()
        s[list(seen[u])] = -np.inf
        top = np.argpartition(-s, K)[:K]
        top = top[np.argsort(-s[top], kind="stable")]
        out.append(ndcg([item_ids[j] for j in top], relevant[u]))
    return float(np.mean(out))


def baselines(train, users, relevant, threads):
    uid = {u: n for n, u in enumerate(sorted({x[0] for x in train}))}
    iid = {i: n for n, i in enumerate(sorted({x[1] for x in train}))}
    item_ids = sorted(iid, key=iid.get)
    rows = [uid[x[0]] for x in train]
    cols = [iid[x[1]] for x in train]
    X = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(uid), len(iid)))
    X.data[:] = 1.0
    seen = {u: set(X[uid[u]].indices) for u in users}
    urow = {u: uid[u] for u in users}
    res = {}
    t = time.time()
    pop = np.asarray(X.sum(axis=0)).ravel()
    res["popularity (most-rated)"] = (evaluate(lambda u: pop, users, relevant, seen, item_ids), time.time() - t)
    t = time.time()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=0)).ravel()) + 1e-9
    S = (X.T @ X).toarray() / np.outer(norms, norms)
    np.fill_diagonal(S, 0.0)
    Xd = X.toarray()
    res["item-kNN, cosine"] = (evaluate(lambda u: Xd[urow[u]] @ S, users, relevant, seen, item_ids), time.time() - t)
    t = time.time()
    G = (X.T @ X).toarray() + 250.0 * np.eye(X.shape[1])
    P = np.linalg.inv(G)
    B = -P / np.diag(P)
    np.fill_diagonal(B, 0.0)
    res["EASE (lambda 250)"] = (evaluate(lambda u: Xd[urow[u]] @ B, users, relevant, seen, item_ids), time.time() - t)
    # RP3beta (Paudel et al.): item-to-item transition probabilities through the users, the
    # target's popularity discounted by beta; best of a small grid on this holdout
    t = time.time()
    Pui = sp.diags(1.0 / np.maximum(np.asarray(X.sum(axis=1)).ravel(), 1e-9)) @ X
    Piu = sp.diags(1.0 / np.maximum(np.asarray(X.sum(axis=0)).ravel(), 1e-9)) @ X.T.tocsr()
    W0 = (Piu @ Pui).toarray()
    popularity = np.maximum(np.asarray(X.sum(axis=0)).ravel(), 1.0)
    best = (-1.0, None)
    for alpha in (0.5, 1.0):
        for beta in (0.0, 0.3, 0.5, 0.7):
            W = np.power(W0, alpha) / np.power(popularity, beta)[None, :]
            np.fill_diagonal(W, 0.0)
            v = evaluate(lambda u: Xd[urow[u]] @ W, users, relevant, seen, item_ids)
            if v > best[0]:
                best = (v, (alpha, beta))
    res[f"RP3beta, best of 8 (alpha {best[1][0]}, beta {best[1][1]})"] = (best[0], time.time() - t)
    try:
        import implicit
        from threadpoolctl import threadpool_limits

        import itertools

        def best_of(grid, make):
            """The best NDCG@10 of `implicit` models built by make(*point) over the grid, and its point."""
            best = (-1.0, None)
            with threadpool_limits(1, "blas"):
                for point in itertools.product(*grid):
                    m = make(*point)
                    m.fit(X, show_progress=False)
                    uf, itf = m.user_factors, m.item_factors
                    v = evaluate(lambda u: itf @ uf[urow[u]], users, relevant, seen, item_ids)
                    if v > best[0]:
                        best = (v, point)
            return best

        t = time.time()
        v, (f, r, a) = best_of(
            ((32, 64, 128), (0.01, 0.1, 1.0), (1.0, 5.0, 20.0)),
            lambda f, r, a: implicit.cpu.als.AlternatingLeastSquares(
                factors=f, regularization=r, alpha=a, iterations=15, random_state=7, num_threads=threads
            ),
        )
        res[f"implicit ALS, best of 27 (factors {f}, reg {r}, alpha {a})"] = (v, time.time() - t)
        # BPR, tuned the same way on this holdout (12 points)
        t = time.time()
        v, (f, lr, r) = best_of(
            ((32, 64, 128), (0.01, 0.05), (0.001, 0.01)),
            lambda f, lr, r: implicit.cpu.bpr.BayesianPersonalizedRanking(
                factors=f, learning_rate=lr, regularization=r, iterations=100, random_state=7, num_threads=threads
            ),
        )
        res[f"implicit BPR, best of 12 (factors {f}, learning rate {lr}, reg {r}, 100 iterations)"] = (v, time.time() - t)
    except ImportError:
        pass
    return res


def served(dsn, train, items, users, relevant, threads):
    admin = psycopg.connect(dsn, autocommit=True)
    admin.execute("DROP DATABASE IF EXISTS reco_bench_served WITH (FORCE)")
    admin.execute("CREATE DATABASE reco_bench_served")
    db = " ".join(kv for kv in dsn.split() if not kv.startswith("dbname=")) + " dbname=reco_bench_served"
    c = psycopg.connect(db, autocommit=True)
    c.execute("SET client_min_messages = warning")
    c.execute("CREATE EXTENSION pg_reco CASCADE")
    with c.cursor() as cur:
        cur.executemany(
            "INSERT INTO reco.items (item_id, title, category, attributes) VALUES (%s, %s, %s, jsonb_build_object('tags', to_jsonb(%s::text[])))",
            [("m" + i, t, (g.split(" ")[0] or None), [x for x in g.split(" ") if x]) for i, (t, g) in items.items()],
        )
        cur.execute("INSERT INTO reco.stock (item_id, available) SELECT item_id, 1000 FROM reco.items ON CONFLICT (item_id) DO NOTHING")
        cur.executemany(
            "SELECT reco.record_event(%s, %s, 'rating', %s, to_timestamp(%s))",
            [("u" + u, "m" + i, r, ts) for (u, i, r, ts) in sorted(train, key=lambda x: (x[3], x[0], x[1]))],
        )
    last = defaultdict(int)
    for u, _, _, ts in train:
        last[u] = max(last[u], ts)
    c.execute(f"SET reco.training_threads = {threads}")
    out = {}
    params = json.dumps({"hnsw": False, **json.loads(os.environ.get("RECO_TRAIN_PARAMS", "{}"))})
    for kind in os.environ.get("RECO_KINDS", "popularity,cooccurrence,content,als,hybrid").split(","):
        t = time.time()
        mid = c.execute("SELECT reco.train(%s, %s::jsonb)", (kind, params)).fetchone()[0]
        c.execute("SELECT reco.deploy(%s)", (mid,))
        holdout, holdout_raw = c.execute(
            "SELECT (metrics->>'ndcg')::float8, (metrics->'raw'->>'ndcg')::float8 FROM reco.models WHERE model_id = %s", (mid,)).fetchone()
        secs = time.time() - t
        for label, extra in (("served, default context", ""), ("served, no diversity (diversity_penalty 0)", ', "diversity_penalty": 0')):
            scores = []
            for u in users:
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last[u] + 1))
                rows = c.execute("SELECT item_id FROM reco.recommend(%s, 10, %s::jsonb)", ("u" + u, f'{{"now": "{now}"{extra}}}')).fetchall()
                scores.append(ndcg([r[0][1:] for r in rows], relevant[u]))
            out[f"pg_reco {kind}, {label}"] = (float(np.mean(scores)), secs)
        out[f"pg_reco {kind}, training's own holdout (the last 20% of the training part), served"] = (holdout or 0.0, secs)
        out[f"pg_reco {kind}, training's own holdout, raw ranking"] = (holdout_raw or 0.0, secs)
    return out


def main():
    data_dir, dsn = sys.argv[1], sys.argv[2]
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    ratings, items = read(data_dir)
    train, test = split(ratings)
    in_train = {x[1] for x in train}
    train_users = {x[0] for x in train}
    relevant = defaultdict(set)
    for u, i, r, _ in test:
        if r >= 4 and i in in_train and u in train_users:
            relevant[u].add(i)
    users = sorted(relevant)
    print(f"MovieLens 100K: {len(ratings)} ratings, {len(train)} train, {len(test)} held out; {len(users)} users evaluated, NDCG@{K}")
    res = baselines(train, users, relevant, threads) if os.environ.get("RECO_BASELINES", "1") != "0" else {}
    res.update(served(dsn, train, items, users, relevant, threads))
    print(f"| ranking | NDCG@{K} | seconds |")
    print("|---|---:|---:|")
    for name, (v, secs) in sorted(res.items(), key=lambda x: -x[1][0]):
        print(f"| {name} | {v:.4f} | {secs:.1f} |")


if __name__ == "__main__":
    main()
