//! What this host does about a lab split across hosts before deploying its part: the other
//! partitions' host names resolved to addresses (waiting a while for a name that does not resolve
//! yet — a pod's Service name before the pod has an address), and the management network's IPv6
//! dropped with one warning where the host has IPv6 disabled (Docker's and many clusters' default
//! inside containers, where the bridge's IPv6 gateway address would be refused).
//!
//! The pure part — which nodes and links a partition deploys, the tunnels and their VNIs — is
//! `topology::partition`.

use std::net::{IpAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use topology::Lab;

/// How long a partition's host name may take to resolve.
pub const RESOLVE_WAIT: Duration = Duration::from_secs(90);

/// The part of `lab` partition `name` deploys, its tunnels aimed at the other partitions' hosts.
pub fn view(lab: &Lab, name: &str, wait: Duration) -> Result<Lab, String> {
    topology::partition::view(lab, name, &|_, p| resolve(&p.address, wait))
}

/// An address for `host` (an IP address as is, else the first IPv4 address DNS gives, else the
/// first IPv6 one), retried until `wait` has passed.
pub fn resolve(host: &str, wait: Duration) -> Result<IpAddr, String> {
    if let Ok(a) = host.parse::<IpAddr>() {
        return Ok(a);
    }
    let deadline = Instant::now() + wait;
    let mut told = false;
    loop {
        let err = match (host, 0u16).to_socket_addrs() {
            Ok(addrs) => {
                let addrs: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
                if let Some(a) = addrs.iter().find(|a| a.is_ipv4()).or_else(|| addrs.first()) {
                    return Ok(*a);
                }
                "no address".to_string()
            }
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "cannot resolve {host} (tried for {} s): {err}",
                wait.as_secs()
            ));
        }
        if !told {
            log::info!("waiting for {host} to resolve ({err})");
            told = true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Whether new interfaces in the host's network namespace get no IPv6 (`disable_ipv6` set for
/// new devices, or no IPv6 in the kernel at all).
pub fn host_ipv6_disabled() -> bool {
    match std::fs::read_to_string("/proc/sys/net/ipv6/conf/default/disable_ipv6") {
        Ok(v) => v.trim() == "1",
        Err(_) => true,
    }
}

/// Drop the management network's IPv6 (subnet, gateway, nodes' addresses) when the host has IPv6
/// disabled, with one warning; returns whether it did. Lab links keep their IPv6: the nodes'
/// own namespaces have IPv6 whatever the host's says.
pub fn skip_mgmt_ipv6_if_disabled(lab: &mut Lab) -> bool {
    if lab.mgmt.ipv6_subnet.is_none() || !host_ipv6_disabled() {
        return false;
    }
    log::warn!(
        "IPv6 is disabled in this host's network namespace: the management network of lab {} gets no IPv6 (subnet {} skipped)",
        lab.name,
        lab.mgmt.ipv6_subnet.map(|s| s.to_string()).unwrap_or_default()
    );
    strip_mgmt_ipv6(lab);
    if let Some(p) = &mut lab.part_of {
        strip_mgmt_ipv6(&mut p.lab);
    }
    true
}

fn strip_mgmt_ipv6(lab: &mut Lab) {
    lab.mgmt.ipv6_subnet = None;
    lab.mgmt.ipv6_gw = None;
    lab.mgmt.ipv6_range = None;
    for n in &mut lab.nodes {
        n.mgmt_ipv6 = None;
    }
}
