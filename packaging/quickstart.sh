#!/usr/bin/env bash
# Quickstart: a real PostgreSQL 15 behind tollgate on this machine.
#
# Builds tollgate, starts a throwaway PostgreSQL cluster (as the postgres
# user, on a free port, under a temp dir), puts tollgate in front of it with a
# development token issuer, a command policy, masking and recording, then
# shows the story: a short-lived token instead of a password, an allowed
# query, a blocked DROP DATABASE, a masked column, and the recording exported.
# Run as root on Debian; installs what it needs; everything stops on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/deps.sh

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }
work=$(mktemp -d /tmp/tollgate-quickstart.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -d "$work/pgdata" ] && su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $work/pgdata -m fast stop" >/dev/null 2>&1 || true
    wait 2>/dev/null || true
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }

say "building tollgate (release)"
cargo build --release --locked -p tollgate 2>&1 | tail -n 1
tg=$PWD/target/release/tollgate

say "starting PostgreSQL 15 (the target)"
pgbin=/usr/lib/postgresql/15/bin
pgport=$(free_port)
chown postgres:postgres "$work"
su postgres -s /bin/sh -c "$pgbin/initdb -D $work/pgdata -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null"
cat >>"$work/pgdata/postgresql.auto.conf" <<CONF
port = $pgport
listen_addresses = '127.0.0.1'
unix_socket_directories = '$work'
CONF
su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $work/pgdata -l $work/postgres.log -w start" >/dev/null
psql_direct() { psql -X -q -h "$work" -p "$pgport" -U postgres "$@"; }
app_password="stored-$(head -c 12 /dev/urandom | base64 | tr -dc A-Za-z0-9)"
psql_direct -d postgres -c "create role app login password '$app_password'" -c "create database payments owner app"
psql_direct -d payments -c "create table customers (id int, name text, email text, ssn text);
  insert into customers values (1, 'Alice', 'alice@example.com', '123-45-6789'), (2, 'Bob', 'bob@example.org', '987-65-4320');
  alter table customers owner to app"
echo "PostgreSQL on 127.0.0.1:$pgport; only tollgate knows the password of role 'app'"
printf '%s\n' "$app_password" >"$work/payments.pw"
chmod 600 "$work/payments.pw"

say "a development token issuer (real deployments point at their IdP)"
run "$tg" token keygen --dir "$work/issuer"

gwport=$(free_port); adminport=$(free_port)
cat >"$work/tollgate.toml" <<TOML
[engine]
shards = 2

[recorder]
dir = "$work/recordings"

[admin]
listen = "127.0.0.1:$adminport"

[[identity.issuer]]
name = "dev"
issuer = "https://tollgate.dev.local"
audience = ["tollgate"]
jwks_file = "$work/issuer/tollgate-dev-jwks.json"

[[target]]
name = "payments"
protocol = "postgres"
listen = ["127.0.0.1:$gwport"]
upstream = "127.0.0.1:$pgport"

[target.postgres]
database = "payments"

[target.credential]
user = "app"
password_file = "$work/payments.pw"

[target.access]
groups = ["ci"]

[[target.policy.rules]]
name = "no-destructive"
action = "block"
message = "destructive statements are not allowed through tollgate"
classes = ["drop_database", "drop_table", "truncate", "delete_without_where", "update_without_where"]

[[target.masking.rules]]
name = "pii"
columns = ["ssn"]
detectors = ["email"]
style = "partial"
keep = 4
TOML
say "tollgate check"
run "$tg" check --config "$work/tollgate.toml"
say "starting tollgate on 127.0.0.1:$gwport"
"$tg" run --config "$work/tollgate.toml" 2>"$work/tollgate.log" & pids+=($!)
wait_port "$gwport"

say "a CI job gets a 10-minute token (the only secret it ever holds)"
token=$("$tg" token mint --key "$work/issuer/tollgate-dev-key.pem" --sub ci-job-42 --groups ci --aud tollgate --ttl 10m)
echo "${token:0:40}..."
conn="host=127.0.0.1 port=$gwport dbname=payments user=ci-job-42 sslmode=disable"
export PGPASSWORD="$token"   # libpq sends it as the password: the token is the secret

say "an allowed query: the job's native psql, the token as its password"
run psql -X "$conn" -c "select id, name, current_user from customers order by id"

say "a blocked DROP DATABASE (the session goes on)"
psql -X "$conn" -v ON_ERROR_STOP=0 <<'SQL' || true
drop database payments;
select 'still connected' as status;
SQL

say "a masked column (ssn by name, email by content)"
run psql -X "$conn" -c "select name, email, ssn from customers order by id"
echo "(the database still holds the clear values: $(psql_direct -d payments -Atc "select ssn from customers where id = 1"))"

say "a wrong token never reaches PostgreSQL"
PGPASSWORD="not-a-token" psql -X "$conn" -c "select 1" || true

say "the recording: list, then export the session as JSON Lines"
sleep 0.2
run "$tg" recordings list --dir "$work/recordings"
"$tg" recordings export --all --dir "$work/recordings" | python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    if r["type"] == "session_start":
        print("session %016x  %s -> %s from %s" % (r["session"], r["subject"], r["target"], r["client_addr"]))
    if r["type"] == "command":
        print("  command  %-6s %s" % (r["verdict"], r["statement"].strip()))
    for m in r.get("pg", []):
        if m["type"] == "data_row":
            print("  row      %s" % m["values"])
        elif m["type"] == "error":
            print("  error    %s %s" % (m["code"], m["message"]))
'
run "$tg" recordings verify --dir "$work/recordings"
echo; echo "everything is under $work; tollgate and PostgreSQL stop now"
