//! nftables requests (`NETLINK_NETFILTER`, subsystem `nf_tables`): the bytes of a bridge-family
//! table whose one base chain drops chosen ICMPv6 messages entering a bridge from ports of one
//! interface group, and of its deletion. Sent as one transaction by
//! [`super::Handle::transaction`]; `nft list table bridge NAME` shows what they make.

use super::msg::*;
use super::Request;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
pub(crate) const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
pub(crate) const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;

const NFPROTO_BRIDGE: u8 = 7;
/// `NF_BR_PRE_ROUTING`: every frame a bridge receives, before it is forwarded or delivered.
const NF_BR_PRE_ROUTING: u32 = 0;
/// `NF_BR_PRI_FILTER_BRIDGED`, the priority of nft's `filter` in the bridge family.
const PRIORITY_FILTER: i32 = -200;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;

const NLM_F_APPEND: u16 = 0x800;
const NLA_F_NESTED: u16 = 0x8000;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;

const NFT_META_L4PROTO: u32 = 16;
const NFT_META_IIFGROUP: u32 = 21;
const NFT_CMP_EQ: u32 = 0;
const NFT_PAYLOAD_LL_HEADER: u32 = 0;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;

const ETH_P_IPV6: u16 = 0x86dd;
const IPPROTO_ICMPV6: u8 = 58;

/// A bridge-family table of one base chain, hooked where every bridge receives a frame, that
/// drops ICMPv6 messages of `types` entering a bridge from a port in interface group `group`,
/// one counted rule per type (`nft list table bridge TABLE` shows the counts).
#[derive(Debug, Clone, Copy)]
pub struct BridgeIcmpv6Drop<'a> {
    pub table: &'a str,
    pub chain: &'a str,
    pub group: u32,
    pub types: &'a [u8],
}

fn msg(ty: u16, flags: u16) -> MsgBuilder {
    let mut m = MsgBuilder::new((NFNL_SUBSYS_NFTABLES << 8) | ty, flags);
    m.push(&nfgenmsg(NFPROTO_BRIDGE, 0));
    m
}

/// `struct nfgenmsg`: family, version 0, resource id (big-endian).
fn nfgenmsg(family: u8, res_id: u16) -> [u8; 4] {
    let id = res_id.to_be_bytes();
    [family, 0, id[0], id[1]]
}

/// The message opening (`NFNL_MSG_BATCH_BEGIN`) or closing a transaction of `nf_tables`.
pub(crate) fn batch_edge(ty: u16) -> Vec<u8> {
    let mut m = MsgBuilder::new(ty, 0);
    m.push(&nfgenmsg(libc::AF_UNSPEC as u8, NFNL_SUBSYS_NFTABLES));
    m.finish()
}

fn be32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

fn new_table(table: &str) -> Request {
    let mut m = msg(NFT_MSG_NEWTABLE, NLM_F_ACK | NLM_F_CREATE);
    m.attr_str(NFTA_TABLE_NAME, table);
    m.attr(NFTA_TABLE_FLAGS, &be32(0));
    Request::new(m, format!("create nftables table bridge {table}"))
}

/// Deletes bridge-family table `table` with everything in it.
pub(crate) fn delete_table(table: &str) -> Request {
    let mut m = msg(NFT_MSG_DELTABLE, NLM_F_ACK);
    m.attr_str(NFTA_TABLE_NAME, table);
    Request::new(m, format!("delete nftables table bridge {table}"))
}

fn new_chain(table: &str, chain: &str) -> Request {
    let mut m = msg(NFT_MSG_NEWCHAIN, NLM_F_ACK | NLM_F_CREATE);
    m.attr_str(NFTA_CHAIN_TABLE, table);
    m.attr_str(NFTA_CHAIN_NAME, chain);
    let hook = m.nest_start(NFTA_CHAIN_HOOK | NLA_F_NESTED);
    m.attr(NFTA_HOOK_HOOKNUM, &be32(NF_BR_PRE_ROUTING));
    m.attr(NFTA_HOOK_PRIORITY, &PRIORITY_FILTER.to_be_bytes());
    m.nest_end(hook);
    m.attr(NFTA_CHAIN_POLICY, &be32(NF_ACCEPT));
    m.attr_str(NFTA_CHAIN_TYPE, "filter");
    Request::new(m, format!("create nftables chain bridge {table} {chain}"))
}

/// Appends expression `name` whose data `data` writes.
fn expr(m: &mut MsgBuilder, name: &str, data: impl FnOnce(&mut MsgBuilder)) {
    let elem = m.nest_start(NFTA_LIST_ELEM | NLA_F_NESTED);
    m.attr_str(NFTA_EXPR_NAME, name);
    let d = m.nest_start(NFTA_EXPR_DATA | NLA_F_NESTED);
    data(m);
    m.nest_end(d);
    m.nest_end(elem);
}

fn meta(m: &mut MsgBuilder, key: u32) {
    expr(m, "meta", |m| {
        m.attr(NFTA_META_KEY, &be32(key));
        m.attr(NFTA_META_DREG, &be32(NFT_REG_1));
    });
}

fn payload(m: &mut MsgBuilder, base: u32, offset: u32, len: u32) {
    expr(m, "payload", |m| {
        m.attr(NFTA_PAYLOAD_DREG, &be32(NFT_REG_1));
        m.attr(NFTA_PAYLOAD_BASE, &be32(base));
        m.attr(NFTA_PAYLOAD_OFFSET, &be32(offset));
        m.attr(NFTA_PAYLOAD_LEN, &be32(len));
    });
}

/// Register 1 equals `value` (compared bytewise, as loaded).
fn cmp_eq(m: &mut MsgBuilder, value: &[u8]) {
    expr(m, "cmp", |m| {
        m.attr(NFTA_CMP_SREG, &be32(NFT_REG_1));
        m.attr(NFTA_CMP_OP, &be32(NFT_CMP_EQ));
        let d = m.nest_start(NFTA_CMP_DATA | NLA_F_NESTED);
        m.attr(NFTA_DATA_VALUE, value);
        m.nest_end(d);
    });
}

/// `meta iifgroup G ether type ip6 meta l4proto ipv6-icmp icmpv6 type T counter drop`.
fn drop_rule(d: &BridgeIcmpv6Drop<'_>, icmp_type: u8) -> Request {
    let mut m = msg(NFT_MSG_NEWRULE, NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND);
    m.attr_str(NFTA_RULE_TABLE, d.table);
    m.attr_str(NFTA_RULE_CHAIN, d.chain);
    let list = m.nest_start(NFTA_RULE_EXPRESSIONS | NLA_F_NESTED);
    // The group is a host-order u32 in the register.
    meta(&mut m, NFT_META_IIFGROUP);
    cmp_eq(&mut m, &d.group.to_ne_bytes());
    // The Ethernet type, then the transport protocol past any IPv6 extension header (MLD
    // reports carry a hop-by-hop router alert), then the ICMPv6 type.
    payload(&mut m, NFT_PAYLOAD_LL_HEADER, 12, 2);
    cmp_eq(&mut m, &ETH_P_IPV6.to_be_bytes());
    meta(&mut m, NFT_META_L4PROTO);
    cmp_eq(&mut m, &[IPPROTO_ICMPV6]);
    payload(&mut m, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1);
    cmp_eq(&mut m, &[icmp_type]);
    expr(&mut m, "counter", |_| {});
    expr(&mut m, "immediate", |m| {
        m.attr(NFTA_IMMEDIATE_DREG, &be32(NFT_REG_VERDICT));
        let data = m.nest_start(NFTA_IMMEDIATE_DATA | NLA_F_NESTED);
        let verdict = m.nest_start(NFTA_DATA_VERDICT | NLA_F_NESTED);
        m.attr(NFTA_VERDICT_CODE, &be32(NF_DROP));
        m.nest_end(verdict);
        m.nest_end(data);
    });
    m.nest_end(list);
    Request::new(
        m,
        format!(
            "add an nftables rule to bridge {} {} (ICMPv6 type {icmp_type})",
            d.table, d.chain
        ),
    )
}

/// The requests of one transaction that makes `d`'s table anew, replacing one of the same name:
/// the table is created (if missing) and deleted, so what follows starts from nothing.
pub(crate) fn replace_bridge_icmpv6_drop(d: &BridgeIcmpv6Drop<'_>) -> Vec<Request> {
    let mut reqs = vec![
        new_table(d.table),
        delete_table(d.table),
        new_table(d.table),
    ];
    reqs.push(new_chain(d.table, d.chain));
    reqs.extend(d.types.iter().map(|&t| drop_rule(d, t)));
    reqs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(b: &[u8]) -> Vec<(u16, &[u8])> {
        attrs(b).collect()
    }

    #[test]
    fn a_rule_reads_back_as_its_expressions() {
        let d = BridgeIcmpv6Drop {
            table: "t",
            chain: "c",
            group: 0x0102_0304,
            types: &[133],
        };
        let r = drop_rule(&d, 133);
        let body = &r.msg[NLMSG_HDRLEN + 4..];
        let top = nested(body);
        assert_eq!(top[0], (NFTA_RULE_TABLE, &b"t\0"[..]));
        assert_eq!(top[1], (NFTA_RULE_CHAIN, &b"c\0"[..]));
        assert_eq!(top[2].0, NFTA_RULE_EXPRESSIONS);
        let names: Vec<String> = nested(top[2].1)
            .into_iter()
            .map(|(t, e)| {
                assert_eq!(t, NFTA_LIST_ELEM);
                attr_string(nested(e)[0].1)
            })
            .collect();
        assert_eq!(
            names,
            [
                "meta",
                "cmp",
                "payload",
                "cmp",
                "meta",
                "cmp",
                "payload",
                "cmp",
                "counter",
                "immediate"
            ]
        );
        // The last compare holds the ICMPv6 type; the first, the group in host order.
        let cmp_value = |i: usize| {
            let e = nested(top[2].1)[i].1;
            let data = nested(e)[1].1;
            let cmp = nested(data);
            nested(cmp[2].1)[0].1.to_vec()
        };
        assert_eq!(cmp_value(1), 0x0102_0304u32.to_ne_bytes());
        assert_eq!(cmp_value(3), [0x86, 0xdd]);
        assert_eq!(cmp_value(7), [133]);
    }

    #[test]
    fn replacing_deletes_before_it_makes() {
        let d = BridgeIcmpv6Drop {
            table: "t",
            chain: "c",
            group: 1,
            types: &[131, 133, 143],
        };
        let ops: Vec<String> = replace_bridge_icmpv6_drop(&d)
            .into_iter()
            .map(|r| r.op)
            .collect();
        assert_eq!(ops.len(), 7);
        assert!(ops[0].starts_with("create nftables table"));
        assert!(ops[1].starts_with("delete nftables table"));
        assert!(ops[2].starts_with("create nftables table"));
        assert!(ops[3].starts_with("create nftables chain"));
        assert!(ops[4..].iter().all(|o| o.contains("rule")));
    }
}
