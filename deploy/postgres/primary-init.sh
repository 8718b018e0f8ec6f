#!/bin/sh
# Runs once, when the primary's data directory is first made (/docker-entrypoint-initdb.d): lets the standby
# (postgres-replica in docker-compose.yml) stream the WAL. wal_level=replica and max_wal_senders are defaults.
set -eu
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
