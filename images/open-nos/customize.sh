#!/bin/sh
# mmdebstrap customize hook for open-nos: $1 is the root of the image being built. The same steps
# run in the Dockerfile (with / as the root).
set -eu
root=${1:-/}
# sshd: root logs in by key only (labwire binds the lab's authorized_keys at
# /root/.ssh/authorized_keys); no reverse DNS lookups, which would stall logins in a lab.
mkdir -p "$root/etc/ssh/sshd_config.d"
cat >"$root/etc/ssh/sshd_config.d/open-nos.conf" <<'CONF'
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
CONF
mkdir -p "$root/root/.ssh"
chmod 700 "$root/root/.ssh"
# Host keys: generated once at build time (every node of an image shares them; fine for a lab).
rm -f "$root"/etc/ssh/ssh_host_*
chroot "$root" ssh-keygen -A
# FRR: bgpd on (zebra, mgmtd and staticd always start), with integrated vtysh config.
sed -i -e 's/^bgpd=no/bgpd=yes/' -e 's/^zebra=no/zebra=yes/' "$root/etc/frr/daemons"
grep -q '^bgpd=yes' "$root/etc/frr/daemons"
# Trim what a lab node never uses.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
