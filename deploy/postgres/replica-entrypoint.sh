#!/bin/sh
# A hot standby of the primary: cloned once with pg_basebackup (-R writes standby.signal and primary_conninfo),
# then started by the image's own entrypoint, which finds a data directory and streams from the primary.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup -h "$PRIMARY_HOST" -U "$REPLICATION_USER" -D "$PGDATA" -R -X stream -c fast; do
    echo "replica: the primary is not ready for a base backup yet; retrying" >&2
    rm -rf "${PGDATA:?}"/*
    sleep 2
  done
fi
exec docker-entrypoint.sh postgres
