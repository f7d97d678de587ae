//! Traffic shaping on a link's egress: the root qdisc that impairs what a link sends — `netem`
//! (delay, jitter, loss, corruption, duplication, reorder, and a rate with them) or `tbf` (a rate
//! alone) — and its removal. Builders here only produce bytes; the socket lives in the parent.
//!
//! netem's options are its fixed `struct tc_netem_qopt` followed by attributes, not a plain
//! nest; times go in the 64-bit nanosecond attributes (the struct's tick fields are filled too,
//! for kernels that predate them). tbf is given a link-layer-aware rate (no rate table) and its
//! burst in bytes.

use super::msg::*;
use super::Request;

const RTM_NEWQDISC: u16 = 36;
const RTM_DELQDISC: u16 = 37;
const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
/// `TC_H_ROOT`.
const TC_H_ROOT: u32 = 0xffff_ffff;
/// `1:0`, the handle labwire's root qdisc takes.
const ROOT_HANDLE: u32 = 0x0001_0000;

// linux/pkt_sched.h: netem
const TCA_NETEM_REORDER: u16 = 3;
const TCA_NETEM_CORRUPT: u16 = 4;
const TCA_NETEM_RATE: u16 = 6;
const TCA_NETEM_RATE64: u16 = 8;
const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;
// tbf
const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;
const TC_LINKLAYER_ETHERNET: u8 = 1;
/// `PSCHED_SHIFT`: a scheduler tick is 64 ns.
const PSCHED_SHIFT: u32 = 6;

/// Packets netem queues (tc's default limit).
const NETEM_LIMIT: u32 = 1000;

/// What a link's root qdisc should do. Percentages are 0–100; `None` leaves a parameter out.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Shape {
    pub delay_ns: u64,
    pub jitter_ns: u64,
    pub loss: Option<f64>,
    pub corruption: Option<f64>,
    pub duplication: Option<f64>,
    pub reorder: Option<f64>,
    /// Bytes per second.
    pub rate_bytes: Option<u64>,
}

impl Shape {
    /// Whether anything but a rate is asked for (which takes netem; a rate alone takes tbf).
    pub fn needs_netem(&self) -> bool {
        self.delay_ns > 0
            || self.jitter_ns > 0
            || self.loss.is_some()
            || self.corruption.is_some()
            || self.duplication.is_some()
            || self.reorder.is_some()
    }
}

/// A percentage as netem's 32-bit probability (`u32::MAX` is 100 %).
fn probability(percent: f64) -> u32 {
    ((percent.clamp(0.0, 100.0) / 100.0) * f64::from(u32::MAX)).round() as u32
}

fn ticks(ns: u64) -> u32 {
    u32::try_from(ns >> PSCHED_SHIFT).unwrap_or(u32::MAX)
}

/// `struct tcmsg` for the root qdisc of `ifindex`.
fn root_tcmsg(ifindex: u32, handle: u32) -> [u8; 20] {
    let mut b = [0u8; 20];
    b[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    b[8..12].copy_from_slice(&handle.to_ne_bytes());
    b[12..16].copy_from_slice(&TC_H_ROOT.to_ne_bytes());
    b
}

fn lacks_netem(_extack: Option<&str>) -> &'static str {
    "the running kernel lacks the tc \"netem\" qdisc (module sch_netem)"
}

fn lacks_tbf(_extack: Option<&str>) -> &'static str {
    "the running kernel lacks the tc \"tbf\" qdisc (module sch_tbf)"
}

/// Removes the root qdisc of `ifindex` (back to the device's default); none of labwire's there
/// counts as success.
pub(crate) fn delete_root(ifindex: u32) -> Request {
    let mut m = MsgBuilder::new(RTM_DELQDISC, NLM_F_ACK);
    m.push(&root_tcmsg(ifindex, 0));
    Request::new(m, format!("remove the root qdisc of link {ifindex}")).enoent_ok()
}

/// `tc qdisc add dev IF root handle 1: netem …`.
pub(crate) fn netem(ifindex: u32, s: &Shape) -> Request {
    let mut m = MsgBuilder::new(RTM_NEWQDISC, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
    m.push(&root_tcmsg(ifindex, ROOT_HANDLE));
    m.attr_str(TCA_KIND, "netem");
    let opts = m.nest_start(TCA_OPTIONS);
    // struct tc_netem_qopt: latency, limit, loss, gap, duplicate, jitter.
    let mut q = [0u8; 24];
    q[0..4].copy_from_slice(&ticks(s.delay_ns).to_ne_bytes());
    q[4..8].copy_from_slice(&NETEM_LIMIT.to_ne_bytes());
    q[8..12].copy_from_slice(&s.loss.map_or(0, probability).to_ne_bytes());
    // Reordering sends every gap-th packet at once; tc makes the gap 1 when only a probability
    // is given.
    let gap: u32 = u32::from(s.reorder.is_some());
    q[12..16].copy_from_slice(&gap.to_ne_bytes());
    q[16..20].copy_from_slice(&s.duplication.map_or(0, probability).to_ne_bytes());
    q[20..24].copy_from_slice(&ticks(s.jitter_ns).to_ne_bytes());
    m.push(&q);
    if let Some(r) = s.reorder {
        let mut b = [0u8; 8];
        b[0..4].copy_from_slice(&probability(r).to_ne_bytes());
        m.attr(TCA_NETEM_REORDER, &b);
    }
    if let Some(c) = s.corruption {
        let mut b = [0u8; 8];
        b[0..4].copy_from_slice(&probability(c).to_ne_bytes());
        m.attr(TCA_NETEM_CORRUPT, &b);
    }
    if let Some(rate) = s.rate_bytes {
        // struct tc_netem_rate: rate, packet_overhead, cell_size, cell_overhead.
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&u32::try_from(rate).unwrap_or(u32::MAX).to_ne_bytes());
        m.attr(TCA_NETEM_RATE, &b);
        if rate > u64::from(u32::MAX) {
            m.attr(TCA_NETEM_RATE64, &rate.to_ne_bytes());
        }
    }
    if s.delay_ns > 0 {
        m.attr(TCA_NETEM_LATENCY64, &(s.delay_ns as i64).to_ne_bytes());
    }
    if s.jitter_ns > 0 {
        m.attr(TCA_NETEM_JITTER64, &(s.jitter_ns as i64).to_ne_bytes());
    }
    m.nest_end(opts);
    Request::new(m, format!("add a netem qdisc to link {ifindex}")).lacks(lacks_netem)
}

/// The burst tbf allows: a tenth of a second at the rate, and never less than 32 KiB, so one
/// frame of a 9500-byte link MTU (or a segmented GSO burst) always fits.
fn burst_bytes(rate_bytes: u64) -> u32 {
    u32::try_from((rate_bytes / 10).max(32 * 1024)).unwrap_or(u32::MAX)
}

/// `tc qdisc add dev IF root handle 1: tbf rate R burst B latency 50ms`.
pub(crate) fn tbf(ifindex: u32, rate_bytes: u64) -> Request {
    let mut m = MsgBuilder::new(RTM_NEWQDISC, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
    m.push(&root_tcmsg(ifindex, ROOT_HANDLE));
    m.attr_str(TCA_KIND, "tbf");
    let burst = burst_bytes(rate_bytes);
    // The queue holds 50 ms at the rate on top of the burst, as `latency 50ms` does.
    let limit = u32::try_from(rate_bytes / 20 + u64::from(burst)).unwrap_or(u32::MAX);
    let buffer_ns = u64::from(burst) * 1_000_000_000 / rate_bytes.max(1);
    let opts = m.nest_start(TCA_OPTIONS);
    // struct tc_tbf_qopt: rate (tc_ratespec), peakrate (tc_ratespec), limit, buffer, mtu.
    let mut p = [0u8; 36];
    p[1] = TC_LINKLAYER_ETHERNET;
    p[8..12].copy_from_slice(&u32::try_from(rate_bytes).unwrap_or(u32::MAX).to_ne_bytes());
    p[24..28].copy_from_slice(&limit.to_ne_bytes());
    p[28..32].copy_from_slice(&ticks(buffer_ns).to_ne_bytes());
    m.attr(TCA_TBF_PARMS, &p);
    if rate_bytes > u64::from(u32::MAX) {
        m.attr(TCA_TBF_RATE64, &rate_bytes.to_ne_bytes());
    }
    m.attr_u32(TCA_TBF_BURST, burst);
    m.nest_end(opts);
    Request::new(m, format!("add a tbf qdisc to link {ifindex}")).lacks(lacks_tbf)
}

/// Everything that gives `ifindex` exactly `shape` as its root qdisc, in order: the old root
/// qdisc removed, then netem or tbf (nothing more for an empty shape).
pub(crate) fn apply(ifindex: u32, shape: &Shape) -> Vec<Request> {
    let mut reqs = vec![delete_root(ifindex)];
    if shape.needs_netem() {
        reqs.push(netem(ifindex, shape));
    } else if let Some(r) = shape.rate_bytes {
        reqs.push(tbf(ifindex, r));
    }
    reqs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_span_u32() {
        assert_eq!(probability(0.0), 0);
        assert_eq!(probability(100.0), u32::MAX);
        assert_eq!(probability(20.0), 858_993_459);
    }

    #[test]
    fn a_rate_alone_takes_tbf() {
        let s = Shape {
            rate_bytes: Some(125_000),
            ..Default::default()
        };
        let reqs = apply(3, &s);
        assert_eq!(reqs.len(), 2);
        assert!(reqs[1].op.contains("tbf"), "{}", reqs[1].op);
        let s = Shape {
            delay_ns: 1_000_000,
            ..s
        };
        assert!(apply(3, &s)[1].op.contains("netem"));
        assert_eq!(apply(3, &Shape::default()).len(), 1);
    }

    #[test]
    fn a_missing_qdisc_is_named_with_its_module() {
        let e = netem(3, &Shape::default())
            .outcome(libc::ENOENT, Some("Specified qdisc kind is unknown".into()))
            .unwrap_err();
        assert!(e.to_string().ends_with("(module sch_netem)"), "{e}");
    }
}
