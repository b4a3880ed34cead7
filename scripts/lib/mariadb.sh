# Throw-away MariaDB servers for scripts/bench-mariadb (sourced, bash).
#
# Every server is this script's own: a data directory under $MB_RUN (made
# by mb_init), its own socket, ports on 127.0.0.1 only, `--no-defaults` so
# no /etc/mysql file is read. Never the machine's service. mb_cleanup (run
# it from an EXIT trap) kills them, by their own pids, and removes $MB_RUN.
#
#   mb_init                      # MB_RUN=$(mktemp -d ...), the trap's state
#   mb_single DIR                # install + start one mariadbd, wait for it
#   mb_galera DIR0 DIR1 DIR2     # a 3-node Galera cluster on loopback, wait for size 3
#   mb_q SOCK SQL                # root over the socket, tab-separated, no headers
#   mb_stop DIR                  # kill one server now
#   mb_cleanup

MB_PIDS=()
MB_DIRS=()
MB_AS_MYSQL=()

mb_init() {
    # Not /tmp: it may be a tmpfs, where an fsync costs nothing. /var/tmp is
    # on disk on Debian; MB_TMP overrides.
    MB_RUN=$(mktemp -d "${MB_TMP:-/var/tmp}/mb2fa-bench-XXXXXX")
    chmod 755 "$MB_RUN"
    if [[ $(id -u) == 0 ]]; then MB_AS_MYSQL=(--user=mysql); fi
}

mb_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

mb_q() { mariadb --no-defaults -S "$1" -u root -N -B -e "$2"; }

mb_install() { # dir
    mkdir -p "$1/data"
    if [[ $(id -u) == 0 ]]; then chown -R mysql "$1"; fi
    mariadb-install-db --no-defaults "${MB_AS_MYSQL[@]}" --datadir="$1/data" \
        --auth-root-authentication-method=socket --skip-test-db >"$1/install.log" 2>&1 ||
        { cat "$1/install.log" >&2; return 1; }
}

mb_start() { # dir extra-args...
    local d=$1
    shift
    mkdir -p "$d/data"
    if [[ $(id -u) == 0 ]]; then chown -R mysql "$d"; fi
    /usr/sbin/mariadbd --no-defaults "${MB_AS_MYSQL[@]}" --datadir="$d/data" --socket="$d/sock" \
        --port="$(mb_free_port)" --bind-address=127.0.0.1 --skip-name-resolve --pid-file="$d/pid" \
        --log-error="$d/err.log" --innodb-buffer-pool-size=256M --max-connections=300 "$@" \
        </dev/null >/dev/null 2>&1 &
    MB_PIDS+=($!)
    MB_DIRS+=("$d")
    echo $! >"$d/server.pid"
}

mb_wait() { # dir [cluster-size]: until it answers (and, for Galera, is synced in a cluster of that size)
    local d=$1 want=${2:-} got
    for _ in $(seq 1800); do
        if ! kill -0 "$(cat "$d/server.pid")" 2>/dev/null; then
            echo "mariadbd in $d died; its log:" >&2
            tail -n 30 "$d/err.log" >&2
            return 1
        fi
        if [[ -z $want ]]; then
            mb_q "$d/sock" "SELECT 1" >/dev/null 2>&1 && return 0
        else
            got=$(mb_q "$d/sock" "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
                WHERE VARIABLE_NAME IN ('wsrep_cluster_size', 'wsrep_local_state_comment', 'wsrep_ready')
                ORDER BY VARIABLE_NAME" 2>/dev/null | tr '\n' ' ') || got=
            [[ $got == "$want Synced ON " ]] && return 0
        fi
        sleep 0.1
    done
    echo "mariadbd in $d did not come up in 180 s; its log:" >&2
    tail -n 30 "$d/err.log" >&2
    return 1
}

mb_single() { # dir
    mb_install "$1"
    mb_start "$1"
    mb_wait "$1"
}

mb_galera() { # dir0 dir1 dir2
    local g=() i d addr extra
    for i in 0 1 2; do g+=("$(mb_free_port)"); done
    addr="gcomm://127.0.0.1:${g[0]},127.0.0.1:${g[1]},127.0.0.1:${g[2]}"
    for i in 0 1 2; do
        d=${*:$((i + 1)):1}
        # The first node is installed and bootstraps the cluster; the others
        # start empty and get its data by SST (rsync).
        if ((i == 0)); then mb_install "$d"; fi
        extra=(--wsrep-on=ON --wsrep-provider=/usr/lib/galera/libgalera_smm.so
            --wsrep-cluster-name="mb2fa-bench-$$" --wsrep-cluster-address="$addr"
            --wsrep-node-name="node$i" --wsrep-node-address="127.0.0.1:${g[$i]}"
            "--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:${g[$i]};ist.recv_addr=127.0.0.1:$(mb_free_port)"
            --wsrep-sst-receive-address="127.0.0.1:$(mb_free_port)" --wsrep-sst-method=rsync
            --binlog-format=ROW --innodb-autoinc-lock-mode=2)
        if ((i == 0)); then extra+=(--wsrep-new-cluster); fi
        mb_start "$d" "${extra[@]}"
        mb_wait "$d" $((i + 1))
    done
    for d in "$@"; do mb_wait "$d" 3; done
}

mb_stop() { # dir
    local p
    p=$(cat "$1/server.pid" 2>/dev/null) || return 0
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

mb_cleanup() {
    local p
    for p in "${MB_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for p in "${MB_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    # rsync SST leaves a helper (wsrep_sst_rsync's rsync daemon) behind a
    # killed joiner: those are ours too, found by their pid files.
    for p in "${MB_DIRS[@]}"; do
        if [[ -f $p/data/rsync_sst.pid ]]; then kill -9 "$(cat "$p/data/rsync_sst.pid")" 2>/dev/null || true; fi
    done
    if [[ -n ${MB_RUN:-} && -d $MB_RUN ]]; then rm -rf "$MB_RUN"; fi
}
