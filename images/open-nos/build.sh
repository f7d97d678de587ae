#!/usr/bin/env bash
# Build the open-nos image: a Debian base plus the open core Cumulus Linux itself uses (FRR,
# ifupdown2, lldpd, iproute2), with systemd, openssh-server and python3 so Ansible can manage it.
# Built with mmdebstrap (no container engine) and imported into labwire's image store.
#
#   sudo images/open-nos/build.sh                 # → open-nos:latest
#   sudo images/open-nos/build.sh --docker        # → also open-nos:latest in the Docker engine
#   sudo images/open-nos/build.sh --podman        # → also open-nos:latest in Podman's store
#   sudo LABWIRE=/path/to/labwire images/open-nos/build.sh [--docker|--podman] [NAME] [OUT.tar]
#
# OUT.tar (or OPEN_NOS_TAR) keeps the root filesystem tarball; by default it is removed.
# --docker also runs `docker import` of it (for `labwire deploy -r docker`; --podman: `podman
# import`, for `-r podman`), with an entrypoint that first waits for the node's links
# (CLAB_INTFS interfaces besides lo and eth0: labwire wires a container after it starts), then
# runs the node's `cmd` and keeps the container up after it exits, as labwire's own init does
# for native nodes.
#
# Environment: LABWIRE (the labwire binary; else `labwire` on PATH), LABWIRE_IMAGE_DIR (the image
# store, as for labwire itself), MMDEBSTRAP_ARGS (extra mmdebstrap arguments, e.g. a mirror),
# OPEN_NOS_TAR (where to keep the tarball, as OUT.tar).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
to_engine=
case "${1:-}" in
    --docker) to_engine=docker; shift ;;
    --podman) to_engine=podman; shift ;;
esac
name=${1:-open-nos:latest}
[ "$(id -u)" = 0 ] || { echo "build.sh: run as root (mmdebstrap and labwire image import need it)" >&2; exit 1; }
labwire=${LABWIRE:-$(command -v labwire || true)}
[ -n "$labwire" ] && [ -x "$labwire" ] || { echo "build.sh: labwire not found: set LABWIRE or put it on PATH" >&2; exit 1; }
if [ "$to_engine" = docker ] && ! docker info >/dev/null 2>&1; then
    echo "build.sh: --docker: the Docker engine does not answer (\`docker info\`); start dockerd" >&2
    exit 1
fi
if [ "$to_engine" = podman ] && ! command -v podman >/dev/null; then
    echo "build.sh: --podman: podman is not installed (Debian package podman)" >&2
    exit 1
fi

if ! command -v mmdebstrap >/dev/null; then
    echo "build.sh: installing mmdebstrap" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap >/dev/null; }
fi

suite=$(tr -d '[:space:]' <"$here/suite")
sources=$(grep -v '^\s*#' "$here/sources" | sed '/^\s*$/d')
packages=$(grep -v '^\s*#' "$here/packages" | sed '/^\s*$/d' | paste -sd, -)
work=$(mktemp -d /var/tmp/open-nos.XXXXXX)
trap 'rm -rf "$work"' EXIT
out=${2:-${OPEN_NOS_TAR:-$work/out.tar}}

keyring=()
if [ -d "$here/keys" ] && compgen -G "$here/keys/*" >/dev/null; then
    for k in "$here"/keys/*; do keyring+=(--keyring="$k"); done
fi

t0=$(date +%s.%N)
# shellcheck disable=SC2086 # MMDEBSTRAP_ARGS is meant to split
mmdebstrap --variant=minbase --include="$packages" "${keyring[@]}" ${MMDEBSTRAP_ARGS:-} \
    --customize-hook="$here/customize.sh \"\$1\"" \
    "$suite" "$out" "$sources"
t1=$(date +%s.%N)
"$labwire" image import "$out" --name "$name"
t2=$(date +%s.%N)
if [ -n "$to_engine" ]; then
    # The entrypoint: wait (up to 120 s) for the links, run the command, stay up.
    # shellcheck disable=SC2016 # expanded in the container
    wait_links='n=${CLAB_INTFS:-0}; i=0; while [ "$(ls /sys/class/net | grep -cvx -e lo -e eth0)" -lt "$n" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; [ $# -eq 0 ] || "$@" || echo "open-nos: $1 exited with $?" >&2; exec sleep infinity'
    entrypoint=$(python3 -c 'import json, sys; print(json.dumps(["/bin/sh", "-c", sys.argv[1], "open-nos-entrypoint"]))' "$wait_links")
    "$to_engine" import -c "ENTRYPOINT $entrypoint" "$out" "$name" >/dev/null
fi
t3=$(date +%s.%N)
python3 - "$t0" "$t1" "$t2" "$t3" "$name" "$out" "$to_engine" <<'PY'
import os, sys
t0, t1, t2, t3 = map(float, sys.argv[1:5])
size = os.path.getsize(sys.argv[6]) / 1e6
docker = f"; {sys.argv[7]} import {t3 - t2:.1f} s" if sys.argv[7] else ""
print(f"open-nos: {sys.argv[5]} built in {t3 - t0:.1f} s "
      f"(mmdebstrap {t1 - t0:.1f} s, {size:.0f} MB; import {t2 - t1:.1f} s{docker})")
PY
