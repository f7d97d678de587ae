#!/usr/bin/env bash
# Day-2 benchmark: in a running native ring of N nodes (with the management network), how long
# `labwire restart` of one node takes, and a converging `deploy` that adds one node and its link
# (and the one that removes them again). Each is run several times; the best and the median are
# printed per lab size, so a figure that grows with N shows at once (a converging deploy
# checks and makes only what changes, so its time should stay flat from 10 to 1000 nodes).
#
#   sudo benches/day2.sh              # rings of 10, 100 and 1000 nodes, release build
#   sudo benches/day2.sh 100 300      # other sizes
#   LABWIRE_BUILD=debug sudo -E benches/day2.sh   # the debug build (no release compile)
#   LABWIRE=target/release/labwire sudo -E benches/day2.sh   # a binary as built
#
# It prints figures; it passes or fails nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
[ "$(id -u)" = 0 ] || { echo "benches/day2.sh: run as root" >&2; exit 1; }
if [ -n "${LABWIRE:-}" ]; then
    LW=$LABWIRE     # a labwire binary as it is (LABWIRE_INIT names its labwire-init if not beside it)
elif [ "${LABWIRE_BUILD:-release}" = debug ]; then
    cargo build -q
    LW=$PWD/target/debug/labwire
else
    cargo build --release -q
    LW=$PWD/target/release/labwire
fi
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(10 100 1000)
RUNS=${RUNS:-5}
WORK=$(mktemp -d /tmp/lw-day2.XXXXXX)
LAB=
cleanup() {
    [ -n "$LAB" ] && "$LW" destroy --name "$LAB" --cleanup >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
now() { date +%s.%N; }
# best and median of the figures on standard input
stats() { python3 -c 'import sys,statistics as s; v=sorted(float(x) for x in sys.stdin); print(f"best {v[0]:.3f} s, median {s.median(v):.3f} s")'; }

ring() {
    local n=$1 extra=$2
    echo "name: $LAB"
    echo "mgmt: {network: $LAB, ipv4-subnet: 10.226.0.0/16}"
    echo "topology:"
    echo "  defaults: {kind: linux}"
    echo "  nodes:"
    for i in $(seq 1 "$n"); do echo "    n$i: {}"; done
    [ "$extra" = 1 ] && echo "    x: {}"
    echo "  links:"
    for i in $(seq 1 "$n"); do
        j=$(( i == n ? 1 : i + 1 ))
        echo "    - endpoints: [\"n$i:eth1\", \"n$j:eth2\"]"
    done
    [ "$extra" = 1 ] && echo "    - endpoints: [\"n1:eth3\", \"x:eth1\"]"
    return 0
}

timed() {
    local t0 t1
    t0=$(now)
    "$@" >"$WORK/out" 2>&1 || { cat "$WORK/out"; exit 1; }
    t1=$(now)
    python3 -c "print(f'{$t1 - $t0:.4f}')"
}

# The deploy's own figure ("lab L deployed: … in T s"): the change itself, without reading the
# topology file and printing the lab's table, which grow with the lab.
own() { sed -n 's/.*deployed: .* in \([0-9.]*\)s$/\1/p' "$WORK/out" | tail -1; }

printf '%-6s %-44s %s\n' nodes operation "time ($RUNS runs)"
for n in "${SIZES[@]}"; do
    LAB=d2lb-$n
    ring "$n" 0 >"$WORK/base.clab.yml"
    ring "$n" 1 >"$WORK/plus.clab.yml"
    "$LW" destroy --name "$LAB" --cleanup >/dev/null 2>&1 || true
    "$LW" deploy -q -t "$WORK/base.clab.yml" >/dev/null 2>"$WORK/deploy.err" || { cat "$WORK/deploy.err"; exit 1; }
    mid=n$(( n / 2 ))
    for _ in $(seq "$RUNS"); do timed "$LW" restart --name "$LAB" --node "$mid"; done >"$WORK/restart"
    : >"$WORK/add"; : >"$WORK/remove"; : >"$WORK/add-own"; : >"$WORK/remove-own"
    for _ in $(seq "$RUNS"); do
        timed "$LW" deploy -q -t "$WORK/plus.clab.yml" >>"$WORK/add"
        own >>"$WORK/add-own"
        timed "$LW" deploy -q -t "$WORK/base.clab.yml" >>"$WORK/remove"
        own >>"$WORK/remove-own"
    done
    printf '%-6s %-44s %s\n' "$n" "restart one node" "$(stats <"$WORK/restart")"
    printf '%-6s %-44s %s\n' "$n" "converging deploy: add one node and a link" "$(stats <"$WORK/add")"
    printf '%-6s %-44s %s\n' "$n" "  of which the change itself" "$(stats <"$WORK/add-own")"
    printf '%-6s %-44s %s\n' "$n" "converging deploy: remove them again" "$(stats <"$WORK/remove")"
    printf '%-6s %-44s %s\n' "$n" "  of which the change itself" "$(stats <"$WORK/remove-own")"
    "$LW" destroy --name "$LAB" --cleanup >/dev/null 2>&1
    LAB=
done
