//! The embedded DNS server over real sockets on loopback: per-network answers chosen by the
//! address a query arrives on, table updates, relaying to a fake upstream (UDP, then TCP on
//! truncation), SERVFAIL without upstreams, junk, bounds, and a real client (busybox
//! nslookup, which needs port 53: that part is skipped when 127.0.0.x:53 cannot be bound).
//!
//! Every server listens on port 0 of a 127.0.0.x address, so tests run in parallel.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gorae_engine::network::dns::wire::{self, RData, Response};
use gorae_engine::network::dns::{DnsConfig, DnsServer, ScopeOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const WEB: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);

fn config(upstreams: Vec<SocketAddr>) -> DnsConfig {
    DnsConfig {
        upstreams,
        forward_timeout: Duration::from_millis(500),
        ..DnsConfig::default()
    }
}

async fn listen(server: &DnsServer, ip: [u8; 4]) -> SocketAddrV4 {
    server
        .listen(SocketAddrV4::new(Ipv4Addr::from(ip), 0))
        .await
        .unwrap()
}

async fn udp_raw(server: SocketAddrV4, msg: &[u8]) -> Option<Vec<u8>> {
    udp_raw_from(Ipv4Addr::LOCALHOST, server, msg).await
}

/// From a chosen loopback address: a container's address on a network, as the server sees it.
async fn udp_raw_from(from: Ipv4Addr, server: SocketAddrV4, msg: &[u8]) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind(SocketAddrV4::new(from, 0)).await.unwrap();
    sock.send_to(msg, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let got = tokio::time::timeout(Duration::from_secs(3), sock.recv_from(&mut buf)).await;
    let (n, _) = got.ok()?.ok()?;
    Some(buf[..n].to_vec())
}

async fn udp_ask(server: SocketAddrV4, name: &str, qtype: u16, edns: Option<u16>) -> wire::Parsed {
    let reply = udp_raw(server, &wire::build_query(4321, name, qtype, edns))
        .await
        .unwrap_or_else(|| panic!("no answer from {server} for {name}"));
    let parsed = wire::parse_response(&reply).unwrap();
    assert_eq!(parsed.id, 4321, "the client's id comes back");
    parsed
}

async fn tcp_ask_on(stream: &mut TcpStream, name: &str, qtype: u16) -> wire::Parsed {
    let q = wire::build_query(999, name, qtype, None);
    let mut out = (q.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&q);
    stream.write_all(&out).await.unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.unwrap();
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut msg).await.unwrap();
    let parsed = wire::parse_response(&msg).unwrap();
    assert_eq!(parsed.id, 999);
    parsed
}

async fn tcp_ask(server: SocketAddrV4, name: &str, qtype: u16) -> wire::Parsed {
    let mut stream = TcpStream::connect(server).await.unwrap();
    tcp_ask_on(&mut stream, name, qtype).await
}

fn a(ip: [u8; 4]) -> RData {
    RData::A(Ipv4Addr::from(ip))
}

// The daemon's runtime is multi-threaded: run one test on such a runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_answered_per_network() {
    let server = DnsServer::new(config(vec![]));
    let net1 = listen(&server, [127, 0, 0, 21]).await;
    let net2 = listen(&server, [127, 0, 0, 22]).await;
    server.update(|r| {
        r.add_network(*net1.ip(), ScopeOptions::default());
        r.add_network(*net2.ip(), ScopeOptions::default());
        r.set_endpoint(*net1.ip(), WEB, &["proj-web-1", "web", "alias1"]);
    });
    for name in ["web", "WEB.", "proj-web-1", "alias1"] {
        let p = udp_ask(net1, name, wire::TYPE_A, None).await;
        assert!(p.authoritative());
        assert_eq!((p.rcode, p.answers), (0, vec![RData::A(WEB)]), "{name}");
    }
    let p = udp_ask(net2, "web", wire::TYPE_A, None).await;
    assert_eq!((p.rcode, p.answers.len()), (wire::RCODE_NXDOMAIN, 0));
    // AAAA of a known name: no data, no error (no IPv6 on our networks).
    let p = udp_ask(net1, "web", wire::TYPE_AAAA, Some(1232)).await;
    assert_eq!((p.rcode, p.answers.len()), (0, 0));
    // Reverse lookups of the network's addresses give the container's name.
    let p = udp_ask(net1, "2.0.1.10.in-addr.arpa", wire::TYPE_PTR, None).await;
    assert_eq!(p.answers, vec![RData::Ptr("proj-web-1".into())]);
    // TCP, several queries on one connection.
    let mut stream = TcpStream::connect(net1).await.unwrap();
    for _ in 0..3 {
        let p = tcp_ask_on(&mut stream, "alias1", wire::TYPE_A).await;
        assert_eq!(p.answers, vec![RData::A(WEB)]);
    }
    assert_eq!(server.listening(), vec![net1, net2]);
}

async fn ask_from(from: Ipv4Addr, server: SocketAddrV4, name: &str) -> wire::Parsed {
    let q = wire::build_query(1, name, wire::TYPE_A, None);
    let reply = udp_raw_from(from, server, &q).await.unwrap();
    wire::parse_response(&reply).unwrap()
}

#[tokio::test]
async fn containers_see_their_networks_and_only_theirs() {
    let server = DnsServer::new(config(vec![]));
    let net1 = listen(&server, [127, 0, 0, 31]).await;
    let net2 = listen(&server, [127, 0, 0, 32]).await;
    let (app1, app2) = (Ipv4Addr::new(127, 0, 1, 5), Ipv4Addr::new(127, 0, 2, 5));
    let (db, web) = (Ipv4Addr::new(127, 0, 2, 6), Ipv4Addr::new(127, 0, 1, 7));
    server.update(|r| {
        for (net, subnet) in [(net1, [127, 0, 1, 0]), (net2, [127, 0, 2, 0])] {
            let subnet = Some((Ipv4Addr::from(subnet), 24));
            r.add_network(
                *net.ip(),
                ScopeOptions {
                    subnet,
                    ..ScopeOptions::default()
                },
            );
        }
        r.set_container_endpoint(*net1.ip(), app1, "c-app", &["app"]);
        r.set_container_endpoint(*net2.ip(), app2, "c-app", &["app"]);
        r.set_container_endpoint(*net2.ip(), db, "c-db", &["db"]);
        r.set_container_endpoint(*net1.ip(), web, "c-web", &["web"]);
    });
    // app is on both networks and asks its first network's gateway: it sees db.
    assert_eq!(ask_from(app1, net1, "db").await.answers, vec![RData::A(db)]);
    assert_eq!(
        ask_from(app1, net1, "web").await.answers,
        vec![RData::A(web)]
    );
    // web shares only net1 with app: no db for it.
    assert_eq!(ask_from(web, net1, "db").await.rcode, wire::RCODE_NXDOMAIN);
    // db reaching net1's gateway (possible through the host) is not answered net1's names.
    assert_eq!(ask_from(db, net1, "web").await.rcode, wire::RCODE_REFUSED);
    assert_eq!(
        ask_from(db, net2, "app").await.answers,
        vec![RData::A(app2)]
    );
}

#[tokio::test]
async fn table_updates_take_effect_at_once() {
    let server = DnsServer::new(config(vec![]));
    let net = listen(&server, [127, 0, 0, 23]).await;
    server.update(|r| r.add_network(*net.ip(), ScopeOptions::default()));
    assert_eq!(udp_ask(net, "db", wire::TYPE_A, None).await.rcode, 3);
    server.update(|r| r.set_endpoint(*net.ip(), Ipv4Addr::new(10, 1, 0, 3), &["db"]));
    let p = udp_ask(net, "db", wire::TYPE_A, None).await;
    assert_eq!(p.answers, vec![a([10, 1, 0, 3])]);
    // A second container of the same service: both addresses.
    server.update(|r| r.set_endpoint(*net.ip(), Ipv4Addr::new(10, 1, 0, 4), &["db-2", "db"]));
    let mut got = udp_ask(net, "db", wire::TYPE_A, None).await.answers;
    got.sort_by_key(|d| format!("{d:?}"));
    assert_eq!(got, vec![a([10, 1, 0, 3]), a([10, 1, 0, 4])]);
    server.update(|r| {
        r.remove_endpoint(*net.ip(), Ipv4Addr::new(10, 1, 0, 3));
    });
    let p = tcp_ask(net, "db", wire::TYPE_A).await;
    assert_eq!(p.answers, vec![a([10, 1, 0, 4])]);
    server.update(|r| r.remove_network(*net.ip()));
    // No scope any more: the name is relayed, and with no upstream that is SERVFAIL.
    assert_eq!(udp_ask(net, "db", wire::TYPE_A, None).await.rcode, 2);
}

/// A resolver on 127.0.0.1 that knows `*.test`: one address for most names, 60 for
/// `big.test` (over UDP it sends what fits in 512 bytes with TC, over TCP all of them),
/// NXDOMAIN for the rest. Counts the queries it gets per transport.
struct FakeUpstream {
    addr: SocketAddr,
    udp: Arc<AtomicUsize>,
    tcp: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

/// How a fake upstream behaves.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Good,
    /// SERVFAIL to everything.
    Failing,
    /// Answers with the right id but another question (a confused or spoofing server).
    WrongQuestion,
}

fn fake_answer(msg: &[u8], limit: usize, mode: Mode) -> Option<Vec<u8>> {
    let mut q = wire::parse_query(msg).ok()?;
    let key = q.question.key();
    let answers: Vec<RData> = match key.as_str() {
        "big.test" => (0..60).map(|i| a([192, 0, 2, i])).collect(),
        k if k.ends_with(".test") => vec![a([192, 0, 2, 1])],
        _ => vec![],
    };
    let mut rcode = if answers.is_empty() { 3 } else { 0 };
    match mode {
        Mode::Good => {}
        Mode::Failing => rcode = wire::RCODE_SERVFAIL,
        Mode::WrongQuestion => q.question.labels = vec![b"other".to_vec(), b"test".to_vec()],
    }
    let resp = Response {
        query: &q,
        rcode,
        authoritative: true,
        answers: &answers,
        ttl: 30,
        limit,
    };
    Some(resp.to_bytes())
}

async fn fake_upstream(mode: Mode) -> FakeUpstream {
    let udp_sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = udp_sock.local_addr().unwrap();
    let tcp_listener = TcpListener::bind(addr).await.unwrap();
    let (udp, tcp) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let udp_count = udp.clone();
    let udp_task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, peer)) = udp_sock.recv_from(&mut buf).await {
            udp_count.fetch_add(1, Ordering::SeqCst);
            if let Some(r) = fake_answer(&buf[..n], 512, mode) {
                let _ = udp_sock.send_to(&r, peer).await;
            }
        }
    });
    let tcp_count = tcp.clone();
    let tcp_task = tokio::spawn(async move {
        while let Ok((mut s, _)) = tcp_listener.accept().await {
            tcp_count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut len = [0u8; 2];
                if s.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
                if s.read_exact(&mut msg).await.is_err() {
                    return;
                }
                if let Some(r) = fake_answer(&msg, 65535, mode) {
                    let mut out = (r.len() as u16).to_be_bytes().to_vec();
                    out.extend_from_slice(&r);
                    let _ = s.write_all(&out).await;
                }
            });
        }
    });
    FakeUpstream {
        addr,
        udp,
        tcp,
        tasks: vec![udp_task, tcp_task],
    }
}

#[tokio::test]
async fn unknown_names_are_relayed_upstream() {
    let up = fake_upstream(Mode::Good).await;
    let server = DnsServer::new(config(vec![up.addr]));
    let net = listen(&server, [127, 0, 0, 24]).await;
    server.update(|r| r.set_endpoint(*net.ip(), WEB, &["web"]));

    let p = udp_ask(net, "www.example.test", wire::TYPE_A, None).await;
    assert_eq!((p.rcode, p.answers), (0, vec![a([192, 0, 2, 1])]));
    assert_eq!(up.udp.load(Ordering::SeqCst), 1);
    let p = udp_ask(net, "nothing.invalid", wire::TYPE_A, None).await;
    assert_eq!(p.rcode, 3, "upstream's NXDOMAIN is passed on");
    // Our own single-label names never go upstream.
    assert_eq!(udp_ask(net, "db", wire::TYPE_A, None).await.rcode, 3);
    assert_eq!(up.udp.load(Ordering::SeqCst), 2);

    // Truncated over UDP: the server asks again over TCP, then — the whole answer being
    // more than this client's 512 bytes — sends it a truncated answer...
    let p = udp_ask(net, "big.test", wire::TYPE_A, None).await;
    assert!(p.truncated() && p.answers.is_empty());
    assert_eq!(up.tcp.load(Ordering::SeqCst), 1);
    // ...and the whole of it to a client that takes 4096 bytes, or asks over TCP.
    let p = udp_ask(net, "big.test", wire::TYPE_A, Some(4096)).await;
    assert!(!p.truncated());
    assert_eq!(p.answers.len(), 60);
    let p = tcp_ask(net, "big.test", wire::TYPE_A).await;
    assert_eq!(p.answers.len(), 60);
    assert_eq!(up.tcp.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn servfail_when_no_upstream_answers() {
    // An upstream that never answers, then one that refuses (nothing listening).
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let closed = {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.local_addr().unwrap()
    };
    let server = DnsServer::new(config(vec![silent.local_addr().unwrap(), closed]));
    let net = listen(&server, [127, 0, 0, 25]).await;
    let p = udp_ask(net, "www.example.test", wire::TYPE_A, None).await;
    assert_eq!(p.rcode, wire::RCODE_SERVFAIL);
    let p = tcp_ask(net, "www.example.test", wire::TYPE_A).await;
    assert_eq!(p.rcode, wire::RCODE_SERVFAIL);

    // The second upstream is used when the first is silent.
    let up = fake_upstream(Mode::Good).await;
    server.set_upstreams(vec![silent.local_addr().unwrap(), up.addr]);
    let p = udp_ask(net, "www.example.test", wire::TYPE_A, None).await;
    assert_eq!(p.answers, vec![a([192, 0, 2, 1])]);
}

#[tokio::test]
async fn failing_and_confused_upstreams() {
    let failing = fake_upstream(Mode::Failing).await;
    let confused = fake_upstream(Mode::WrongQuestion).await;
    let server = DnsServer::new(config(vec![failing.addr, confused.addr]));
    let net = listen(&server, [127, 0, 0, 33]).await;
    // The failing one's SERVFAIL is what is left when the other's answers do not fit.
    let p = udp_ask(net, "www.example.test", wire::TYPE_A, None).await;
    assert_eq!(p.rcode, wire::RCODE_SERVFAIL);
    assert_eq!(confused.udp.load(Ordering::SeqCst), 1);
    // A good one after a failing one is asked, and wins.
    let good = fake_upstream(Mode::Good).await;
    server.set_upstreams(vec![failing.addr, good.addr]);
    let p = udp_ask(net, "www.example.test", wire::TYPE_A, None).await;
    assert_eq!((p.rcode, p.answers), (0, vec![a([192, 0, 2, 1])]));
}

#[tokio::test]
async fn internal_networks_relay_nothing() {
    let up = fake_upstream(Mode::Good).await;
    let server = DnsServer::new(config(vec![up.addr]));
    let net = listen(&server, [127, 0, 0, 26]).await;
    server.update(|r| {
        r.add_network(
            *net.ip(),
            ScopeOptions {
                domain: Some("backend".into()),
                no_forward: true,
                subnet: None,
            },
        );
        r.set_endpoint(*net.ip(), WEB, &["web"]);
    });
    let p = udp_ask(net, "web.backend", wire::TYPE_A, None).await;
    assert_eq!(p.answers, vec![RData::A(WEB)]);
    let p = udp_ask(net, "www.example.test", wire::TYPE_A, None).await;
    assert_eq!(p.rcode, wire::RCODE_REFUSED);
    assert_eq!(up.udp.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn junk_is_dropped_and_the_server_goes_on() {
    let server = DnsServer::new(config(vec![]));
    let net = listen(&server, [127, 0, 0, 27]).await;
    server.update(|r| r.set_endpoint(*net.ip(), WEB, &["web"]));
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for junk in [&b""[..], b"x", &[0u8; 11], &[0xFF; 600]] {
        sock.send_to(junk, net).await.unwrap();
    }
    // A header with a bad question gets FORMERR; the server still answers afterwards.
    let mut bad = wire::build_query(5, "web", wire::TYPE_A, None);
    bad.truncate(15);
    let reply = udp_raw(net, &bad).await.unwrap();
    assert_eq!(
        wire::parse_response(&reply).unwrap().rcode,
        wire::RCODE_FORMERR
    );
    // A TCP client that sends half a message and hangs up.
    let mut s = TcpStream::connect(net).await.unwrap();
    s.write_all(&[0, 40, 1, 2]).await.unwrap();
    drop(s);
    let p = udp_ask(net, "web", wire::TYPE_A, None).await;
    assert_eq!(p.answers, vec![RData::A(WEB)]);
}

#[tokio::test]
async fn a_flooding_source_is_held_back() {
    let server = DnsServer::new(DnsConfig {
        per_source_rate: 1,
        ..config(vec![])
    });
    let net = listen(&server, [127, 0, 0, 28]).await;
    server.update(|r| r.set_endpoint(*net.ip(), WEB, &["web"]));
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..50u16 {
        let q = wire::build_query(i, "web", wire::TYPE_A, None);
        sock.send_to(&q, net).await.unwrap();
    }
    let mut answered = 0;
    let mut buf = [0u8; 512];
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(500), sock.recv_from(&mut buf)).await
    {
        answered += 1;
    }
    assert!((1..50).contains(&answered), "{answered} answered");
}

#[tokio::test]
async fn unlisten_closes_the_sockets() {
    let server = DnsServer::new(config(vec![]));
    let net = listen(&server, [127, 0, 0, 29]).await;
    assert!(server.unlisten(net));
    assert!(!server.unlisten(net));
    assert!(server.listening().is_empty());
    // The address comes free (abort is asynchronous: give the runtime a few turns).
    let mut rebound = None;
    for _ in 0..100 {
        if let Ok(again) = server.listen(net).await {
            rebound = Some(again);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rebound, Some(net));
}

/// busybox nslookup talks to port 53 only; skip (saying so) when that cannot be bound here.
#[tokio::test]
async fn busybox_nslookup() {
    let up = fake_upstream(Mode::Good).await;
    let server = DnsServer::new(config(vec![up.addr]));
    let addr = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 30), 53);
    if let Err(e) = server.listen(addr).await {
        eprintln!("skipping busybox nslookup: {e}");
        return;
    }
    server.update(|r| {
        r.add_network(*addr.ip(), ScopeOptions::default());
        r.set_endpoint(*addr.ip(), WEB, &["proj-web-1", "web"]);
    });
    let nslookup = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new("busybox");
        cmd.arg("nslookup").args(args).arg(addr.ip().to_string());
        cmd.kill_on_drop(true).output()
    };
    let out = nslookup(&["web"]).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Address: 10.1.0.2"), "{text}");
    let out = nslookup(&["www.example.test"]).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("Address: 192.0.2.1"), "{text}");
    let out = nslookup(&["10.1.0.2"]).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("proj-web-1"), "{text}");
    let out = nslookup(&["nosuch"]).await.unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("NXDOMAIN"), "{text}");
}

#[tokio::test]
async fn a_containers_own_resolvers_are_used_for_it() {
    let host_up = fake_upstream(Mode::Failing).await;
    let its_up = fake_upstream(Mode::Good).await;
    let server = DnsServer::new(config(vec![host_up.addr]));
    let net = listen(&server, [127, 0, 0, 34]).await;
    let (app, other) = (Ipv4Addr::new(127, 0, 3, 5), Ipv4Addr::new(127, 0, 3, 6));
    server.update(|r| {
        r.set_endpoint(*net.ip(), app, &["app"]);
        r.set_endpoint(*net.ip(), other, &["other"]);
        assert!(r.set_endpoint_upstreams(*net.ip(), app, Some(vec![its_up.addr])));
    });
    let p = ask_from(app, net, "www.example.test").await;
    assert_eq!((p.rcode, p.answers), (0, vec![a([192, 0, 2, 1])]));
    assert_eq!(host_up.udp.load(Ordering::SeqCst), 0);
    assert_eq!(ask_from(other, net, "www.example.test").await.rcode, 2);
    assert_eq!(its_up.udp.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn relays_in_flight_are_bounded() {
    // An upstream that reads and never answers, so the one relay allowed stays in flight.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server = DnsServer::new(DnsConfig {
        max_forwards: 1,
        forward_timeout: Duration::from_secs(2),
        ..config(vec![silent.local_addr().unwrap()])
    });
    let net = listen(&server, [127, 0, 0, 35]).await;
    let q = wire::build_query(1, "a.test", 1, None);
    let first = tokio::spawn(async move { udp_raw(net, &q).await });
    let mut buf = [0u8; 512];
    let (n, _) = silent.recv_from(&mut buf).await.unwrap();
    assert_eq!(
        wire::parse_query(&buf[..n]).unwrap().question.key(),
        "a.test"
    );
    // The second finds no room: SERVFAIL at once, nothing sent upstream.
    let p = udp_ask(net, "b.test", wire::TYPE_A, None).await;
    assert_eq!(p.rcode, wire::RCODE_SERVFAIL);
    let reply = first.await.unwrap().unwrap();
    assert_eq!(wire::rcode(&reply), wire::RCODE_SERVFAIL);
    // Only the first query ever reached the upstream.
    let more = tokio::time::timeout(Duration::from_millis(200), silent.recv_from(&mut buf)).await;
    assert!(more.is_err(), "a second relay was sent");
}

#[tokio::test]
async fn tcp_connections_are_bounded_and_idle_ones_closed() {
    let server = DnsServer::new(DnsConfig {
        max_tcp_connections: 1,
        tcp_idle: Duration::from_millis(300),
        ..config(vec![])
    });
    let net = listen(&server, [127, 0, 0, 36]).await;
    server.update(|r| r.set_endpoint(*net.ip(), WEB, &["web"]));
    let mut first = TcpStream::connect(net).await.unwrap();
    assert_eq!(
        tcp_ask_on(&mut first, "web", 1).await.answers,
        vec![RData::A(WEB)]
    );
    // The second connection is accepted by the kernel and closed by the server.
    let mut second = TcpStream::connect(net).await.unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(second.read(&mut byte).await.unwrap_or(0), 0);
    // The first, left idle, is closed too; then there is room again.
    assert_eq!(first.read(&mut byte).await.unwrap_or(0), 0);
    let mut third = None;
    for _ in 0..50 {
        let mut s = TcpStream::connect(net).await.unwrap();
        let q = wire::build_query(999, "web", 1, None);
        let mut out = (q.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&q);
        let _ = s.write_all(&out).await;
        let mut len = [0u8; 2];
        if s.read_exact(&mut len).await.is_ok() {
            third = Some(s);
            break;
        }
        // The first's permit is given back as its task ends: try again shortly.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        third.is_some(),
        "no room for a new connection after the idle one closed"
    );
    // Listening again on the same address is a no-op.
    assert_eq!(server.listen(net).await.unwrap(), net);
    assert_eq!(server.listening(), vec![net]);
}

#[tokio::test]
async fn a_large_service_is_truncated_over_udp_and_whole_over_tcp() {
    let server = DnsServer::new(config(vec![]));
    let net = listen(&server, [127, 0, 0, 37]).await;
    server.update(|r| {
        for i in 0..100u8 {
            let name = format!("proj-web-{i}");
            r.set_endpoint(
                *net.ip(),
                Ipv4Addr::new(10, 2, 0, i),
                &[name.as_str(), "web"],
            );
        }
    });
    let p = udp_ask(net, "web", wire::TYPE_A, None).await;
    assert!(p.truncated() && p.answers.len() < 100);
    let p = udp_ask(net, "web", wire::TYPE_A, Some(4096)).await;
    assert!(
        p.truncated() && p.answers.len() < 100,
        "our answers stay within 1232 bytes"
    );
    let p = tcp_ask(net, "web", wire::TYPE_A).await;
    assert!(!p.truncated());
    assert_eq!(p.answers.len(), 100);
}
