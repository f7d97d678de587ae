#!/usr/bin/python3
"""Mininet's time for the same job as labwire's ring benchmark: N hosts in a ring (each host's
eth-ports linked to the next host), no controller, no switches. Prints build and stop seconds.

    sudo python3 benches/mininet_ring.py 300
"""
import sys
import time

from mininet.net import Mininet
from mininet.log import setLogLevel


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    setLogLevel("error")
    net = Mininet(controller=None, autoSetMacs=False, build=False)
    t0 = time.monotonic()
    hosts = [net.addHost(f"h{i}") for i in range(1, n + 1)]
    for i in range(n):
        if n == 2 and i == 1:
            break
        net.addLink(hosts[i], hosts[(i + 1) % n])
    net.build()
    net.start()
    t1 = time.monotonic()
    net.stop()
    t2 = time.monotonic()
    print(f"mininet ring {n}: build {t1 - t0:.3f} s, stop {t2 - t1:.3f} s")


if __name__ == "__main__":
    main()
