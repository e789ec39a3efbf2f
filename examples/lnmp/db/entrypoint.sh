#!/bin/sh
# First start: create the data directory, the database, the user and the demo table.
set -eu
datadir=/var/lib/mysql
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
if [ ! -d "$datadir/mysql" ]; then
    chown -R mysql:mysql "$datadir"
    mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db >/dev/null
    init=/run/mysqld/init.sql
    cat > "$init" <<SQL
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('${MARIADB_ROOT_PASSWORD}');
CREATE DATABASE IF NOT EXISTS \`${MARIADB_DATABASE}\`;
CREATE USER IF NOT EXISTS '${MARIADB_USER}'@'%' IDENTIFIED BY '${MARIADB_PASSWORD}';
GRANT ALL ON \`${MARIADB_DATABASE}\`.* TO '${MARIADB_USER}'@'%';
CREATE TABLE IF NOT EXISTS \`${MARIADB_DATABASE}\`.notes (
    id INT AUTO_INCREMENT PRIMARY KEY,
    body VARCHAR(200) NOT NULL,
    created TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO \`${MARIADB_DATABASE}\`.notes (body) VALUES ('hello from MariaDB');
FLUSH PRIVILEGES;
SQL
    chown mysql:mysql "$init"
    exec mariadbd --user=mysql --datadir="$datadir" --bind-address=0.0.0.0 --init-file="$init"
fi
exec mariadbd --user=mysql --datadir="$datadir" --bind-address=0.0.0.0
