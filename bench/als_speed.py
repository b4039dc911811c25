"""Times implicit's CPU ALS on the matrix engine/examples/als_speed.rs wrote (confidences
already 1 + alpha * r), with the same factors, iterations, regularization and threads, its BLAS
single-threaded as implicit recommends. Best of 3 fits, as the Rust side reports.

usage: als_speed.py DIR FACTORS ITERATIONS REGULARIZATION THREADS
"""
import sys, time
import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits
import implicit

d, factors, iters, reg, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
rows, cols = map(int, open(f"{d}/shape.txt").read().split())
m = sp.csr_matrix((np.fromfile(f"{d}/conf.f32", dtype=np.float32), np.fromfile(f"{d}/indices.i32", dtype=np.int32),
                   np.fromfile(f"{d}/indptr.i64", dtype=np.int64)), shape=(rows, cols))
best = float("inf")
with threadpool_limits(limits=1, user_api="blas"):
    for run in (1, 2, 3):
        model = implicit.cpu.als.AlternatingLeastSquares(factors=factors, iterations=iters, regularization=reg, alpha=1.0,
                                                          num_threads=threads, random_state=42, calculate_training_loss=False)
        t0 = time.perf_counter()
        model.fit(m, show_progress=False)
        s = time.perf_counter() - t0
        best = min(best, s)
        print(f"implicit {implicit.__version__} ALS fit, run {run}: {s:.2f}s")
print(f"implicit ALS fit, best of 3: {best:.2f}s")
