# A throwaway PostgreSQL server for the benchmarks (sourced, not run): initdb + pg_ctl in a
# directory of its own on a free loopback port, as the user nobody when run as root (PostgreSQL
# refuses root), fsync on. Used by replication_lag.sh and store_compare.sh.
#
#   source bench/scratch_postgres.sh
#   start_scratch_postgres "$DIR/pg" || exit 0   # says "skipped: ..." without PostgreSQL
#   ... $PG_URI (database postgres, user srn), "${PG_AS[@]}" "$PGBIN/psql" ...
#   stop_scratch_postgres                        # in the script's cleanup

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_scratch_postgres <dir>: sets PGBIN, PGPORT, PG_DIR, PG_AS (the command prefix that runs
# as the server's user) and PG_URI; returns 1 (having said so) when PostgreSQL is not installed.
start_scratch_postgres() {
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [[ ! -x $PGBIN/initdb ]]; then
    echo "skipped: PostgreSQL is not installed (deploy/install-deps.sh)"
    return 1
  fi
  PG_DIR=$1
  mkdir -p "$PG_DIR"
  PG_AS=()
  if [[ $(id -u) == 0 ]]; then
    chmod 755 "$(dirname "$PG_DIR")"
    chown nobody "$PG_DIR"
    PG_AS=(runuser -u nobody --)
  fi
  PGPORT=$(free_port)
  "${PG_AS[@]}" "$PGBIN/initdb" -D "$PG_DIR/data" -U srn --auth=trust --no-sync -E UTF8 \
    --locale=C >/dev/null
  "${PG_AS[@]}" "$PGBIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/pg.log" -w \
    -o "-p $PGPORT -k $PG_DIR -c listen_addresses=127.0.0.1" start >/dev/null
  PG_URI="postgresql://srn@127.0.0.1:$PGPORT/postgres"
}

stop_scratch_postgres() {
  [[ -n ${PG_DIR:-} ]] || return 0
  "${PG_AS[@]}" "$PGBIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
}
