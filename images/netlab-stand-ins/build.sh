#!/usr/bin/env bash
# Build offline stand-ins for the container images netlab's containerlab provider uses by default
# (an FRR router and a Linux host), for a machine that cannot reach their registries. Each is a
# Debian root made with mmdebstrap and imported into a container engine under the name netlab
# expects, so `netlab up` finds it.
#
#   sudo images/netlab-stand-ins/build.sh FRR_NAME HOST_NAME [docker|podman]
#
# FRR_NAME (e.g. quay.io/frrouting/frr:10.5.3): Debian's FRR; its entrypoint starts the daemons
# /etc/frr/daemons enables (netlab binds its own) and stays up, as the FRR project's image does.
# HOST_NAME (e.g. python:3.13-alpine): iproute2, ping, python3; it sleeps.
# Both carry a label `labwire.stand-in` with a hash of this script, so a rebuild happens only when
# the recipe changes. Environment: MMDEBSTRAP_ARGS (extra mmdebstrap arguments, e.g. a mirror).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '8p' "$0" >&2; exit 2; }
frr=$1 host=$2 engine=${3:-docker}
[ "$(id -u)" = 0 ] || { echo "build.sh: run as root (mmdebstrap needs it)" >&2; exit 1; }
"$engine" info >/dev/null 2>&1 || { echo "build.sh: $engine does not answer (\`$engine info\`)" >&2; exit 1; }
command -v mmdebstrap >/dev/null || { echo "build.sh: mmdebstrap is not installed" >&2; exit 1; }
stamp=$(sha256sum "$0" | cut -c1-16)
work=$(mktemp -d /var/tmp/netlab-stand-ins.XXXXXX)
trap 'rm -rf "$work"' EXIT

current() { # NAME → true when the engine holds NAME built from this recipe
    [ "$("$engine" image inspect -f '{{index .Config.Labels "labwire.stand-in"}}' "$1" 2>/dev/null)" = "$stamp" ]
}

build() { # NAME PACKAGES ENTRYPOINT-SCRIPT
    local name=$1 packages=$2 script=$3 entry
    if current "$name"; then
        echo "stand-in $name: current"
        return
    fi
    # shellcheck disable=SC2086 # MMDEBSTRAP_ARGS is meant to split
    mmdebstrap --quiet --variant=minbase --include="$packages" ${MMDEBSTRAP_ARGS:-} \
        --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/* "$1"/usr/share/doc/* "$1"/usr/share/man/*' \
        bookworm "$work/root.tar" "deb http://deb.debian.org/debian bookworm main"
    entry=$(python3 -c 'import json, sys; print(json.dumps(["/bin/sh", "-c", sys.argv[1]]))' "$script")
    "$engine" import -c "ENTRYPOINT $entry" -c "LABEL labwire.stand-in=$stamp" \
        "$work/root.tar" "$name" >/dev/null
    rm -f "$work/root.tar"
    echo "stand-in $name: built"
}

# FRR: Debian's init script starts what /etc/frr/daemons enables (watchfrr restarts a daemon that
# dies); the container then stays up, as the FRR project's image does with its own start script.
build "$frr" frr,frr-pythontools,iproute2,iputils-ping,procps,tcpdump,bash,python3 \
    '/usr/lib/frr/frrinit.sh start; exec sleep infinity'
build "$host" iproute2,iputils-ping,procps,tcpdump,bash,python3 'exec sleep infinity'
