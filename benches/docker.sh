#!/usr/bin/env bash
# Docker runtime benchmark: deploy time of an N-node ring (default 50) of docker nodes, against the
# engine's floor measured in the same run: the same containers (same image, command and privileges,
# no network) created and started with `docker run -d --network none`, as many at a time as labwire
# uses workers (the number of CPUs). The target is a ratio of at most 1.15.
#
#   sudo benches/docker.sh            # 50 nodes, 1 run
#   sudo benches/docker.sh 50 3       # 50 nodes, 3 runs
#
# Needs a running dockerd; builds the image lwt-busybox:dk (a `docker import` of the host's static
# busybox) when missing. Environment: LABWIRE (a labwire binary; labwire-init must sit next to it).
# It prints figures; it passes or fails nothing.
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
LW=$LABWIRE
IMAGE=lwt-busybox:dk
WORK=$(mktemp -d /tmp/lw-dkbench.XXXXXX)
LAB=lwbench-dk
FLOOR=lwbench-dkfloor
par=$(nproc)

floor_rm() {
    ids=$(docker ps -aq --filter "label=lwbench=$FLOOR")
    [ -z "$ids" ] || docker rm -f $ids >/dev/null
}
cleanup() { "$LW" destroy --name "$LAB" --cleanup >/dev/null 2>&1 || true; floor_rm || true; rm -rf "$WORK"; }
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
    echo "mgmt: {network: $LAB, ipv4-subnet: 10.199.0.0/24, ipv6-subnet: fd00:199::/64}"
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

floor_run() {
    seq 1 "$N" | xargs -P "$par" -I{} docker run -d --network none "${PRIV[@]}" \
        --sysctl net.ipv6.conf.all.disable_ipv6=0 --sysctl net.ipv6.conf.default.disable_ipv6=0 \
        --label "lwbench=$FLOOR" --name "$FLOOR-n{}" --hostname "n{}" "$IMAGE" >/dev/null
}

echo "docker ring of $N nodes, $par at a time (engine: $(docker version -f '{{.Server.Version}}, API {{.Server.APIVersion}}'))"
for r in $(seq 1 "$runs"); do
    floor_rm
    t0=$(now); floor_run; t1=$(now)
    floor_s=$(secs "$t0" "$t1")
    floor_rm
    t0=$(now); "$LW" deploy -t "$WORK/ring.clab.yml" -q >/dev/null; t1=$(now)
    lw_s=$(secs "$t0" "$t1")
    t0=$(now); "$LW" destroy --name "$LAB" --cleanup >/dev/null; t1=$(now)
    destroy_s=$(secs "$t0" "$t1")
    echo "run $r: labwire deploy ${lw_s} s, engine floor ${floor_s} s, ratio $(ratio "$lw_s" "$floor_s"); destroy ${destroy_s} s"
done
