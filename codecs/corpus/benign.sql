# tollgate blocking corpus: benign look-alikes that MUST pass as their class.
#
# Same block format as dangerous.sql (header `=== <dialect> <expect> [esc]`,
# then the SQL). Here `expect` is a comma-separated list of selectors, one
# per statement in order (nested statements follow their parent), and each
# statement must match its selector. In addition no statement may match any
# of the corpus test's danger selectors (drop, truncate, delete/update
# without where, copy program/file, alter system, grant, role changes, set
# global, into outfile, unknown, ...) nor call a danger function
# (pg_read_file, lo_import, dblink*, pg_terminate_backend, load_file, ...).

=== pg select
SELECT drop_date FROM events
=== pg select
SELECT drop_date, truncate_logs, delete_flag FROM t
=== pg select
SELECT truncate_logs FROM t
=== pg select
SELECT 'DROP DATABASE prod'
=== pg select
SELECT 'DROP DATABASE prod; TRUNCATE users'
=== pg select
SELECT $$DROP DATABASE prod$$
=== pg select
SELECT $tag$ ; DROP TABLE users; $tag$
=== pg select
SELECT $a$ $$ ; DROP TABLE users ; $$ $a$
=== pg select
SELECT 1 -- TRUNCATE users
=== pg select
SELECT 1 /* DROP DATABASE prod; */
=== pg select
SELECT 1 /* outer /* DROP TABLE x; */ still comment; TRUNCATE t */
=== pg select
-- we should truncate this table someday
SELECT count(*) FROM logs
=== pg select
SELECT "drop" FROM t
=== pg select
SELECT "DROP TABLE users" FROM t
=== pg select
SELECT * FROM "truncate"
=== pg select
SELECT E'\'; DROP TABLE users; --'
=== pg-oldstr select
SELECT '\'; DROP TABLE users; --'
=== pg select
SELECT 'it''s; DROP TABLE users'
=== pg select
SELECT * FROM users WHERE name = 'x; DELETE FROM users'
=== pg select
SELECT pg_read_file_size FROM files
=== pg select
SELECT read_file('x') FROM t
=== pg select
SELECT my_dblink_count FROM stats
=== pg select
SELECT * FROM pg_stat_activity
=== pg select
SELECT deleted_at, updated_at FROM t WHERE deleted_at IS NULL
=== pg select
SELECT * FROM users ORDER BY drop_date DESC LIMIT 10
=== pg select
select u.id, o.total from users u join orders o on o.user_id = u.id where u.id = $1
=== pg select
SELECT EXTRACT(year FROM created_at) FROM t
=== pg select
SELECT * FROM t WHERE a IS DISTINCT FROM b
=== pg select
SELECT id FROM t FOR UPDATE
=== pg select
SELECT id FROM t FOR UPDATE OF t SKIP LOCKED
=== pg select
(SELECT 1) UNION (SELECT 2)
=== pg select
WITH recent AS (SELECT * FROM orders WHERE ts > now() - interval '1 day') SELECT count(*) FROM recent
=== pg select
WITH delete_me AS (SELECT 1) SELECT * FROM delete_me
=== pg select
SELECT (update) FROM t
=== pg select
VALUES (1, 'DROP TABLE x'), (2, 'TRUNCATE')
=== pg select
SELECT 'COPY t TO PROGRAM ''rm -rf /'''
=== pg select
SELECT 'ALTER SYSTEM SET x = 1'
=== pg select
SELECT 1 AS "delete from users"
=== pg select
SELECT * FROM t WHERE note LIKE '%drop database%'
=== pg select
SELECT x::varchar(10), CAST(y AS numeric(10, 2)) FROM t
=== pg select,select
SELECT 1; SELECT 2
=== pg select
SELECT 1;
=== pg select esc
\tSELECT\n1\f
=== pg insert
INSERT INTO audit (action) VALUES ('DROP TABLE users')
=== pg insert
INSERT INTO t (drop_date) VALUES (now())
=== pg insert
insert into t select * from u where false
=== pg insert
INSERT INTO t VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = excluded.v
=== pg insert
INSERT INTO t VALUES ($$; DELETE FROM users$$)
=== pg update
UPDATE users SET name = 'x' WHERE id = 1
=== pg update
UPDATE users SET note = 'no where here' WHERE id = $1
=== pg update
update users set a = 1 /* comment */ where id = 2
=== pg update
UPDATE users u SET a = o.a FROM orders o WHERE o.id = u.id
=== pg update
UPDATE t SET a = (SELECT max(b) FROM u WHERE u.x = t.x) WHERE t.id = 3
=== pg update
UPDATE t SET drop_date = now() WHERE id = 1
=== pg delete
DELETE FROM sessions WHERE expires_at < now()
=== pg delete
delete from t where id = $1 returning *
=== pg delete
DELETE FROM t USING u WHERE t.id = u.id
=== pg delete
DELETE FROM t WHERE CURRENT OF c
=== pg delete
DELETE /* truncate? no */ FROM t WHERE id = 1
=== pg select,delete
WITH x AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM x
=== pg explain
EXPLAIN DELETE FROM users
=== pg explain
EXPLAIN (ANALYZE off) DELETE FROM users
=== pg select
EXPLAIN ANALYZE SELECT * FROM users
=== pg explain
EXPLAIN (COSTS false) UPDATE users SET a = 1
=== pg copy_to_stdout
COPY users TO STDOUT
=== pg copy_from_stdin
COPY users (a, b) FROM STDIN WITH (FORMAT csv)
=== pg copy_to_stdout
COPY (SELECT * FROM users WHERE note = 'TO PROGRAM') TO STDOUT
=== pg create_table
CREATE TABLE drop_log (id int, dropped_at timestamptz)
=== pg create_table
CREATE TABLE t (a int REFERENCES u(id), b text DEFAULT 'DROP')
=== pg create_index
CREATE INDEX CONCURRENTLY idx ON t (drop_date)
=== pg create_view
CREATE VIEW v AS SELECT truncate_logs FROM t
=== pg alter_table
ALTER TABLE t ADD COLUMN drop_date date
=== pg alter_table
ALTER TABLE t RENAME COLUMN delete_flag TO deleted
=== pg begin,insert,commit
BEGIN; INSERT INTO t VALUES (1); COMMIT
=== pg rollback
ROLLBACK
=== pg set
SET search_path TO app, public
=== pg set
SET statement_timeout = '5s'
=== pg set_transaction
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE
=== pg show
SHOW search_path
=== pg vacuum
VACUUM ANALYZE t
=== pg analyze
ANALYZE t
=== pg listen,notify
LISTEN drop_events; NOTIFY drop_events, 'DROP TABLE x'
=== pg select
PREPARE q (int) AS SELECT * FROM t WHERE id = $1
=== pg execute
EXECUTE q(1)
=== pg deallocate
DEALLOCATE q
=== pg declare
DECLARE c CURSOR FOR SELECT * FROM t
=== pg fetch
FETCH 10 FROM c
=== pg comment
COMMENT ON TABLE t IS 'never DROP this table'
=== pg refresh
REFRESH MATERIALIZED VIEW mv
=== my select
SELECT drop_date FROM events
=== my select
SELECT 'DROP DATABASE prod'
=== my select
SELECT "DROP DATABASE prod"
=== my select
SELECT 'a\'; DROP TABLE users; -- '
=== my select
SELECT 1 # DROP TABLE users
=== my select
SELECT 1 -- DROP TABLE users
=== my select
SELECT `drop`, `truncate` FROM `delete`
=== my select
SELECT * FROM t WHERE a = 1 /* ; DROP TABLE x */
=== my select
SELECT 1--1
=== my select
SELECT * FROM users WHERE id = ? LIMIT 1
=== my select
SELECT /*+ MAX_EXECUTION_TIME(1000) */ * FROM t
=== my select
SELECT * FROM t /*!90000 ; DROP TABLE users */
=== my-ansi select
SELECT "drop" FROM t
=== my-noesc select
SELECT 'a\' FROM t
=== my insert
INSERT INTO t (note) VALUES ('TRUNCATE users')
=== my insert
INSERT INTO t SET a = 1, b = 'DROP'
=== my replace
REPLACE INTO t VALUES (1, 'x')
=== my update
UPDATE t SET a = 1 WHERE id = 1 LIMIT 1
=== my update
UPDATE `t` SET `drop` = 1 WHERE `id` = ?
=== my delete
DELETE FROM t WHERE id = ?
=== my delete
DELETE FROM t WHERE id = 1 # trailing comment
=== my delete
DELETE /*! */ FROM t /*! WHERE id = 1 */
=== my use
USE app
=== my show
SHOW TABLES
=== my show
SHOW COLUMNS FROM t
=== my describe
DESCRIBE t
=== my set
SET NAMES utf8mb4
=== my set
SET @drop = 'DROP TABLE users'
=== my set
SET SESSION wait_timeout = 60
=== my begin,commit
START TRANSACTION; COMMIT
=== my create_table
CREATE TABLE IF NOT EXISTS `drop_log` (`id` INT PRIMARY KEY)
=== my alter_table
ALTER TABLE t ADD COLUMN truncate_at DATETIME
=== my explain
EXPLAIN SELECT * FROM t
=== my prepare
PREPARE s FROM 'SELECT * FROM t WHERE id = ?'
=== my execute
EXECUTE s USING @id
=== my optimize
OPTIMIZE TABLE t
=== my select
SELECT * FROM t WHERE note = "it\"s; DROP TABLE x"
=== maria select
SELECT 1 /*M! + 1 */
=== my select
SELECT 1 /*M! ; DROP TABLE users */
=== pg delete
DELETE FROM accounts WHERE id = 10
=== pg delete
DELETE FROM accounts WHERE id = 10 RETURNING *
=== pg delete
DELETE FROM accounts WHERE id IN (1, 2, 3)
=== pg delete
DELETE FROM accounts WHERE id = ANY('{1,2}'::int[])
=== pg delete
DELETE FROM accounts WHERE owner = 'nobody' AND true
=== pg delete
DELETE FROM accounts WHERE data = 'x'
=== pg delete
DELETE FROM accounts WHERE type = 'temp' OR key = 'k'
=== pg delete
DELETE FROM accounts WHERE id BETWEEN 100 AND 200
=== pg delete
DELETE FROM accounts WHERE id IN (SELECT id FROM accounts WHERE balance < 0)
=== pg delete
DELETE FROM accounts a WHERE EXISTS (SELECT 1 FROM accounts b WHERE b.id = a.id AND b.balance < 0)
=== pg delete
DELETE FROM accounts WHERE extract(year FROM now()) = 1999 AND id = 1
=== pg delete
DELETE FROM accounts WHERE lower(owner) = lower('NOBODY')
=== pg delete
DELETE FROM accounts WHERE NOT (id <= 1000)
=== pg delete
DELETE FROM accounts WHERE "id" = 4000
=== pg delete
DELETE FROM accounts WHERE owner LIKE 'tmp%'
=== pg delete
DELETE FROM accounts WHERE owner IS NULL
=== pg delete
DELETE FROM accounts WHERE balance < 0 RETURNING id AS where_deleted
=== pg delete
DELETE FROM accounts USING accounts b WHERE accounts.id = b.id AND b.balance < -1000
=== pg delete
delete from accounts where id = 99999
=== pg delete
DELETE FROM ONLY accounts WHERE id = 12345
=== pg delete
DELETE FROM accounts WHERE id = (SELECT max(id) FROM accounts) + 1000
=== pg delete
DELETE FROM accounts WHERE balance > 1000000 AND owner <> 'bank'
=== pg delete
DELETE FROM accounts WHERE coalesce(owner, '') = 'ghost'
=== pg delete
DELETE FROM accounts WHERE owner = 'x' OR id = 55555
=== pg delete
DELETE FROM accounts WHERE id = 1 AND 1 = 1
=== pg update
UPDATE accounts SET balance = balance + 1 WHERE id = 1
=== pg update
UPDATE accounts SET balance = 0 WHERE id = 77777
=== pg update
UPDATE accounts SET owner = upper(owner) WHERE id IN (SELECT id FROM accounts LIMIT 1)
=== pg update
UPDATE accounts SET balance = b.balance FROM accounts b WHERE accounts.id = b.id AND b.id = 2
=== pg update
UPDATE accounts SET (balance, owner) = (1, 'y') WHERE id = 88888
=== pg update
UPDATE accounts SET balance = 5 WHERE data = 'x'
=== pg update
UPDATE accounts SET owner = 'z' WHERE id = 3 RETURNING id, owner
=== pg update
UPDATE accounts SET balance = balance WHERE id = 3 AND true
=== pg update
UPDATE accounts AS a SET balance = a.balance WHERE a.id = 4
=== pg update
update accounts set owner = 'DELETE FROM accounts WHERE true' where id = 5
=== pg update
UPDATE accounts SET balance = 1 WHERE owner ILIKE 'owner1%'
=== pg update
UPDATE accounts SET balance = 2 WHERE id > 9 AND id < 11
=== pg update
UPDATE accounts SET balance = 3 WHERE id = 6 OR owner = 'no one'
=== pg update
UPDATE accounts SET balance = balance WHERE id IS NOT DISTINCT FROM 7
=== pg update
UPDATE accounts SET balance = balance WHERE created_at < now() - interval '30 days'
=== pg insert
INSERT INTO accounts VALUES (20, 'x', 1)
=== pg insert
INSERT INTO accounts (id, owner, balance) VALUES (21, 'DROP TABLE accounts', 0)
=== pg insert
INSERT INTO accounts SELECT 22, 'copy', balance FROM accounts WHERE id = 1
=== pg insert
INSERT INTO accounts VALUES (1, 'dup', 0) ON CONFLICT (id) DO NOTHING
=== pg insert
INSERT INTO accounts VALUES (1, 'dup', 0) ON CONFLICT (id) DO UPDATE SET balance = excluded.balance
=== pg insert
INSERT INTO accounts VALUES (23, 'r', 1) RETURNING id
=== pg insert
insert into accounts (id, owner) values (24, $$TRUNCATE accounts$$)
=== pg insert
INSERT INTO accounts DEFAULT VALUES
=== pg insert
WITH s AS (SELECT 25 AS id) INSERT INTO accounts (id) SELECT id FROM s
=== pg insert
INSERT INTO accounts (id, owner) VALUES (26, 'lo_unlink(1)')
=== pg merge
MERGE INTO accounts t USING (SELECT 30 AS id) s ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id, 'm', 0)
=== pg merge
MERGE INTO accounts t USING accounts s ON t.id = s.id WHEN MATCHED THEN DO NOTHING
=== pg merge
merge into accounts t using (values (31)) s(id) on t.id = s.id when not matched then insert (id) values (s.id)
=== pg select
SELECT * FROM accounts WHERE true
=== pg select
SELECT * FROM accounts WHERE 1 = 1
=== pg select
SELECT count(*) FROM accounts WHERE id = id
=== pg select
SELECT 'DELETE FROM accounts WHERE true'
=== pg select
SELECT 'MERGE INTO accounts USING s ON true WHEN MATCHED THEN DELETE'
=== pg select
SELECT $$ DO $x$ BEGIN DROP TABLE accounts; END $x$ $$
=== pg select
SELECT 'CALL wipe()' AS text
=== pg select
SELECT 'CREATE RULE r AS ON INSERT TO t DO ALSO DELETE FROM t'
=== pg select
SELECT format('DELETE FROM %I', 'accounts')
=== pg select
SELECT current_setting('role')
=== pg select
SELECT has_table_privilege('accounts', 'select')
=== pg select
SELECT pg_size_pretty(pg_database_size(current_database()))
=== pg select
SELECT * FROM dblink_log
=== pg select
SELECT dblinks FROM accounts
=== pg select
SELECT lo_get(4242)
=== pg select
SELECT pg_read_file_count FROM accounts
=== pg select
SELECT owner AS security_definer FROM accounts
=== pg select
SELECT 'ALTER TABLE accounts OWNER TO mallory'
=== pg select
SELECT 'GRANT ALL ON accounts TO public' AS grant_text
=== pg select
SELECT 'COPY accounts TO PROGRAM ''x'''
=== pg select
SELECT E'SET ROLE postgres'
=== pg select
SELECT * FROM accounts ORDER BY id LIMIT 5
=== pg select
SELECT id, sum(balance) OVER (ORDER BY id) FROM accounts
=== pg select
SELECT owner, count(*) FROM accounts GROUP BY owner HAVING count(*) > 1
=== pg select
SELECT a.id FROM accounts a JOIN accounts b ON a.id = b.id
=== pg select
SELECT a.id FROM accounts a LEFT JOIN accounts b USING (id) WHERE b.id IS NULL
=== pg select
SELECT * FROM accounts WHERE owner ~ '^owner[0-9]+$'
=== pg select
SELECT * FROM accounts WHERE id = ANY(ARRAY[1, 2])
=== pg select
SELECT jsonb_build_object('drop', 'table')
=== pg select
SELECT '{"delete": true}'::jsonb -> 'delete'
=== pg select
SELECT row_to_json(a) FROM accounts a WHERE id = 1
=== pg select
SELECT * FROM generate_series(1, 3) g
=== pg select
SELECT now(), current_date, current_user, session_user
=== pg select
SELECT version()
=== pg select
SELECT * FROM pg_stat_activity WHERE datname = current_database()
=== pg select
SELECT relname FROM pg_class WHERE relkind = 'r' LIMIT 3
=== pg select
SELECT * FROM information_schema.tables WHERE table_schema = 'public'
=== pg select
SELECT id FROM accounts FOR UPDATE
=== pg select
SELECT id FROM accounts FOR SHARE SKIP LOCKED
=== pg select
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r
=== pg select
WITH x AS MATERIALIZED (SELECT * FROM accounts) SELECT count(*) FROM x
=== pg select
SELECT * FROM accounts WHERE id IN (SELECT id FROM accounts WHERE owner = 'delete')
=== pg select
SELECT CASE WHEN balance > 0 THEN 'credit' ELSE 'debit' END FROM accounts
=== pg select
SELECT string_agg(owner, ',') FROM accounts
=== pg select
SELECT array_agg(id ORDER BY id) FROM accounts
=== pg select
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY balance) FROM accounts
=== pg select
SELECT count(*) FILTER (WHERE balance > 50) FROM accounts
=== pg select
SELECT * FROM accounts TABLESAMPLE SYSTEM (50)
=== pg select
SELECT * FROM accounts a, LATERAL (SELECT a.id * 2 AS d) x
=== pg select
SELECT 1 UNION SELECT 2 EXCEPT SELECT 3
=== pg select
VALUES (1, 'a'), (2, 'b')
=== pg select
TABLE accounts
=== pg select
SELECT md5('truncate'), sha256('drop'::bytea)
=== pg select
SELECT to_char(now(), 'YYYY-MM-DD')
=== pg select
SELECT interval '1 day' + now()
=== pg select
SELECT 'a' || 'b' AS "DROP TABLE"
=== pg select
SELECT "delete" FROM (SELECT 1 AS "delete") s
=== pg select
SELECT U&'\0041'
=== pg select
SELECT E'line\nbreak'
=== pg select
SELECT x'ff'::int
=== pg select
SELECT B'1010'
=== pg select
SELECT 1::numeric(10, 2)
=== pg select
SELECT cast('1' AS int)
=== pg select
SELECT pg_typeof(1)
=== pg select
SELECT coalesce(NULL, 'x'), nullif(1, 1), greatest(1, 2), least(1, 2)
=== pg select
SELECT * FROM unnest(ARRAY[1, 2]) WITH ORDINALITY
=== pg select
SELECT * FROM json_to_record('{"a":1}') AS x(a int)
=== pg select
SELECT * FROM pg_settings WHERE name = 'work_mem'
=== pg select
SELECT pg_backend_pid()
=== pg select
SELECT txid_current()
=== pg select
SELECT pg_is_in_recovery()
=== pg select
SELECT pg_sleep(0)
=== pg select
SELECT lo_creat(-1)
=== pg select
SELECT * FROM pg_largeobject_metadata
=== pg select
SELECT count(*) FROM pg_proc WHERE prosecdef
=== pg select
SELECT * FROM pg_policies
=== pg select
SELECT * FROM pg_roles WHERE rolname = current_user
=== pg select
SELECT * FROM pg_foreign_server
=== pg select
SELECT * FROM pg_publication
=== pg select
SELECT exists(SELECT 1 FROM accounts WHERE id = 1)
=== pg select
SELECT id FROM accounts WHERE owner = $tag$it's$tag$
=== pg select
SELECT /* DELETE FROM accounts WHERE true */ 1
=== pg select
SELECT 1 -- ; DROP TABLE accounts
=== pg select
SELECT 'lo_unlink' AS f, 'pg_read_file' AS g, 'dblink' AS h
=== pg select
SELECT * FROM accounts WHERE owner IN ('set role', 'grant')
=== pg select
SELECT regexp_replace('DROP SCHEMA app CASCADE', 'DROP', 'KEEP')
=== pg select
SELECT * FROM accounts WHERE id = 1 OR id = 2
=== pg select
SELECT setseed(0.5)
=== pg select
SELECT random() < 2
=== pg select
SELECT quote_ident('truncate')
=== pg select
SELECT pg_get_functiondef('tf'::regproc)
=== pg select
SELECT pg_get_viewdef('v'::regclass)
=== pg select
SELECT obj_description('accounts'::regclass)
=== pg select
SELECT nextval('accounts_seq_missing')
=== pg select
SELECT pg_advisory_lock(1), pg_advisory_unlock(1)
=== pg select
SELECT * FROM accounts NATURAL JOIN accounts b
=== pg select
SELECT DISTINCT ON (owner) owner, id FROM accounts ORDER BY owner, id
=== pg select
SELECT id FROM accounts ORDER BY id OFFSET 2 FETCH FIRST 2 ROWS ONLY
=== pg explain
EXPLAIN DELETE FROM accounts WHERE true
=== pg explain
EXPLAIN UPDATE accounts SET balance = 0
=== pg explain
EXPLAIN (COSTS OFF) SELECT * FROM accounts
=== pg explain
EXPLAIN (ANALYZE false) DELETE FROM accounts
=== pg select
EXPLAIN ANALYZE SELECT * FROM accounts WHERE id = 1
=== pg create_table
CREATE TABLE notes (id int, body text)
=== pg create_table
CREATE TEMP TABLE scratch AS SELECT * FROM accounts WHERE false
=== pg create_table
CREATE TABLE IF NOT EXISTS drop_me_later (id int)
=== pg create_table
CREATE UNLOGGED TABLE cache (k text PRIMARY KEY, v text)
=== pg create_table
CREATE TABLE t2 (LIKE accounts INCLUDING ALL)
=== pg create_table
CREATE TABLE parted (id int, d date) PARTITION BY RANGE (d)
=== pg create_table
CREATE TABLE t3 (id int GENERATED ALWAYS AS IDENTITY, type text, data jsonb)
=== pg create_table
create table "Security Definer" (owner text)
=== pg create_index
CREATE INDEX ON accounts (owner)
=== pg create_index
CREATE UNIQUE INDEX IF NOT EXISTS accounts_owner ON accounts (lower(owner))
=== pg create_index
CREATE INDEX accounts_brin ON accounts USING brin (id)
=== pg create_view
CREATE VIEW rich AS SELECT * FROM accounts WHERE balance > 100
=== pg create_view
CREATE TEMP VIEW tv AS SELECT 1
=== pg create_materialized_view
CREATE MATERIALIZED VIEW mv AS SELECT owner, sum(balance) FROM accounts GROUP BY owner
=== pg create_sequence
CREATE SEQUENCE ticket_seq START 100
=== pg create_type
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')
=== pg create_type
CREATE TYPE pair AS (a int, b text)
=== pg create_domain
CREATE DOMAIN positive_int AS int CHECK (VALUE > 0)
=== pg create_schema
CREATE SCHEMA reporting
=== pg create_schema
CREATE SCHEMA IF NOT EXISTS drop_zone
=== pg create_statistics
CREATE STATISTICS s1 (dependencies) ON id, balance FROM accounts
=== pg alter_table
ALTER TABLE accounts ADD COLUMN note text
=== pg alter_table
ALTER TABLE accounts ADD COLUMN type text
=== pg alter_table
ALTER TABLE accounts ADD COLUMN data_type text DEFAULT 'drop'
=== pg alter_table
ALTER TABLE accounts ALTER COLUMN balance SET DEFAULT 0
=== pg alter_table
ALTER TABLE accounts ALTER COLUMN owner SET NOT NULL
=== pg alter_table
ALTER TABLE accounts ADD CONSTRAINT positive CHECK (balance >= 0) NOT VALID
=== pg alter_table
ALTER TABLE accounts RENAME COLUMN owner TO holder
=== pg alter_table
ALTER TABLE accounts RENAME TO ledger
=== pg alter_table
ALTER TABLE accounts ENABLE ROW LEVEL SECURITY
=== pg alter_table
ALTER TABLE accounts FORCE ROW LEVEL SECURITY
=== pg alter_table
ALTER TABLE accounts SET (fillfactor = 90)
=== pg alter_table
ALTER TABLE accounts VALIDATE CONSTRAINT positive
=== pg alter_table
ALTER TABLE accounts ALTER COLUMN owner SET STATISTICS 100
=== pg alter_table
ALTER TABLE IF EXISTS accounts ADD COLUMN IF NOT EXISTS note2 text
=== pg alter_index
ALTER INDEX accounts_pkey RENAME TO accounts_pk
=== pg alter_sequence
ALTER SEQUENCE ticket_seq RESTART WITH 1
=== pg alter_view
ALTER VIEW v RENAME TO v2
=== pg alter_function
ALTER FUNCTION tf() RENAME TO tf_renamed
=== pg alter_function
ALTER FUNCTION tf() SECURITY INVOKER
=== pg alter_function
ALTER FUNCTION tf() SET search_path = public
=== pg alter_type
ALTER TYPE mood ADD VALUE 'great'
=== pg alter_type
ALTER TYPE pair RENAME ATTRIBUTE a TO x
=== pg comment
COMMENT ON TABLE accounts IS 'DROP TABLE accounts; -- not really'
=== pg comment
COMMENT ON COLUMN accounts.balance IS 'cents'
=== pg refresh
REFRESH MATERIALIZED VIEW CONCURRENTLY mv
=== pg vacuum
VACUUM (VERBOSE, ANALYZE) accounts
=== pg analyze
ANALYZE accounts (balance)
=== pg reindex
REINDEX TABLE accounts
=== pg cluster
CLUSTER accounts USING accounts_pkey
=== pg lock
LOCK TABLE accounts IN SHARE MODE
=== pg lock
LOCK accounts IN ACCESS EXCLUSIVE MODE NOWAIT
=== pg copy_to_stdout
COPY accounts TO STDOUT WITH (FORMAT csv, HEADER)
=== pg copy_to_stdout
COPY (SELECT * FROM accounts WHERE owner = 'PROGRAM') TO STDOUT
=== pg copy_to_stdout
copy accounts (id, owner) to stdout
=== pg set
SET search_path = public
=== pg set
SET LOCAL statement_timeout = '1s'
=== pg set
SET application_name = 'DROP TABLE accounts'
=== pg set
SET TIME ZONE 'UTC'
=== pg set
SET work_mem TO '64MB'
=== pg set
SET client_min_messages = warning
=== pg set_transaction
SET TRANSACTION READ ONLY
=== pg reset
RESET search_path
=== pg reset
RESET role
=== pg reset
RESET SESSION AUTHORIZATION
=== pg show
SHOW role
=== pg show
SHOW ALL
=== pg show
SHOW search_path
=== pg begin
BEGIN ISOLATION LEVEL REPEATABLE READ
=== pg begin
START TRANSACTION READ WRITE
=== pg commit
COMMIT
=== pg rollback
ROLLBACK
=== pg savepoint,release
SAVEPOINT a; RELEASE SAVEPOINT a
=== pg savepoint,rollback
SAVEPOINT b; ROLLBACK TO SAVEPOINT b
=== pg declare,fetch,move,close
DECLARE c CURSOR FOR SELECT * FROM accounts; FETCH 2 FROM c; MOVE NEXT IN c; CLOSE c
=== pg listen
LISTEN drop_events
=== pg notify
NOTIFY drop_events, 'TRUNCATE accounts'
=== pg unlisten
UNLISTEN *
=== pg discard
DISCARD PLANS
=== pg discard
DISCARD TEMP
=== pg deallocate
DEALLOCATE ALL
=== pg select
PREPARE q(int) AS SELECT * FROM accounts WHERE id = $1
=== pg delete
PREPARE d(int) AS DELETE FROM accounts WHERE id = $1
=== pg update
PREPARE u(int) AS UPDATE accounts SET balance = 0 WHERE id = $1
=== pg execute
EXECUTE q(1)
=== pg checkpoint
CHECKPOINT
=== pg select,select
SELECT 1; SELECT 'DROP OWNED BY x'
=== pg insert,delete
INSERT INTO accounts VALUES (40, 'a', 1); DELETE FROM accounts WHERE id = 40
=== pg begin,update,commit
BEGIN; UPDATE accounts SET balance = 1 WHERE id = 1; COMMIT
=== pg select
SELECT * FROM accounts WHERE owner = 'x' AND (balance > 10 OR balance < -10)
=== pg select
SELECT lower('WHERE 1=1')
=== pg select
SELECT * FROM accounts a WHERE a.id = (SELECT min(id) FROM accounts)
=== pg select
SELECT pg_catalog.pg_get_userbyid(10)
=== pg select
SELECT set_limit FROM (SELECT 1 AS set_limit) s
=== pg insert
INSERT INTO accounts (id, owner) SELECT 41, 'x' WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE id = 41)
=== pg delete
WITH old AS (SELECT id FROM accounts WHERE balance < 0) DELETE FROM accounts WHERE id IN (SELECT id FROM old)
=== pg update
WITH s AS (SELECT 1 AS id) UPDATE accounts SET balance = 0 FROM s WHERE accounts.id = s.id
=== pg select,delete
WITH d AS (DELETE FROM accounts WHERE id = 424242 RETURNING *) SELECT * FROM d
