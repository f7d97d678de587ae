#!/bin/sh
# Started by labwire in every cldemo2 node (cmd: /bin/sh /lab/start.sh) once its links are up.
# Sets up this node's interfaces, on the leaves starts FRR with /lab/frr.conf, then sshd.
# Its output is in the node's console log.
set -eu
node=${CLAB_NODE_NAME:-$(hostname)}

# The node's iproute2 commands are queued and run by one `ip -batch`: in a VM guest that TCG
# emulates, every process started costs a tenth of a second or more of the CPU FRR needs.
cmds=
ip_() { cmds="$cmds$*
"; }
addr() { ip_ addr replace "$2" dev "$1"; ip_ link set "$1" up; }

leaf() { # leaf N: loopback 10.0.0.N, the L2 VNI 100 bridge, routed server ports
    n=$1
    ip_ addr replace "10.0.0.$n/32" dev lo
    # Made only when missing: a node's namespace keeps them when only its process restarts.
    [ -e /sys/class/net/br100 ] || ip_ link add br100 type bridge
    ip_ link set br100 addrgenmode none
    [ -e /sys/class/net/vxlan100 ] \
        || ip_ link add vxlan100 type vxlan id 100 local "10.0.0.$n" dstport 4789 nolearning
    ip_ link set vxlan100 master br100 up
    ip_ link set br100 up
    ip_ link set swp49 up
    ip_ link set swp50 up
}

case $node in
leaf01)
    leaf 1
    addr swp1 10.1.1.1/24          # server01 eth1: server01's gateway
    addr swp2 10.1.2.1/24          # server02 eth1 (a spare uplink)
    ip_ link set swp3 master br100 up  # server03 eth1: in VNI 100
    ;;
leaf02)
    leaf 2
    ip_ link set swp1 master br100 up  # server01 eth2: in VNI 100
    addr swp2 10.2.2.1/24          # server02 eth2: server02's gateway
    addr swp3 10.2.3.1/24          # server03 eth2: server03's gateway
    ;;
server01)
    addr eth1 10.1.1.101/24
    addr eth2 10.1.100.101/24      # VNI 100 (via leaf02)
    ip_ route replace default via 10.1.1.1 dev eth1
    ;;
server02)
    addr eth1 10.1.2.102/24
    addr eth2 10.2.2.102/24
    ip_ route replace default via 10.2.2.1 dev eth2
    ;;
server03)
    addr eth1 10.1.100.103/24      # VNI 100 (via leaf01)
    addr eth2 10.2.3.103/24
    ip_ route replace default via 10.2.3.1 dev eth2
    ;;
*)
    echo "start.sh: no interface plan for node $node" >&2
    ;;
esac
[ -z "$cmds" ] || printf %s "$cmds" | ip -batch -

case $node in
leaf*)
    # FRR reads /etc/frr/frr.conf; the lab's copy is bound read-only at /lab/frr.conf so the
    # playbook can push a new one over /etc/frr/frr.conf.
    install -o frr -g frr -m 0640 /lab/frr.conf /etc/frr/frr.conf
    # watchfrr kills a restart that takes over 20 s, which VM guests emulated by TCG on a busy
    # host can take: give it two minutes.
    grep -q '^watchfrr_options=' /etc/frr/daemons \
        || echo 'watchfrr_options="--restart-timeout 120"' >>/etc/frr/daemons
    # zebra and bgpd first, with the configuration loaded once (what FRR's `watchfrr.sh start
    # all` does, without its shell library and without staticd, which this fabric has no use
    # for at first); then watchfrr, which finds them up, starts staticd and watches all three.
    # Left to start them itself, watchfrr restarts every daemon that has not answered yet when it
    # first looks, and then restarts them again one by one while the first restart is still
    # running: in a slow guest bgpd was killed that way and the fabric converged tens of seconds
    # later.
    # Options as FRR's scripts give them: /etc/frr/daemons, and its profile (`-F`, traditional
    # unless it names one; frr.conf's `frr defaults datacenter` applies either way).
    . /etc/frr/daemons
    install -o frr -g frr -m 0750 -d /run/frr
    # shellcheck disable=SC2086 # the options are words
    /usr/lib/frr/zebra -d -F "${frr_profile:-traditional}" ${zebra_options-}
    /usr/lib/frr/bgpd -d -F "${frr_profile:-traditional}" ${bgpd_options-}
    vtysh -b
    /usr/lib/frr/frrinit.sh start
    ;;
esac
# sshd last: nothing in the fabric waits for it, and in a VM guest it would delay FRR.
# It wants its privilege-separation directory; /run is a fresh tmpfs in every node.
mkdir -p /run/sshd
/usr/sbin/sshd
echo "start.sh: $node up"
