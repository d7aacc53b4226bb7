# shellcheck shell=bash
# bench/lib.sh: shell pieces shared by the bench scripts. Sourced (`. bench/lib.sh` from
# the repository root), never run; the caller defines log() first.

# Installs the Debian packages given (the caller lists only those missing).
bench_install() {
    (($#)) || return 0
    log "installing $*"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Makes a switchyard binary when the Makefile has a rule for it (unless NO_BUILD is set; a
# binary elsewhere, e.g. an older build to compare with, is used as it is), then checks
# that it is there.
bench_switchyard() { # path
    if [[ -z ${NO_BUILD:-} ]] && make -n "$1" >/dev/null 2>&1; then
        make -j2 "$1" >/dev/null || { log "$1: build failed"; exit 1; }
    fi
    [[ -x $1 ]] || { log "$1 missing"; exit 1; }
}

# Ports on 127.0.0.1: the first free one from a random start. pick_port runs in $(...),
# so the caller must have the server listening before it picks the next one.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
next_port=$((20000 + RANDOM % 20000))
pick_port() {
    while ! port_free "$next_port"; do next_port=$((next_port + 1)); done
    echo "$next_port"
    next_port=$((next_port + 1))
}

# Stops the processes given (ours, by pid): SIGTERM, up to 5 s each to exit, then SIGKILL.
bench_stop() { # pid...
    local p
    for p in "$@"; do kill "$p" 2>/dev/null || true; done
    for p in "$@"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
}

# Median of the numbers on stdin, one a line (nothing for no input).
median() { sort -g | awk '{a[NR] = $1} END {if (!NR) exit; if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
