# MySQL/MariaDB blocking corpus: dangerous statements, plain and obfuscated
# (executable comments /*! */, /*!50001 */, MariaDB /*M! */, comments between
# keywords, backticks, multi-statements, PREPARE bodies), each of which MUST be
# caught. Same format as dangerous.sql (see its header); checked by
# codecs/tests/mysql_corpus.rs. Dialects: my (MySQL 8.0.36), my-ansi
# (ANSI_QUOTES), my-noesc (NO_BACKSLASH_ESCAPES), my-nover (version unknown),
# maria (MariaDB 10.11).

=== my drop_database
DROP DATABASE prod
=== my drop_database
drop DATABASE prod
=== my drop_database
DROP/**/DATABASE prod
=== my drop_database
/*!50001 DROP DATABASE prod */
=== my drop_database
DROP SCHEMA prod
=== my drop_database
/*!DROP SCHEMA prod*/
=== my drop_database
DROP # hidden
SCHEMA prod
=== maria drop_database
/*M!100100 DROP SCHEMA prod */
=== my drop_database
DROP SCHEMA IF EXISTS `prod`
=== my drop_database
/*!50001 DROP SCHEMA IF EXISTS `prod` */
=== my drop_database
SELECT 1; DROP SCHEMA IF EXISTS `prod`
=== my drop_database
DROP/**/SCHEMA IF EXISTS `prod`
=== my drop_table
DROP TABLE users
=== maria drop_table
/*M!100100 DROP TABLE users */
=== my drop_table
SELECT 'x;y' /*!; DROP TABLE users */
=== my drop_table
DROP # hidden
TABLE users
=== my drop_table
DROP TABLE IF EXISTS `app`.`users`, audit
=== my drop_table
DROP/**/TABLE IF EXISTS `app`.`users`, audit
=== my drop_table
drop TABLE IF EXISTS `app`.`users`, audit
=== my drop_table
SELECT 1; DROP TABLE IF EXISTS `app`.`users`, audit
=== my truncate
TRUNCATE TABLE users
=== my truncate
TRUNCATE # hidden
TABLE users
=== my truncate
/*!TRUNCATE TABLE users*/
=== my truncate
SELECT 'x;y' /*!; TRUNCATE TABLE users */
=== my truncate
TRUNCATE `app`.`users`
=== my truncate
SELECT 1; TRUNCATE `app`.`users`
=== my truncate
/*!50001 TRUNCATE `app`.`users` */
=== my truncate
truncate `app`.`users`
=== my delete_without_where
DELETE FROM users
=== my delete_without_where
SELECT 'x;y' /*!; DELETE FROM users */
=== maria delete_without_where
/*M!100100 DELETE FROM users */
=== my delete_without_where
/*!DELETE FROM users*/
=== my delete_without_where
DELETE FROM `users` ORDER BY id LIMIT 100
=== my delete_without_where
delete FROM `users` ORDER BY id LIMIT 100
=== my delete_without_where
DELETE/**/FROM `users` ORDER BY id LIMIT 100
=== my delete_without_where
/*!50001 DELETE FROM `users` ORDER BY id LIMIT 100 */
=== my update_without_where
UPDATE users SET is_admin = 1
=== my update_without_where
/*!UPDATE users SET is_admin = 1*/
=== my update_without_where
UPDATE # hidden
users SET is_admin = 1
=== maria update_without_where
/*M!100100 UPDATE users SET is_admin = 1 */
=== my update_without_where
UPDATE `users` SET `password` = '' ORDER BY id
=== my update_without_where
/*!50001 UPDATE `users` SET `password` = '' ORDER BY id */
=== my update_without_where
SELECT 1; UPDATE `users` SET `password` = '' ORDER BY id
=== my update_without_where
UPDATE/**/`users` SET `password` = '' ORDER BY id
=== my load_data
LOAD DATA INFILE '/etc/passwd' INTO TABLE t
=== maria load_data
/*M!100100 LOAD DATA INFILE '/etc/passwd' INTO TABLE t */
=== my load_data
SELECT 'x;y' /*!; LOAD DATA INFILE '/etc/passwd' INTO TABLE t */
=== my load_data
LOAD # hidden
DATA INFILE '/etc/passwd' INTO TABLE t
=== my load_data_local
LOAD DATA LOCAL INFILE '/home/u/.ssh/id_rsa' INTO TABLE t
=== my load_data_local
LOAD/**/DATA LOCAL INFILE '/home/u/.ssh/id_rsa' INTO TABLE t
=== my load_data_local
load DATA LOCAL INFILE '/home/u/.ssh/id_rsa' INTO TABLE t
=== my into_outfile
SELECT * FROM users INTO OUTFILE '/tmp/users.csv'
=== my into_outfile
SELECT # hidden
* FROM users INTO OUTFILE '/tmp/users.csv'
=== my into_outfile
/*!SELECT * FROM users INTO OUTFILE '/tmp/users.csv'*/
=== my into_outfile
SELECT 0x3c3f706870 INTO DUMPFILE '/var/www/x.php'
=== my into_outfile
SELECT 1; SELECT 0x3c3f706870 INTO DUMPFILE '/var/www/x.php'
=== my into_outfile
/*!50001 SELECT 0x3c3f706870 INTO DUMPFILE '/var/www/x.php' */
=== my set_global
SET GLOBAL general_log = 1
=== my set_global
SELECT 'x;y' /*!; SET GLOBAL general_log = 1 */
=== maria set_global
/*M!100100 SET GLOBAL general_log = 1 */
=== my set_global
SET @@GLOBAL.local_infile = ON
=== my set_global
set @@GLOBAL.local_infile = ON
=== my set_global
SET/**/@@GLOBAL.local_infile = ON
=== my set_global
SET @@global.sql_mode = ''
=== my set_global
/*!SET @@global.sql_mode = ''*/
=== my set_global
SET # hidden
@@global.sql_mode = ''
=== my grant
GRANT ALL PRIVILEGES ON *.* TO 'evil'@'%' WITH GRANT OPTION
=== my grant
/*!50001 GRANT ALL PRIVILEGES ON *.* TO 'evil'@'%' WITH GRANT OPTION */
=== my grant
SELECT 1; GRANT ALL PRIVILEGES ON *.* TO 'evil'@'%' WITH GRANT OPTION
=== my grant
GRANT FILE ON *.* TO `svc`@`%`
=== maria grant
/*M!100100 GRANT FILE ON *.* TO `svc`@`%` */
=== my grant
SELECT 'x;y' /*!; GRANT FILE ON *.* TO `svc`@`%` */
=== my create_role
CREATE USER 'evil'@'%' IDENTIFIED BY 'x'
=== my create_role
CREATE/**/USER 'evil'@'%' IDENTIFIED BY 'x'
=== my create_role
create USER 'evil'@'%' IDENTIFIED BY 'x'
=== my install
INSTALL SONAME 'auth_ed25519'
=== my install
INSTALL # hidden
SONAME 'auth_ed25519'
=== my install
/*!INSTALL SONAME 'auth_ed25519'*/
=== my kill
KILL QUERY 17
=== my kill
SELECT 1; KILL QUERY 17
=== my kill
/*!50001 KILL QUERY 17 */
=== my kill
KILL CONNECTION 17
=== my kill
SELECT 'x;y' /*!; KILL CONNECTION 17 */
=== maria kill
/*M!100100 KILL CONNECTION 17 */
=== my shutdown
SHUTDOWN
=== my shutdown
shutdown
=== my shutdown
/**/SHUTDOWN
=== my delete_without_where
PREPARE s FROM 'DELETE FROM users'
=== my drop_table
PREPARE s FROM "DROP TABLE users"
=== my drop_database
DROP -- c
DATABASE prod
=== my drop_database
DrOp DaTaBaSe prod
=== my-ansi drop_table
SELECT "a;b"; DROP TABLE "users"
=== my-noesc drop_table
SELECT 'a\'; DROP TABLE users; -- '
=== my drop_table
SELECT 'a\'; DROP TABLE x; -- '; DROP TABLE users
=== my fn:load_file
SELECT LOAD_FILE('/etc/shadow')
=== my fn:load_file
SELECT /*!load_file*/('/etc/shadow')
=== my set_global
SET PERSIST max_connections = 1
=== my set_global
SET @@persist.max_connections = 1
=== my set_global
SET @x = 1, GLOBAL max_connections = 1
=== my set_global
SET @ global = 1
=== my grant
GRANT `role_admin` TO 'svc'@'%'
=== my revoke
REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'dba'@'%'
=== my install
INSTALL PLUGIN evil SONAME 'evil.so'
=== my kill
KILL 17
=== maria drop_database
/*M! DROP SCHEMA prod */
=== maria drop_table
SELECT 1 /*M!; DROP TABLE users */
=== my-nover unknown
/*!50001 TRUNCATE users */
=== my unknown
SELECT 'unterminated
=== my unknown
/*! DROP TABLE users
