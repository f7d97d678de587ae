#!/usr/bin/env bash
# Image benchmark: import time of a ~200 MB Debian-like rootfs tarball into labwire's image store,
# then deploy (and destroy) time of a 100-node ring whose nodes run from that image (overlay root
# per node) versus the same ring on the host's file system, after a first deploy that unpacked the
# layers. Prints seconds and the ratio image / host (target: at most 1.5x).
#
#   sudo benches/images.sh           # 100 nodes, 5 rounds
#   sudo benches/images.sh 50 5      # 50 nodes, 5 rounds
#
# The rootfs is made from the host, not downloaded: busybox-static as /bin (sh and a few applets),
# plus copies of the host's /etc, /usr/share/locale and /usr/lib/python3.11 (or, where that is
# missing, as much of /usr/lib/x86_64-linux-gnu as brings the tree to ~200 MB). It is a plain tar
# (one layer, uncompressed), imported like `docker import`.
#
# Uses its own image store (LABWIRE_IMAGE_DIR under a temp dir) and management network
# (lwbench-img, 10.249.0.0/24). It prints figures; it passes or fails nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
[ "$(id -u)" = 0 ] || { echo "benches/images.sh: run as root" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "benches/images.sh: needs /bin/busybox (busybox-static)" >&2; exit 1; }
N=${1:-100}
ROUNDS=${2:-5}
cargo build --release -q --workspace
LW=${CARGO_TARGET_DIR:-$PWD/target}/release/labwire
[ -x "$LW" ] || LW=$PWD/$LW
WORK=$(mktemp -d /tmp/lw-imgbench.XXXXXX)
export LABWIRE_IMAGE_DIR=$WORK/store
HOSTLAB=lwbench-imgh
IMGLAB=lwbench-imgi
IMAGE=lwbench/debianish:1
cleanup() {
    "$LW" destroy --name "$HOSTLAB" --cleanup >/dev/null 2>&1 || true
    "$LW" destroy --name "$IMGLAB" --cleanup >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# ---- the rootfs ---------------------------------------------------------------------------------
ROOT=$WORK/rootfs
mkdir -p "$ROOT"/{bin,root,tmp,proc,sys,dev,run,var/log,usr/lib,usr/share}
cp /bin/busybox "$ROOT/bin/"
for a in sh ls cat echo ip ping ps sleep hostname id env; do ln -s busybox "$ROOT/bin/$a"; done
cp -a /etc "$ROOT/etc"
cp -a /usr/share/locale "$ROOT/usr/share/"
if [ -d /usr/lib/python3.11 ]; then
    cp -a /usr/lib/python3.11 "$ROOT/usr/lib/"
fi
mkdir -p "$ROOT/usr/lib/x86_64-linux-gnu"
# Top up from the host's shared libraries until ~200 MB.
for f in /usr/lib/x86_64-linux-gnu/*.so*; do
    [ "$(du -sm "$ROOT" | cut -f1)" -ge 200 ] && break
    cp -a "$f" "$ROOT/usr/lib/x86_64-linux-gnu/" 2>/dev/null || true
done
TARBALL=$WORK/rootfs.tar
tar --numeric-owner -cf "$TARBALL" -C "$ROOT" .
SIZE_MB=$(du -m "$TARBALL" | cut -f1)
FILES=$(tar -tf "$TARBALL" | wc -l)
rm -rf "$ROOT"

# ---- import ---------------------------------------------------------------------------------
sync
t0=$(now)
"$LW" image import "$TARBALL" --name "$IMAGE" >/dev/null
t1=$(now)
IMPORT=$(secs "$t0" "$t1")
echo "import of a ${SIZE_MB} MB rootfs tarball (${FILES} entries, one layer): ${IMPORT} s"
echo "  $(python3 -c "print(f'{$SIZE_MB / ($t1 - $t0):.0f}')") MB/s (hash, store the blob, unpack and check the layer)"

# ---- the two rings ----------------------------------------------------------------------------
mgmt() { echo "mgmt: {network: lwbench-img, bridge: lwbench-img, ipv4-subnet: 10.249.0.0/24, ipv6-subnet: \"fd00:249::/64\"}"; }
"$LW" generate ring --nodes "$N" --name "$HOSTLAB" -o "$WORK/host.clab.yml"
"$LW" generate ring --nodes "$N" --name "$IMGLAB" -o "$WORK/img.clab.yml"
for f in host img; do sed -i "1a $(mgmt)" "$WORK/$f.clab.yml"; done
sed -i "s|^  defaults:\$|  defaults:\n    image: $IMAGE|" "$WORK/img.clab.yml"
grep -q "image: $IMAGE" "$WORK/img.clab.yml" || { echo "could not add the image to the ring" >&2; exit 1; }

run_lab() {
    local file=$1 name=$2 check=${3:-} t0 t1 t2
    t0=$(now)
    "$LW" deploy -q -t "$file" >"$WORK/deploy.out" 2>"$WORK/deploy.err" || { cat "$WORK/deploy.err"; exit 1; }
    t1=$(now)
    if [ -n "$check" ]; then
        # Not timed: the node really runs on the image's overlay root.
        "$LW" exec --name "$name" --node n1 --cmd "cat /proc/mounts" | grep -q '^overlay / overlay' \
            || { echo "the image ring's n1 does not run on an overlay root" >&2; exit 1; }
        t1=$(now)
    fi
    "$LW" destroy --name "$name" --cleanup >/dev/null 2>"$WORK/destroy.err" || { cat "$WORK/destroy.err"; exit 1; }
    t2=$(now)
    UP=$(secs "$t0" "$t1"); DOWN=$(secs "$t1" "$t2")
    # The kernel frees the host veth ends asynchronously; let it settle before the next run.
    while ip -br link | grep -q '^lw[0-9a-f]\{8\}'; do sleep 0.1; done
}

# First deploy of the image ring: unpacks nothing more (import already unpacked and checked the
# layer) but warms the page cache of the layer tree; not counted.
run_lab "$WORK/img.clab.yml" "$IMGLAB" check
echo "first deploy of the image ring (not counted): destroy ${DOWN} s"

# Rounds alternate which ring goes first; the ratio is taken per round (both rings under the same
# load), and the medians are printed.
HU=(); HD=(); IU=(); ID=(); RU=(); RD=()
for r in $(seq 1 "$ROUNDS"); do
    if (( r % 2 )); then
        run_lab "$WORK/host.clab.yml" "$HOSTLAB"; HU+=("$UP"); HD+=("$DOWN")
        run_lab "$WORK/img.clab.yml" "$IMGLAB"; IU+=("$UP"); ID+=("$DOWN")
    else
        run_lab "$WORK/img.clab.yml" "$IMGLAB"; IU+=("$UP"); ID+=("$DOWN")
        run_lab "$WORK/host.clab.yml" "$HOSTLAB"; HU+=("$UP"); HD+=("$DOWN")
    fi
    RU+=("$(ratio "${IU[-1]}" "${HU[-1]}")"); RD+=("$(ratio "${ID[-1]}" "${HD[-1]}")")
    echo "round $r: host deploy ${HU[-1]} s destroy ${HD[-1]} s | image deploy ${IU[-1]} s destroy ${ID[-1]} s | ratio ${RU[-1]}x ${RD[-1]}x"
done
echo "ring of $N nodes (+ management network), median of $ROUNDS rounds:"
echo "  host file system   deploy $(median "${HU[@]}") s   destroy $(median "${HD[@]}") s"
echo "  image              deploy $(median "${IU[@]}") s   destroy $(median "${ID[@]}") s   ($IMAGE)"
echo "  image / host       deploy $(median "${RU[@]}")x (target <= 1.5x)   destroy $(median "${RD[@]}")x   (median of per-round ratios)"
echo "  load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
