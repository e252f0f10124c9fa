#!/bin/sh
# Primary only, first start (docker-entrypoint-initdb.d): let a streaming replica connect.
# The official image's pg_hba.conf admits "all" databases, which does not cover the
# replication pseudo-database that pg_basebackup and the WAL receiver ask for.
set -eu
echo "host replication postgres all scram-sha-256" >> "$PGDATA/pg_hba.conf"
