//! Traffic-control requests: the ingress qdisc and a u32 filter whose one action is a mirred
//! egress redirect, which together hand every frame arriving on one link to another link's
//! transmit path. Two of them, one each way, join a VM's tap to a namespace's veth with no
//! bridge in between ("stitching").
//!
//! The filter is `u32` with one key of value 0 and mask 0 (`tc … u32 match u32 0 0`), which
//! matches every packet whose network header has at least 4 bytes; `matchall` would say the same
//! more directly but is missing from some kernels that do have `u32`. Builders here only produce
//! bytes; the socket lives in the parent.

use super::msg::*;
use super::Request;

// linux/rtnetlink.h
const RTM_NEWQDISC: u16 = 36;
const RTM_NEWTFILTER: u16 = 44;
const RTM_DELTFILTER: u16 = 45;
const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;

// linux/pkt_sched.h, linux/pkt_cls.h
/// `TC_H_INGRESS`: the parent of the ingress qdisc.
const TC_H_INGRESS: u32 = 0xffff_fff1;
/// `ffff:0000`: the ingress qdisc's handle, and the parent of filters attached to it.
const INGRESS_HANDLE: u32 = 0xffff_0000;
const TCA_U32_SEL: u16 = 5;
const TCA_U32_ACT: u16 = 7;
const TC_U32_TERMINAL: u8 = 1;
const TCA_ACT_KIND: u16 = 1;
const TCA_ACT_OPTIONS: u16 = 2;
/// `NLA_F_NESTED`, which `tc` sets on `TCA_ACT_OPTIONS`.
const NLA_F_NESTED: u16 = 0x8000;

// linux/tc_act/tc_mirred.h
const TCA_MIRRED_PARMS: u16 = 2;
const TCA_EGRESS_REDIR: i32 = 1;
/// `TC_ACT_STOLEN`: the redirected packet is consumed, as `tc … mirred egress redirect` asks.
const TC_ACT_STOLEN: i32 = 4;

// linux/if_ether.h
const ETH_P_ALL: u16 = 0x0003;

/// The filter preference (`tc … pref`) of the redirect filters this crate installs. Filters at
/// this preference with protocol `all` on an ingress qdisc belong to `wire`: installing a
/// redirect replaces whatever is there.
pub const REDIRECT_PREF: u16 = 0x4c57;

/// `struct tcmsg` with `AF_UNSPEC`. `info` is `pref << 16 | protocol` for filters, with the
/// protocol in network byte order.
fn tcmsg(ifindex: u32, handle: u32, parent: u32, info: u32) -> [u8; 20] {
    let mut b = [0u8; 20];
    b[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    b[8..12].copy_from_slice(&handle.to_ne_bytes());
    b[12..16].copy_from_slice(&parent.to_ne_bytes());
    b[16..20].copy_from_slice(&info.to_ne_bytes());
    b
}

/// `tcm_info` of the redirect filter: its preference and protocol `all`.
fn redirect_info() -> u32 {
    (u32::from(REDIRECT_PREF) << 16) | u32::from(ETH_P_ALL.to_be())
}

fn lacks_ingress(_extack: Option<&str>) -> &'static str {
    "the running kernel lacks the tc \"ingress\" qdisc (sch_ingress)"
}

/// What a failed filter request lacks, told apart by the kernel's extended ack ("TC classifier
/// not found", "Failed to load TC action module") when it sent one.
fn lacks_filter(extack: Option<&str>) -> &'static str {
    match extack.map(str::to_ascii_lowercase) {
        Some(m) if m.contains("classifier") => {
            "the running kernel lacks the tc \"u32\" classifier (cls_u32)"
        }
        Some(m) if m.contains("action") => {
            "the running kernel lacks the tc \"mirred\" action (act_mirred)"
        }
        _ => "the running kernel lacks tc ingress/u32/mirred (sch_ingress, cls_u32, act_mirred)",
    }
}

/// Adds the ingress qdisc to link `ifindex`, or keeps the one that is there.
///
/// Sent with `NLM_F_CREATE` and without `NLM_F_EXCL`: the kernel then treats an existing ingress
/// qdisc as a no-op change (success), while a `clsact` qdisc in the ingress slot is refused with
/// `EINVAL` ("Invalid qdisc name: must match existing qdisc") rather than silently accepted, since
/// filters with parent `ffff:` would not attach to it.
pub(crate) fn ingress_qdisc(ifindex: u32) -> Request {
    let mut m = MsgBuilder::new(RTM_NEWQDISC, NLM_F_ACK | NLM_F_CREATE);
    m.push(&tcmsg(ifindex, INGRESS_HANDLE, TC_H_INGRESS, 0));
    m.attr_str(TCA_KIND, "ingress");
    Request::new(m, format!("add ingress qdisc on link {ifindex}")).lacks(lacks_ingress)
}

/// Removes the redirect filter (every u32 filter at [`REDIRECT_PREF`], protocol `all`) from the
/// ingress of link `ifindex`; none there counts as success.
pub(crate) fn delete_redirect(ifindex: u32) -> Request {
    let mut m = MsgBuilder::new(RTM_DELTFILTER, NLM_F_ACK);
    m.push(&tcmsg(ifindex, 0, INGRESS_HANDLE, redirect_info()));
    m.attr_str(TCA_KIND, "u32");
    Request::new(m, format!("remove the ingress redirect of link {ifindex}")).enoent_ok()
}

/// `struct tc_mirred` for an egress redirect to `to`.
fn mirred_parms(to: u32) -> [u8; 28] {
    let mut b = [0u8; 28];
    // tc_gen: index, capab, action, refcnt, bindcnt; then eaction, ifindex.
    b[8..12].copy_from_slice(&TC_ACT_STOLEN.to_ne_bytes());
    b[20..24].copy_from_slice(&TCA_EGRESS_REDIR.to_ne_bytes());
    b[24..28].copy_from_slice(&to.to_ne_bytes());
    b
}

/// `struct tc_u32_sel` with one key, value 0 mask 0 at offset 0, marked terminal.
fn match_everything() -> [u8; 32] {
    // flags, offshift, nkeys, pad; offmask, off, offoff, hoff, hmask all 0; then the one key
    // (mask, val, off, offmask), all 0.
    let mut b = [0u8; 32];
    b[0] = TC_U32_TERMINAL;
    b[2] = 1;
    b
}

/// A u32 filter on the ingress of link `from` that matches every packet and redirects it to the
/// egress of link `to` (`tc filter add dev FROM parent ffff: protocol all pref REDIRECT_PREF u32
/// match u32 0 0 action mirred egress redirect dev TO`). Both links are in the namespace of the
/// socket that sends it.
pub(crate) fn redirect(from: u32, to: u32) -> Request {
    let mut m = MsgBuilder::new(RTM_NEWTFILTER, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
    m.push(&tcmsg(from, 0, INGRESS_HANDLE, redirect_info()));
    m.attr_str(TCA_KIND, "u32");
    let opts = m.nest_start(TCA_OPTIONS);
    let acts = m.nest_start(TCA_U32_ACT);
    let first = m.nest_start(1); // action order 1
    m.attr_str(TCA_ACT_KIND, "mirred");
    let act_opts = m.nest_start(TCA_ACT_OPTIONS | NLA_F_NESTED);
    m.attr(TCA_MIRRED_PARMS, &mirred_parms(to));
    m.nest_end(act_opts);
    m.nest_end(first);
    m.nest_end(acts);
    m.attr(TCA_U32_SEL, &match_everything());
    m.nest_end(opts);
    Request::new(
        m,
        format!("redirect the ingress of link {from} to link {to}"),
    )
    .lacks(lacks_filter)
}

/// Everything that makes link `from`'s ingress go to link `to`'s egress, in order: the ingress
/// qdisc (kept if there), the removal of an earlier redirect, the new redirect filter.
pub(crate) fn redirect_all(from: u32, to: u32) -> [Request; 3] {
    [
        ingress_qdisc(from),
        delete_redirect(from),
        redirect(from, to),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    /// `tc qdisc add dev va ingress` with va at ifindex 3 (iproute2 6.1, captured with
    /// `strace -e trace=sendmsg -e write=3`), sequence number zeroed. `tc qdisc add` also sets
    /// `NLM_F_EXCL` (flags 0x0605); this crate leaves it out (0x0405), see `ingress_qdisc`.
    const TC_INGRESS: &str = "
        30 00 00 00 24 00 05 04  00 00 00 00 00 00 00 00
        00 00 00 00 03 00 00 00  00 00 ff ff f1 ff ff ff
        00 00 00 00 0c 00 01 00  69 6e 67 72 65 73 73 00";

    /// `tc filter add dev va parent ffff: protocol all pref 19543 u32 match u32 0 0 action
    /// mirred egress redirect dev vb` with va at 3 and vb at 2.
    const TC_REDIRECT: &str = "
        8c 00 00 00 2c 00 05 06  00 00 00 00 00 00 00 00
        00 00 00 00 03 00 00 00  00 00 00 00 00 00 ff ff
        00 03 57 4c 08 00 01 00  75 33 32 00 60 00 02 00
        38 00 07 00 34 00 01 00  0b 00 01 00 6d 69 72 72
        65 64 00 00 24 00 02 80  20 00 02 00 00 00 00 00
        00 00 00 00 04 00 00 00  00 00 00 00 00 00 00 00
        01 00 00 00 02 00 00 00  24 00 05 00 01 00 01 00
        00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00  00 00 00 00";

    /// `tc filter del dev va parent ffff: protocol all pref 19543 u32`.
    const TC_DELETE: &str = "
        2c 00 00 00 2d 00 05 00  00 00 00 00 00 00 00 00
        00 00 00 00 03 00 00 00  00 00 00 00 00 00 ff ff
        00 03 57 4c 08 00 01 00  75 33 32 00";

    #[test]
    fn ingress_qdisc_matches_tc_without_excl() {
        assert_eq!(ingress_qdisc(3).msg, hex(TC_INGRESS));
    }

    #[test]
    fn redirect_matches_tc_filter_add() {
        assert_eq!(redirect(3, 2).msg, hex(TC_REDIRECT));
    }

    #[test]
    fn delete_matches_tc_filter_del() {
        assert_eq!(delete_redirect(3).msg, hex(TC_DELETE));
    }

    #[test]
    fn missing_tc_pieces_are_named() {
        let e = redirect(3, 2)
            .outcome(libc::ENOENT, Some("TC classifier not found".into()))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "redirect the ingress of link 3 to link 2: the running kernel lacks the tc \"u32\" \
             classifier (cls_u32)"
        );
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        let e = redirect(3, 2)
            .outcome(libc::ENOENT, Some("Failed to load TC action module".into()))
            .unwrap_err();
        assert!(e.to_string().contains("\"mirred\" action"), "{e}");
        let e = redirect(3, 2).outcome(libc::EOPNOTSUPP, None).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("lacks tc ingress/u32/mirred (sch_ingress, cls_u32, act_mirred)"),
            "{e}"
        );
        let e = ingress_qdisc(3)
            .outcome(libc::ENOENT, Some("Specified qdisc kind is unknown".into()))
            .unwrap_err();
        assert!(matches!(e, crate::Error::Unsupported { .. }), "{e:?}");
        assert!(e.to_string().contains("\"ingress\" qdisc"), "{e}");
        // Other errors stay netlink errors; a missing filter is fine to delete.
        assert!(matches!(
            redirect(3, 2).outcome(libc::ENODEV, None),
            Err(crate::Error::Netlink { .. })
        ));
        assert!(delete_redirect(3).outcome(libc::ENOENT, None).is_ok());
    }
}
