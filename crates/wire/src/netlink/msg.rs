//! Netlink message framing: a builder for one request (header, fixed body, attributes, nested
//! attributes) and a reader for the attributes of a reply. Pure byte handling, no I/O, so the
//! bytes can be checked against golden captures from `ip`.

/// `struct nlmsghdr` length.
pub(crate) const NLMSG_HDRLEN: usize = 16;

// Message types and flags (linux/netlink.h, linux/rtnetlink.h).
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const RTM_NEWLINK: u16 = 16;
pub(crate) const RTM_DELLINK: u16 = 17;
pub(crate) const RTM_GETLINK: u16 = 18;
pub(crate) const RTM_NEWADDR: u16 = 20;
pub(crate) const RTM_DELADDR: u16 = 21;
pub(crate) const RTM_GETADDR: u16 = 22;
pub(crate) const RTM_NEWROUTE: u16 = 24;

pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
/// `NLM_F_ACK_TLVS` on an error message: extended-ack attributes follow.
pub(crate) const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG`.
pub(crate) const NLMSGERR_ATTR_MSG: u16 = 1;

/// Rounds up to the 4-byte netlink alignment.
pub(crate) const fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// Builds one netlink request. The sequence number is filled in when it is sent.
#[derive(Debug, Clone)]
pub(crate) struct MsgBuilder {
    buf: Vec<u8>,
}

impl MsgBuilder {
    /// A message of type `ty` with `flags` (`NLM_F_REQUEST` is always added).
    pub(crate) fn new(ty: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched in finish
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // seq
        buf.extend_from_slice(&0u32.to_ne_bytes()); // pid
        MsgBuilder { buf }
    }

    /// Appends raw bytes (a fixed header such as `ifinfomsg`), padded to alignment.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self.pad();
        self
    }

    fn pad(&mut self) {
        self.buf.resize(align(self.buf.len()), 0);
    }

    /// Appends attribute `ty` with `payload`.
    pub(crate) fn attr(&mut self, ty: u16, payload: &[u8]) -> &mut Self {
        let len = u16::try_from(4 + payload.len()).expect("netlink attribute over 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
        self
    }

    pub(crate) fn attr_u8(&mut self, ty: u16, v: u8) -> &mut Self {
        self.attr(ty, &[v])
    }

    pub(crate) fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }

    /// A NUL-terminated string attribute.
    pub(crate) fn attr_str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.attr(ty, &v)
    }

    /// A string attribute without the terminating NUL (as `ip` sends `IFLA_INFO_KIND`).
    pub(crate) fn attr_str_nonul(&mut self, ty: u16, s: &str) -> &mut Self {
        self.attr(ty, s.as_bytes())
    }

    /// Starts a nested attribute; close it with [`MsgBuilder::nest_end`].
    pub(crate) fn nest_start(&mut self, ty: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        at
    }

    pub(crate) fn nest_end(&mut self, at: usize) -> &mut Self {
        let len = u16::try_from(self.buf.len() - at).expect("nested attribute over 64 KiB");
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// The finished message with its length filled in.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// Writes `seq` into a finished message.
pub(crate) fn set_seq(msg: &mut [u8], seq: u32) {
    msg[8..12].copy_from_slice(&seq.to_ne_bytes());
}

/// A netlink message header read from a reply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Splits a received datagram into messages. Stops at the first malformed header.
pub(crate) fn messages(mut buf: &[u8]) -> impl Iterator<Item = (Header, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32_at(buf, 0) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return None;
        }
        let h = Header {
            ty: u16_at(buf, 4),
            flags: u16_at(buf, 6),
            seq: u32_at(buf, 8),
        };
        let body = &buf[NLMSG_HDRLEN..len];
        buf = &buf[align(len).min(buf.len())..];
        Some((h, body))
    })
}

/// Iterates over `(type, payload)` of the attributes in `buf`; the nested flag and the
/// byte-order flag are masked off the type.
pub(crate) fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = u16_at(buf, 0) as usize;
        if len < 4 || len > buf.len() {
            return None;
        }
        let ty = u16_at(buf, 2) & 0x3fff;
        let payload = &buf[4..len];
        buf = &buf[align(len).min(buf.len())..];
        Some((ty, payload))
    })
}

/// A string attribute's payload up to its NUL.
pub(crate) fn attr_string(payload: &[u8]) -> String {
    let end = payload
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(payload.len());
    String::from_utf8_lossy(&payload[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attribute_lengths_and_padding() {
        let mut m = MsgBuilder::new(RTM_NEWLINK, 0);
        m.push(&[0u8; 16]);
        let n = m.nest_start(18);
        m.attr_str_nonul(1, "veth");
        m.attr_str(3, "ab");
        m.nest_end(n);
        let b = m.finish();
        assert_eq!(b.len(), 16 + 16 + 4 + 8 + 8);
        assert_eq!(u32_at(&b, 0) as usize, b.len());
        let got: Vec<_> = attrs(&b[32..]).collect();
        assert_eq!(got.len(), 1);
        let inner: Vec<_> = attrs(got[0].1).map(|(t, p)| (t, attr_string(p))).collect();
        assert_eq!(inner, vec![(1, "veth".to_string()), (3, "ab".to_string())]);
    }
}
