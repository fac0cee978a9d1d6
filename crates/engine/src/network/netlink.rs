//! A small synchronous rtnetlink client: the dozen requests the engine needs (create a
//! bridge or a veth pair, set master, namespace, name, up/down, add an IPv4 address and a
//! default route, delete a link, look a link up by name).
//!
//! Hand-written rather than netlink-packet-route + netlink-sys: those crates model all of
//! rtnetlink (hundreds of attribute types) and pull in their own dependency tree, while we send
//! a few fixed messages and read only acks, errors and one link index; the encoding below is
//! the whole of it, is tested byte for byte, and needs no `unsafe` (the socket calls are
//! nix's). Each request asks for an ack, so every error comes back as the kernel's errno, which
//! we report with the interface and the operation.
//!
//! A socket works in the network namespace it was opened in: `Netlink::open` uses the calling
//! thread's, `Netlink::open_in` a namespace file's.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};

use crate::error::{Error, Result};

// From <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h>, <linux/if_addr.h>,
// <linux/veth.h>, <linux/if.h>.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const NLA_F_NESTED: u16 = 0x8000;
const AF_INET: u8 = 2;
const IFF_UP: u32 = 0x1;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;
const HEADER_LEN: usize = 16;
/// Interface names are at most 15 bytes (IFNAMSIZ 16 with the NUL).
pub const MAX_IFNAME: usize = 15;

/// An rtnetlink socket bound to one network namespace.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(|e| Error::Internal(format!("netlink: cannot open a socket: {e}")))?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))
            .map_err(|e| Error::Internal(format!("netlink: cannot bind the socket: {e}")))?;
        Ok(Netlink { fd, seq: 0 })
    }

    /// A socket in the namespace kept at `netns` (see `netns::create`).
    pub fn open_in(netns: &Path) -> Result<Netlink> {
        super::netns::run_in(netns, Netlink::open)?
    }

    /// The index of the interface `name`, None when there is none.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        let mut msg = Message::new(RTM_GETLINK, NLM_F_REQUEST);
        msg.ifinfo(0, 0, 0);
        msg.attr_str(IFLA_IFNAME, checked_name(name)?);
        match self.request(msg) {
            Ok(Reply::Link(index)) => Ok(Some(index)),
            Ok(Reply::Ack) => Err(op_err("look up", name, "no link in the reply")),
            Err(Errno::ENODEV) => Ok(None),
            Err(e) => Err(op_err("look up", name, e)),
        }
    }

    /// Creates a bridge `name` (down, no address).
    pub fn add_bridge(&mut self, name: &str) -> Result<()> {
        let mut msg = Message::new(RTM_NEWLINK, create_flags());
        msg.ifinfo(0, 0, 0);
        msg.attr_str(IFLA_IFNAME, checked_name(name)?);
        let info = msg.begin_nested(IFLA_LINKINFO);
        msg.attr_str(IFLA_INFO_KIND, "bridge");
        msg.end_nested(info);
        self.ack(msg).map_err(|e| op_err("create bridge", name, e))
    }

    /// Creates a veth pair `name` <-> `peer`; with `peer_netns` the peer is created directly
    /// in that namespace (so its name need not be free here).
    pub fn add_veth(
        &mut self,
        name: &str,
        peer: &str,
        peer_netns: Option<BorrowedFd<'_>>,
    ) -> Result<()> {
        let mut msg = Message::new(RTM_NEWLINK, create_flags());
        msg.ifinfo(0, 0, 0);
        msg.attr_str(IFLA_IFNAME, checked_name(name)?);
        let info = msg.begin_nested(IFLA_LINKINFO);
        msg.attr_str(IFLA_INFO_KIND, "veth");
        let data = msg.begin_nested(IFLA_INFO_DATA);
        let peer_attr = msg.begin_nested(VETH_INFO_PEER);
        msg.ifinfo(0, 0, 0);
        msg.attr_str(IFLA_IFNAME, checked_name(peer)?);
        if let Some(fd) = peer_netns {
            msg.attr_u32(IFLA_NET_NS_FD, fd.as_raw_fd() as u32);
        }
        msg.end_nested(peer_attr);
        msg.end_nested(data);
        msg.end_nested(info);
        self.ack(msg)
            .map_err(|e| op_err(&format!("create veth pair with peer {peer} for"), name, e))
    }

    /// Enslaves `name` to the bridge `master`.
    pub fn set_master(&mut self, name: &str, master: &str) -> Result<()> {
        let master_index = self.require(master)?;
        self.set_link(name, &format!("attach to {master}"), |msg| {
            msg.attr_u32(IFLA_MASTER, master_index)
        })
    }

    /// Moves `name` into the network namespace open at `netns`.
    pub fn move_to_netns(&mut self, name: &str, netns: BorrowedFd<'_>) -> Result<()> {
        self.set_link(name, "move to namespace", |msg| {
            msg.attr_u32(IFLA_NET_NS_FD, netns.as_raw_fd() as u32)
        })
    }

    /// Renames `name` to `new_name` (older kernels refuse it while the link is up: set it down).
    pub fn rename(&mut self, name: &str, new_name: &str) -> Result<()> {
        let new_name = checked_name(new_name)?;
        self.set_link(name, &format!("rename to {new_name}"), |msg| {
            msg.attr_str(IFLA_IFNAME, new_name)
        })
    }

    pub fn set_up(&mut self, name: &str) -> Result<()> {
        self.set_flags(name, "set up", IFF_UP)
    }

    pub fn set_down(&mut self, name: &str) -> Result<()> {
        self.set_flags(name, "set down", 0)
    }

    /// Adds (or replaces) the address `addr/prefix` on `name`, with its broadcast address.
    pub fn add_address(&mut self, name: &str, addr: Ipv4Addr, prefix: u8) -> Result<()> {
        let index = self.require(name)?;
        let mut msg = Message::new(RTM_NEWADDR, replace_flags());
        msg.ifaddr(prefix, index);
        msg.attr(IFA_LOCAL, &addr.octets());
        msg.attr(IFA_ADDRESS, &addr.octets());
        if prefix < 31 {
            let host_bits = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
            let broadcast = Ipv4Addr::from(u32::from(addr) | host_bits);
            msg.attr(IFA_BROADCAST, &broadcast.octets());
        }
        self.ack(msg)
            .map_err(|e| op_err(&format!("add address {addr}/{prefix} to"), name, e))
    }

    /// Adds (or replaces) the default route via `gateway` out of `name`.
    pub fn add_default_route(&mut self, name: &str, gateway: Ipv4Addr) -> Result<()> {
        let index = self.require(name)?;
        let mut msg = Message::new(RTM_NEWROUTE, replace_flags());
        msg.rtmsg();
        msg.attr(RTA_GATEWAY, &gateway.octets());
        msg.attr_u32(RTA_OIF, index);
        self.ack(msg)
            .map_err(|e| op_err(&format!("add default route via {gateway} on"), name, e))
    }

    /// Deletes the link `name` (for a veth, both ends); false when there was none.
    pub fn delete_link(&mut self, name: &str) -> Result<bool> {
        let Some(index) = self.link_index(name)? else {
            return Ok(false);
        };
        let mut msg = Message::new(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK);
        msg.ifinfo(index as i32, 0, 0);
        match self.ack(msg) {
            Ok(()) => Ok(true),
            Err(Errno::ENODEV) => Ok(false),
            Err(e) => Err(op_err("delete", name, e)),
        }
    }

    fn require(&mut self, name: &str) -> Result<u32> {
        self.link_index(name)?
            .ok_or_else(|| Error::NotFound(format!("netlink: no interface {name}")))
    }

    fn set_flags(&mut self, name: &str, op: &str, flags: u32) -> Result<()> {
        let index = self.require(name)?;
        let mut msg = Message::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
        msg.ifinfo(index as i32, flags, IFF_UP);
        self.ack(msg).map_err(|e| op_err(op, name, e))
    }

    fn set_link(&mut self, name: &str, op: &str, attrs: impl FnOnce(&mut Message)) -> Result<()> {
        let index = self.require(name)?;
        let mut msg = Message::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
        msg.ifinfo(index as i32, 0, 0);
        attrs(&mut msg);
        self.ack(msg).map_err(|e| op_err(op, name, e))
    }

    fn ack(&mut self, msg: Message) -> std::result::Result<(), Errno> {
        self.request(msg).map(|_| ())
    }

    /// Sends one request and reads until its ack, error or (for a lookup) link reply.
    fn request(&mut self, mut msg: Message) -> std::result::Result<Reply, Errno> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        msg.finish(seq);
        send(self.fd.as_raw_fd(), &msg.buf, MsgFlags::empty())?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
            if let Some(reply) = parse_replies(&buf[..n], seq)? {
                return Ok(reply);
            }
        }
    }
}

fn create_flags() -> u16 {
    NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
}

fn replace_flags() -> u16 {
    NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
}

fn op_err(op: &str, name: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("netlink: {op} {name}: {e}"))
}

fn checked_name(name: &str) -> Result<&str> {
    if name.is_empty() || name.len() > MAX_IFNAME || name.contains(['/', ' ', '\0']) {
        return Err(Error::InvalidParameter(format!(
            "invalid interface name {name:?}: 1 to {MAX_IFNAME} bytes, no '/' or space"
        )));
    }
    Ok(name)
}

#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Ack,
    Link(u32),
}

/// Reads the messages of one datagram: Some(reply) once the answer to `seq` is there.
fn parse_replies(mut data: &[u8], seq: u32) -> std::result::Result<Option<Reply>, Errno> {
    while data.len() >= HEADER_LEN {
        let len = u32_at(data, 0) as usize;
        if len < HEADER_LEN || len > data.len() {
            return Err(Errno::EBADMSG);
        }
        let (kind, msg_seq) = (u16_at(data, 4), u32_at(data, 8));
        let body = &data[HEADER_LEN..len];
        if msg_seq == seq {
            match kind {
                NLMSG_ERROR if body.len() >= 4 => {
                    let code = i32::from_ne_bytes([body[0], body[1], body[2], body[3]]);
                    return if code == 0 {
                        Ok(Some(Reply::Ack))
                    } else {
                        Err(Errno::from_raw(-code))
                    };
                }
                RTM_NEWLINK if body.len() >= 8 => return Ok(Some(Reply::Link(u32_at(body, 4)))),
                NLMSG_DONE => return Ok(Some(Reply::Ack)),
                _ => {}
            }
        }
        data = &data[align(len).min(data.len())..];
    }
    Ok(None)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// One request being encoded: header, family struct, attributes (native byte order, each
/// padded to 4 bytes).
struct Message {
    buf: Vec<u8>,
}

impl Message {
    fn new(kind: u16, flags: u16) -> Message {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // seq, set by finish
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        Message { buf }
    }

    /// struct ifinfomsg: family, pad, type, index, flags, change.
    fn ifinfo(&mut self, index: i32, flags: u32, change: u32) {
        self.buf.extend_from_slice(&[0, 0, 0, 0]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
    }

    /// struct ifaddrmsg: family, prefix length, flags, scope, index.
    fn ifaddr(&mut self, prefix: u8, index: u32) {
        self.buf
            .extend_from_slice(&[AF_INET, prefix, 0, RT_SCOPE_UNIVERSE]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
    }

    /// struct rtmsg of a default IPv4 unicast route in the main table.
    fn rtmsg(&mut self) {
        self.buf.extend_from_slice(&[
            AF_INET,
            0,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
        ]);
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
    }

    fn attr(&mut self, kind: u16, data: &[u8]) {
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn attr_u32(&mut self, kind: u16, value: u32) {
        self.attr(kind, &value.to_ne_bytes());
    }

    /// A NUL-terminated string attribute.
    fn attr_str(&mut self, kind: u16, value: &str) {
        let mut data = value.as_bytes().to_vec();
        data.push(0);
        self.attr(kind, &data);
    }

    fn begin_nested(&mut self, kind: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        at
    }

    fn end_nested(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn pad(&mut self) {
        self.buf.resize(align(self.buf.len()), 0);
    }

    fn finish(&mut self, seq: u32) {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_bridge_request() {
        let mut msg = Message::new(RTM_NEWLINK, create_flags());
        msg.ifinfo(0, 0, 0);
        msg.attr_str(IFLA_IFNAME, "br0");
        let info = msg.begin_nested(IFLA_LINKINFO);
        msg.attr_str(IFLA_INFO_KIND, "bridge");
        msg.end_nested(info);
        msg.finish(7);
        let b = &msg.buf;
        assert_eq!(b.len(), 16 + 16 + 8 + 4 + 12);
        assert_eq!(u32_at(b, 0) as usize, b.len());
        assert_eq!(u16_at(b, 4), RTM_NEWLINK);
        assert_eq!(u16_at(b, 6), 0x605);
        assert_eq!(u32_at(b, 8), 7);
        // IFLA_IFNAME "br0\0": length 8, no padding needed.
        assert_eq!(&b[32..40], &[8, 0, 3, 0, b'b', b'r', b'0', 0][..]);
        // IFLA_LINKINFO nested: 4 + the kind attribute (4 + "bridge\0" = 11, padded to 12).
        assert_eq!(u16_at(b, 40), 16);
        assert_eq!(u16_at(b, 42), IFLA_LINKINFO | NLA_F_NESTED);
        assert_eq!(u16_at(b, 44), 11);
        assert_eq!(&b[48..55], b"bridge\0");
        assert_eq!(b[55], 0);
    }

    #[test]
    fn parses_acks_errors_and_links() {
        let reply = |kind: u16, seq: u32, body: &[u8]| {
            let mut m = Message::new(kind, 0);
            m.buf.extend_from_slice(body);
            m.finish(seq);
            m.buf
        };
        let ack = reply(NLMSG_ERROR, 3, &[0; 20]);
        assert_eq!(parse_replies(&ack, 3), Ok(Some(Reply::Ack)));
        assert_eq!(parse_replies(&ack, 4), Ok(None));
        let mut enodev = (-(Errno::ENODEV as i32)).to_ne_bytes().to_vec();
        enodev.extend_from_slice(&[0; 16]);
        assert_eq!(
            parse_replies(&reply(NLMSG_ERROR, 3, &enodev), 3),
            Err(Errno::ENODEV)
        );
        let mut link = vec![0, 0, 1, 0];
        link.extend_from_slice(&42u32.to_ne_bytes());
        link.extend_from_slice(&[0; 8]);
        let mut two = reply(RTM_NEWLINK, 2, &link);
        two.extend(reply(RTM_NEWLINK, 3, &link));
        assert_eq!(parse_replies(&two, 3), Ok(Some(Reply::Link(42))));
        assert_eq!(
            parse_replies(&[200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 1),
            Err(Errno::EBADMSG)
        );
    }

    #[test]
    fn checks_names() {
        assert!(checked_name("gorae0").is_ok());
        assert!(checked_name("123456789012345").is_ok());
        for bad in ["", "1234567890123456", "a/b", "a b"] {
            assert!(checked_name(bad).is_err(), "{bad:?}");
        }
    }
}
