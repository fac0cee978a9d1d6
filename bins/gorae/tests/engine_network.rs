//! The engine's networks through the docker CLI: published ports reached from the host (its
//! loopback and its own address) and from another container; containers of a user network
//! reaching each other by name and alias through the embedded DNS while another network's
//! cannot; `--network container:X`; connect/disconnect of a running container; docker's
//! errors for bad input with nothing half-created; a daemon killed and started again keeps
//! the running containers' endpoints and ports and removes those of a container that died
//! meanwhile. After each test nothing of its root's networking is left (bridges, veths,
//! nft table, namespace files, mounts).
//!
//! Needs root, nftables and /usr/local/bin/docker; skipped without them. Traffic goes only to
//! addresses of this machine.

mod support;

use std::process::Command;
use std::time::Duration;

use support::engine::{Daemon, BUSYBOX};
use support::network::{host_address, leftovers};

/// httpd serving "hello from <name>" on port 80 of the container.
fn httpd(name: &str) -> String {
    format!(
        "mkdir -p /www && echo 'hello from {name}' > /www/index.html && exec httpd -f -p 80 -h /www"
    )
}

/// GET http://addr/ from the host, retried while the server starts (bounded, no timing
/// assertion).
fn fetch(addr: &str) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "3", &format!("http://{addr}/")])
            .output()
            .expect("curl");
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        last = format!("curl exit {:?}", out.status.code());
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("http://{addr}/ never answered: {last}");
}

fn id_of(d: &Daemon, kind: &str, name: &str) -> String {
    d.ok(&[kind, "inspect", "-f", "{{.Id}}", name])
        .trim()
        .to_string()
}

/// Removes every container, stops the daemon, and checks the networking left nothing.
fn finish(mut d: Daemon, networks: &[String], endpoints: &[(String, String)]) {
    let ids = d.ok(&["ps", "-aq"]);
    for id in ids.split_whitespace() {
        d.ok(&["rm", "-f", id]);
    }
    d.stop();
    let left = leftovers(&d, networks, endpoints);
    assert!(left.is_empty(), "left behind: {left:?}\n{}", d.log_tail());
}

#[test]
fn published_ports_reach_the_container() {
    let Some(d) = Daemon::start() else { return };
    let host_ip = host_address().expect("a global IPv4 address on this machine");
    let bridge = id_of(&d, "network", "bridge");
    let web = d
        .ok(&[
            "run",
            "-d",
            "--name",
            "pub-web",
            "-p",
            "18081:80",
            BUSYBOX,
            "sh",
            "-c",
            &httpd("pub-web"),
        ])
        .trim()
        .to_string();
    assert_eq!(fetch("127.0.0.1:18081"), "hello from pub-web\n");
    assert_eq!(fetch(&format!("{host_ip}:18081")), "hello from pub-web\n");
    // From another container on the default bridge, through the host's address.
    let url = format!("http://{host_ip}:18081/");
    let page = d.ok(&["run", "--rm", BUSYBOX, "wget", "-qO-", &url]);
    assert_eq!(page, "hello from pub-web\n");
    assert_eq!(d.ok(&["port", "pub-web"]).trim(), "80/tcp -> 0.0.0.0:18081");
    assert_eq!(
        d.inspect("{{json .NetworkSettings.Ports}}", "pub-web")
            .trim(),
        r#"{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"18081"}]}"#
    );
    let ip = d.inspect("{{.NetworkSettings.IPAddress}}", "pub-web");
    assert!(ip.trim().parse::<std::net::Ipv4Addr>().is_ok(), "{ip}");
    let key = d.inspect("{{.NetworkSettings.SandboxKey}}", "pub-web");
    let netns = d.root.join("run/netns").join(&web[..12]);
    assert_eq!(key.trim(), netns.display().to_string());
    assert!(netns.exists());
    let gw = d.inspect("{{.NetworkSettings.Networks.bridge.Gateway}}", "pub-web");
    let hosts = d.ok(&["exec", "pub-web", "cat", "/etc/hosts"]);
    assert!(
        hosts.contains(&format!("{}\t{}", ip.trim(), &web[..12])),
        "{hosts}"
    );
    let resolv = d.ok(&["exec", "pub-web", "cat", "/etc/resolv.conf"]);
    assert!(!resolv.contains("nameserver 127."), "{resolv}");
    assert!(
        !resolv.contains(gw.trim()),
        "no embedded DNS on the default bridge"
    );
    let ps = d.ok(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert!(ps.contains("pub-web 0.0.0.0:18081->80/tcp"), "{ps}");

    // A port already published: docker's error, and the second container is not running
    // and left nothing behind.
    let err = d.fails(&[
        "run", "-d", "--name", "pub-dup", "-p", "18081:80", BUSYBOX, "sleep", "30",
    ]);
    assert!(
        err.contains("Bind for 0.0.0.0:18081 failed: port is already allocated"),
        "{err}"
    );
    let dup = id_of(&d, "container", "pub-dup");
    assert_eq!(d.inspect("{{.State.Running}}", "pub-dup").trim(), "false");
    assert!(!d.root.join("run/netns").join(&dup[..12]).exists());
    let left = leftovers_of_endpoint(&dup, &bridge);
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(fetch("127.0.0.1:18081"), "hello from pub-web\n");

    // -P: the exposed port on a free port of the ephemeral range.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "pub-all",
        "--expose",
        "80",
        "-P",
        BUSYBOX,
        "sh",
        "-c",
        &httpd("pub-all"),
    ]);
    let port = d.ok(&["port", "pub-all", "80/tcp"]);
    let port: u16 = port
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("docker port: {port}"));
    assert!((32768..=60999).contains(&port), "{port}");
    assert_eq!(fetch(&format!("127.0.0.1:{port}")), "hello from pub-all\n");
    let all = id_of(&d, "container", "pub-all");

    // Stopped: the port is free again and the endpoint gone.
    d.ok(&["stop", "-t", "1", "pub-web"]);
    assert!(leftovers_of_endpoint(&web, &bridge).is_empty());
    assert_eq!(
        d.inspect("{{json .NetworkSettings.Ports}}", "pub-web")
            .trim(),
        "{}"
    );
    d.ok(&["rm", "pub-dup"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "pub-again",
        "-p",
        "18081:80",
        BUSYBOX,
        "sh",
        "-c",
        &httpd("pub-again"),
    ]);
    assert_eq!(fetch("127.0.0.1:18081"), "hello from pub-again\n");
    let again = id_of(&d, "container", "pub-again");
    let endpoints: Vec<(String, String)> = [web, dup, all, again]
        .into_iter()
        .map(|c| (c, bridge.clone()))
        .collect();
    finish(d, &[], &endpoints);
}

fn leftovers_of_endpoint(container: &str, network: &str) -> Vec<String> {
    support::network::veths_left(&[support::network::veth_name(container, network)])
}

#[test]
fn user_networks_resolve_names_and_stay_apart() {
    let Some(d) = Daemon::start() else { return };
    d.ok(&["network", "create", "una"]);
    d.ok(&["network", "create", "--internal", "unb"]);
    let (na, nb) = (id_of(&d, "network", "una"), id_of(&d, "network", "unb"));
    let ls = d.ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ]);
    assert!(
        ls.contains("una bridge local") && ls.contains("unb bridge local"),
        "{ls}"
    );
    let web = d
        .ok(&[
            "run",
            "-d",
            "--name",
            "un-web",
            "--network",
            "una",
            "--network-alias",
            "web-alias",
            BUSYBOX,
            "sh",
            "-c",
            &httpd("un-web"),
        ])
        .trim()
        .to_string();
    let ip = d
        .inspect("{{.NetworkSettings.Networks.una.IPAddress}}", "un-web")
        .trim()
        .to_string();
    let gw = d
        .inspect("{{.NetworkSettings.Networks.una.Gateway}}", "un-web")
        .trim()
        .to_string();
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{ip}");
    let script = "cat /etc/resolv.conf; nslookup un-web; nslookup web-alias; \
                  ping -c1 -W5 un-web >/dev/null && echo ping-ok; \
                  echo 'GET / HTTP/1.0' | nc -w5 web-alias 80 | tail -1";
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "una",
        BUSYBOX,
        "sh",
        "-c",
        script,
    ]);
    assert!(out.contains(&format!("nameserver {gw}")), "{out}");
    assert_eq!(out.matches(&format!("Address: {ip}")).count(), 2, "{out}");
    assert!(
        out.contains("ping-ok") && out.contains("hello from un-web"),
        "{out}"
    );
    let names = d.inspect("{{json .NetworkSettings.Networks.una.DNSNames}}", "un-web");
    assert_eq!(
        names.trim(),
        format!(r#"["un-web","{}","web-alias"]"#, &web[..12])
    );
    let members = d.ok(&["network", "inspect", "-f", "{{json .Containers}}", "una"]);
    assert!(
        members.contains(&web) && members.contains(&format!("{ip}/")),
        "{members}"
    );

    // Another network: no name, no route.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "unb",
        BUSYBOX,
        "nslookup",
        "un-web",
    ]);
    assert!(!out.status.success(), "un-web resolved from unb");
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "unb",
        BUSYBOX,
        "ping",
        "-c1",
        "-W2",
        &ip,
    ]);
    assert!(!out.status.success(), "unb reached {ip}");

    // Sharing un-web's namespace: its eth0, its hostname.
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "container:un-web",
        BUSYBOX,
        "sh",
        "-c",
        "ip -4 -o addr show eth0; hostname",
    ]);
    assert!(out.contains(&format!("inet {ip}/")), "{out}");
    assert!(out.contains(&web[..12]), "{out}");

    // Connected live to unb, then disconnected.
    d.ok(&["network", "connect", "unb", "un-web"]);
    let addrs = d.ok(&["exec", "un-web", "ip", "-4", "-o", "addr"]);
    assert!(addrs.contains("eth1"), "{addrs}");
    d.ok(&["network", "disconnect", "unb", "un-web"]);
    let addrs = d.ok(&["exec", "un-web", "ip", "-4", "-o", "addr"]);
    assert!(!addrs.contains("eth1"), "{addrs}");
    assert!(leftovers_of_endpoint(&web, &nb).is_empty());

    bad_input(&d, &na);
    d.ok(&["rm", "-f", "un-web"]);
    assert!(leftovers_of_endpoint(&web, &na).is_empty());
    d.ok(&["network", "rm", "una", "unb"]);
    let ls = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(
        ls.split_whitespace().collect::<Vec<_>>(),
        ["bridge", "host", "none"]
    );
    finish(
        d,
        &[na.clone(), nb.clone()],
        &[(web.clone(), na), (web, nb)],
    );
}

/// Docker's errors, each leaving nothing behind. una exists, un-web runs on it.
fn bad_input(d: &Daemon, na: &str) {
    let subnet = d
        .ok(&[
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Subnet}}",
            "una",
        ])
        .trim()
        .to_string();
    let body = format!(r#"{{"Name":"un-c","IPAM":{{"Config":[{{"Subnet":"{subnet}"}}]}}}}"#);
    let (status, text) = d.api("POST", "/networks/create", Some(body.as_bytes()));
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("Pool overlaps with other one on this address space"),
        "{text}"
    );
    let err = d.fails(&["network", "create", "--subnet", &subnet, "un-c"]);
    assert!(err.contains("Pool overlaps"), "{err}");
    let (status, text) = d.api("POST", "/networks/create", Some(br#"{"Name":"una"}"#));
    assert_eq!(status, 409, "{text}");
    assert!(
        text.contains("network with name una already exists"),
        "{text}"
    );
    let (status, text) = d.api(
        "POST",
        "/networks/create",
        Some(br#"{"Name":"un-d","Driver":"overlay"}"#),
    );
    assert_eq!(status, 400, "{text}");
    let ls = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!ls.contains("un-c") && !ls.contains("un-d"), "{ls}");

    let err = d.fails(&[
        "run",
        "--name",
        "un-bad",
        "--network",
        "una",
        "--network-alias",
        "bad alias!",
        BUSYBOX,
        "true",
    ]);
    assert!(err.contains("invalid network alias"), "{err}");
    assert_eq!(d.ok(&["ps", "-aq", "--filter", "name=un-bad"]).trim(), "");
    // As docker: an unknown network fails the start; the container stays created.
    let err = d.fails(&[
        "run",
        "--name",
        "un-nonet",
        "--network",
        "no-such-net",
        BUSYBOX,
        "true",
    ]);
    assert!(err.contains("network no-such-net not found"), "{err}");
    assert_eq!(d.inspect("{{.State.Status}}", "un-nonet").trim(), "created");
    d.ok(&["rm", "un-nonet"]);

    d.ok(&[
        "create",
        "--name",
        "un-stopped",
        "--network",
        "una",
        BUSYBOX,
        "true",
    ]);
    let err = d.fails(&[
        "run",
        "--rm",
        "--network",
        "container:un-stopped",
        BUSYBOX,
        "true",
    ]);
    assert!(err.contains("non running container"), "{err}");
    d.ok(&["rm", "un-stopped"]);

    let (status, text) = d.api("DELETE", &format!("/networks/{na}"), None);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("has active endpoints"), "{text}");
    let err = d.fails(&["network", "rm", "bridge"]);
    assert!(
        err.contains("bridge is a pre-defined network and cannot be removed"),
        "{err}"
    );
    let (status, _) = d.api("GET", "/networks/no-such-net", None);
    assert_eq!(status, 404);
}

#[test]
fn a_restarted_daemon_keeps_running_endpoints_and_drops_dead_ones() {
    let Some(mut d) = Daemon::start() else { return };
    d.ok(&["network", "create", "rsnet"]);
    let net = id_of(&d, "network", "rsnet");
    let web = d
        .ok(&[
            "run",
            "-d",
            "--name",
            "rs-web",
            "--network",
            "rsnet",
            "-p",
            "18082:80",
            BUSYBOX,
            "sh",
            "-c",
            &httpd("rs-web"),
        ])
        .trim()
        .to_string();
    let doomed = d
        .ok(&[
            "run",
            "-d",
            "--name",
            "rs-doomed",
            "--network",
            "rsnet",
            BUSYBOX,
            "sleep",
            "300",
        ])
        .trim()
        .to_string();
    assert_eq!(fetch("127.0.0.1:18082"), "hello from rs-web\n");
    let pid = d.inspect("{{.State.Pid}}", "rs-doomed").trim().to_string();
    d.kill9();
    // While the daemon is away: the port still works, and one container dies.
    assert_eq!(fetch("127.0.0.1:18082"), "hello from rs-web\n");
    support::engine::signal("KILL", &pid);
    d.start_again();
    assert_eq!(fetch("127.0.0.1:18082"), "hello from rs-web\n");
    assert_eq!(d.ok(&["port", "rs-web"]).trim(), "80/tcp -> 0.0.0.0:18082");
    let mut gone = false;
    for _ in 0..100 {
        let running = d.inspect("{{.State.Running}}", "rs-doomed");
        if running.trim() == "false" && leftovers_of_endpoint(&doomed, &net).is_empty() {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(gone, "rs-doomed's endpoint is still there");
    assert!(!d.root.join("run/netns").join(&doomed[..12]).exists());
    // Names still resolve on the network after the restart.
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "rsnet",
        BUSYBOX,
        "nslookup",
        "rs-web",
    ]);
    assert!(out.contains("Name:\trs-web"), "{out}");
    let members = d.ok(&["network", "inspect", "-f", "{{len .Containers}}", "rsnet"]);
    assert_eq!(members.trim(), "1");
    let endpoints = [(web, net.clone()), (doomed, net.clone())];
    finish(d, &[net], &endpoints);
}
