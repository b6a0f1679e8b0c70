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
=== pg call
CALL refresh_stats()
=== pg declare
DECLARE c CURSOR FOR SELECT * FROM t
=== pg fetch
FETCH 10 FROM c
=== pg comment
COMMENT ON TABLE t IS 'never DROP this table'
=== pg refresh
REFRESH MATERIALIZED VIEW mv
=== pg merge
MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v
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
