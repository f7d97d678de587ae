#!/usr/bin/env bash
# Build the open-nos image: a Debian base plus the open core Cumulus Linux itself uses (FRR,
# ifupdown2, lldpd, iproute2), with systemd, openssh-server and python3 so Ansible can manage it.
# Built with mmdebstrap (no container engine) and imported into labwire's image store.
#
#   sudo images/open-nos/build.sh                 # → open-nos:latest
#   sudo LABWIRE=/path/to/labwire images/open-nos/build.sh [NAME] [OUT.tar]
#
# Environment: LABWIRE (the labwire binary; else `labwire` on PATH), LABWIRE_IMAGE_DIR (the image
# store, as for labwire itself), MMDEBSTRAP_ARGS (extra mmdebstrap arguments, e.g. a mirror).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=${1:-open-nos:latest}
[ "$(id -u)" = 0 ] || { echo "build.sh: run as root (mmdebstrap and labwire image import need it)" >&2; exit 1; }
labwire=${LABWIRE:-$(command -v labwire || true)}
[ -n "$labwire" ] && [ -x "$labwire" ] || { echo "build.sh: labwire not found: set LABWIRE or put it on PATH" >&2; exit 1; }

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
out=${2:-$work/out.tar}

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
python3 - "$t0" "$t1" "$t2" "$name" "$out" <<'PY'
import os, sys
t0, t1, t2 = map(float, sys.argv[1:4])
size = os.path.getsize(sys.argv[5]) / 1e6
print(f"open-nos: {sys.argv[4]} built in {t2 - t0:.1f} s "
      f"(mmdebstrap {t1 - t0:.1f} s, {size:.0f} MB; import {t2 - t1:.1f} s)")
PY
