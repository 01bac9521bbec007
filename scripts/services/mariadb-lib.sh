# shellcheck shell=bash
# MariaDB helpers shared by scripts/services/mariadb (one standalone server) and
# scripts/services/galera (three nodes). Sourced after lib.sh.
#
# One instance lives in one directory DIR:
#   DIR/server.cnf     the server's only option file (mariadbd --defaults-file), no secrets
#   DIR/client.cnf     [client] user=lifeboat + password, TCP to 127.0.0.1:PORT     (0600)
#   DIR/root.cnf       [client] user=root + password, over the socket                (0600)
#   DIR/backup.cnf     !include server.cnf + [mariadb-backup] lifeboat's credentials (0600)
#   DIR/data/          datadir (owned by the mysql user when run as root)
#   DIR/run/           mysqld.sock, mysqld.pid (written by mariadbd)
#   DIR/log/error.log  mariadbd's error log; DIR/log/stdout.log what it printed elsewhere
#   DIR/pid            the pid this script started
#
# The passwords are in DIR/../secrets/ (shared by the instances of one script) and only ever
# go into option files and the SQL sent on stdin, never into a command line.

MDB_ADMIN_USER=lifeboat
MDB_OS_USER="$(svc_user mysql)"

mdb_need() { need_cmd mariadbd mariadb mariadb-admin mariadb-install-db mariadb-dump; }

# mdb_write_cnfs DIR PORT SECRETS_DIR [EXTRA_MYSQLD_LINES]
mdb_write_cnfs() {
  local dir=$1 port=$2 secrets=$3 extra=${4:-} rootpw pw
  mkdir -p "$dir"
  chmod 755 "$dir"
  mkdir_owned "$MDB_OS_USER" 750 "$dir/data"
  mkdir_owned "$MDB_OS_USER" 755 "$dir/run" "$dir/log"
  rootpw=$(secret "$secrets/mariadb-root")
  pw=$(secret "$secrets/mariadb-$MDB_ADMIN_USER")
  {
    echo "# Written by scripts/services; rewritten at every start."
    echo "[mysqld]"
    if is_root; then echo "user=$MDB_OS_USER"; fi
    cat <<EOF
datadir=$dir/data
socket=$dir/run/mysqld.sock
pid-file=$dir/run/mysqld.pid
port=$port
bind-address=$LB_HOST
log-error=$dir/log/error.log
skip-name-resolve
character-set-server=utf8mb4
collation-server=utf8mb4_general_ci
innodb_buffer_pool_size=64M
innodb_log_file_size=32M
performance_schema=OFF
max_connections=100
$extra
EOF
  } >"$dir/server.cnf.tmp"
  chmod 644 "$dir/server.cnf.tmp"
  mv "$dir/server.cnf.tmp" "$dir/server.cnf"
  write_private "$dir/client.cnf" <<EOF
# lifeboat's admin account (ALL PRIVILEGES WITH GRANT OPTION), over TCP.
# Use: mariadb --defaults-extra-file=$dir/client.cnf
[client]
user=$MDB_ADMIN_USER
password=$pw
host=$LB_HOST
port=$port
EOF
  write_private "$dir/root.cnf" <<EOF
# MariaDB's root account, over the socket.
[client]
user=root
password=$rootpw
socket=$dir/run/mysqld.sock
protocol=socket
EOF
  write_private "$dir/backup.cnf" <<EOF
# For mariadb-backup: the server's options, then lifeboat's credentials.
# Use: mariadb-backup --defaults-file=$dir/backup.cnf --backup ...
!include $dir/server.cnf
[mariadb-backup]
user=$MDB_ADMIN_USER
password=$pw
socket=$dir/run/mysqld.sock
EOF
}

mdb_initialised() { [ -d "$1/data/mysql" ]; }

# mdb_install_db DIR: initialise an empty datadir (system tables, root over the socket).
mdb_install_db() {
  local dir=$1 log="$1/log/install-db.log"
  say "initialising $dir/data (mariadb-install-db)"
  if ! mariadb-install-db --defaults-file="$dir/server.cnf" \
    --auth-root-authentication-method=socket --auth-root-socket-user="$(id -un)" \
    --skip-test-db >"$log" 2>&1; then
    die_log "$log" "mariadb-install-db failed for $dir/data"
  fi
}

mdb_ping() {
  mariadb-admin --no-defaults --protocol=socket --socket="$1/run/mysqld.sock" \
    --connect-timeout=2 ping
}

# mdb_spawn DIR [MARIADBD ARGS...]: start mariadbd in the background (no waiting).
mdb_spawn() {
  local dir=$1
  shift
  rm -f "$dir/run/mysqld.sock" "$dir/run/mysqld.sock.lock" "$dir/run/mysqld.pid"
  spawn "$dir/pid" "$dir/log/stdout.log" mariadbd --defaults-file="$dir/server.cnf" "$@"
}

# mdb_wait_up DIR WHAT TIMEOUT: wait until the server answers on its socket.
mdb_wait_up() {
  wait_for "$3" "$1/pid" mariadbd "$1/log/error.log" "$2" mdb_ping "$1"
}

# mdb_sql_root DIR: run the SQL on stdin as root (option file, over the socket).
mdb_sql_root() {
  mariadb --defaults-extra-file="$1/root.cnf" --batch --skip-column-names
}

# mdb_setup_accounts DIR SECRETS_DIR: give root a password and create the admin account, the
# first time (DIR/.accounts marks it done). Runs on a node that accepts writes. Also the
# server's OS user over unix_socket with what mariadb-backup needs, as Debian's packages set
# up: the mariabackup SST donor logs in that way, with no password in any file.
mdb_setup_accounts() {
  local dir=$1 secrets=$2 rootpw pw
  [ -e "$dir/.accounts" ] && return 0
  rootpw=$(secret "$secrets/mariadb-root")
  pw=$(secret "$secrets/mariadb-$MDB_ADMIN_USER")
  # Freshly initialised: root (the OS user running this) gets in through unix_socket.
  if ! mariadb --no-defaults --protocol=socket --socket="$dir/run/mysqld.sock" \
    --user="$(id -un)" --batch <<EOF >>"$dir/log/accounts.log" 2>&1; then
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('$rootpw');
CREATE USER IF NOT EXISTS '$MDB_ADMIN_USER'@'localhost' IDENTIFIED BY '$pw';
CREATE USER IF NOT EXISTS '$MDB_ADMIN_USER'@'$LB_HOST' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON *.* TO '$MDB_ADMIN_USER'@'localhost' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$MDB_ADMIN_USER'@'$LB_HOST' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS '$MDB_OS_USER'@'localhost' IDENTIFIED VIA unix_socket;
GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR ON *.* TO '$MDB_OS_USER'@'localhost';
FLUSH PRIVILEGES;
EOF
    die_log "$dir/log/accounts.log" "could not create the accounts in $dir"
  fi
  touch "$dir/.accounts"
}

# mdb_check_accounts DIR: the admin account logs in over TCP with client.cnf.
mdb_check_accounts() {
  local dir=$1 out
  if ! out=$(mariadb --defaults-extra-file="$dir/client.cnf" --batch --skip-column-names \
    -e 'SELECT CURRENT_USER()' 2>&1); then
    die "the admin account cannot log in with $dir/client.cnf: $out"
  fi
}

# mdb_stop DIR WHAT: clean shutdown (SIGTERM), SIGKILL after 90 s; socket and pid removed.
mdb_stop() {
  local dir=$1 what=$2
  if pid_alive "$dir/pid" mariadbd; then
    say "stopping $what (pid $(pid_of "$dir/pid"))"
  fi
  stop_pid "$dir/pid" mariadbd 90
  rm -f "$dir/run/mysqld.sock" "$dir/run/mysqld.sock.lock" "$dir/run/mysqld.pid"
}

# mdb_kill DIR: SIGKILL, as a crash would.
mdb_kill() {
  local dir=$1 p
  if pid_alive "$1/pid" mariadbd; then
    p=$(pid_of "$dir/pid")
    kill -KILL "$p"
    wait_gone "$p" 10 || die "pid $p (mariadbd) is still there after SIGKILL"
  fi
  rm -f "$dir/pid"
}
