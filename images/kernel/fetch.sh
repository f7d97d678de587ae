#!/usr/bin/env bash
# Fetch Debian's stock kernel (package linux-image-amd64 and the versioned package it depends on)
# for VM nodes, without installing it on the host: the package is unpacked into DEST, which then
# holds boot/vmlinuz-<release> and lib/modules/<release> — the layout labwire's `kernel:` field
# finds modules in.
#
#   sudo images/kernel/fetch.sh [DEST]             # default DEST: /var/lib/labwire/kernels/debian
#   sudo images/kernel/fetch.sh --import NAME [DEST]
#
# Prints the kernel's path; DEST/boot/vmlinuz links to it (a name topologies can keep). --import also imports DEST as image NAME into labwire's store
# (LABWIRE: the labwire binary; LABWIRE_IMAGE_DIR as for labwire), so `kernel: NAME` works.
# A DEST already holding the current package version is reused.
set -euo pipefail
import=
if [ "${1:-}" = --import ]; then import=${2:?--import needs a NAME}; shift 2; fi
dest=${1:-/var/lib/labwire/kernels/debian}
[ "$(id -u)" = 0 ] || { echo "fetch.sh: run as root" >&2; exit 1; }

meta=linux-image-amd64
if ! apt-cache show "$meta" >/dev/null 2>&1; then
    apt-get update -q >/dev/null
fi
dep=$(apt-cache depends "$meta" | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -1)
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
