#!/usr/bin/env bash
# Scale benchmark: N-node rings with the management network (1000, 3000 and 10,000 nodes by
# default), each against the kernel's floor measured in the same run: the same namespaces, the
# same management bridges (the management bridge as root plus leaf bridges joined by veth uplinks,
# as labwire lays them out past 768 ports) and the same veth pairs born in place, made by one
# `ip -batch` (iproute2), then deleted by another; and each namespace's own /sys, which every
# node has (benches/floor_sysfs.py). It prints deploy and destroy times, the ratios,
# labwire's cost per node above the floor, `inspect` of the deployed lab, peak memory, and Mininet
# at 1000 nodes for reference when its `mn` is installed.
#
#   sudo benches/scale.sh               # rings of 1000, 3000 and 10,000 nodes
#   sudo benches/scale.sh 1000 2000     # the sizes given
#   RUNS=3 sudo benches/scale.sh 1000   # each size three times
#
# It prints figures; it passes or fails nothing. The machine should be otherwise idle.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
[ "$(id -u)" = 0 ] || { echo "benches/scale.sh: run as root" >&2; exit 1; }
# LW=/path/to/labwire uses that build (labwire-init beside it) instead of building one.
if [ -z "${LW:-}" ]; then
    cargo build --release -q -p labwire -p runtime
    LW=$PWD/target/release/labwire
fi
WORK=$(mktemp -d /tmp/lw-scale.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
RUNS=${RUNS:-1}
ROOT_PORTS=768   # lab::mgmt_fabric::ROOT_PORTS
LEAF_PORTS=256   # lab::mgmt_fabric::LEAF_PORTS (the uplink is one of them)
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
per_node_ms() { python3 -c "print(f'{($1 - $2) * 1000 / $3:.3f}')"; }
# Waits (at most a minute) until both the floor and labwire start from a quiet machine: the kernel
# frees the namespaces of the run before in the background, for seconds after `ip netns del` or
# `destroy` returned, and that work would be counted against whatever runs next.
settle() {
    python3 - <<'PY'
import time
def busy():
    # user nice system idle iowait irq softirq steal (guest time is inside user already); time
    # another guest of the host takes (steal) is not this machine's work.
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    total = sum(v) - v[7]
    return total - v[3] - v[4], total
end = time.time() + 60
while time.time() < end:
    b0, t0 = busy(); time.sleep(1); b1, t1 = busy()
    if (b1 - b0) <= 0.1 * max(t1 - t0, 1):
        break
PY
}

# The floor: what labwire makes, in one ip -batch — N namespaces, the management bridge and its
# leaves, N management veths (host end on its bridge, eth0 born in the namespace), the ring's N
# veths with both ends born in their namespaces — and deleted in another; between the two, /sys
# mounted in each namespace and unmounted.
floor_ring() {
    local n=$1 f=$WORK/floor-$1.batch d=$WORK/floor-del-$1.batch
    python3 - "$n" "$f" "$d" "$ROOT_PORTS" "$LEAF_PORTS" <<'EOF'
import sys
n, up, down, root_ports, leaf_ports = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
with open(up, "w") as f, open(down, "w") as d:
    f.write("link add lwfbr0 type bridge\nlink set lwfbr0 up\n")
    for i in range(1, n + 1):
        f.write(f"netns add lwf{i}\n")
    bridge, used, leaves = "lwfbr0", 0, 0
    for i in range(1, n + 1):
        cap = root_ports if bridge == "lwfbr0" else leaf_ports
        if used >= cap:
            leaves += 1
            bridge = f"lwfl{leaves}"
            f.write(f"link add {bridge} up type bridge\n")
            f.write(f"link add lwfu{leaves} master lwfbr0 up type veth peer name lwfd{leaves}\n")
            f.write(f"link set lwfd{leaves} master {bridge} up\n")
            used = 1
        f.write(f"link add lwfm{i} master {bridge} up type veth peer name eth0 netns lwf{i}\n")
        used += 1
    for i in range(1, n + 1):
        j = 1 if i == n else i + 1
        f.write(f"link add eth1 netns lwf{i} up type veth peer name eth2 netns lwf{j}\n")
    for i in range(1, n + 1):
        d.write(f"netns del lwf{i}\n")
    for k in range(1, leaves + 1):
        d.write(f"link del lwfu{k}\nlink del lwfl{k}\n")
    d.write("link del lwfbr0\n")
EOF
    local t0 t1 t2 t3
    # ip -batch keeps every namespace it opens for `netns NAME` open (three per node), past the
    # open-file limit at 10,000 nodes: the batch goes in slices of 3000 commands.
    split -l 3000 -d -a 3 "$f" "$f.part"
    settle
    t0=$(now); for p in "$f".part*; do ip -batch "$p"; done; t1=$(now)
    # Every node's /sys (see benches/floor_sysfs.py): mounted and unmounted again before the
    # namespaces go, the mounts timed in ten groups to show how each costs more than the last.
    local sys
    sys=$(python3 benches/floor_sysfs.py lwf "$n" $(( n >= 10 ? n / 10 : 1 )))
    t2=$(now); ip -batch "$d"; t3=$(now)
    FLOOR_IP_UP=$(secs "$t0" "$t1")
    read -r _ FLOOR_SYS_UP _ FLOOR_SYS_DOWN _ FLOOR_SYS_GROUPS <<<"$sys"
    FLOOR_UP=$(python3 -c "print(f'{$FLOOR_IP_UP + $FLOOR_SYS_UP:.3f}')")
    FLOOR_DOWN=$(python3 -c "print(f'{$t3 - $t2 + $FLOOR_SYS_DOWN:.3f}')")
    # `ip netns del` returns before the kernel has freed the namespaces' veths.
    while ip -br link | grep -q '^lwfm'; do sleep 0.05; done
    FLOOR_GONE=$(python3 -c "print(f'{$(now) - $t2 + $FLOOR_SYS_DOWN:.3f}')")
}

run_lab() {
    local file=$1 name=$2 t0 t1 t2 t3
    settle
    t0=$(now); "$LW" deploy -q -t "$file" --stats >"$WORK/deploy.out" 2>"$WORK/deploy.err" || { cat "$WORK/deploy.err"; exit 1; }
    t1=$(now)
    INIT_RSS=$(ps -eo rss,args | awk -v lab="$name" '$2 ~ /labwire-init/ && index($0, "--lab " lab " ") {s+=$1; c++; if ($1>m) m=$1} END {printf "%.0f KB avg, %d KB max", s/c, m}')
    # Resident memory counts the pages a node's init shares with every other (the C library, the
    # init's code); its proportional share (PSS) is what each more node costs.
    INIT_PSS=$(python3 -c '
import os, sys
lab = sys.argv[1].encode()
pss = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        if not args[0].endswith(b"labwire-init") or b"--lab" not in args:
            continue
        if args[args.index(b"--lab") + 1] != lab:
            continue
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                pss.append(int(line.split()[1]))
    except (OSError, IndexError):
        pass
print(f"{sum(pss) / max(len(pss), 1):.0f} KB avg, {max(pss, default=0)} KB max")
' "$name")
    PEAK=$(grep -o 'peak RSS [0-9.]* MB' "$WORK/deploy.err" || echo "peak RSS ?")
    t2=$(now); "$LW" inspect --name "$name" --format json >/dev/null; t3=$(now)
    LW_INSPECT=$(secs "$t2" "$t3")
    # `destroy --name` as item 3 of issue 16 times it: every kernel object, process, name under
    # /run/netns and host file goes; the lab directory (one directory per node, as containerlab
    # makes them) stays, as without --cleanup, and its removal is timed apart: on an ext4 mounted
    # with `discard` each rmdir is a TRIM, and the floor makes no directories.
    t2=$(now); "$LW" destroy --name "$name" --stats >"$WORK/destroy.out" 2>"$WORK/destroy.err" || { cat "$WORK/destroy.err"; exit 1; }
    t3=$(now)
    LW_UP=$(secs "$t0" "$t1"); LW_DOWN=$(secs "$t2" "$t3")
    t2=$(now); rm -rf "$(dirname "$file")/clab-$name"; LW_DIR=$(secs "$t2" "$(now)")
    while ip -br link | grep -q '^lw[0-9a-f]\{8\}'; do sleep 0.1; done
}

ring() {
    local n=$1 run=$2 name="lwscale-ring$1"
    "$LW" generate ring --nodes "$n" --name "$name" --mgmt-index 176 -o "$WORK/$name.clab.yml"
    floor_ring "$n"
    run_lab "$WORK/$name.clab.yml" "$name"
    echo "ring of $n nodes + management network (run $run of $RUNS):"
    echo "  floor              deploy ${FLOOR_UP} s   destroy ${FLOOR_DOWN} s (kernel done freeing after ${FLOOR_GONE} s)"
    echo "    of which /sys    mount ${FLOOR_SYS_UP} s (tenths of the nodes: ${FLOOR_SYS_GROUPS} s)   unmount ${FLOOR_SYS_DOWN} s"
    echo "  labwire            deploy ${LW_UP} s   destroy ${LW_DOWN} s   inspect ${LW_INSPECT} s   (lab directory removal ${LW_DIR} s)"
    echo "  ratio to floor     deploy $(ratio "$LW_UP" "$FLOOR_UP")x ($(ratio "$LW_UP" "$FLOOR_IP_UP")x to ip -batch alone)   destroy $(ratio "$LW_DOWN" "$FLOOR_DOWN")x (to the kernel's finish: $(ratio "$LW_DOWN" "$FLOOR_GONE")x)"
    local pn pi
    pn=$(per_node_ms "$LW_UP" "$FLOOR_UP" "$n")
    pi=$(per_node_ms "$LW_UP" "$FLOOR_IP_UP" "$n")
    # Item 3 of issue 16: the cost per node above the floor grows no faster than the lab.
    if [ -z "${FIRST_PN:-}" ]; then FIRST_PN=$pn FIRST_PI=$pi FIRST_N=$n; fi
    echo "  above the floor    deploy ${pn} ms per node ($(ratio "$pn" "$FIRST_PN")x the ${FIRST_N}-node cost); above ip -batch alone ${pi} ms ($(ratio "$pi" "$FIRST_PI")x)"
    echo "  labwire ${PEAK}; node init resident memory: ${INIT_RSS}; proportional (PSS): ${INIT_PSS}"
    sed -n 's/^/    /p' "$WORK/deploy.err" | grep -v '^    $' || true
    grep -v INFO "$WORK/destroy.err" | sed -n 's/^/    /p' || true
}

mininet() {
    local n=$1
    if /usr/bin/python3 -c 'import mininet' 2>/dev/null; then
        local mout
        mout=$(/usr/bin/python3 benches/mininet_ring.py "$n")
        mn -c >/dev/null 2>&1 || true
        echo "mininet, ring of $n nodes (no management network): $mout"
    else
        echo "mininet: not installed (apt-get install --no-install-recommends mininet to compare)"
    fi
}

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 3000 10000)
echo "labwire $("$LW" version 2>/dev/null | head -1), $(nproc) CPUs, $(uname -r), $(date -u +%FT%TZ)"
for n in "${sizes[@]}"; do
    for run in $(seq 1 "$RUNS"); do ring "$n" "$run"; done
done
mininet 1000
