//! Relaying a query to the host's resolvers: over UDP with a timeout, again over TCP when the
//! UDP answer is truncated, the next resolver when one does not answer.
//!
//! Each attempt uses a fresh socket connected to the resolver (a random source port, and the
//! kernel drops datagrams from anyone else) and a fresh random id, so an off-path answer has
//! to guess both; the client's id is put back on the reply.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use super::wire;

/// The most a relayed answer may be (the TCP length prefix's limit).
const MAX_MESSAGE: usize = 65535;

/// The `nameserver` lines of a resolv.conf, as port-53 addresses, in order. Lines that do not
/// parse are skipped (glibc does the same); a zone index (`fe80::1%eth0`) is not supported.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        if let Some(Ok(ip)) = words.next().map(str::parse::<IpAddr>) {
            let addr = SocketAddr::new(ip, 53);
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
    out
}

/// The host's resolvers from /etc/resolv.conf (none if it cannot be read: every forward then
/// fails with SERVFAIL).
pub fn host_upstreams() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .map(|t| parse_resolv_conf(&t))
        .unwrap_or_default()
}

/// A 16-bit id no one off-path can predict: SipHash under the process's random keys over a
/// counter.
pub fn random_id() -> u16 {
    static STATE: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    STATE.get_or_init(RandomState::new).hash_one(n) as u16
}

/// Asks each upstream in turn; the first answer wins, except that after a SERVFAIL or
/// REFUSED the next is asked too (the failing answer is kept for when no one does better).
/// `None` when none answered in time.
pub async fn forward(query: &[u8], upstreams: &[SocketAddr], wait: Duration) -> Option<Vec<u8>> {
    let client_id = wire::message_id(query)?;
    let mut fallback = None;
    for upstream in upstreams {
        let id = random_id();
        let mut msg = query.to_vec();
        wire::set_id(&mut msg, id);
        let Some(mut reply) = ask_udp(&msg, *upstream, id, wait).await else {
            continue;
        };
        if wire::is_truncated(&reply) {
            match ask_tcp(&msg, *upstream, id, wait).await {
                Some(full) => reply = full,
                None => continue,
            }
        }
        wire::set_id(&mut reply, client_id);
        if matches!(
            wire::rcode(&reply),
            wire::RCODE_SERVFAIL | wire::RCODE_REFUSED
        ) {
            fallback = Some(reply);
            continue;
        }
        return Some(reply);
    }
    fallback
}

fn is_reply_to(query: &[u8], reply: &[u8], id: u16) -> bool {
    wire::message_id(reply) == Some(id)
        && wire::is_response(reply)
        && wire::same_question(query, reply)
}

fn unspecified_for(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 0),
    }
}

/// One UDP exchange. Datagrams that are not a response with our id are ignored until the
/// time is up.
async fn ask_udp(msg: &[u8], upstream: SocketAddr, id: u16, wait: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind(unspecified_for(upstream)).await.ok()?;
    sock.connect(upstream).await.ok()?;
    sock.send(msg).await.ok()?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    timeout(wait, async {
        loop {
            let n = sock.recv(&mut buf).await.ok()?;
            let reply = &buf[..n];
            if is_reply_to(msg, reply, id) {
                return Some(reply.to_vec());
            }
        }
    })
    .await
    .ok()?
}

/// One TCP exchange (RFC 1035 4.2.2: a two-byte length before each message), all of it
/// within `wait`.
async fn ask_tcp(msg: &[u8], upstream: SocketAddr, id: u16, wait: Duration) -> Option<Vec<u8>> {
    timeout(wait, async {
        let mut stream = TcpStream::connect(upstream).await.ok()?;
        let len = u16::try_from(msg.len()).ok()?;
        let mut out = len.to_be_bytes().to_vec();
        out.extend_from_slice(msg);
        stream.write_all(&out).await.ok()?;
        let reply = read_framed(&mut stream).await?;
        is_reply_to(msg, &reply, id).then_some(reply)
    })
    .await
    .ok()?
}

/// Reads one length-prefixed message from a TCP stream; `None` at EOF or on error.
pub async fn read_framed<R: AsyncReadExt + Unpin>(stream: &mut R) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.ok()?;
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut msg).await.ok()?;
    Some(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers() {
        let text = "# comment\nsearch example.com\nnameserver 10.0.0.53\n\
                    nameserver   ::1\nnameserver bogus\nnameserver\noptions ndots:2\n\
                    nameserver 10.0.0.53\n";
        let got = parse_resolv_conf(text);
        assert_eq!(
            got,
            vec![
                "10.0.0.53:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn ids_vary() {
        let ids: std::collections::HashSet<u16> = (0..64).map(|_| random_id()).collect();
        assert!(ids.len() > 32);
    }
}
