#!/bin/sh
# Started by labwire in every node of the dual-homed cldemo2 (cmd: /bin/sh /lab/start.sh) once the
# guest is up: the agent has named the NICs and loaded the node's `kernel-modules` (bonding,
# vxlan) from the guest kernel's modules. Sets up bonds, the VLAN-aware bridge and VXLAN, then
# FRR on the leaves. Its output is in the node's console log.
set -eu
node=${CLAB_NODE_NAME:-$(hostname)}

# An LACP (802.3ad) bond over the given ports: LACPDUs every second (lacp_rate fast), so a lost
# partner is noticed in 3 s. $1 bond, $2 extra bond options, then the members.
bond() {
    b=$1 opts=$2
    shift 2
    ip link add "$b" type bond mode 802.3ad miimon 100 lacp_rate fast $opts
    for m in "$@"; do
        ip link set "$m" down
        ip link set "$m" master "$b"
    done
    ip link set "$b" up
}

# leaf N [bond options]: loopback 10.0.0.N; bond1 over swp1 toward the servers; a VLAN-aware
# bridge (EVPN multihoming maps the ES to VNIs through VLANs) with VLAN 100 on bond1 and on
# vxlan100 (VNI 100, local = the loopback, no data-plane learning: EVPN fills the FDB).
leaf() {
    n=$1
    ip addr replace "10.0.0.$n/32" dev lo
    bond bond1 "${2:-}" swp1
    ip link add bridge type bridge vlan_filtering 1 vlan_default_pvid 0
    ip link set bridge addrgenmode none
    ip link add vxlan100 type vxlan id 100 local "10.0.0.$n" dstport 4789 nolearning
    for p in bond1 vxlan100; do
        ip link set "$p" master bridge
        bridge vlan add dev "$p" vid 100 pvid untagged
    done
    # ARP/ND suppression on the VXLAN port, as EVPN multihoming wants.
    bridge link set dev vxlan100 neigh_suppress on learning off
    ip link set vxlan100 up
    ip link set bridge up
    for p in swp49 swp50; do ip link set "$p" up; done
}

case $node in
# leaf01 and leaf02 share server01's Ethernet segment: their bond1s speak LACP as one system
# (the ES system MAC, also in frr.conf), so server01 sees one partner on both uplinks.
leaf01) leaf 1 "ad_actor_system 44:38:39:ff:00:01" ;;
leaf02) leaf 2 "ad_actor_system 44:38:39:ff:00:01" ;;
leaf03) leaf 3 ;;
server01)
    bond bond0 "" eth1 eth2
    ip addr replace 10.1.100.101/24 dev bond0
    ;;
server03)
    bond bond0 "" eth1
    ip addr replace 10.1.100.103/24 dev bond0
    ;;
*)
    echo "start.sh: no interface plan for node $node" >&2
    ;;
esac

# The Linux bridge acts on neither of the two filters EVPN multihoming asks of a segment's leaves
# (FRR computes them, `show evpn es detail`, and the kernel has no place for them), so this script
# applies both, from what FRR says every second; a change (a failed peer) takes effect within it.
#
# Designated forwarder: only the DF floods broadcast, multicast and unknown unicast from the
# overlay to the server, once: bond1's flooding is on on the DF, off on the other leaf.
#
# Split horizon (local bias, RFC 8365): a broadcast or multicast frame that the peer leaf took in
# from server01 and flooded over VXLAN must not come back down this leaf's link to server01. tc
# marks the VXLAN packets whose outer source is a peer of the segment (UDP 4789, the inner
# destination a group address) as they arrive on the underlay ports; the mark outlives the
# decapsulation (same namespace), and bond1 drops marked frames on their way out.
SH_MARK=0x5348
split_horizon_init() {
    tc qdisc add dev bond1 clsact
    tc filter add dev bond1 egress pref 1 protocol all u32 match mark "$SH_MARK" 0xffffffff \
        action drop
    for p in swp49 swp50; do tc qdisc add dev "$p" clsact; done
}
# split_horizon_peers VTEP...: the marking filters for exactly these peers.
split_horizon_peers() {
    for p in swp49 swp50; do
        tc filter del dev "$p" ingress pref 1 2>/dev/null || true
        for v in "$@"; do
            # IPv4 with a 20-byte header, UDP to 4789, inner destination MAC's group bit (byte
            # 20 + 8 + 8 = 36 of the packet).
            tc filter add dev "$p" ingress pref 1 protocol ip u32 \
                match u8 0x05 0x0f at 0 match ip src "$v/32" match ip protocol 17 0xff \
                match u16 4789 0xffff at 22 match u8 0x01 0x01 at 36 \
                action skbedit mark "$SH_MARK"
        done
    done
}
es_filters() {
    split_horizon_init
    flood= peers=-
    while sleep 1; do
        es=$(vtysh -c 'show evpn es json' 2>/dev/null) || continue
        case $es in *'"nonDF"'*) new=off ;; *) new=on ;; esac
        if [ "$new" != "$flood" ]; then
            bridge link set dev bond1 flood "$new" mcast_flood "$new" bcast_flood "$new" && flood=$new
            echo "start.sh: bond1 flooding $new (designated forwarder: $( [ "$new" = on ] && echo yes || echo no))"
        fi
        # The segment's other leaves (this lab has one segment).
        now=$(printf '%s' "$es" | grep -o '"vtep":"[0-9.]*"' | cut -d'"' -f4 | sort -u | tr '\n' ' ')
        if [ "$now" != "$peers" ]; then
            # shellcheck disable=SC2086 # one VTEP per word
            split_horizon_peers $now && peers=$now
            echo "start.sh: split horizon toward the segment's peers: ${now:-none}"
        fi
    done
}

# A MAC behind a remote Ethernet segment (server01's, on leaf03): FRR 8.4's zebra learns it with
# the segment's ESI and installs the segment's nexthop group (one VTEP per leaf of the segment,
# `ip nexthop`), but leaves the MAC out of vxlan100's FDB, so this leaf floods frames for it to
# every VTEP and the segment's non-DF, which knows the MAC on its own bond, delivers a second
# copy. Each such MAC gets the entry zebra should have made, pointing at its segment's group, and
# loses it when FRR no longer has the MAC there. Checked every second.
#
# es_macs: "MAC GROUP" for every remote MAC behind a segment, sorted.
# The segments' groups are asked for only when a MAC is remote (a vtysh costs a TCG guest dearly).
es_macs() {
    macs=$(vtysh -c 'show evpn mac vni 100' 2>/dev/null | awk '$2 == "remote"')
    [ -n "$macs" ] || return 0
    groups=$(vtysh -c 'show evpn es detail' 2>/dev/null |
        awk '/^ESI:/ {esi = $2} /Nexthop group:/ {print esi, $3}')
    printf '%s\n' "$macs" | awk -v groups="$groups" '
        BEGIN { n = split(groups, f, /[ \n]/); for (i = 1; i < n; i += 2) g[f[i]] = f[i + 1] }
        { for (i = 3; i <= NF; i++) if ($i in g) print $1, g[$i] }' | sort
}
# vxlan_group_macs: "MAC GROUP" for every vxlan100 FDB entry pointing at a nexthop group, sorted.
vxlan_group_macs() {
    bridge fdb show dev vxlan100 |
        awk '{for (i = 2; i < NF; i++) if ($i == "nhid") print $1, $(i + 1)}' | sort
}
es_fdb() {
    while sleep 1; do
        want=$(es_macs)
        have=$(vxlan_group_macs)
        [ "$want" = "$have" ] && continue
        printf '%s\n' "$have" | while read -r mac group; do
            [ -n "$mac" ] || continue
            printf '%s\n' "$want" | grep -qx "$mac $group" ||
                bridge fdb del "$mac" dev vxlan100 self
        done
        printf '%s\n' "$want" | while read -r mac group; do
            [ -n "$mac" ] || continue
            bridge fdb replace "$mac" dev vxlan100 nhid "$group" self extern_learn
        done
        echo "start.sh: vxlan100 entries for MACs behind remote segments: $(printf '%s' "$want" | tr '\n' ';')"
    done
}

case $node in
leaf*)
    install -o frr -g frr -m 0640 /lab/frr.conf /etc/frr/frr.conf
    # watchfrr kills a restart that takes over 20 s, which several guests emulated (TCG) on a
    # busy host can take: give it two minutes.
    grep -q '^watchfrr_options=' /etc/frr/daemons \
        || echo 'watchfrr_options="--restart-timeout 120"' >>/etc/frr/daemons
    # The daemons first, with the configuration loaded once, then watchfrr to watch them (left
    # to start them itself, watchfrr restarts daemons a slow guest is still starting).
    /usr/lib/frr/watchfrr.sh start all
    /usr/lib/frr/frrinit.sh start
    # Should a start still have been cut short, its daemons run without the configuration:
    # load it again until bgpd has it.
    for _ in $(seq 60); do
        vtysh -c 'show running-config' 2>/dev/null | grep -q '^router bgp' && break
        sleep 2
        vtysh -b >/dev/null 2>&1 || true
    done
    ;;
esac
case $node in
leaf01 | leaf02) es_filters & es_fdb & ;;
leaf*) es_fdb & ;;
esac
echo "start.sh: $node up"
