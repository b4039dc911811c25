#!/usr/bin/env bash
# Consent recorded through the mirror columns: bulk UPDATEs of reco.customers on N customers
# (default 100 000), each row of which records a decision (reco.consent_log) and makes it the
# one in force (reco.consents). The consent tables start empty and analyzed, as after a fresh
# install and autovacuum, and grow within each statement.
#   bench/consent.sh [N=100000]
#   opt in      UPDATE customers SET email_opt_in = true           (a decision per row)
#   push        UPDATE customers SET attributes = ... consent.push  (another channel per row)
#   opt out     UPDATE customers SET email_opt_in = false          (replaces the one in force)
#   no change   UPDATE customers SET email_opt_in = false again    (the WHEN clause: no call)
# Prints seconds and rows per second for each, and checks the counts the statements must leave.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
DB=reco_bench_consent
OUT=target/bench-consent-$N.txt
source bench/lib.sh
mkdir -p target
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
{
  echo "bench/consent.sh $N   ($(date -u +%FT%TZ), $(nproc) cores, pg_reco $(git describe --always --dirty))"
  "${PSQL[@]}" -d $DB -v n="$N" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION pg_reco CASCADE;
INSERT INTO reco.customers (customer_id, attributes)
SELECT 'bench-c' || lpad(g::text, 7, '0'), '{"segment": "bench"}' FROM generate_series(1, :n) g;
VACUUM ANALYZE;
CREATE TEMP TABLE t (step text, rows bigint, secs numeric);
CREATE FUNCTION pg_temp.timed(step text, sql text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); n bigint;
BEGIN
    EXECUTE sql; GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO t VALUES (step, n, extract(epoch FROM clock_timestamp() - t0));
END $$;
SELECT pg_temp.timed('opt in', 'UPDATE reco.customers SET email_opt_in = true') \g /dev/null
SELECT pg_temp.timed('push', $q$UPDATE reco.customers SET attributes = attributes || '{"consent": {"push": true}}'$q$) \g /dev/null
SELECT pg_temp.timed('opt out', 'UPDATE reco.customers SET email_opt_in = false') \g /dev/null
SELECT pg_temp.timed('no change', 'UPDATE reco.customers SET email_opt_in = false') \g /dev/null
SELECT step, rows, round(secs, 2) AS seconds, round(rows / nullif(secs, 0)) AS rows_per_s FROM t;
SELECT count(*) AS logged, count(*) = 3 * :n AS log_ok FROM reco.consent_log;
SELECT count(*) FILTER (WHERE channel = 'email' AND NOT granted) AS email_out, count(*) FILTER (WHERE channel = 'push' AND granted) AS push_in,
       count(*) FILTER (WHERE channel = 'email' AND NOT granted) = :n AND count(*) FILTER (WHERE channel = 'push' AND granted) = :n AS in_force_ok
FROM reco.consents;
SQL
} | tee $OUT
"${PSQL[@]}" -d postgres -c "DROP DATABASE $DB WITH (FORCE)" >/dev/null
