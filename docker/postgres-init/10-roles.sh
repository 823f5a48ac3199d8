#!/bin/sh
# First start of the database (docker-compose.yml): the owner of the portal's tables, who runs the migrations, and
# the application's role, which owns nothing (docs/database-roles.md). Neither is a superuser; passwords come from
# Docker secrets.
set -eu
owner_password=$(cat /run/secrets/db_owner_password)
app_password=$(cat /run/secrets/db_app_password)
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v owner_password="$owner_password" -v app_password="$app_password" <<'SQL'
CREATE ROLE portal LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE portal_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
CREATE DATABASE portal OWNER portal;
\connect portal
REVOKE ALL ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO portal;
GRANT USAGE ON SCHEMA public TO portal_app;
SQL
