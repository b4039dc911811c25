#!/usr/bin/env bash
# Starts PostgreSQL with pg_cron and pg_reco (its shared model cache) preloaded and pg_reco created in the postgres database.
set -euo pipefail
BIN=/usr/lib/postgresql/15/bin
DATA=${PGDATA:-/var/lib/postgresql/pg_reco}
if [[ ! -f $DATA/PG_VERSION ]]; then
  install -d -o postgres -g postgres "$DATA"
  runuser -u postgres -- "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile=<(echo "${POSTGRES_PASSWORD:-postgres}") >/dev/null
  cat >> "$DATA/postgresql.conf" <<CONF
listen_addresses = '*'
timezone = 'UTC'
shared_preload_libraries = 'pg_cron,pg_reco'
cron.database_name = 'postgres'
CONF
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$DATA/pg_hba.conf"
  runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -w start >/dev/null
  runuser -u postgres -- psql -q -c "CREATE EXTENSION pg_cron" -c "CREATE EXTENSION pg_reco CASCADE"
  runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -w stop >/dev/null
fi
exec runuser -u postgres -- "$BIN/postgres" -D "$DATA"
