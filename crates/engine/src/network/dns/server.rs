//! The server: UDP and TCP listeners on addresses added and removed at run time, answering
//! from the shared [`Records`] and relaying the rest.
//!
//! Each listener is bound to one address (a network's gateway), so the address a query
//! arrived on tells which network asked; nothing is bound to a wildcard address. Bounds keep
//! one noisy container from costing the daemon more than a little: a token bucket per source
//! address, a cap on relays in flight and on open TCP connections, an idle timeout on TCP,
//! and junk (responses, headers that do not parse) dropped without an answer.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use super::forward::{self, read_framed};
use super::records::{parse_reverse, Lookup, Records};
use super::wire::{self, Query, RData, Response, WireError};
use crate::error::{Error, Result};

/// The server's knobs. `Default` reads the host's resolvers from /etc/resolv.conf.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Where unknown names are relayed, tried in order.
    pub upstreams: Vec<SocketAddr>,
    /// How long one upstream gets (per attempt: UDP, then TCP) before the next is asked.
    pub forward_timeout: Duration,
    /// The TTL of the server's own answers (docker's embedded DNS says 600).
    pub ttl: u32,
    /// Relays in flight at once; past it queries get SERVFAIL at once.
    pub max_forwards: usize,
    /// Queries per second one source address may send (a burst of twice that is allowed).
    pub per_source_rate: u32,
    /// Open TCP connections, over all listeners.
    pub max_tcp_connections: usize,
    /// A TCP connection that sends nothing this long is closed.
    pub tcp_idle: Duration,
}

impl Default for DnsConfig {
    fn default() -> DnsConfig {
        DnsConfig {
            upstreams: forward::host_upstreams(),
            forward_timeout: Duration::from_secs(3),
            ttl: 600,
            max_forwards: 256,
            per_source_rate: 500,
            max_tcp_connections: 128,
            tcp_idle: Duration::from_secs(10),
        }
    }
}

/// The embedded DNS server. Dropping it stops every listener.
pub struct DnsServer {
    shared: Arc<Shared>,
    listeners: Mutex<HashMap<SocketAddrV4, [JoinHandle<()>; 2]>>,
}

struct Shared {
    records: RwLock<Records>,
    config: DnsConfig,
    upstreams: RwLock<Vec<SocketAddr>>,
    /// Our own listening addresses, never relayed to (a host resolv.conf naming a gateway
    /// would make a loop).
    own: RwLock<Vec<SocketAddrV4>>,
    forwards: Arc<Semaphore>,
    tcp_connections: Arc<Semaphore>,
    limiter: Mutex<Limiter>,
}

/// What to do with one message.
enum Step {
    Reply(Vec<u8>),
    /// Relay to these upstreams.
    Relay(Query, Vec<SocketAddr>),
    Drop,
}

impl DnsServer {
    pub fn new(config: DnsConfig) -> DnsServer {
        let shared = Shared {
            records: RwLock::new(Records::new()),
            upstreams: RwLock::new(config.upstreams.clone()),
            own: RwLock::new(Vec::new()),
            forwards: Arc::new(Semaphore::new(config.max_forwards)),
            tcp_connections: Arc::new(Semaphore::new(config.max_tcp_connections)),
            limiter: Mutex::new(Limiter::new(config.per_source_rate)),
            config,
        };
        DnsServer {
            shared: Arc::new(shared),
            listeners: Mutex::new(HashMap::new()),
        }
    }

    /// Starts answering on `addr`, UDP and TCP on the same port (port 0: one the kernel
    /// picks, free for both). Returns the address bound. Must be called within a tokio
    /// runtime; the listeners run on it.
    pub async fn listen(&self, addr: SocketAddrV4) -> Result<SocketAddrV4> {
        if addr.port() != 0 && lock(&self.listeners).contains_key(&addr) {
            return Ok(addr);
        }
        // Port 0: the port the kernel gave UDP may be taken for TCP; try a few.
        let mut attempts = if addr.port() == 0 { 8 } else { 1 };
        loop {
            attempts -= 1;
            match self.bind(addr).await {
                Err(_) if attempts > 0 => continue,
                r => return r,
            }
        }
    }

    async fn bind(&self, addr: SocketAddrV4) -> Result<SocketAddrV4> {
        let bind_err = |proto: &str, e: std::io::Error| {
            Error::Internal(format!("dns: cannot listen on {addr} ({proto}): {e}"))
        };
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|e| bind_err("udp", e))?;
        let bound = match udp.local_addr().map_err(|e| bind_err("udp", e))? {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => return Err(bind_err("udp", std::io::ErrorKind::Other.into())),
        };
        let tcp = TcpListener::bind(bound)
            .await
            .map_err(|e| bind_err("tcp", e))?;
        let local = *bound.ip();
        let handles = [
            tokio::spawn(udp_loop(self.shared.clone(), udp, local)),
            tokio::spawn(tcp_loop(self.shared.clone(), tcp, local)),
        ];
        lock(&self.listeners).insert(bound, handles);
        write(&self.shared.own).push(bound);
        Ok(bound)
    }

    /// Stops answering on `addr` (its names stay in the table). False if it was not
    /// listened on.
    pub fn unlisten(&self, addr: SocketAddrV4) -> bool {
        write(&self.shared.own).retain(|a| *a != addr);
        match lock(&self.listeners).remove(&addr) {
            Some(handles) => {
                handles.iter().for_each(JoinHandle::abort);
                true
            }
            None => false,
        }
    }

    /// The addresses being listened on.
    pub fn listening(&self) -> Vec<SocketAddrV4> {
        let mut v: Vec<SocketAddrV4> = lock(&self.listeners).keys().copied().collect();
        v.sort();
        v
    }

    /// Changes the name table; the next query sees the change.
    pub fn update<R>(&self, f: impl FnOnce(&mut Records) -> R) -> R {
        f(&mut write(&self.shared.records))
    }

    /// A copy of the name table.
    pub fn records(&self) -> Records {
        read(&self.shared.records).clone()
    }

    /// Replaces the upstream resolvers (the host's resolv.conf changed).
    pub fn set_upstreams(&self, upstreams: Vec<SocketAddr>) {
        *write(&self.shared.upstreams) = upstreams;
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for handles in lock(&self.listeners).values() {
            handles.iter().for_each(JoinHandle::abort);
        }
    }
}

// A panic while holding one of these locks cannot leave the table half-updated in a way
// worse than the update itself, so a poisoned lock is used as is.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}
fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// Receives datagrams; answers from the table inline and relays in tasks owned by the loop
/// (so aborting the loop ends them too).
async fn udp_loop(shared: Arc<Shared>, sock: UdpSocket, local: Ipv4Addr) {
    let sock = Arc::new(sock);
    let mut relays = JoinSet::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                // ICMP errors from earlier sends surface here; back off on anything else.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            Some(_) = relays.join_next(), if !relays.is_empty() => continue,
        };
        if !shared.admit(peer.ip()) {
            continue;
        }
        let msg = &buf[..n];
        match shared.step(local, peer.ip(), msg, true) {
            Step::Reply(r) => {
                let _ = sock.send_to(&r, peer).await;
            }
            Step::Drop => {}
            Step::Relay(q, upstreams) => {
                let Ok(permit) = shared.forwards.clone().try_acquire_owned() else {
                    let _ = sock.send_to(&servfail(&q), peer).await;
                    continue;
                };
                let (shared, sock, msg) = (shared.clone(), sock.clone(), msg.to_vec());
                relays.spawn(async move {
                    let reply = shared.relay(&msg, &q, &upstreams, permit, true).await;
                    let _ = sock.send_to(&reply, peer).await;
                });
            }
        }
    }
}

/// Accepts TCP connections, each served by a task owned by the loop.
async fn tcp_loop(shared: Arc<Shared>, listener: TcpListener, local: Ipv4Addr) {
    let mut conns = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => {
                    // Out of descriptors, mostly: wait for some to come back.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        if !shared.admit(peer.ip()) {
            continue;
        }
        let Ok(permit) = shared.tcp_connections.clone().try_acquire_owned() else {
            continue; // dropping the stream closes it
        };
        conns.spawn(serve_tcp(shared.clone(), stream, local, peer.ip(), permit));
    }
}

/// One TCP client: queries one after another until EOF, junk or idleness.
async fn serve_tcp(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    local: Ipv4Addr,
    peer: IpAddr,
    _permit: OwnedSemaphorePermit,
) {
    let idle = shared.config.tcp_idle;
    while let Ok(Some(msg)) = tokio::time::timeout(idle, read_framed(&mut stream)).await {
        if !shared.admit(peer) {
            return;
        }
        let reply = match shared.step(local, peer, &msg, false) {
            Step::Reply(r) => r,
            Step::Drop => return,
            Step::Relay(q, upstreams) => match shared.forwards.clone().try_acquire_owned() {
                Ok(permit) => shared.relay(&msg, &q, &upstreams, permit, false).await,
                Err(_) => servfail(&q),
            },
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            return;
        };
        let mut out = len.to_be_bytes().to_vec();
        out.extend_from_slice(&reply);
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn servfail(q: &Query) -> Vec<u8> {
    Response {
        query: q,
        rcode: wire::RCODE_SERVFAIL,
        authoritative: false,
        answers: &[],
        ttl: 0,
        limit: wire::CLASSIC_UDP_SIZE,
    }
    .to_bytes()
}

impl Shared {
    fn admit(&self, ip: IpAddr) -> bool {
        lock(&self.limiter).admit(ip, Instant::now())
    }

    /// Reads a message and answers it from the table, or says it must be relayed.
    /// `udp`: the answer must fit the client's UDP size (over TCP anything up to 64 KiB).
    fn step(&self, local: Ipv4Addr, source: IpAddr, msg: &[u8], udp: bool) -> Step {
        let source = match source {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(ip) => ip.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
        };
        let q = match wire::parse_query(msg) {
            Ok(q) => q,
            Err(WireError::Junk) => return Step::Drop,
            Err(WireError::Answerable { id, flags, rcode }) => {
                return Step::Reply(wire::error_response(id, flags, rcode))
            }
        };
        let records = read(&self.records);
        let decision = if records.admits(local, source) {
            answer(&records, local, source, &q)
        } else {
            Some((wire::RCODE_REFUSED, Vec::new()))
        };
        match decision {
            Some((rcode, answers)) => Step::Reply(
                Response {
                    query: &q,
                    rcode,
                    authoritative: rcode != wire::RCODE_REFUSED,
                    answers: &answers,
                    ttl: self.config.ttl,
                    limit: if udp {
                        q.udp_limit().min(wire::OUR_EDNS_SIZE as usize)
                    } else {
                        u16::MAX as usize
                    },
                }
                .to_bytes(),
            ),
            None => Step::Relay(q, self.upstreams_for(&records, local, source)),
        }
    }

    /// The container's own resolvers (`--dns`) if it has some, else the server's; never our
    /// own listening addresses (a host resolv.conf naming a gateway would make a loop).
    fn upstreams_for(
        &self,
        records: &Records,
        local: Ipv4Addr,
        source: Ipv4Addr,
    ) -> Vec<SocketAddr> {
        let own = read(&self.own);
        let global = read(&self.upstreams);
        records
            .upstreams_of(local, source)
            .unwrap_or(&global)
            .iter()
            .filter(|u| !matches!(u, SocketAddr::V4(a) if own.contains(a)))
            .copied()
            .collect()
    }

    /// Relays a query upstream; SERVFAIL when no one answers. For a UDP client an answer
    /// larger than it takes is cut to its question with TC set, so it retries over TCP.
    async fn relay(
        &self,
        msg: &[u8],
        q: &Query,
        upstreams: &[SocketAddr],
        _permit: OwnedSemaphorePermit,
        udp: bool,
    ) -> Vec<u8> {
        let timeout = self.config.forward_timeout;
        match forward::forward(msg, upstreams, timeout).await {
            Some(r) if udp && r.len() > q.udp_limit() => {
                wire::truncate(&r).unwrap_or_else(|| servfail(q))
            }
            Some(r) => r,
            None => servfail(q),
        }
    }
}

/// The table's answer to a query: rcode and records, or `None` to relay it.
fn answer(
    records: &Records,
    local: Ipv4Addr,
    source: Ipv4Addr,
    q: &Query,
) -> Option<(u8, Vec<RData>)> {
    let forwards = records.forwards(local);
    let not_ours = || {
        if forwards {
            None
        } else {
            Some((wire::RCODE_REFUSED, Vec::new()))
        }
    };
    let qs = &q.question;
    if qs.qclass != wire::CLASS_IN && qs.qclass != wire::CLASS_ANY {
        return not_ours();
    }
    let key = qs.key();
    if qs.qtype == wire::TYPE_PTR {
        if let Some(name) =
            parse_reverse(&key).and_then(|ip| records.reverse_from(local, source, ip))
        {
            return Some((wire::RCODE_NOERROR, vec![RData::Ptr(name.to_string())]));
        }
        return not_ours();
    }
    match records.lookup_from(local, source, &key) {
        Lookup::Found(mut ips) => {
            if !matches!(qs.qtype, wire::TYPE_A | wire::TYPE_ANY) {
                // A name we know, of a type we have none of (AAAA: no IPv6): NODATA.
                return Some((wire::RCODE_NOERROR, Vec::new()));
            }
            // Spread clients over a service's containers, as docker's shuffle does.
            let len = ips.len();
            ips.rotate_left(q.id as usize % len);
            Some((wire::RCODE_NOERROR, ips.into_iter().map(RData::A).collect()))
        }
        Lookup::NoSuchName => Some((wire::RCODE_NXDOMAIN, Vec::new())),
        Lookup::Refuse => Some((wire::RCODE_REFUSED, Vec::new())),
        Lookup::Forward => not_ours(),
    }
}

/// Token buckets per source address, with a bounded number of sources tracked.
struct Limiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<IpAddr, (f64, Instant)>,
}

const MAX_SOURCES: usize = 4096;

impl Limiter {
    fn new(rate: u32) -> Limiter {
        Limiter {
            rate: f64::from(rate.max(1)),
            burst: f64::from(rate.max(1)) * 2.0,
            buckets: HashMap::new(),
        }
    }

    fn admit(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.buckets.len() >= MAX_SOURCES && !self.buckets.contains_key(&ip) {
            // A source idle long enough to have refilled its bucket loses nothing by being
            // forgotten.
            let full = Duration::from_secs_f64(self.burst / self.rate);
            self.buckets
                .retain(|_, (_, at)| now.duration_since(*at) < full);
            if self.buckets.len() >= MAX_SOURCES {
                return false;
            }
        }
        let (rate, burst) = (self.rate, self.burst);
        let (tokens, at) = self.buckets.entry(ip).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::dns::records::ScopeOptions;

    const NET: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const WEB: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn table() -> Records {
        let mut r = Records::new();
        r.add_network(NET, ScopeOptions::default());
        r.set_endpoint(NET, WEB, &["web1", "web"]);
        r
    }

    fn ask(r: &Records, name: &str, qtype: u16) -> Option<(u8, Vec<RData>)> {
        let q = wire::parse_query(&wire::build_query(7, name, qtype, None)).unwrap();
        answer(r, NET, WEB, &q)
    }

    #[test]
    fn answers_from_the_table() {
        let r = table();
        let a = Some((wire::RCODE_NOERROR, vec![RData::A(WEB)]));
        assert_eq!(ask(&r, "WEB.", wire::TYPE_A), a);
        assert_eq!(ask(&r, "web", wire::TYPE_ANY), a);
        assert_eq!(
            ask(&r, "web", wire::TYPE_AAAA),
            Some((wire::RCODE_NOERROR, vec![]))
        );
        assert_eq!(
            ask(&r, "db", wire::TYPE_A),
            Some((wire::RCODE_NXDOMAIN, vec![]))
        );
        assert_eq!(ask(&r, "example.com", wire::TYPE_A), None);
        assert_eq!(
            ask(&r, "2.0.0.10.in-addr.arpa", wire::TYPE_PTR),
            Some((wire::RCODE_NOERROR, vec![RData::Ptr("web1".into())]))
        );
        assert_eq!(ask(&r, "3.0.0.10.in-addr.arpa", wire::TYPE_PTR), None);
    }

    #[test]
    fn internal_networks_refuse_outside_names() {
        let mut r = table();
        r.add_network(
            NET,
            ScopeOptions {
                no_forward: true,
                ..ScopeOptions::default()
            },
        );
        assert_eq!(
            ask(&r, "example.com", wire::TYPE_A),
            Some((wire::RCODE_REFUSED, vec![]))
        );
        assert_eq!(
            ask(&r, "web", wire::TYPE_A),
            Some((wire::RCODE_NOERROR, vec![RData::A(WEB)]))
        );
    }

    #[test]
    fn limiter_refills_and_forgets() {
        let mut l = Limiter::new(10);
        let ip: IpAddr = Ipv4Addr::LOCALHOST.into();
        let t0 = Instant::now();
        let admitted = (0..100).filter(|_| l.admit(ip, t0)).count();
        assert_eq!(admitted, 20);
        assert!(l.admit(ip, t0 + Duration::from_millis(200)));
        for i in 0..(MAX_SOURCES as u32 + 10) {
            l.admit(IpAddr::V4(Ipv4Addr::from(i)), t0);
        }
        assert!(l.buckets.len() <= MAX_SOURCES);
        // Much later every bucket is full again: old sources are forgotten for new ones.
        assert!(l.admit(
            IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)),
            t0 + Duration::from_secs(60)
        ));
    }
}
