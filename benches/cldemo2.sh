#!/usr/bin/env bash
# cldemo2 benchmark: the time from `labwire deploy` to every BGP session of the cldemo2 fabric
# (examples/cldemo2: leaf01/leaf02, IPv4 unicast and EVPN over swp49 and swp50) Established, and to
# the first ping over the EVPN L2 VNI. The bar is the containerised Cumulus test-drive lab: the whole
# lab up in under 20 s on a laptop.
#
#   sudo benches/cldemo2.sh            # 3 runs
#   sudo benches/cldemo2.sh 5          # 5 runs
#   sudo RUNTIME=vm benches/cldemo2.sh 1   # every node a VM (Debian's kernel, images/kernel/fetch.sh)
#
# Builds labwire (release) and, when the store has no open-nos:latest, the image
# (images/open-nos/build.sh). Environment: LABWIRE (a labwire binary to use instead of building one;
# labwire-init must sit next to it), LABWIRE_IMAGE_DIR (the image store; default /var/tmp/lwt-c2-images).
# It prints figures; it passes or fails nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
[ "$(id -u)" = 0 ] || { echo "benches/cldemo2.sh: run as root" >&2; exit 1; }
runs=${1:-3}
if [ -z "${LABWIRE:-}" ]; then
    cargo build --release -q
    LABWIRE=${CARGO_TARGET_DIR:-$PWD/target}/release/labwire
fi
export LABWIRE LABWIRE_IMAGE_DIR=${LABWIRE_IMAGE_DIR:-/var/tmp/lwt-c2-images}
LW=$LABWIRE
if ! "$LW" image inspect open-nos:latest >/dev/null 2>&1; then
    images/open-nos/build.sh
fi

WORK=$(mktemp -d /tmp/lw-c2bench.XXXXXX)
LAB=lwbench-c2
cleanup() { "$LW" destroy --name "$LAB" --cleanup >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
cp -r examples/cldemo2/. "$WORK/"
rm -rf "$WORK"/clab-*
sed -i -e "s/^name: cldemo2$/name: $LAB/" -e 's/network: cldemo2-frr/network: lwbench-c2/' \
    -e 's#172.31.200.0/24#172.31.202.0/24#' -e 's#fd00:c2::/64#fd00:c2:2::/64#' "$WORK/cldemo2.clab.yml"
TOPO=$WORK/cldemo2.clab.yml
WAIT=90
POLL=0.1
if [ "${RUNTIME:-native}" = vm ]; then
    WAIT=300
    # Each vtysh costs an emulated guest a second or more of the CPU its FRR needs to converge.
    POLL=1
    # As the cldemo2_on_vms test runs it: QEMU microVMs with Debian's stock kernel, 384 MiB each.
    KERNEL=$(bash images/kernel/fetch.sh /var/tmp/lwt-kernel)
    sed -i "s#^  defaults:\$#  defaults:\\n    runtime: vm\\n    kernel: $KERNEL\\n    memory: 384MB#" "$TOPO"
    grep -q 'runtime: vm' "$TOPO" || { echo "benches/cldemo2.sh: the example has no defaults:" >&2; exit 1; }
fi
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }

# Both leaves: ipv4Unicast and l2VpnEvpn sessions on swp49 and swp50 all Established.
all_established() {
    local leaf
    for leaf in leaf01 leaf02; do
        "$LW" exec --name "$LAB" --node "$leaf" --cmd "vtysh -c 'show bgp summary json'" 2>/dev/null |
            python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    sys.exit(1)
ok = all(d.get(af, {}).get("peers", {}).get(p, {}).get("state") == "Established"
         for af in ("ipv4Unicast", "l2VpnEvpn") for p in ("swp49", "swp50"))
sys.exit(0 if ok else 1)' || return 1
    done
}

"$LW" destroy --name "$LAB" --cleanup >/dev/null 2>&1 || true
echo "runtime ${RUNTIME:-native}; load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-4s %10s %14s %12s %10s\n' run deploy established evpn-ping destroy
for i in $(seq 1 "$runs"); do
    t0=$(now)
    "$LW" deploy -q -t "$TOPO" >"$WORK/deploy.out" 2>"$WORK/deploy.err" || { cat "$WORK/deploy.err"; exit 1; }
    t1=$(now)
    end=$(( $(date +%s) + $WAIT ))
    until all_established; do
        [ "$(date +%s)" -lt "$end" ] || { echo "sessions not Established within $WAIT s" >&2; exit 1; }
        sleep "$POLL"
    done
    t2=$(now)
    until "$LW" exec --name "$LAB" --node server01 --cmd "ping -c1 -W1 10.1.100.103" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || { echo "no ping over the EVPN VNI within $WAIT s" >&2; exit 1; }
        sleep 0.1
    done
    t3=$(now)
    "$LW" destroy --name "$LAB" --cleanup >/dev/null 2>&1
    t4=$(now)
    printf '%-4s %9ss %13ss %11ss %9ss\n' "$i" "$(secs "$t0" "$t1")" "$(secs "$t0" "$t2")" \
        "$(secs "$t0" "$t3")" "$(secs "$t3" "$t4")"
done
echo "(established and evpn-ping are counted from the start of deploy; the bar: whole lab up in < 20 s); load: $(cut -d' ' -f1-3 /proc/loadavg)"
