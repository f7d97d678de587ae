//! Stable MAC addresses derived from (lab, node, interface).
//!
//! A redeploy gives every interface the same MAC (containerlab draws random ones; labwire differs on
//! purpose so ARP caches, LLDP neighbours and DHCP leases survive a redeploy).

use sha2::{Digest, Sha256};

use crate::model::Mac;

/// A 64-bit stable hash of the parts (separated so `("ab","c")` and `("a","bc")` differ).
pub fn hash64(parts: &[&str]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    let out = h.finalize();
    u64::from_le_bytes(out[..8].try_into().expect("8 bytes"))
}

/// A locally administered unicast MAC for the interface; `salt` resolves a collision.
pub fn derive(lab: &str, node: &str, iface: &str, salt: u32) -> Mac {
    let salt = salt.to_string();
    let h = hash64(&[lab, node, iface, &salt]).to_le_bytes();
    let mut b = [h[0], h[1], h[2], h[3], h[4], h[5]];
    b[0] = (b[0] & 0xfc) | 0x02;
    Mac(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_local_unicast() {
        let m = derive("lab", "n1", "eth1", 0);
        assert_eq!(m, derive("lab", "n1", "eth1", 0));
        assert_ne!(m, derive("lab", "n1", "eth2", 0));
        assert_eq!(m.0[0] & 0x03, 0x02);
    }
}
