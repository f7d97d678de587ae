#!/usr/bin/env bash
# Native runtime benchmark: deploy and destroy N-node rings (with the management network) and a
# CLOS fabric, printing seconds and the ratio to the kernel's floor measured in the same run: the
# same namespaces, bridge and veth pairs created in place by one `ip -batch` (iproute2), which is the
# least any tool can do. Mininet is measured too when its `mn` command is installed.
#
#   sudo benches/native.sh            # rings of 100 and 1000 nodes, CLOS 16x8
#   sudo benches/native.sh 300        # one ring of 300 nodes
#
# It prints figures; it passes or fails nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
[ "$(id -u)" = 0 ] || { echo "benches/native.sh: run as root" >&2; exit 1; }
cargo build --release -q
LW=$PWD/target/release/labwire
WORK=$(mktemp -d /tmp/lw-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

# The floor: N namespaces, one bridge, N management veths (host end on the bridge, eth0 born in the
# namespace) and the ring's N veths with both ends born in their namespaces, in one ip -batch.
floor_ring() {
    local n=$1 f=$WORK/floor-$1.batch d=$WORK/floor-del-$1.batch
    : >"$f"; : >"$d"
    echo "link add lwfbr0 type bridge" >>"$f"
    echo "link set lwfbr0 up" >>"$f"
    for i in $(seq 1 "$n"); do echo "netns add lwf$i"; done >>"$f"
    for i in $(seq 1 "$n"); do
        echo "link add lwfm$i master lwfbr0 up type veth peer name eth0 netns lwf$i"
    done >>"$f"
    for i in $(seq 1 "$n"); do
        j=$(( i == n ? 1 : i + 1 ))
        echo "link add eth1 netns lwf$i up type veth peer name eth2 netns lwf$j"
    done >>"$f"
    for i in $(seq 1 "$n"); do echo "netns del lwf$i"; done >>"$d"
    echo "link del lwfbr0" >>"$d"
    local t0 t1 t2
    t0=$(now); ip -batch "$f"; t1=$(now); ip -batch "$d"; t2=$(now)
    FLOOR_UP=$(secs "$t0" "$t1"); FLOOR_DOWN=$(secs "$t1" "$t2")
    # `ip netns del` returns before the kernel has freed the namespaces' veths; the time until the
    # last host end is gone is the floor of a destroy that leaves nothing behind when it returns.
    while ip -br link | grep -q '^lwfm'; do sleep 0.02; done
    FLOOR_GONE=$(secs "$t1" "$(now)")
}

run_lab() {
    local file=$1 name=$2 t0 t1 t2
    t0=$(now); "$LW" deploy -q -t "$file" --stats >"$WORK/deploy.out" 2>"$WORK/deploy.err" || { cat "$WORK/deploy.err"; exit 1; }
    t1=$(now)
    INIT_RSS=$(ps -eo rss,args | awk -v lab="$name" '$2 ~ /labwire-init/ && index($0, "--lab " lab " ") {s+=$1; c++; if ($1>m) m=$1} END {printf "%.0f KB avg, %d KB max", s/c, m}')
    PEAK=$(grep -o 'peak RSS [0-9.]* MB' "$WORK/deploy.err" || echo "peak RSS ?")
    "$LW" destroy --name "$name" --cleanup >/dev/null 2>&1
    t2=$(now)
    LW_UP=$(secs "$t0" "$t1"); LW_DOWN=$(secs "$t1" "$t2")
    while ip -br link | grep -q '^lw[0-9a-f]\{8\}'; do sleep 0.1; done
}

ring() {
    local n=$1 name="lwbench-ring$1"
    "$LW" generate ring --nodes "$n" --name "$name" --mgmt-index 250 -o "$WORK/$name.clab.yml"
    floor_ring "$n"
    run_lab "$WORK/$name.clab.yml" "$name"
    echo "ring of $n nodes (+ management network):"
    echo "  floor (ip -batch)  deploy ${FLOOR_UP} s   destroy ${FLOOR_DOWN} s (kernel done freeing after ${FLOOR_GONE} s)"
    echo "  labwire            deploy ${LW_UP} s   destroy ${LW_DOWN} s"
    echo "  ratio to floor     deploy $(ratio "$LW_UP" "$FLOOR_UP")x   destroy $(ratio "$LW_DOWN" "$FLOOR_DOWN")x (to the kernel's finish: $(ratio "$LW_DOWN" "$FLOOR_GONE")x)"
    echo "  labwire ${PEAK}; node init resident memory: ${INIT_RSS}"
    if /usr/bin/python3 -c 'import mininet' 2>/dev/null; then
        local mout mb ms
        mout=$(/usr/bin/python3 benches/mininet_ring.py "$n")
        mn -c >/dev/null 2>&1 || true
        mb=$(echo "$mout" | sed -E 's/.*build ([0-9.]+) s.*/\1/'); ms=$(echo "$mout" | sed -E 's/.*stop ([0-9.]+) s.*/\1/')
        echo "  mininet (same ring, no management network) build ${mb} s   stop ${ms} s"
        echo "  mininet / labwire  deploy $(ratio "$mb" "$LW_UP")x   destroy $(ratio "$ms" "$LW_DOWN")x"
    else
        echo "  mininet: not installed (apt-get install --no-install-recommends mininet to compare)"
    fi
}

clos() {
    local tiers=$1 name="lwbench-clos"
    "$LW" generate clos --tiers "$tiers" --name "$name" --mgmt-index 251 -o "$WORK/$name.clab.yml"
    run_lab "$WORK/$name.clab.yml" "$name"
    local links; links=$(grep -c endpoints "$WORK/$name.clab.yml")
    echo "CLOS $tiers ($links links): labwire deploy ${LW_UP} s, destroy ${LW_DOWN} s; ${PEAK}"
}

if [ $# -gt 0 ]; then
    for n in "$@"; do ring "$n"; done
else
    ring 100
    ring 1000
    clos 16,8
fi
