#!/usr/bin/env bash
# The ALS fit alone, pg_reco's engine beside `implicit` (PyPI, CPU, conjugate gradient) on the
# same matrix, factors, iterations, regularization and thread count, in one sitting; best of 3
# each. The matrix is the training side of the demo data's temporal holdout (20%).
#   bench/als_speed.sh [SCALE] [THREADS] [FACTORS] [ITERATIONS]   (default: medium 2 64 15)
# Output also in target/bench-als-speed.txt. No server needed.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-medium} THREADS=${2:-2} FACTORS=${3:-64} ITERS=${4:-15}
VENV=target/bench-venv
[[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
$VENV/bin/python -c "import implicit, threadpoolctl" 2>/dev/null || $VENV/bin/pip install -q implicit threadpoolctl
DIR=target/als-speed
mkdir -p "$DIR"
{
  cargo run --release -q -p reco-engine --example als_speed -- "$SCALE" "$THREADS" "$FACTORS" "$ITERS" "$DIR"
  $VENV/bin/python bench/als_speed.py "$DIR" "$FACTORS" "$ITERS" 0.05 "$THREADS"
  echo "command: bench/als_speed.sh $SCALE $THREADS $FACTORS $ITERS"
} | tee target/bench-als-speed.txt
