# MySQL/MariaDB look-alikes that MUST pass as their class: dangerous words in
# strings, comments, backticks and executable comments the server skips
# (a version above the server's, /*M! */ on MySQL). Same format as benign.sql;
# checked by codecs/tests/mysql_corpus.rs.

=== my select
SELECT 'DROP DATABASE prod' AS s
=== my select
SELECT "TRUNCATE users"
=== my select
SELECT `drop`, `truncate`, `grant` FROM `kill`
=== my select
SELECT * FROM t # ; DROP TABLE users
=== my select
SELECT * FROM t -- ; DROP TABLE users
=== my select
SELECT * FROM t /* ; DROP TABLE users */
=== my select
SELECT * FROM t /*!90000 ; DROP TABLE users */
=== my select
SELECT * FROM t /*M! ; DROP TABLE users */
=== maria select
SELECT * FROM t /*M!999999 ; DROP TABLE users */
=== maria select
SELECT * FROM t /*!999999 ; DROP TABLE users */
=== my-ansi select
SELECT "DROP TABLE users" FROM t
=== my-noesc select
SELECT 'a\', 'DROP TABLE users'
=== my select
SELECT 'it''s; DROP TABLE users'
=== my select
SELECT 'a\'; DROP TABLE users; -- '
=== my select
SELECT load_date, drop_count, truncated FROM stats
=== my select
SELECT /*+ MAX_EXECUTION_TIME(500) */ id FROM users WHERE id = 1
=== my select
SELECT * FROM users WHERE id = ? FOR UPDATE
=== my select
SELECT COUNT(*) FROM `app`.`users` WHERE deleted_at IS NULL
=== my select
SELECT u.id, o.total FROM users u JOIN orders o ON o.user_id = u.id WHERE o.total > 10
=== my select
SELECT id FROM t WHERE note LIKE '%GRANT ALL%'
=== my select
SELECT JSON_EXTRACT(doc, '$.drop') FROM docs
=== my select
SELECT 1 FROM DUAL WHERE 'SET GLOBAL x=1' <> ''
=== my select
SELECT CONCAT('LOAD DATA', ' INFILE') AS s
=== my select
SELECT 'INTO OUTFILE' AS s
=== my select
SELECT a FROM t ORDER BY a DESC LIMIT 10 OFFSET 20
=== my select
SELECT a FROM t GROUP BY a HAVING COUNT(*) > 1
=== my select
SELECT * FROM (SELECT 1 AS `delete`) AS d
=== my select
SELECT x'44524f50', b'0101', 0x44524F50
=== my select
SELECT @@session.sql_mode, @@global.max_connections
=== my select
SELECT DATABASE(), USER(), VERSION()
=== my select
SELECT 5 -- 2

=== my select,select
SELECT 1; SELECT 'DROP TABLE users'
=== my select,select
SELECT 1;SELECT `truncate` FROM t
=== my select
select 1 # trailing ; drop table x
=== my select
/*!SELECT*/ 1
=== my select
/*!50001 SELECT 1 */
=== maria select
/*M!100100 SELECT 1 */
=== my select
SELECT 1 /*!50001 , 2 */
=== my select
SELECT * FROM t WHERE a = 1 /*!50001 AND b = 2 */
=== my select
(SELECT 1) UNION ALL (SELECT 2)
=== my select
WITH x AS (SELECT 1 AS a) SELECT a FROM x
=== my insert
INSERT INTO audit (msg) VALUES ('DROP DATABASE prod attempted')
=== my insert
INSERT INTO t SET a = 1, b = 'TRUNCATE'
=== my insert
INSERT IGNORE INTO t (a) VALUES (1), (2), (3)
=== my insert
INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = a + 1
=== my insert
INSERT INTO `users` (`name`, `delete`) VALUES (?, ?)
=== my insert
INSERT INTO archive SELECT * FROM events WHERE ts < NOW() - INTERVAL 1 DAY
=== my insert
/*!INSERT*/ INTO t VALUES (1)
=== my replace
REPLACE INTO settings (k, v) VALUES ('theme', 'dark')
=== my update
UPDATE users SET last_login = NOW() WHERE id = ?
=== my update
UPDATE `users` SET `drop` = 1 WHERE `id` = 7
=== my update
UPDATE users SET note = 'UPDATE users SET x = 1' WHERE id = 1
=== my update
UPDATE LOW_PRIORITY users SET a = 1 WHERE id IN (1, 2, 3)
=== my update
UPDATE users SET a = 1 WHERE id = 1 # no; DELETE FROM users
=== my update
UPDATE t SET a = 1 /*!50001 WHERE id = 1 */
=== my update
UPDATE users u SET u.a = 1 WHERE u.id = 3 ORDER BY u.id LIMIT 1
=== my delete
DELETE FROM sessions WHERE expires_at < NOW()
=== my delete
DELETE FROM t WHERE id = ? LIMIT 1
=== my delete
DELETE FROM `delete` WHERE `where` = 1
=== my delete
DELETE FROM t WHERE note = 'DELETE FROM users'
=== my delete
DELETE LOW_PRIORITY QUICK FROM t WHERE id = 1
=== my delete
delete from t where id = 1 -- only one
=== my delete
DELETE FROM t /*!50001 WHERE id = 1 */
=== maria delete
DELETE FROM t WHERE id = 1 RETURNING id
=== my create_table
CREATE TABLE IF NOT EXISTS notes (id INT PRIMARY KEY, `drop` TEXT)
=== my create_table
CREATE TEMPORARY TABLE tmp (a INT)
=== my create
CREATE INDEX idx_a ON t (a)
=== my create
CREATE VIEW v AS SELECT 'DROP' AS a
=== my alter_table
ALTER TABLE t ADD COLUMN note VARCHAR(100) DEFAULT 'DROP'
=== my alter_table
ALTER TABLE `t` ADD INDEX (`delete`)
=== my set
SET NAMES utf8mb4
=== my set
SET @stmt = 'DROP TABLE users'
=== my set
SET SESSION wait_timeout = 60
=== my set
SET @@session.time_zone = '+00:00'
=== my set
SET autocommit = 0
=== my set
SET TRANSACTION ISOLATION LEVEL READ COMMITTED
=== my set
SET @global = 1
=== my set
SET @persist = 'x', @GLOBAL_count = 2
=== my set
SET character_set_client = utf8mb4
=== my show
SHOW TABLES
=== my show
SHOW GRANTS
=== my show
SHOW VARIABLES LIKE 'general_log%'
=== my show
SHOW CREATE TABLE `users`
=== my show
SHOW FULL PROCESSLIST
=== my show
SHOW DATABASES LIKE 'drop%'
=== my describe
DESCRIBE users
=== my describe
DESC `users`
=== my explain
EXPLAIN SELECT * FROM users WHERE id = 1
=== my use
USE `app`
=== my begin
BEGIN
=== my begin
START TRANSACTION READ ONLY
=== my commit
COMMIT
=== my rollback
ROLLBACK
=== my begin,insert,commit
START TRANSACTION; INSERT INTO t VALUES (1); COMMIT
=== my savepoint
SAVEPOINT sp1
=== my prepare
PREPARE s FROM 'SELECT * FROM users WHERE id = ?'
=== my execute
EXECUTE s USING @id
=== my deallocate
DEALLOCATE PREPARE s
=== my select
SELECT * FROM t WHERE `call` = 1
=== my analyze
ANALYZE TABLE users
=== my optimize
OPTIMIZE TABLE sessions
=== my lock
LOCK TABLES t READ
=== my unlock
UNLOCK TABLES
=== my select
SELECT 1 /*!99999 ; GRANT ALL ON *.* TO x */
=== my select
SELECT `GRANT ALL ON *.* TO x` FROM t
=== my-ansi select
SELECT "x""; DROP TABLE users" FROM t
=== my-noesc select
SELECT 'C:\', 'SET GLOBAL x = 1'
=== maria select
SELECT * FROM t WHERE a = 1 /*M!100100 AND b = 2 */
