#!/usr/bin/env bash
# Fetch a Debian kernel (by default the stock linux-image-amd64 and the versioned package it
# depends on) for VM nodes, without installing it on the host: the package is unpacked into DEST,
# which then holds boot/vmlinuz-<release> and lib/modules/<release> — the layout labwire's
# `kernel:` field finds modules in.
#
#   sudo images/kernel/fetch.sh [DEST]             # default DEST: /var/lib/labwire/kernels/debian
#   sudo images/kernel/fetch.sh --import NAME [DEST]
#   sudo images/kernel/fetch.sh --package PACKAGE [DEST]
#
# --package names another kernel package: a meta package (linux-image-cloud-amd64, the flavour
# built for VMs; linux-image-6.12-cloud-amd64 from bookworm-security, whose modules are .ko.xz)
# or a versioned one (linux-image-6.12.117+deb12-amd64-unsigned). Its default DEST is
# /var/lib/labwire/kernels/PACKAGE.
#
# Prints the kernel's path; DEST/boot/vmlinuz links to it (a name topologies can keep). --import also imports DEST as image NAME into labwire's store
# (LABWIRE: the labwire binary; LABWIRE_IMAGE_DIR as for labwire), so `kernel: NAME` works.
# A DEST already holding the current package version is reused.
set -euo pipefail
import=
package=
while :; do
    case "${1:-}" in
    --import) import=${2:?--import needs a NAME}; shift 2 ;;
    --package) package=${2:?--package needs a PACKAGE}; shift 2 ;;
    *) break ;;
    esac
done
dest=${1:-/var/lib/labwire/kernels/${package:-debian}}
[ "$(id -u)" = 0 ] || { echo "fetch.sh: run as root" >&2; exit 1; }

meta=${package:-linux-image-amd64}
if ! apt-cache show "$meta" >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-cache show "$meta" >/dev/null 2>&1 \
        || { echo "fetch.sh: no package $meta in this host's apt sources (see apt-cache search linux-image)" >&2; exit 1; }
fi
# A meta package depends on the versioned package that holds the kernel; a versioned package is
# the kernel itself.
case "$meta" in
linux-image-[0-9]*.[0-9]*.[0-9]*) dep=$meta ;;
*) dep=$(apt-cache depends "$meta" | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -1) ;;
esac
[ -n "$dep" ] || { echo "fetch.sh: cannot tell which kernel package $meta depends on" >&2; exit 1; }
version=$(apt-cache policy "$dep" | sed -n 's/^ *Candidate: //p')
stamp="$dest/.package"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$dep $version" ]; then
    :
else
    work=$(mktemp -d /var/tmp/kernel-fetch.XXXXXX)
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && apt-get download -q "$dep" >/dev/null 2>&1) \
        || { apt-get update -q >/dev/null && (cd "$work" && apt-get download -q "$dep" >/dev/null); }
    rm -rf "$dest.new"
    mkdir -p "$dest.new"
    dpkg-deb -x "$work"/"$dep"_*.deb "$dest.new"
    echo "$dep $version" >"$dest.new/.package"
    rm -rf "$dest"
    mv "$dest.new" "$dest"
fi
kernel=$(ls "$dest"/boot/vmlinuz-* | sort -V | tail -1)
# A stable name for topologies: DEST/boot/vmlinuz.
ln -sfn "$(basename "$kernel")" "$dest/boot/vmlinuz"
if [ -n "$import" ]; then
    labwire=${LABWIRE:-$(command -v labwire || true)}
    [ -n "$labwire" ] || { echo "fetch.sh: --import: set LABWIRE or put labwire on PATH" >&2; exit 1; }
    tar -C "$dest" -cf "$dest.tar" boot lib
    "$labwire" image import "$dest.tar" --name "$import" >&2
    rm -f "$dest.tar"
fi
echo "$kernel"
