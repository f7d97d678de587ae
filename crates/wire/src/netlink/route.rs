//! Route requests (`RTM_NEWROUTE`) in the main table.

use std::net::IpAddr;

use super::addr::{family, octets};
use super::msg::*;
use super::Request;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;

/// A unicast route to `dst/prefix_len` via `gateway` and/or out of `oif`. Without a gateway the
/// route is on-link (link scope).
pub(crate) fn add(
    dst: IpAddr,
    prefix_len: u8,
    gateway: Option<IpAddr>,
    oif: Option<u32>,
) -> Request {
    let scope = if gateway.is_none() {
        RT_SCOPE_LINK
    } else {
        RT_SCOPE_UNIVERSE
    };
    let rtmsg = [
        family(&dst),
        prefix_len,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        scope,
        RTN_UNICAST,
    ];
    let mut m = MsgBuilder::new(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
    m.push(&rtmsg);
    m.push(&0u32.to_ne_bytes()); // rtm_flags
    if prefix_len > 0 {
        m.attr(RTA_DST, &octets(&dst));
    }
    if let Some(gw) = gateway {
        m.attr(RTA_GATEWAY, &octets(&gw));
    }
    if let Some(oif) = oif {
        m.attr_u32(RTA_OIF, oif);
    }
    let via = gateway.map(|g| format!(" via {g}")).unwrap_or_default();
    let dev = oif.map(|o| format!(" dev {o}")).unwrap_or_default();
    Request::new(m, format!("add route {dst}/{prefix_len}{via}{dev}"))
}
