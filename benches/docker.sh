#!/usr/bin/env bash
# Docker runtime benchmark: deploy and destroy time of an N-node ring (default 50) of docker
# nodes, each run against figures measured in the same run (the machine may be loaded: only the
# ratios compare). Runs alternate which goes first, the floor or labwire; the end prints the best
# and the median of each figure over the runs, and of each ratio.
#  - the engine's floor: the very containers of the same topology file (labwire's own create
#    request, the same names, eth0 on the same Docker network with the same IPv4 and IPv6
#    addresses; no links) created and started through the Engine API, the network first, by as
#    many threads as labwire keeps engine requests in flight (CPUs x
#    runtime::engine::ENGINE_REQUESTS_PER_WORKER), each thread with its own connection
#    (crates/runtime/examples/docker_floor.rs). Target: deploy <= 1.10x;
#  - the engine's own removal of labwire's containers: the lab deployed again, its containers and
#    then its network force-removed through the Engine API by as many threads (docker_floor
#    --remove), before labwire's destroy removes the rest. Target: destroy <= 1.2x;
#  - the by-hand baseline: the same management network made with `docker network create`, then
#    `docker run -d --network NET --ip A --ip6 B` per node, one after another, then the ring's veth
#    pairs created in the host and moved into the containers (`ip link set … netns PID`).
#
#   sudo benches/docker.sh            # 50 nodes, 1 run
#   sudo benches/docker.sh 50 3       # 50 nodes, 3 runs
#
# Needs a running dockerd; builds the image lwt-busybox:dk (a `docker import` of the host's static
# busybox) when missing. Environment: LABWIRE (a labwire binary; labwire-init must sit next to it),
# DOCKER_FLOOR (a docker_floor example binary), BENCH_LAB and BENCH_NET (the lab's name and its
# management subnets 10.NET.0.0/24 and fd00:NET::/64; default lwbench-dk and 199). It prints
# figures; it passes or fails nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
[ "$(id -u)" = 0 ] || { echo "benches/docker.sh: run as root" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "benches/docker.sh: no Docker engine answers (start dockerd)" >&2; exit 1; }
N=${1:-50}
runs=${2:-1}
if [ -z "${LABWIRE:-}" ]; then
    cargo build --release -q
    LABWIRE=${CARGO_TARGET_DIR:-$PWD/target}/release/labwire
fi
if [ -z "${DOCKER_FLOOR:-}" ]; then
    cargo build --release -q -p runtime --example docker_floor
    DOCKER_FLOOR=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/docker_floor
fi
LW=$LABWIRE
IMAGE=lwt-busybox:dk
WORK=$(mktemp -d /tmp/lw-dkbench.XXXXXX)
LAB=${BENCH_LAB:-lwbench-dk}
NET=${BENCH_NET:-199}
HAND=$LAB-hand
par=$(nproc)
# Engine requests labwire keeps in flight while it creates docker nodes (see the header).
inflight=$(( par * 4 ))

hand_rm() {
    ids=$(docker ps -aq --filter "label=lwbench=$HAND")
    [ -z "$ids" ] || docker rm -f $ids >/dev/null
    # The engine releases removed containers' endpoints a moment after the removal returns.
    for _ in $(seq 1 100); do
        docker network inspect "$HAND" >/dev/null 2>&1 || break
        docker network rm "$HAND" >/dev/null 2>&1 && break
        sleep 0.1
    done
}
cleanup() { "$LW" destroy --name "$LAB" --cleanup >/dev/null 2>&1 || true; hand_rm || true; rm -rf "$WORK"; }
trap cleanup EXIT

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
    mkdir -p "$WORK/root/bin" "$WORK/root/etc" "$WORK/root/tmp" "$WORK/root/proc" "$WORK/root/sys" "$WORK/root/dev"
    cp /bin/busybox "$WORK/root/bin/busybox"
    for a in sh ls cat sleep ip ping env hostname echo grep; do ln -s busybox "$WORK/root/bin/$a"; done
    tar -C "$WORK/root" -cf "$WORK/rootfs.tar" .
    docker import -c 'CMD ["/bin/sleep", "1000000"]' "$WORK/rootfs.tar" "$IMAGE" >/dev/null
fi

# The privileges labwire gives a container: --privileged, or where this host's capability bounding
# set lacks some capabilities (runc then fails on --privileged), all the others and no confinement.
if docker run --rm --network none --privileged "$IMAGE" true >/dev/null 2>&1; then
    PRIV=(--privileged)
else
    missing=$(python3 - <<'EOF'
caps = "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE".split()
last = int(open("/proc/sys/kernel/cap_last_cap").read())
bnd = next(int(l.split()[1], 16) for l in open("/proc/self/status") if l.startswith("CapBnd:"))
print(" ".join(c for i, c in enumerate(caps[: last + 1]) if not bnd >> i & 1))
EOF
)
    PRIV=(--cap-add ALL --security-opt seccomp=unconfined --security-opt apparmor=unconfined
          --device-cgroup-rule 'a *:* rwm')
    for c in $missing; do PRIV+=(--cap-drop "$c"); done
fi

{
    echo "name: $LAB"
    echo "mgmt: {network: $LAB, ipv4-subnet: 10.$NET.0.0/24, ipv6-subnet: fd00:$NET::/64}"
    echo "topology:"
    echo "  defaults: {runtime: docker, image: \"$IMAGE\"}"
    echo "  nodes:"
    for i in $(seq 1 "$N"); do echo "    n$i: {kind: linux}"; done
    echo "  links:"
    for i in $(seq 1 "$N"); do
        j=$(( i % N + 1 ))
        echo "    - endpoints: [\"n$i:eth1\", \"n$j:eth2\"]"
    done
} >"$WORK/ring.clab.yml"

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

floor_run() { "$DOCKER_FLOOR" --topology "$WORK/ring.clab.yml" --workers "$inflight"; }

# By hand: the management network as a Docker network (the lab's subnets), one `docker run` after
# another on it with the node's addresses (labwire's: n1 .2, n2 .3, …), then each ring link a veth
# pair made in the host and its ends moved into the two containers' network namespaces.
hand_run() {
    docker network create -d bridge --subnet "10.$NET.0.0/24" --gateway "10.$NET.0.1" --ipv6 \
        --subnet "fd00:$NET::/64" --gateway "fd00:$NET::1" "$HAND" >/dev/null
    for i in $(seq 1 "$N"); do
        docker run -d --network "$HAND" --ip "10.$NET.0.$(( i + 1 ))" \
            --ip6 "fd00:$NET::$(printf %x $(( i + 1 )))" "${PRIV[@]}" --label "lwbench=$HAND" \
            --name "$HAND-n$i" --hostname "n$i" "$IMAGE" >/dev/null
    done
    mapfile -t pids < <(docker inspect -f '{{.State.Pid}}' $(seq -f "$HAND-n%g" 1 "$N"))
    for i in $(seq 1 "$N"); do
        j=$(( i % N + 1 ))
        ip link add "lwh${i}a" type veth peer name "lwh${i}b"
        ip link set "lwh${i}a" netns "${pids[i - 1]}"
        ip link set "lwh${i}b" netns "${pids[j - 1]}"
    done
}

labwire_run() {
    t0=$(now); "$LW" deploy -t "$WORK/ring.clab.yml" -q >/dev/null; t1=$(now)
    lw_s=$(secs "$t0" "$t1")
    t0=$(now); "$LW" destroy --name "$LAB" --cleanup >/dev/null 2>&1 || true; t1=$(now)
    destroy_s=$(secs "$t0" "$t1")
}

# The engine's removal of the containers (then the network) of a labwire deploy.
removal_run() {
    "$LW" deploy -t "$WORK/ring.clab.yml" -q >/dev/null
    removal_s=$("$DOCKER_FLOOR" --topology "$WORK/ring.clab.yml" --workers "$inflight" --remove)
    "$LW" destroy --name "$LAB" --cleanup >/dev/null 2>&1 || true
}

# Docker (seen with 20.10) now and then keeps counting endpoints of removed containers and then
# refuses to remove their network; a restart of dockerd recounts. The figures of a run where that
# happened include the wait for it, and the next runs would find the network made: stop there.
leaked() {
    docker network inspect "$1" >/dev/null 2>&1 || return 1
    echo "the engine still counts endpoints on network $1, whose containers are removed (restart dockerd to recount): stopping after $(( r - 1 )) complete runs" >&2
}

echo "docker ring of $N nodes, $inflight engine requests in flight, load $(cut -d" " -f1-3 /proc/loadavg) (engine: $(docker version -f '{{.Server.Version}}, API {{.Server.APIVersion}}'))"
: >"$WORK/runs"
for r in $(seq 1 "$runs"); do
    hand_rm
    t0=$(now); hand_run; t1=$(now)
    hand_s=$(secs "$t0" "$t1")
    hand_rm
    leaked "$HAND" && break
    # Whichever goes first may find the engine warmer or the machine quieter: alternate.
    if [ $(( r % 2 )) = 1 ]; then
        read -r floor_s floor_rm_s < <(floor_run)
        leaked "$LAB" && break
        labwire_run
        leaked "$LAB" && break
    else
        labwire_run
        leaked "$LAB" && break
        read -r floor_s floor_rm_s < <(floor_run)
        leaked "$LAB" && break
    fi
    removal_run
    leaked "$LAB" && break
    echo "$lw_s $floor_s $hand_s $destroy_s $removal_s $floor_rm_s" >>"$WORK/runs"
    echo "run $r: deploy ${lw_s} s, engine API floor ${floor_s} s: $(ratio "$lw_s" "$floor_s")x (target <= 1.10); by hand ${hand_s} s: $(ratio "$lw_s" "$hand_s")x; destroy ${destroy_s} s, engine removal ${removal_s} s: $(ratio "$destroy_s" "$removal_s")x (target <= 1.2; the floor's removal of its own containers ${floor_rm_s} s); load $(cut -d" " -f1 /proc/loadavg)"
done
[ -s "$WORK/runs" ] || exit 1
python3 - "$WORK/runs" <<'EOF'
import statistics, sys
runs = [[float(x) for x in l.split()] for l in open(sys.argv[1]) if l.strip()]
cols = list(zip(*runs))
names = ["deploy", "engine API floor", "by hand", "destroy", "engine removal"]
figs = "; ".join(f"{n} {min(c):.2f}/{statistics.median(c):.2f} s" for n, c in zip(names, cols))
print(f"over {len(runs)} runs, best/median: {figs}")
for name, a, b, target in [
    ("deploy / engine API floor", 0, 1, " (target <= 1.10)"),
    ("deploy / by hand", 0, 2, ""),
    ("destroy / engine removal", 3, 4, " (target <= 1.2)"),
]:
    per = [x / y for x, y in zip(cols[a], cols[b])]
    print(f"  {name}: best/best {min(cols[a]) / min(cols[b]):.2f}x, median of the runs' ratios "
          f"{statistics.median(per):.2f}x{target}")
EOF
