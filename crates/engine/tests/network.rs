//! Root tests of the networking primitives against the real kernel: namespace files, netlink,
//! bridges and endpoints, the nftables table and its published ports.
//!
//! Each test builds a private "host" namespace (a namespace file of its own) and does all its
//! bridge, veth and nft work from a thread inside it, so the machine's interfaces and rules are
//! never touched and tests run in parallel. Traffic stays between these namespaces.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use gorae_engine::network::bridge::{self, Endpoint};
use gorae_engine::network::ipam::{Pool, Subnet};
use gorae_engine::network::netlink::Netlink;
use gorae_engine::network::netns;
use gorae_engine::network::nft::{self, Network, PortMapping, Proto, Ruleset};

/// A unique short suffix per test in this process: `<pid hex><n>`.
fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{:x}{n}", std::process::id())
}

/// A directory of namespace files, the first being the private "host"; everything is removed
/// on drop, failures included.
struct Lab {
    _dir: tempfile::TempDir,
    ns_dir: PathBuf,
    files: Vec<PathBuf>,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let ns_dir = dir.path().join("netns");
        netns::prepare_dir(&ns_dir).unwrap();
        let mut lab = Lab {
            _dir: dir,
            ns_dir,
            files: Vec::new(),
        };
        let host = lab.netns("host");
        netns::run_in(&host, || Netlink::open()?.set_up("lo"))
            .unwrap()
            .unwrap();
        lab
    }

    fn host(&self) -> &Path {
        &self.files[0]
    }

    fn netns(&mut self, name: &str) -> PathBuf {
        let path = self.ns_dir.join(name);
        netns::create(&path).unwrap();
        self.files.push(path.clone());
        path
    }

    /// Runs `f` in the private host namespace.
    fn in_host<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        netns::run_in(self.host(), f).unwrap()
    }

    fn remove_all(&mut self) {
        for file in self.files.drain(..).rev() {
            netns::remove(&file).unwrap();
            assert!(!file.exists(), "{} left", file.display());
            assert!(!netns::is_mount_point(&file).unwrap());
        }
        netns::release_dir(&self.ns_dir).unwrap();
        assert!(!netns::is_mount_point(&self.ns_dir).unwrap());
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for file in self.files.drain(..) {
            let _ = netns::remove(&file);
        }
        let _ = netns::release_dir(&self.ns_dir);
    }
}

fn net_ns_inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).unwrap().ino()
}

#[test]
fn namespace_files_are_created_entered_and_removed() {
    let mut lab = Lab::new();
    let ns = lab.netns("a");
    assert!(netns::is_mount_point(&ns).unwrap());
    // A new namespace: another inode than ours, nothing but lo in it.
    let inside =
        netns::run_in(&ns, || net_ns_inode(Path::new("/proc/thread-self/ns/net"))).unwrap();
    assert_eq!(inside, net_ns_inode(&ns));
    assert_ne!(inside, net_ns_inode(Path::new("/proc/self/ns/net")));
    let links = netns::run_in(&ns, || std::fs::read_to_string("/proc/thread-self/net/dev"))
        .unwrap()
        .unwrap();
    let names: Vec<&str> = links
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .collect();
    assert_eq!(names.iter().map(|n| n.trim()).collect::<Vec<_>>(), ["lo"]);
    // The calling thread's namespace is untouched by run_in.
    assert_eq!(
        net_ns_inode(Path::new("/proc/thread-self/ns/net")),
        net_ns_inode(Path::new("/proc/self/ns/net"))
    );
    // A second create on the same path fails and leaves the first in place.
    assert!(netns::create(&ns).is_err());
    assert!(netns::is_mount_point(&ns).unwrap());
    lab.remove_all();
    netns::remove(&ns).unwrap();
    assert!(netns::run_in(&ns, || ()).is_err());
}

#[test]
fn netlink_errors_name_the_interface_and_the_operation() {
    let lab = Lab::new();
    let errors = lab.in_host(|| {
        let mut nl = Netlink::open().unwrap();
        let up = nl.set_up("nosuch0").unwrap_err().to_string();
        nl.add_bridge("gtdup0").unwrap();
        let dup = nl.add_bridge("gtdup0").unwrap_err().to_string();
        let long = nl.add_bridge("a-name-too-long-x").unwrap_err().to_string();
        assert!(nl.delete_link("gtdup0").unwrap());
        assert!(!nl.delete_link("gtdup0").unwrap());
        (up, dup, long)
    });
    assert!(errors.0.contains("nosuch0"), "{}", errors.0);
    assert!(
        errors.1.contains("create bridge gtdup0") && errors.1.contains("EEXIST"),
        "{}",
        errors.1
    );
    assert!(errors.2.contains("a-name-too-long-x"), "{}", errors.2);
}

#[test]
fn nft_table_is_applied_replaced_read_back_and_removed_alone() {
    let lab = Lab::new();
    let table = unique("gorae-t");
    let model = Ruleset {
        table: table.clone(),
        networks: vec![Network {
            bridge: "gtnft0".into(),
            subnet: "10.201.0.0/24".parse().unwrap(),
            internal: false,
        }],
        ports: vec![PortMapping {
            proto: Proto::Tcp,
            host_ip: None,
            host_port: 8080,
            container_ip: Ipv4Addr::new(10, 201, 0, 2),
            container_port: 80,
        }],
    };
    lab.in_host(move || {
        // Someone else's table, which must survive everything we do.
        let status = Command::new("nft")
            .args(["add", "table", "ip", "other"])
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(nft::list_json(&table).unwrap(), None);
        model.apply().unwrap();
        model.apply().unwrap();
        assert_eq!(dnat_rules(&table), 1);
        let mut two = model.clone();
        two.ports.push(PortMapping {
            host_port: 8081,
            ..two.ports[0].clone()
        });
        two.apply().unwrap();
        assert_eq!(dnat_rules(&table), 2);
        // The script is one transaction: a failing statement after the re-creation leaves
        // the table as it was.
        let mut bad = two.render().unwrap();
        bad.push_str(&format!("add rule ip {table} ports no-such-statement\n"));
        let mut nft_f = Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        nft_f
            .stdin
            .take()
            .unwrap()
            .write_all(bad.as_bytes())
            .unwrap();
        assert!(!nft_f.wait().unwrap().success());
        assert_eq!(dnat_rules(&table), 2);
        nft::remove(&table).unwrap();
        nft::remove(&table).unwrap();
        assert_eq!(nft::list_json(&table).unwrap(), None);
        assert!(nft::list_json("other").unwrap().is_some());
    });
}

fn dnat_rules(table: &str) -> usize {
    let json = nft::list_json(table).unwrap().unwrap();
    let items = json["nftables"].as_array().unwrap();
    items
        .iter()
        .filter(|i| i["rule"]["chain"] == "ports")
        .filter(|i| i["rule"].to_string().contains("\"dnat\""))
        .count()
}

/// Accepts connections in a namespace and answers each with one line, "<peer ip>\n".
fn serve_peer_address(listener: TcpListener) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            let peer = conn.peer_addr().map(|a| a.ip().to_string());
            let mut first = [0u8; 4];
            let _ = conn.read(&mut first);
            if &first == b"quit" {
                break;
            }
            let _ = writeln!(conn, "{}", peer.unwrap_or_default());
        }
    });
}

/// Connects to `addr`, says hello, and returns the server's line (the address it saw).
fn ask(addr: SocketAddr) -> std::io::Result<String> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.write_all(b"helo")?;
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line)?;
    Ok(line.trim().to_string())
}

fn ping(from: &Path, to: Ipv4Addr) -> bool {
    ping_within(from, to, 5)
}

/// A negative check waits only a second: a reply that late would make it pass wrongly, never
/// fail.
fn unreachable(from: &Path, to: Ipv4Addr) -> bool {
    !ping_within(from, to, 1)
}

fn ping_within(from: &Path, to: Ipv4Addr, seconds: u32) -> bool {
    Command::new("nsenter")
        .arg(format!("--net={}", from.display()))
        .args(["busybox", "ping", "-c", "1", "-W", &seconds.to_string()])
        .arg(to.to_string())
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn endpoints_talk_through_a_bridge_and_published_ports() {
    let mut lab = Lab::new();
    let (ns_a, ns_b) = (lab.netns("a"), lab.netns("b"));
    let bridge_name = unique("gt");
    let table = unique("gorae-t");
    let (veth_a, veth_b) = (format!("{bridge_name}a"), format!("{bridge_name}b"));
    let subnet: Subnet = "10.202.0.0/24".parse().unwrap();
    let mut pool = Pool::new(subnet).unwrap();
    let (gw, ip_a, ip_b) = (
        pool.gateway,
        pool.allocate().unwrap(),
        pool.allocate().unwrap(),
    );

    let (br, va, vb, a, b, t) = (
        bridge_name.clone(),
        veth_a.clone(),
        veth_b.clone(),
        ns_a.clone(),
        ns_b.clone(),
        table.clone(),
    );
    lab.in_host(move || {
        let mut nl = Netlink::open().unwrap();
        bridge::ensure_bridge(&mut nl, &br, subnet, gw).unwrap();
        bridge::ensure_bridge(&mut nl, &br, subnet, gw).unwrap();
        for (veth, ns, ip) in [(&va, &a, ip_a), (&vb, &b, ip_b)] {
            let ep = Endpoint {
                bridge: &br,
                host_ifname: veth,
                netns: ns,
                ifname: bridge::CONTAINER_IFNAME,
                address: ip,
                prefix: subnet.prefix(),
                gateway: Some(gw),
            };
            bridge::attach(&mut nl, &ep).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{br}/route_localnet"))
                .unwrap()
                .trim(),
            "1"
        );
        let published = |host_ip, host_port| PortMapping {
            proto: Proto::Tcp,
            host_ip,
            host_port,
            container_ip: ip_a,
            container_port: 80,
        };
        Ruleset {
            table: t,
            networks: vec![Network {
                bridge: br,
                subnet,
                internal: false,
            }],
            ports: vec![
                published(None, 8080),
                published(Some(Ipv4Addr::LOCALHOST), 8081),
            ],
        }
        .apply()
        .unwrap();
    });

    // Inside a: eth0 with its address, a default route via the gateway, lo up.
    let route = netns::run_in(&ns_a, || {
        std::fs::read_to_string("/proc/thread-self/net/route")
    })
    .unwrap()
    .unwrap();
    let gw_hex = format!("{:08X}", u32::from_ne_bytes(gw.octets()));
    assert!(
        route
            .lines()
            .any(|l| l.starts_with("eth0\t00000000\t") && l.contains(&gw_hex)),
        "{route}"
    );

    assert!(ping(&ns_a, ip_b), "a cannot ping b");
    assert!(ping(&ns_b, ip_a), "b cannot ping a");
    assert!(ping(&ns_a, gw), "a cannot ping the gateway");

    // A second network for b: eth1, no default route (the first network keeps it).
    let second: Subnet = "10.205.0.0/24".parse().unwrap();
    let (br2, veth_b2) = (format!("{bridge_name}x"), format!("{bridge_name}c"));
    let (br, v, b) = (br2.clone(), veth_b2.clone(), ns_b.clone());
    lab.in_host(move || {
        let mut nl = Netlink::open().unwrap();
        bridge::ensure_bridge(&mut nl, &br, second, second.gateway().unwrap()).unwrap();
        let ep = Endpoint {
            bridge: &br,
            host_ifname: &v,
            netns: &b,
            ifname: "eth1",
            address: Ipv4Addr::new(10, 205, 0, 2),
            prefix: 24,
            gateway: None,
        };
        bridge::attach(&mut nl, &ep).unwrap();
    });
    assert!(ping(&ns_b, second.gateway().unwrap()));
    let route = netns::run_in(&ns_b, || {
        std::fs::read_to_string("/proc/thread-self/net/route")
    })
    .unwrap()
    .unwrap();
    assert_eq!(
        route
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("00000000"))
            .count(),
        1,
        "{route}"
    );
    lab.in_host(move || {
        let mut nl = Netlink::open().unwrap();
        assert!(bridge::detach(&mut nl, &veth_b2).unwrap());
        assert!(bridge::remove_bridge(&mut nl, &br2).unwrap());
    });
    let eth1 = netns::run_in(&ns_b, || Netlink::open()?.link_index("eth1"))
        .unwrap()
        .unwrap();
    assert_eq!(eth1, None);

    let listener = netns::run_in(&ns_a, || TcpListener::bind("0.0.0.0:80"))
        .unwrap()
        .unwrap();
    serve_peer_address(listener);
    // From b directly, from the host to the bridge address and to 127.0.0.1 through DNAT,
    // and from b through the published port (hairpin).
    let direct = netns::run_in(&ns_b, move || ask(SocketAddr::from((ip_a, 80)))).unwrap();
    assert_eq!(direct.unwrap(), ip_b.to_string());
    let via_gw = lab.in_host(move || ask(SocketAddr::from((gw, 8080))));
    assert_eq!(via_gw.unwrap(), gw.to_string());
    let via_lo = lab.in_host(|| ask(SocketAddr::from((Ipv4Addr::LOCALHOST, 8081))));
    assert_eq!(via_lo.unwrap(), gw.to_string(), "127.0.0.1 is masqueraded");
    let hairpin = netns::run_in(&ns_b, move || ask(SocketAddr::from((gw, 8080)))).unwrap();
    assert_eq!(hairpin.unwrap(), gw.to_string(), "hairpin is masqueraded");
    // 127.0.0.1:8080 is published too (no host ip: every local address).
    let lo_any = lab.in_host(|| ask(SocketAddr::from((Ipv4Addr::LOCALHOST, 8080))));
    assert_eq!(lo_any.unwrap(), gw.to_string());
    let _ = netns::run_in(&ns_b, move || {
        TcpStream::connect((ip_a, 80)).and_then(|mut c| c.write_all(b"quit"))
    });

    // Teardown, then nothing of ours is left in the host namespace.
    let (br, va, vb, t) = (bridge_name.clone(), veth_a, veth_b, table);
    lab.in_host(move || {
        let mut nl = Netlink::open().unwrap();
        assert!(bridge::detach(&mut nl, &va).unwrap());
        assert!(!bridge::detach(&mut nl, &va).unwrap());
        assert!(bridge::detach(&mut nl, &vb).unwrap());
        assert!(bridge::remove_bridge(&mut nl, &br).unwrap());
        assert!(!bridge::remove_bridge(&mut nl, &br).unwrap());
        nft::remove(&t).unwrap();
        for name in [&br, &va, &vb] {
            assert_eq!(nl.link_index(name).unwrap(), None, "{name} left");
        }
        assert_eq!(nft::list_json(&t).unwrap(), None);
    });
    let eth0_gone = netns::run_in(&ns_a, || Netlink::open()?.link_index("eth0"))
        .unwrap()
        .unwrap();
    assert_eq!(eth0_gone, None);
    lab.remove_all();
    // And nothing ever reached the machine's own namespace.
    let mut nl = Netlink::open().unwrap();
    assert_eq!(nl.link_index(&bridge_name).unwrap(), None);
}

/// Creates `bridge` with the subnet's gateway and attaches each (veth, namespace, address).
fn network(nl: &mut Netlink, bridge: &str, subnet: Subnet, eps: &[(&str, &Path, Ipv4Addr)]) {
    let gw = subnet.gateway().unwrap();
    bridge::ensure_bridge(nl, bridge, subnet, gw).unwrap();
    for (veth, ns, ip) in eps {
        let ep = Endpoint {
            bridge,
            host_ifname: veth,
            netns: ns,
            ifname: bridge::CONTAINER_IFNAME,
            address: *ip,
            prefix: subnet.prefix(),
            gateway: Some(gw),
        };
        bridge::attach(nl, &ep).unwrap();
    }
}

fn listen_in(ns: &Path, port: u16) {
    let listener = netns::run_in(ns, move || TcpListener::bind(("0.0.0.0", port)))
        .unwrap()
        .unwrap();
    serve_peer_address(listener);
}

fn ask_from(ns: &Path, to: SocketAddr) -> std::io::Result<String> {
    netns::run_in(ns, move || ask(to)).unwrap()
}

#[test]
fn masquerade_source_preservation_isolation_and_internal_networks() {
    let mut lab = Lab::new();
    // "outside": a namespace beyond an uplink of the host, as the internet would be.
    let (outside, a, c, d) = (
        lab.netns("outside"),
        lab.netns("a"),
        lab.netns("c"),
        lab.netns("d"),
    );
    let names: Vec<String> = ["u", "1", "2", "3"]
        .iter()
        .map(|s| unique(&format!("gt{s}")))
        .collect();
    let table = unique("gorae-t");
    let up: Subnet = "10.210.0.0/24".parse().unwrap();
    let (n1, n2, n3): (Subnet, Subnet, Subnet) = (
        "10.211.0.0/24".parse().unwrap(),
        "10.212.0.0/24".parse().unwrap(),
        "10.213.0.0/24".parse().unwrap(),
    );
    let host_up = Ipv4Addr::new(10, 210, 0, 1);
    let out_ip = Ipv4Addr::new(10, 210, 0, 2);
    let (ip_a, ip_c, ip_d) = (
        Ipv4Addr::new(10, 211, 0, 2),
        Ipv4Addr::new(10, 212, 0, 2),
        Ipv4Addr::new(10, 213, 0, 2),
    );
    {
        let (names, table) = (names.clone(), table.clone());
        let (outside, a, c, d) = (outside.clone(), a.clone(), c.clone(), d.clone());
        lab.in_host(move || {
            let mut nl = Netlink::open().unwrap();
            let v = |i: usize| format!("{}v", names[i]);
            network(&mut nl, &names[0], up, &[(&v(0), &outside, out_ip)]);
            network(&mut nl, &names[1], n1, &[(&v(1), &a, ip_a)]);
            network(&mut nl, &names[2], n2, &[(&v(2), &c, ip_c)]);
            network(&mut nl, &names[3], n3, &[(&v(3), &d, ip_d)]);
            let net = |i: usize, subnet, internal| Network {
                bridge: names[i].clone(),
                subnet,
                internal,
            };
            Ruleset {
                table,
                // The uplink is not one of our networks: to the table it is "elsewhere".
                networks: vec![net(1, n1, false), net(2, n2, false), net(3, n3, true)],
                ports: vec![PortMapping {
                    proto: Proto::Tcp,
                    host_ip: None,
                    host_port: 9090,
                    container_ip: ip_a,
                    container_port: 90,
                }],
            }
            .apply()
            .unwrap();
        });
    }
    listen_in(&outside, 7000);
    listen_in(&a, 90);
    listen_in(&c, 90);

    // Leaving a bridge for elsewhere: masqueraded to the host's uplink address.
    let seen = ask_from(&a, SocketAddr::from((out_ip, 7000))).unwrap();
    assert_eq!(seen, host_up.to_string());
    // Coming in from elsewhere through a published port: the client's address is kept.
    let seen = ask_from(&outside, SocketAddr::from((host_up, 9090))).unwrap();
    assert_eq!(seen, out_ip.to_string());
    // Isolation: no forwarding between two of our bridges, either way.
    assert!(unreachable(&a, ip_c), "a reached c on another bridge");
    assert!(unreachable(&c, ip_a), "c reached a on another bridge");
    // Internal: no way out, and no way in from the other networks, but its gateway answers.
    assert!(unreachable(&d, out_ip), "internal network reached outside");
    assert!(unreachable(&a, ip_d), "a reached the internal network");
    assert!(ping(&d, n3.gateway().unwrap()));
    // c's own network still goes out.
    assert!(ping(&c, out_ip));
    // Another network's published port is reachable through the host (masqueraded onto a's
    // bridge, as docker's proxy would), but not from an internal network.
    let seen = ask_from(&c, SocketAddr::from((host_up, 9090))).unwrap();
    assert_eq!(seen, n1.gateway().unwrap().to_string());
    let blocked = netns::run_in(&d, move || {
        TcpStream::connect_timeout(&SocketAddr::from((host_up, 9090)), Duration::from_secs(1))
    })
    .unwrap();
    assert!(
        blocked.is_err(),
        "internal network reached a published port"
    );

    for (ns, port) in [(&outside, 7000), (&a, 90), (&c, 90)] {
        let _ = netns::run_in(ns, move || {
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).and_then(|mut s| s.write_all(b"quit"))
        });
    }
    lab.in_host(move || {
        let mut nl = Netlink::open().unwrap();
        for name in &names {
            assert!(bridge::detach(&mut nl, &format!("{name}v")).unwrap());
            assert!(bridge::remove_bridge(&mut nl, name).unwrap());
            assert_eq!(nl.link_index(name).unwrap(), None);
        }
        nft::remove(&table).unwrap();
        assert_eq!(nft::list_json(&table).unwrap(), None);
    });
    lab.remove_all();
}

fn mounts_at(path: &Path) -> usize {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let path = path.canonicalize().unwrap();
    info.lines()
        .filter(|l| l.split(' ').nth(4) == path.to_str())
        .count()
}

#[test]
fn namespace_dir_is_prepared_once_and_removal_reaches_copied_mount_namespaces() {
    let mut lab = Lab::new();
    netns::prepare_dir(&lab.ns_dir).unwrap();
    assert_eq!(mounts_at(&lab.ns_dir), 1);
    let ns = lab.netns("a");
    // A mount namespace copied from ours as a container's would be (slave): our umount
    // propagates into it, so it does not keep the namespace alive.
    let mut child = Command::new("unshare")
        .args(["--mount", "--propagation", "slave", "--", "sleep", "60"])
        .spawn()
        .unwrap();
    let pid = child.id();
    let exe = format!("/proc/{pid}/exe");
    let started = (0..1000).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        std::fs::read_link(&exe).is_ok_and(|p| p.ends_with("sleep"))
    });
    let child_mounts = || std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let path = ns.canonicalize().unwrap();
    let path = path.to_str().unwrap().to_string();
    let seen_before = started && child_mounts().contains(&path);
    netns::remove(&ns).unwrap();
    let seen_after = child_mounts().contains(&path);
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen_before, "the copied namespace lacks {path}");
    assert!(!seen_after, "{path} still mounted in the copied namespace");
    lab.remove_all();
}

#[test]
fn links_move_rename_and_a_failed_attach_leaves_nothing() {
    let mut lab = Lab::new();
    let ns = lab.netns("a");
    let ns2 = ns.clone();
    let (host_end, peer) = (unique("gtv"), unique("gtp"));
    let (h, p) = (host_end.clone(), peer.clone());
    lab.in_host(move || {
        let mut nl = Netlink::open().unwrap();
        nl.add_veth(&h, &p, None).unwrap();
        assert!(nl.link_index(&p).unwrap().is_some());
        let file = std::fs::File::open(&ns2).unwrap();
        nl.move_to_netns(&p, std::os::fd::AsFd::as_fd(&file))
            .unwrap();
        assert_eq!(nl.link_index(&p).unwrap(), None);
        // Endpoint on a bridge that does not exist: an error naming it, no veth left.
        let ep = Endpoint {
            bridge: "gtnobridge",
            host_ifname: "gtfailed0",
            netns: &ns2,
            ifname: "eth0",
            address: Ipv4Addr::new(10, 220, 0, 2),
            prefix: 24,
            gateway: None,
        };
        let err = bridge::attach(&mut nl, &ep).unwrap_err().to_string();
        assert!(err.contains("gtnobridge"), "{err}");
        assert_eq!(nl.link_index("gtfailed0").unwrap(), None);
    });
    let mut inner = Netlink::open_in(&ns).unwrap();
    assert_eq!(
        inner.link_index("eth0").unwrap(),
        None,
        "failed attach left eth0"
    );
    inner.rename(&peer, "eth1").unwrap();
    inner.set_up("eth1").unwrap();
    inner.set_down("eth1").unwrap();
    inner.add_veth("gtx0", "gtx1", None).unwrap();
    let err = inner.rename("gtx0", "eth1").unwrap_err().to_string();
    assert!(
        err.contains("rename to eth1 gtx0") && err.contains("EEXIST"),
        "{err}"
    );
    assert!(inner.delete_link("gtx1").unwrap());
    inner.rename("eth1", "eth2").unwrap();
    assert_eq!(inner.link_index("eth1").unwrap(), None);
    assert!(inner.link_index("eth2").unwrap().is_some());
    // Deleting one end deletes the pair, across namespaces.
    assert!(inner.delete_link("eth2").unwrap());
    let gone = lab.in_host(move || Netlink::open().unwrap().link_index(&host_end).unwrap());
    assert_eq!(gone, None);
    drop(inner);
    lab.remove_all();
}

#[test]
fn a_retired_endpoint_goes_quiet_and_leaves_with_its_namespace() {
    let mut lab = Lab::new();
    let ns = lab.netns("r");
    let bridge_name = unique("gr");
    let veth = format!("{bridge_name}v");
    let subnet: Subnet = "10.206.0.0/24".parse().unwrap();
    let gw = subnet.gateway().unwrap();
    let (br, v, n) = (bridge_name.clone(), veth.clone(), ns.clone());
    lab.in_host(move || {
        let mut nl = Netlink::open().unwrap();
        bridge::ensure_bridge(&mut nl, &br, subnet, gw).unwrap();
        let ep = Endpoint {
            bridge: &br,
            host_ifname: &v,
            netns: &n,
            ifname: bridge::CONTAINER_IFNAME,
            address: Ipv4Addr::new(10, 206, 0, 2),
            prefix: 24,
            gateway: Some(gw),
        };
        bridge::attach(&mut nl, &ep).unwrap();
    });
    assert!(ping(&ns, gw), "the endpoint cannot reach its gateway");
    let v = veth.clone();
    assert!(lab.in_host(move || bridge::retire(&mut Netlink::open().unwrap(), &v).unwrap()));
    assert!(
        unreachable(&ns, gw),
        "a retired endpoint still reaches the bridge"
    );
    // The namespace's removal takes the pair with it, in the kernel's own time.
    netns::remove(&ns).unwrap();
    let v = veth.clone();
    let gone = lab.in_host(move || {
        let mut nl = Netlink::open().unwrap();
        for _ in 0..250 {
            if nl.link_index(&v).unwrap().is_none() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    });
    assert!(gone, "{veth} outlived its namespace");
    let (v, br) = (veth.clone(), bridge_name.clone());
    lab.in_host(move || {
        let mut nl = Netlink::open().unwrap();
        assert!(!bridge::retire(&mut nl, &v).unwrap());
        assert!(bridge::remove_bridge(&mut nl, &br).unwrap());
    });
    lab.remove_all();
}
