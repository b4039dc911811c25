#!/usr/bin/env bash
# SQLsmith against pg_reco for MINUTES (the integration test tests/integration/tests/sqlsmith.rs,
# run for that long): a database with the demo and a deployed hybrid, random queries as a login
# member of reco_admin with statement_timeout = 1 s, then the server log is searched for backend
# crashes, XX000 errors raised by pg_reco, and statements that ran past 3 s.
#   bench/fuzz.sh [MINUTES] [SEED]     (default: 30, a random seed; printed)
# Needs the project cluster (scripts/cluster start) with this build installed (make install).
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-30}
SEED=${2:-$RANDOM}
export PATH="$HOME/.cargo/bin:$PATH"
scripts/cluster start
echo "== sqlsmith for $MINUTES minutes, seed $SEED"
FUZZ_SECONDS=$((MINUTES * 60)) FUZZ_SEED=$SEED RECO_TEST_DSN="$(scripts/cluster url)" \
  cargo test -q -p pg_reco_integration --test sqlsmith sqlsmith_finds -- --nocapture
echo "command: bench/fuzz.sh $MINUTES $SEED"
