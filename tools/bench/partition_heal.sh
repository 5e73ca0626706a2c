#!/usr/bin/env bash
# Heal time of a minority partition made by the kernel, on real sgmpd processes.
#
# Five sgmpd (--heartbeat-ms 20 --suspect-ms 300, durable state) run in a private network
# namespace on 127.0.0.1; iptables drops every datagram between {n1, n2} and
# {n3, n4, n5} for HOLD seconds and until the majority has a view of its own, then the
# rules go.
# Printed per run: the time from the heal (one flush of the rules) to the moment the
# last of the five installed the first view holding all five names, read from the
# event logs' timestamps. Needs root, ip and iptables; cleans up after itself.
#
# usage: tools/bench/partition_heal.sh BIN_DIR [RUNS] [HOLD_SECONDS]
#   BIN_DIR holds sgmpd (e.g. target/release).
set -euo pipefail
BIN=${1:?usage: partition_heal.sh BIN_DIR [RUNS] [HOLD_SECONDS]}
RUNS=${2:-4}
HOLD=${3:-3}
NS="sgmp-heal-$$"
DIR=$(mktemp -d)
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT

port() { echo $((17601 + $1)); }

# check.py LOGDIR AFTER_US [NODES]: "ok DELAY_US" once the last view of every node of
# NODES (default 1-5) holds exactly their names (one version), else "wait"; DELAY_US
# is the newest of those installations minus AFTER_US (0: not asked).
cat > "$DIR/check.py" <<'PY'
import json, os, sys
d, after = sys.argv[1], int(sys.argv[2])
nodes = [int(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "1,2,3,4,5").split(",")]
last = {}
for i in nodes:
    p = os.path.join(d, f"n{i}.log")
    rec = None
    if os.path.exists(p):
        for line in open(p):
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("kind") in ("view", "excluded", "start", "left"):
                rec = r
    last[i] = rec
ok = all(r and r["kind"] == "view" for r in last.values())
if ok:
    vs = {r["version"] for r in last.values()}
    names = {tuple(sorted(m.split("#")[0] for m in r["members"])) for r in last.values()}
    ok = len(vs) == 1 and names == {tuple(sorted(f"n{i}" for i in nodes))}
if ok and after > 0:
    ts = max(r["ts_us"] for r in last.values())
    print("ok", ts - after)
elif ok:
    print("ok 0")
else:
    print("wait")
PY

wait_all() { # LOGDIR AFTER_US TIMEOUT_S [NODES] -> prints the delay in µs
    local deadline=$((SECONDS + $3)) out
    while :; do
        out=$(python3 "$DIR/check.py" "$1" "$2" "${4:-1,2,3,4,5}")
        if [[ $out == ok* ]]; then echo "${out#ok }"; return 0; fi
        if (( SECONDS > deadline )); then echo "timeout"; return 1; fi
        sleep 0.05
    done
}

rules() { # OP=-A: drop every datagram between the two sides
    for a in 0 1; do for b in 2 3 4; do
        for pair in "$a $b" "$b $a"; do
            set -- $pair
            ip netns exec "$NS" iptables "$OP" INPUT -p udp --sport "$(port "$1")" \
                --dport "$(port "$2")" -j DROP
        done
    done; done
}

seeds=$(for i in 0 1 2 3 4; do printf '127.0.0.1:%s,' "$(port $i)"; done)
seeds=${seeds%,}
for run in $(seq 1 "$RUNS"); do
    R="$DIR/run$run"
    mkdir -p "$R"
    ip netns add "$NS"
    ip netns exec "$NS" ip link set lo up
    PIDS=()
    for i in 0 1 2 3 4; do
        n=$((i + 1))
        ip netns exec "$NS" "$BIN/sgmpd" --id "n$n" --listen "127.0.0.1:$(port $i)" \
            --seeds "$seeds" --event-log "$R/n$n.log" --control "$R/n$n.sock" \
            --state-dir "$R/n$n.state" --heartbeat-ms 20 --suspect-ms 300 \
            --coldstart-rounds 3 --coldstart-round-ms 60 2>"$R/n$n.stderr" &
        PIDS+=($!)
    done
    wait_all "$R" 0 15 >/dev/null
    OP=-A rules
    sleep "$HOLD"
    # The majority has removed the minority before the heal.
    if ! wait_all "$R" 0 15 3,4,5 >/dev/null; then
        echo "run $run: the majority did not remove the minority within 15 s"
    fi
    # All rules go at once (one flush: the namespace holds no other rule); the heal
    # is stamped just before it.
    healed=$(date +%s%6N)
    ip netns exec "$NS" iptables -F INPUT
    if d=$(wait_all "$R" "$healed" 20); then
        printf 'run %d: heal -> one view of all five: %d ms\n' "$run" $((d / 1000))
    else
        printf 'run %d: no view of all five within 20 s of the heal\n' "$run"
    fi
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    { wait; } 2>/dev/null || true
    PIDS=()
    ip netns del "$NS"
done
