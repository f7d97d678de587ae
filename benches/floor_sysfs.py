#!/usr/bin/python3
"""The kernel's floor for one more object a node has: its own /sys. Each node of a lab (labwire's
native nodes, like a container of any engine) mounts sysfs from inside its network namespace, and
the kernel makes one superblock per namespace. It mounts sysfs once from inside each of the named
namespaces (`/run/netns/PREFIX1` … `PREFIXN`), in a private mount namespace of its own, then
unmounts them all, and prints both times and the time each group of mounts took, in order:

    sudo python3 benches/floor_sysfs.py lwf 10000 1000
    mount 4.950 umount 0.211 groups 0.029 0.135 … 0.934

Each mount looks through every sysfs superblock already on the machine (`sget_fc`, under the
kernel's one `sb_lock`), so a group of mounts takes longer the more namespaces have /sys: the
later groups show that growth.
"""
import ctypes
import os
import sys
import time

CLONE_NEWNET, CLONE_NEWNS = 0x40000000, 0x20000
MS_REC, MS_PRIVATE = 0x4000, 0x40000
LIBC = ctypes.CDLL(None, use_errno=True)


def check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def main() -> None:
    prefix, n, group = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    # The mounts stay in this process's own mount namespace and go with it.
    check(LIBC.unshare(CLONE_NEWNS), "unshare the mount namespace")
    check(LIBC.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    root = f"/tmp/{prefix}-sys"
    os.makedirs(root, exist_ok=True)
    check(LIBC.mount(b"tmpfs", root.encode(), b"tmpfs", 0, None), f"mount a tmpfs on {root}")
    dirs = [f"{root}/{i}".encode() for i in range(1, n + 1)]
    for d in dirs:
        os.mkdir(d)
    host = os.open("/proc/self/ns/net", os.O_RDONLY)
    groups = []
    t0 = tg = time.monotonic()
    for i, d in enumerate(dirs, 1):
        fd = os.open(f"/run/netns/{prefix}{i}", os.O_RDONLY)
        check(LIBC.setns(fd, CLONE_NEWNET), f"enter {prefix}{i}")
        os.close(fd)
        check(LIBC.mount(b"sysfs", d, b"sysfs", 0, None), f"mount sysfs in {prefix}{i}")
        if i % group == 0:
            t = time.monotonic()
            groups.append(t - tg)
            tg = t
    t1 = time.monotonic()
    check(LIBC.setns(host, CLONE_NEWNET), "return to the first network namespace")
    for d in reversed(dirs):
        check(LIBC.umount2(d, 0), f"unmount {d.decode()}")
    t2 = time.monotonic()
    check(LIBC.umount2(root.encode(), 0), f"unmount {root}")
    os.rmdir(root)
    print(f"mount {t1 - t0:.3f} umount {t2 - t1:.3f} groups " + " ".join(f"{g:.3f}" for g in groups))


if __name__ == "__main__":
    main()
