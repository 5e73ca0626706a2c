#!/usr/bin/env bash
# `make demo`: five sgmpd on 127.0.0.1, the first view, a SIGKILL of the mgr and the
# new view with the time the change took, a sixth process joining, then a summary.
# Every process started here is killed on exit, even on failure.
set -euo pipefail
BIN=${BIN:-target/release}
DIR=$(mktemp -d /tmp/sgmp-demo.XXXXXX)
declare -A PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

BASE=$((20000 + RANDOM % 20000))
port() { echo $((BASE + $1)); }
SEEDS=$(for i in 1 2 3 4 5; do printf '127.0.0.1:%s,' "$(port "$i")"; done)
SEEDS=${SEEDS%,}
ctl() { "$BIN/sgmpctl" --control "$DIR/n$1.sock" "${@:2}"; }
now_us() { echo $(( $(date +%s%N) / 1000 )); }

start() {
    "$BIN/sgmpd" --id "n$1" --listen "127.0.0.1:$(port "$1")" --seeds "$SEEDS" \
        --event-log "$DIR/n$1.log" --control "$DIR/n$1.sock" \
        --heartbeat-ms 50 --suspect-ms 300 --protocol-timeout-ms 600 2>"$DIR/n$1.err" &
    PIDS[$1]=$!
}

# members <node>: the member count of its current view (0 if not a member)
members() { ctl "$1" status 2>/dev/null | awk '/^phase/{m=($2=="member")} /^members/{n=(m?NF-1:0)} END{print n+0}'; }

# wait_size <count> <nodes...>: until every node is in a view of <count> members
wait_size() {
    local want=$1; shift
    for _ in $(seq 1 300); do
        local ok=1
        for i in "$@"; do [ "$(members "$i")" = "$want" ] || { ok=0; break; }; done
        [ $ok = 1 ] && return 0
        sleep 0.05
    done
    echo "demo: no view of $want members among nodes $*" >&2
    for i in "$@"; do tail -3 "$DIR/n$i.err" >&2 || true; done
    return 1
}

echo "== starting five sgmpd on 127.0.0.1:$(port 1)..$(port 5) (cold start)"
T0=$(now_us)
for i in 1 2 3 4 5; do start "$i"; done
wait_size 5 1 2 3 4 5
echo "   one group formed in $(( ($(now_us) - T0) / 1000 )) ms"
echo
ctl 2 view
MGR=$(ctl 2 view | awk 'NR==3{print $2}')
VICTIM=${MGR%%#*}; VICTIM=${VICTIM#n}
echo
echo "== kill -KILL the mgr $MGR"
TK=$(now_us)
kill -KILL "${PIDS[$VICTIM]}"; wait "${PIDS[$VICTIM]}" 2>/dev/null || true; unset "PIDS[$VICTIM]"
LIVE=$(for i in 1 2 3 4 5; do [ "$i" != "$VICTIM" ] && echo "$i"; done)
# shellcheck disable=SC2086
wait_size 4 $LIVE
FIRST=$(echo $LIVE | awk '{print $1}')
# The first view without the victim, as logged by the survivors.
TV=$(cat "$DIR"/n*.log | grep '"kind":"view"' | grep -v "\"$MGR\"" \
    | sed -n 's/.*"ts_us":\([0-9]*\).*/\1/p' | awk -v k="$TK" '$1>k' | sort -n | head -1)
echo "   new view installed $(( (TV - TK) / 1000 )) ms after the kill"
echo
ctl "$FIRST" view
echo
echo "== starting n6, which joins"
start 6
# shellcheck disable=SC2086
wait_size 5 $LIVE 6
ctl 6 view
echo
echo "== stopping everything (SIGTERM: graceful leave)"
for i in "${!PIDS[@]}"; do kill -TERM "${PIDS[$i]}"; done
for i in "${!PIDS[@]}"; do wait "${PIDS[$i]}" || echo "   n$i exited with $?"; done
PIDS=()
echo
echo "== summary"
VIEWS=$(cat "$DIR"/n*.log | grep -c '"kind":"view"')
VERSIONS=$(cat "$DIR"/n*.log | grep '"kind":"view"' | sed -n 's/.*"version":\([0-9]*\).*/\1/p' | sort -un | wc -l)
DISTINCT=$(cat "$DIR"/n*.log | grep '"kind":"view"' | sed -n 's/.*\("version":.*\)}/\1/p' | sort -u | wc -l)
echo "   $VIEWS view installations, $VERSIONS versions, $DISTINCT distinct (version, members) pairs"
[ "$VERSIONS" = "$DISTINCT" ] && echo "   one view per version across all processes: OK" \
    || { echo "   TWO VIEWS FOR ONE VERSION"; exit 1; }
echo "   mgr killed: $MGR; view change took $(( (TV - TK) / 1000 )) ms; total demo $(( ($(now_us) - T0) / 1000 )) ms"
