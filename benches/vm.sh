#!/usr/bin/env bash
# vm runtime benchmark: VM nodes under QEMU (KVM where it runs guests, TCG otherwise) with Debian's
# stock kernel (images/kernel/fetch.sh) and a busybox root image.
#  - boot-to-ping: one VM node linked to a native node; from the start of `labwire deploy` to the
#    first answer of the VM's management address to a ping from the host, REPS times (default 3;
#    best and median, with the VMM's CPU time, which a busy host does not stretch as it does the
#    wall clock, and the load average); and where that guest's
#    boot went: VMM start → kernel running, kernel → init, boot modules, root mount, modules disk,
#    network (the guest agent's phase line in its console.log, on the guest's clock);
#  - orchestration overhead per VM node, for 1 and N (default 10) VM nodes in a chain: deploy time
#    minus the time labwire waited for the guests (VMM start → guest agent answering, the
#    `guests up` line of `deploy --stats`), divided by the number of VM nodes;
#  - memory beyond guest RAM per VM node: the VMM's memory outside its guest-RAM mapping (its
#    proportional share, from /proc/PID/smaps), plus the node's namespace holder (labwire-init).
# Firecracker's published figure for context: ≤ 125 ms from VMM start to guest init under KVM
# (its SPECIFICATION.md); TCG here emulates every instruction, so guest boot is not comparable.
#
#   sudo benches/vm.sh            # 1 and 10 VM nodes
#   sudo benches/vm.sh 4          # 1 and 4
#   sudo REPS=5 benches/vm.sh     # five one-node boots
#   sudo LABWIRE_VM_ICOUNT=1 REPS=1 benches/vm.sh 1   # the phases in guest instructions
#
# With LABWIRE_VM_ICOUNT=1 (TCG) the guest's clock counts its instructions (1 ns each), so the
# boot phases read the same on a busy host as on an idle one (compare kernel arguments with
# LABWIRE_VM_KERNEL_ARGS, e.g. `rodata=on module.sig_enforce=1` for the boot before both were cut);
# the wall-clock figures are then several times slower and mean nothing.
#
# Environment: LABWIRE (a labwire binary; labwire-init and labwire-guest next to it). Disks are
# built once into the bench's own image store (/var/tmp/lwbench-vm-images) and reused. It prints
# figures; it passes or fails nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
[ "$(id -u)" = 0 ] || { echo "benches/vm.sh: run as root" >&2; exit 1; }
N=${1:-10}
REPS=${REPS:-3}
if [ -z "${LABWIRE:-}" ]; then
    cargo build --release -q
    LABWIRE=${CARGO_TARGET_DIR:-$PWD/target}/release/labwire
fi
LW=$LABWIRE
export LABWIRE_IMAGE_DIR=/var/tmp/lwbench-vm-images
KERNEL=$(bash images/kernel/fetch.sh /var/tmp/lwt-kernel)
WORK=$(mktemp -d /tmp/lw-vmbench.XXXXXX)
IMAGE=lwbench-busybox:vm
cleanup() {
    [ -n "${KEEP:-}" ] && return
    for l in lwbench-vm1 lwbench-vmn; do "$LW" destroy --name "$l" --cleanup >/dev/null 2>&1 || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

if ! "$LW" image inspect "$IMAGE" >/dev/null 2>&1; then
    root=$WORK/root
    mkdir -p "$root/bin" "$root/sbin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/run"
    cp /bin/busybox "$root/bin/busybox"
    for a in $("$root/bin/busybox" --list); do
        [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
    done
    tar -C "$root" -cf "$WORK/rootfs.tar" .
    "$LW" image import "$WORK/rootfs.tar" --name "$IMAGE" >/dev/null
fi

# Memory of a VMM outside its guest RAM (mappings at least as large as the guest's RAM), as its
# proportional share (Pss: pages shared with the other VMMs, such as QEMU's own code, count once
# across them).
vmm_overhead_kb() {
    python3 - "$1" "$2" <<'EOF'
import sys
pid, guest_mib = sys.argv[1], int(sys.argv[2])
total = 0
size = 0
for line in open(f"/proc/{pid}/smaps"):
    parts = line.split()
    if "-" in parts[0] and len(parts) >= 5 and ":" not in parts[0]:
        a, b = parts[0].split("-")
        size = int(b, 16) - int(a, 16)
    elif parts[0] == "Pss:":
        if size < guest_mib << 20:
            total += int(parts[1])
print(total)
EOF
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# A process's CPU time so far (user + system, seconds): under TCG the VMM's is the guest's work,
# which a busy host stretches in wall-clock time but not in CPU time.
vmm_cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); print ($12 + $13) / hz}' "/proc/$1/stat"; }
pss_kb() { awk '/^Pss:/ {s += $2} END {print s}' "/proc/$1/smaps_rollup"; }

# Where one guest's boot went: the kernel's console timestamps and the agent's phase line (both on
# the guest's clock, which starts when the kernel does), against the host's wait for the agent
# ($2, from VMM start to the agent's answer). $1: the node's console.log.
boot_phases() {
    python3 - "$1" "$2" <<'EOF'
import re, sys
log, host_up = open(sys.argv[1], errors="replace").read(), float(sys.argv[2])
m = re.search(r"phases \(guest s\): (.*)", log)
if not m:
    print("  boot phases: no phase line from the guest agent in", sys.argv[1]); sys.exit()
marks = [(p.rsplit(" ", 1)[0], float(p.rsplit(" ", 1)[1])) for p in m.group(1).split(", ")]
ready = marks[-1][1]
# The guest's clock stands still through parts of early boot under TCG (it reads 0 until the
# kernel sets up its TSC clock, and barely moves while the kernel patches its own code), so this
# row is everything the guest's clock did not see: QEMU's start and that early boot.
rows = [("VMM start + early boot the guest clock misses (host − guest)", host_up - ready)]
prev = 0.0
names = {"init": "kernel → init (the agent starts)", "boot modules": "boot modules loaded (virtio, ext4; the node's kernel-modules)",
         "root mounted": "root disk found and mounted", "modules disk": "switch root, modules disk, kernel-modules",
         "network": "files, NICs named and addressed, sysctls"}
for name, t in marks:
    rows.append((names.get(name, name), t - prev)); prev = t
print("  boot phases of the VM node (guest clock from its console; the first row is host time minus it):")
for label, secs in rows:
    print(f"    {label:<72} {secs:6.2f} s")
print(f"    {'VMM start → agent answered (host)':<72} {host_up:6.2f} s")
EOF
}

# One lab of $2 VM nodes in a chain (node i swp1 ↔ node i+1 swp2), and one native host linked to
# the first; prints "deploy_s guests_up_s".
deploy_lab() {
    local lab=$1 n=$2 file=$WORK/$1.clab.yml
    {
        echo "name: $lab"
        echo "mgmt: {network: $lab, ipv4-subnet: 172.31.$3.0/24}"
        echo "topology:"
        echo "  defaults: {runtime: vm, image: $IMAGE, kernel: $KERNEL, memory: 256MB}"
        echo "  nodes:"
        echo "    h1: {kind: linux, runtime: native}"
        for i in $(seq 1 "$n"); do echo "    vm$i: {kind: linux}"; done
        echo "  links:"
        echo "    - endpoints: [\"h1:eth1\", \"vm1:swp9\"]"
        echo "      ipv4: [\"10.250.$3.1/24\", \"10.250.$3.2/24\"]"
        for i in $(seq 1 $((n - 1))); do
            echo "    - endpoints: [\"vm$i:swp1\", \"vm$((i + 1)):swp2\"]"
        done
    } >"$file"
    local t0 t1 out
    t0=$(date +%s.%N)
    out=$("$LW" deploy -t "$file" --stats -q 2>&1) || { echo "$out" >&2; exit 1; }
    t1=$(date +%s.%N)
    local up
    up=$(echo "$out" | awk '/guests up/ {print $(NF-1)}')
    echo "$(echo "$t1 - $t0" | bc -l) $up"
}

echo "== boot-to-ping: one VM node (256 MiB) linked to a native node, $REPS runs; load: $(cut -d' ' -f1-3 /proc/loadavg)"
lab=lwbench-vm1
addr=172.31.241.3
runs=()
for rep in $(seq 1 "$REPS"); do
    t0=$(date +%s.%N)
    (deploy_lab "$lab" 1 241 >"$WORK/one") &
    deployer=$!
    deadline=
    # Short probes: a ping waiting a whole second for a guest not up yet would round the figure
    # up to the next second.
    until ping -c1 -W0.2 "$addr" >/dev/null 2>&1; do
        if [ -z "$deadline" ] && ! kill -0 "$deployer" 2>/dev/null; then
            deadline=$(($(date +%s) + 10))
        fi
        [ -z "$deadline" ] || [ "$(date +%s)" -lt "$deadline" ] || { echo "no ping answer from $addr"; exit 1; }
        sleep 0.02
    done
    t_ping=$(echo "$(date +%s.%N) - $t0" | bc -l)
    wait "$deployer"
    read -r d1 up1 <"$WORK/one"
    pid=$("$LW" inspect --name "$lab" --format json | python3 -c 'import json,sys; r=[x for x in json.load(sys.stdin)["'"$lab"'"] if x["name"].endswith("-vm1")][0]; print(r["pid"])')
    cpu=$(vmm_cpu_s "$pid")
    printf "  run %d: deploy start → first ping reply %.2f s (deploy %.2f s, of which guest boot %.2f s; the VMM's CPU time %.2f s)\n" "$rep" "$t_ping" "$d1" "$up1" "$cpu"
    runs+=("$t_ping $cpu")
    [ "$rep" = "$REPS" ] && break
    "$LW" destroy --name "$lab" >/dev/null
done
printf '%s\n' "${runs[@]}" | python3 -c '
import statistics as st, sys
rows = [tuple(map(float, l.split())) for l in sys.stdin if l.strip()]
ping, cpu = [r[0] for r in rows], [r[1] for r in rows]
print(f"  boot-to-ping over {len(rows)} runs: best {min(ping):.2f} s, median {st.median(ping):.2f} s (target < 3 s); VMM CPU time best {min(cpu):.2f} s, median {st.median(cpu):.2f} s")'
"$LW" exec --name "$lab" --node h1 --cmd "ping -c1 -W2 10.250.241.2" >/dev/null && link=ok || link=FAILED
holder=$(awk '{print $4}' "/proc/$pid/stat")
vmm_kb=$(vmm_overhead_kb "$pid" 256)
holder_kb=$(pss_kb "$holder")
printf "  ping over the stitched link: %s\n" "$link"
printf "  orchestration overhead: %.0f ms per VM node (target ≤ 100 ms)\n" "$(echo "($d1 - $up1) * 1000" | bc -l)"
printf "  memory beyond guest RAM: VMM %.1f MB + holder %.1f MB = %.1f MB (target ≤ 30 MB); VMM RSS in all %.1f MB\n" \
    "$(echo "$vmm_kb/1024" | bc -l)" "$(echo "$holder_kb/1024" | bc -l)" "$(echo "($vmm_kb+$holder_kb)/1024" | bc -l)" "$(echo "$(rss_kb "$pid")/1024" | bc -l)"
echo "  the last run's boot:"
boot_phases "$WORK/clab-$lab/vm1/console.log" "$up1"
t0=$(date +%s.%N); "$LW" destroy --name "$lab" >/dev/null; t1=$(date +%s.%N)
printf "  destroy: %.2f s\n" "$(echo "$t1 - $t0" | bc -l)"

echo "== $N VM nodes in a chain (256 MiB each)"
lab=lwbench-vmn
read -r dn upn < <(deploy_lab "$lab" "$N" 242)
total_kb=0
cpu_n=0
for p in $("$LW" inspect --name "$lab" --format json | python3 -c 'import json,sys; print(" ".join(str(x["pid"]) for x in json.load(sys.stdin)["'"$lab"'"] if x["runtime"]=="vm"))'); do
    h=$(awk '{print $4}' "/proc/$p/stat")
    total_kb=$((total_kb + $(vmm_overhead_kb "$p" 256) + $(pss_kb "$h")))
    cpu_n=$(echo "$cpu_n + $(vmm_cpu_s "$p")" | bc -l)
done
printf "  deploy %.2f s, of which waiting for the guests %.2f s; load: %s\n" "$dn" "$upn" "$(cut -d' ' -f1-3 /proc/loadavg)"
# Whether the guests booted in parallel: their VMMs' CPU time against what the host's CPUs could
# give in the wait (other processes on a shared host take their share too).
printf "  the %d VMMs' CPU time %.1f s (%.2f s each) in %.1f s × %d CPUs: %.0f %% of the host's CPU\n" \
    "$N" "$cpu_n" "$(echo "$cpu_n / $N" | bc -l)" "$upn" "$(nproc)" "$(echo "100 * $cpu_n / ($upn * $(nproc))" | bc -l)"
printf "  orchestration overhead: %.0f ms per VM node (target ≤ 100 ms)\n" "$(echo "($dn - $upn) * 1000 / $N" | bc -l)"
printf "  memory beyond guest RAM: %.1f MB per VM node\n" "$(echo "$total_kb / 1024 / $N" | bc -l)"
echo "  the last VM node's boot (the host's figure is the wait for all $N):"
boot_phases "$WORK/clab-$lab/vm$N/console.log" "$upn"
t0=$(date +%s.%N); "$LW" destroy --name "$lab" >/dev/null; t1=$(date +%s.%N)
printf "  destroy: %.2f s\n" "$(echo "$t1 - $t0" | bc -l)"
echo "  for context: Firecracker publishes ≤ 125 ms from VMM start to guest init under KVM; guest boot above is under the accelerator deploy named (TCG: every guest instruction emulated)"
