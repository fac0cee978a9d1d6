//! Containers on networks: what a container asked for at create (kept in
//! `containers/<id>/network.json`), and what its start and exit do with it.
//!
//! Start, before the runtime creates the container: a namespace file `<run>/netns/<id12>`,
//! one endpoint per network (address from the network's pool; `eth0` with the default route
//! on the first network, `eth1`... on the others), the published ports (explicit host ports
//! checked against the other containers' ports, port 0 picked from 32768–60999), the
//! embedded DNS's names (name, short id, aliases) on user networks, the firewall re-applied;
//! hosts and resolv.conf written for those networks. Any failure undoes all of it. Exit and
//! remove undo it (idempotently: every name is derived from the ids, so the teardown works
//! from the file alone, also after a daemon restart). `--network container:X` joins X's
//! namespace file and copies X's hosts and resolv.conf.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::manager::{LiveEndpoint, NetworkRecord, DEFAULT_NETWORK};
use super::netlink::Netlink;
use super::nft::{PortMapping, Proto};
use super::{bridge, netns};
use crate::container::{Container, Record};
use crate::engine::Engine;
use crate::error::{Error, IoContext, Result};
use crate::logging;
use crate::types::{ContainerConfig, HostConfig};

pub const NET_FILE: &str = "network.json";
const EPHEMERAL: (u16, u16) = (32768, 60999);

/// One network a container is connected to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct NetConf {
    pub name: String,
    pub network_id: String,
    pub aliases: Vec<String>,
    pub ipv4: Option<Ipv4Addr>,
    /// While running.
    pub live: Option<LiveEndpoint>,
}

/// `containers/<id>/network.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ContainerNet {
    pub networks: Vec<NetConf>,
    /// The namespace file made for the running container.
    pub netns: Option<PathBuf>,
    pub ports: Vec<PortMapping>,
}

impl ContainerNet {
    pub fn load(dir: &Path) -> ContainerNet {
        std::fs::read(dir.join(NET_FILE))
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .unwrap_or_default()
    }

    /// Replaces the file atomically; `durable` (the container's [`Record::durable`]) also
    /// makes it survive a host crash.
    pub fn save(&self, dir: &Path, durable: bool) -> Result<()> {
        let tmp = dir.join(".network.json.tmp");
        crate::state_file::replace_json(&dir.join(NET_FILE), &tmp, self, durable)
    }
}

/// Whether the mode gives the container endpoints of its own.
pub fn is_bridged(mode: &str) -> bool {
    !matches!(mode, "none" | "host") && !mode.starts_with("container:")
}

/// A network alias: a DNS name (letters, digits, '-', '_', '.'), at most 255 bytes.
fn validate_alias(alias: &str) -> Result<()> {
    let ok = !alias.is_empty()
        && alias.len() <= 255
        && alias
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !alias.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidParameter(format!(
            "invalid network alias {alias:?}: only [a-zA-Z0-9_.-] are allowed"
        )))
    }
}

fn endpoint_conf(settings: Option<&Value>) -> Result<(Vec<String>, Option<Ipv4Addr>)> {
    let Some(s) = settings else {
        return Ok((Vec::new(), None));
    };
    let mut aliases = Vec::new();
    for a in s["Aliases"].as_array().into_iter().flatten() {
        let a = a.as_str().unwrap_or_default();
        validate_alias(a)?;
        aliases.push(a.to_string());
    }
    let ip = match s["IPAMConfig"]["IPv4Address"].as_str().unwrap_or_default() {
        "" => None,
        text => Some(
            text.parse()
                .map_err(|_| Error::InvalidParameter(format!("invalid IPv4 address: {text}")))?,
        ),
    };
    Ok((aliases, ip))
}

fn mapping_key(p: &PortMapping) -> String {
    format!("{}/{}", p.container_port, p.proto.as_str())
}

/// `80/tcp` -> (80, Tcp).
fn parse_port_key(key: &str) -> Result<(u16, Proto)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto {
        "tcp" | "" => Proto::Tcp,
        "udp" => Proto::Udp,
        other => {
            return Err(Error::InvalidParameter(format!(
                "invalid proto: {other} (tcp and udp are supported)"
            )))
        }
    };
    let port = port
        .parse()
        .map_err(|_| Error::InvalidParameter(format!("invalid port: {key}")))?;
    Ok((port, proto))
}

/// A binding asked for: protocol, host address, host port range (0: any), container port.
type Wanted = (Proto, Option<Ipv4Addr>, (u16, u16), u16);

/// The port bindings asked for: explicit ones, then with PublishAllPorts every exposed port
/// not bound (to a host port chosen later: 0).
fn requested_ports(config: &ContainerConfig, host: &HostConfig) -> Result<Vec<Wanted>> {
    let mut out = Vec::new();
    let bindings = host.port_bindings.clone().unwrap_or_default();
    for (key, list) in &bindings {
        let (cport, proto) = parse_port_key(key)?;
        let list = list.clone().unwrap_or_default();
        let list = if list.is_empty() {
            vec![Default::default()]
        } else {
            list
        };
        for b in list {
            let ip = match b.host_ip.as_str() {
                "" => None,
                t => Some(t.parse().map_err(|_| {
                    Error::InvalidParameter(format!("invalid host IP address: {t}"))
                })?),
            };
            let range = match b.host_port.as_str() {
                "" | "0" => (0, 0),
                t => match t.split_once('-') {
                    Some((a, b)) => (parse_u16(a)?, parse_u16(b)?),
                    None => (parse_u16(t)?, parse_u16(t)?),
                },
            };
            out.push((proto, ip, range, cport));
        }
    }
    if host.publish_all_ports {
        for key in config.exposed_ports.iter().flat_map(|m| m.keys()) {
            if !bindings.contains_key(key) {
                let (cport, proto) = parse_port_key(key)?;
                out.push((proto, None, (0, 0), cport));
            }
        }
    }
    Ok(out)
}

fn parse_u16(t: &str) -> Result<u16> {
    t.parse()
        .map_err(|_| Error::InvalidParameter(format!("invalid host port: {t}")))
}

fn overlaps(a: Option<Ipv4Addr>, b: Option<Ipv4Addr>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b || a.is_unspecified() || b.is_unspecified(),
        _ => true,
    }
}

fn bindable(proto: Proto, port: u16) -> bool {
    match proto {
        Proto::Tcp => std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok(),
        Proto::Udp => std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok(),
    }
}

impl Engine {
    /// At create: the network mode resolved ("" and "default" are the default bridge),
    /// the networks found, the aliases checked. The file is written by the caller.
    pub(crate) fn network_plan(
        &self,
        config: &mut ContainerConfig,
        host: &mut HostConfig,
        networking: Option<&Value>,
    ) -> Result<ContainerNet> {
        if matches!(host.network_mode.as_str(), "" | "default") {
            host.network_mode = DEFAULT_NETWORK.into();
        }
        let mode = host.network_mode.clone();
        let endpoints = networking.map(|v| &v["EndpointsConfig"]);
        if let Some(other) = mode.strip_prefix("container:") {
            // Unknown here fails the start (a 404 at create would make the CLI pull).
            if let Ok(target) = self.containers.get(other) {
                if config.hostname.is_empty() {
                    config.hostname = target.record().config.hostname;
                }
            }
            if !host.port_bindings.as_ref().is_none_or(|p| p.is_empty()) || host.publish_all_ports {
                return Err(Error::Conflict(
                    "conflicting options: port publishing and the container type network mode"
                        .into(),
                ));
            }
            return Ok(ContainerNet::default());
        }
        if matches!(mode.as_str(), "none" | "host") {
            return Ok(ContainerNet {
                networks: vec![NetConf {
                    name: mode.clone(),
                    network_id: self.networks.find(&mode)?.id,
                    ..NetConf::default()
                }],
                ..ContainerNet::default()
            });
        }
        let mut names: Vec<String> = vec![mode.clone()];
        if let Some(map) = endpoints.and_then(Value::as_object) {
            for key in map.keys() {
                let key = match key.as_str() {
                    "" | "default" => DEFAULT_NETWORK.to_string(),
                    k => k.to_string(),
                };
                if !names.contains(&key) {
                    names.push(key);
                }
            }
        }
        let mut networks = Vec::new();
        for key in names {
            // As docker: an unknown network fails the start, not the create (a 404 at create
            // would make the CLI pull the image).
            let n = match self.networks.find(&key) {
                Ok(n) => n,
                Err(Error::NotFound(_)) => {
                    let (aliases, ipv4) = endpoint_conf(endpoints.and_then(|e| e.get(&key)))?;
                    networks.push(NetConf {
                        name: key,
                        aliases,
                        ipv4,
                        ..NetConf::default()
                    });
                    continue;
                }
                Err(e) => return Err(e),
            };
            if !n.is_bridge() {
                return Err(Error::InvalidParameter(format!(
                    "container cannot be connected to network {} with the {} driver together \
                     with others",
                    n.name, n.driver
                )));
            }
            let settings = endpoints.and_then(|e| {
                let default = (n.name == DEFAULT_NETWORK)
                    .then(|| e.get("default"))
                    .flatten();
                e.get(&key).or_else(|| e.get(&n.name)).or(default)
            });
            let (aliases, ipv4) = endpoint_conf(settings)?;
            if n.name == DEFAULT_NETWORK && !aliases.is_empty() {
                return Err(Error::InvalidParameter(
                    "network-scoped alias is supported only for containers in user defined \
                     networks"
                        .into(),
                ));
            }
            if networks.iter().any(|c: &NetConf| c.network_id == n.id) {
                continue;
            }
            networks.push(NetConf {
                name: n.name.clone(),
                network_id: n.id.clone(),
                aliases,
                ipv4,
                live: None,
            });
        }
        requested_ports(config, host)?;
        Ok(ContainerNet {
            networks,
            ..ContainerNet::default()
        })
    }

    /// Before the runtime creates the container: its namespace wired. The spec's network
    /// namespace path (None: the runtime makes a plain one, or the host's).
    pub(crate) async fn network_up(
        &self,
        c: &Arc<Container>,
        rec: &Record,
    ) -> Result<Option<PathBuf>> {
        let mode = rec.host_config.network_mode.as_str();
        if let Some(other) = mode.strip_prefix("container:") {
            let target = self.containers.get(other)?;
            let t = target.record();
            if !t.state.status.is_live() {
                return Err(Error::Conflict(format!(
                    "cannot join network namespace of a non running container: container {} is {}",
                    t.id,
                    t.state.status.as_str()
                )));
            }
            let file = ContainerNet::load(&target.dir).netns;
            return Ok(Some(file.unwrap_or_else(|| {
                PathBuf::from(format!("/proc/{}/ns/net", t.state.pid))
            })));
        }
        if !is_bridged(mode) {
            return Ok(None);
        }
        let result = self.wire(c, rec).await;
        if result.is_err() {
            self.network_down(c);
        }
        result.map(Some)
    }

    async fn wire(&self, c: &Arc<Container>, rec: &Record) -> Result<PathBuf> {
        let mut net = ContainerNet::load(&c.dir);
        if net.networks.is_empty() {
            // A record from before networks: the default bridge.
            let n = self.networks.find(DEFAULT_NETWORK)?;
            net.networks.push(NetConf {
                name: n.name,
                network_id: n.id,
                ..NetConf::default()
            });
        }
        self.networks.prepare_netns_dir()?;
        let path = self.networks.netns_dir.join(&c.id[..12]);
        netns::remove(&path)?;
        netns::create(&path)?;
        net.netns = Some(path.clone());
        net.save(&c.dir, rec.durable())?;
        for i in 0..net.networks.len() {
            let live = self.attach_endpoint(c, rec, &net.networks[i], i).await?;
            net.networks[i].network_id = live.network_id.clone();
            net.networks[i].live = Some(live);
            net.save(&c.dir, rec.durable())?;
        }
        net.ports = self.publish(c, rec, &net)?;
        net.save(&c.dir, rec.durable())?;
        self.networks.apply()?;
        Ok(path)
    }

    /// One endpoint: the bridge up, an address, the veth wired, the DNS names.
    async fn attach_endpoint(
        &self,
        c: &Container,
        rec: &Record,
        conf: &NetConf,
        index: usize,
    ) -> Result<LiveEndpoint> {
        let key = match conf.network_id.as_str() {
            "" => &conf.name,
            id => id,
        };
        let n = self.networks.find(key).map_err(|_| {
            Error::NotFound(format!(
                "failed to set up container networking: network {} not found",
                conf.name
            ))
        })?;
        if !n.is_bridge() {
            return Err(Error::InvalidParameter(format!(
                "container cannot be connected to network {} of the {} driver",
                n.name, n.driver
            )));
        }
        let n = if n.name == DEFAULT_NETWORK {
            self.networks.ensure_default()?
        } else {
            self.networks.ensure_bridge(&n)?;
            self.networks.listen_dns(&n).await;
            n
        };
        let ifname = format!("eth{index}");
        let ep = self
            .networks
            .add_endpoint(&n.id, &c.id, &rec.name, conf.ipv4, &ifname)?;
        let netns = self.networks.netns_dir.join(&c.id[..12]);
        let mut nl = Netlink::open()?;
        let _ = bridge::detach(&mut nl, &ep.host_ifname);
        bridge::attach(
            &mut nl,
            &bridge::Endpoint {
                bridge: &n.bridge_name(),
                host_ifname: &ep.host_ifname,
                netns: &netns,
                ifname: &ep.ifname,
                address: ep.ip,
                prefix: ep.prefix,
                gateway: (index == 0).then_some(ep.gateway),
            },
        )?;
        self.dns_add(&n, c, rec, conf, &ep);
        Ok(ep)
    }

    fn dns_add(
        &self,
        n: &NetworkRecord,
        c: &Container,
        rec: &Record,
        conf: &NetConf,
        ep: &LiveEndpoint,
    ) {
        if n.name == DEFAULT_NETWORK {
            return;
        }
        let mut names = vec![rec.name.clone(), c.id[..12].to_string()];
        names.extend(conf.aliases.iter().cloned());
        let upstreams: Vec<std::net::SocketAddr> = rec
            .host_config
            .dns
            .iter()
            .flatten()
            .filter_map(|d| d.parse::<std::net::IpAddr>().ok())
            .map(|ip| std::net::SocketAddr::new(ip, 53))
            .collect();
        self.networks.dns.update(|r| {
            r.set_container_endpoint(ep.gateway, ep.ip, &c.id, &names);
            if !upstreams.is_empty() {
                r.set_endpoint_upstreams(ep.gateway, ep.ip, Some(upstreams));
            }
        });
    }

    /// The port mappings of the container, checked against the others', host ports chosen.
    fn publish(&self, c: &Container, rec: &Record, net: &ContainerNet) -> Result<Vec<PortMapping>> {
        let wanted = requested_ports(&rec.config, &rec.host_config)?;
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let Some(ep) = net.networks.first().and_then(|n| n.live.as_ref()) else {
            return Ok(Vec::new());
        };
        let mut st = self.networks.lock();
        let mut taken: Vec<PortMapping> = st
            .ports
            .iter()
            .filter(|(id, _)| **id != c.id)
            .flat_map(|(_, v)| v.iter().cloned())
            .collect();
        let mut mine = Vec::new();
        let busy = |taken: &[PortMapping], proto: Proto, ip: Option<Ipv4Addr>, port: u16| {
            taken
                .iter()
                .any(|t| t.proto == proto && t.host_port == port && overlaps(t.host_ip, ip))
        };
        let seed = crate::container::random_bytes(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .unwrap_or(0);
        for (proto, ip, (lo, hi), cport) in wanted {
            let port = if lo == 0 {
                let span = EPHEMERAL.1 - EPHEMERAL.0 + 1;
                (0..span)
                    .map(|i| EPHEMERAL.0 + (seed.wrapping_add(i)) % span)
                    .find(|p| !busy(&taken, proto, ip, *p) && bindable(proto, *p))
                    .ok_or_else(|| Error::Internal("no free host port to publish on".into()))?
            } else {
                match (lo..=hi).find(|p| !busy(&taken, proto, ip, *p)) {
                    Some(p) => p,
                    None => {
                        let shown = ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
                        return Err(Error::Internal(format!(
                            "driver failed programming external connectivity on endpoint {} \
                             ({}): Bind for {shown}:{lo} failed: port is already allocated",
                            rec.name, ep.endpoint_id
                        )));
                    }
                }
            };
            let m = PortMapping {
                proto,
                host_ip: ip,
                host_port: port,
                container_ip: ep.ip,
                container_port: cport,
            };
            taken.push(m.clone());
            mine.push(m);
        }
        st.ports.insert(c.id.clone(), mine.clone());
        Ok(mine)
    }

    /// After the spec's etc files: the addresses in hosts, the resolvers in resolv.conf.
    pub(crate) fn network_etc_files(
        &self,
        c: &Container,
        rec: &Record,
        hostname: &str,
    ) -> Result<()> {
        let mode = rec.host_config.network_mode.as_str();
        if let Some(other) = mode.strip_prefix("container:") {
            let target = self.containers.get(other)?;
            for f in ["hosts", "resolv.conf"] {
                let (from, to) = (target.dir.join(f), c.dir.join(f));
                if from.exists() {
                    std::fs::copy(&from, &to).at(&to)?;
                }
            }
            return Ok(());
        }
        if !is_bridged(mode) {
            return Ok(());
        }
        let net = ContainerNet::load(&c.dir);
        let Some(first) = net.networks.first() else {
            return Ok(());
        };
        let Some(ep) = &first.live else {
            return Ok(());
        };
        let hosts_path = c.dir.join("hosts");
        let hosts = std::fs::read_to_string(&hosts_path).at(&hosts_path)?;
        let own = format!("127.0.0.1\t{hostname}\n");
        let hosts = hosts.replacen(&own, &format!("{}\t{hostname}\n", ep.ip), 1);
        std::fs::write(&hosts_path, hosts).at(&hosts_path)?;
        let resolv_path = c.dir.join("resolv.conf");
        let base = std::fs::read_to_string(&resolv_path).unwrap_or_default();
        let mut out = String::new();
        let embedded = first.name != DEFAULT_NETWORK;
        if embedded {
            out.push_str(&format!("nameserver {}\n", ep.gateway));
        }
        let mut servers = 0;
        for line in base.lines() {
            let t = line.trim();
            if let Some(ns) = t.strip_prefix("nameserver") {
                let ns = ns.trim();
                if embedded || ns.starts_with("127.") || ns == "::1" {
                    continue;
                }
                servers += 1;
            }
            out.push_str(line);
            out.push('\n');
        }
        if !embedded && servers == 0 {
            out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        }
        std::fs::write(&resolv_path, out).at(&resolv_path)
    }

    /// Undoes `network_up` (idempotent; works from the file alone).
    pub(crate) fn network_down(&self, c: &Container) {
        let mut net = ContainerNet::load(&c.dir);
        let had_ports = self.networks.lock().ports.remove(&c.id).is_some();
        if net.netns.is_none() && !net.networks.iter().any(|n| n.live.is_some()) && !had_ports {
            return;
        }
        self.networks.dns.update(|r| r.remove_container(&c.id));
        // A network known only by name at create was resolved at start.
        for conf in net.networks.iter_mut().filter(|n| n.network_id.is_empty()) {
            if let Ok(n) = self.networks.find(&conf.name) {
                conf.network_id = n.id;
            }
        }
        // With our namespace file about to go, the kernel deletes the veths with the
        // namespace; without a recorded one, nothing else would, so they are deleted here.
        let namespace_goes = net.netns.is_some();
        if let Ok(mut nl) = Netlink::open() {
            for conf in &net.networks {
                let veth = bridge::veth_name(&format!("{}/{}", c.id, conf.network_id));
                let removed = if namespace_goes {
                    bridge::retire(&mut nl, &veth)
                } else {
                    bridge::detach(&mut nl, &veth)
                };
                if let Err(e) = removed {
                    logging::warn(&format!("container {}: removing {veth}: {e}", c.id));
                }
            }
        }
        for conf in &mut net.networks {
            self.networks.remove_endpoint(&conf.network_id, &c.id);
            conf.live = None;
        }
        if let Some(path) = net.netns.take() {
            if let Err(e) = netns::remove(&path) {
                logging::warn(&format!("container {}: {e}", c.id));
            }
        }
        net.ports.clear();
        if c.dir.exists() {
            if let Err(e) = net.save(&c.dir, c.record().durable()) {
                logging::warn(&format!("container {}: {e}", c.id));
            }
        }
        if let Err(e) = self.networks.apply() {
            logging::warn(&format!("container {}: firewall: {e}", c.id));
        }
    }

    /// After the containers are restored: the running ones keep their endpoints (their
    /// ports and names are taken back), whatever else is left from before is removed, the
    /// bridges, listeners and firewall are back.
    pub(crate) async fn network_reconcile(&self) {
        let all = self.containers.all();
        let mut live_ids = std::collections::BTreeSet::new();
        for c in &all {
            let rec = c.record();
            let net = ContainerNet::load(&c.dir);
            if !rec.state.status.is_live() {
                self.network_down(c);
                continue;
            }
            live_ids.insert(c.id.clone());
            if !net.ports.is_empty() {
                self.networks
                    .lock()
                    .ports
                    .insert(c.id.clone(), net.ports.clone());
            }
            for conf in &net.networks {
                let (Some(ep), Ok(n)) = (&conf.live, self.networks.find(&conf.network_id)) else {
                    continue;
                };
                if self.networks.ensure_bridge(&n).is_ok() {
                    self.dns_add(&n, c, &rec, conf, ep);
                }
            }
        }
        for n in self.networks.all() {
            for id in n.containers.keys().filter(|id| !live_ids.contains(*id)) {
                if let Ok(mut nl) = Netlink::open() {
                    let _ = bridge::detach(&mut nl, &bridge::veth_name(&format!("{id}/{}", n.id)));
                }
                self.networks.remove_endpoint(&n.id, id);
            }
            if n.is_bridge() && n.name != DEFAULT_NETWORK {
                if let Err(e) = self.networks.ensure_bridge(&n) {
                    logging::warn(&format!("network {}: {e}", n.name));
                    continue;
                }
                self.networks.listen_dns(&n).await;
            }
        }
        if let Ok(entries) = std::fs::read_dir(&self.networks.netns_dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !live_ids.iter().any(|id| id.starts_with(&name)) {
                    let _ = netns::remove(&e.path());
                }
            }
        }
        if let Err(e) = self.networks.apply() {
            logging::warn(&format!("firewall: {e}"));
        }
    }

    /// `NetworkSettings` of inspect.
    pub(crate) fn network_settings_json(&self, rec: &Record) -> Value {
        let dir = self.config().container_dir(&rec.id);
        let net = ContainerNet::load(&dir);
        let running = rec.state.status.is_live();
        let mut ports = serde_json::Map::new();
        if running {
            for key in rec.config.exposed_ports.iter().flat_map(|m| m.keys()) {
                ports.insert(key.clone(), Value::Null);
            }
            for p in &net.ports {
                let entry = ports.entry(mapping_key(p)).or_insert(json!([]));
                if !entry.is_array() {
                    *entry = json!([]);
                }
                if let Some(a) = entry.as_array_mut() {
                    let ip = p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
                    a.push(json!({"HostIp": ip.to_string(), "HostPort": p.host_port.to_string()}));
                }
            }
        }
        let mut networks = serde_json::Map::new();
        for conf in &net.networks {
            networks.insert(conf.name.clone(), endpoint_json(rec, conf));
        }
        if networks.is_empty() {
            let mode = rec.host_config.network_mode.clone();
            networks.insert(mode, endpoint_json(rec, &NetConf::default()));
        }
        let first = net.networks.first().and_then(|n| n.live.clone());
        let s = |f: &dyn Fn(&LiveEndpoint) -> Value, d: Value| first.as_ref().map_or(d, f);
        let sandbox = net
            .netns
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        json!({
            "Bridge": "", "SandboxID": if sandbox.is_empty() { String::new() } else { rec.id.clone() },
            "SandboxKey": sandbox, "Ports": ports, "HairpinMode": false,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
            "EndpointID": s(&|e| json!(e.endpoint_id), json!("")),
            "Gateway": s(&|e| json!(e.gateway.to_string()), json!("")),
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "IPAddress": s(&|e| json!(e.ip.to_string()), json!("")),
            "IPPrefixLen": s(&|e| json!(e.prefix), json!(0)),
            "IPv6Gateway": "", "MacAddress": "", "Networks": networks
        })
    }

    /// `Ports` of the container list.
    pub(crate) fn summary_ports(&self, rec: &Record) -> Vec<Value> {
        let net = ContainerNet::load(&self.config().container_dir(&rec.id));
        let mut out: Vec<Value> = Vec::new();
        let running = rec.state.status.is_live();
        for p in net.ports.iter().filter(|_| running) {
            let ip = p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
            out.push(
                json!({"IP": ip.to_string(), "PrivatePort": p.container_port,
                "PublicPort": p.host_port, "Type": p.proto.as_str()}),
            );
        }
        for key in rec.config.exposed_ports.iter().flat_map(|m| m.keys()) {
            if let Ok((port, proto)) = parse_port_key(key) {
                if !net
                    .ports
                    .iter()
                    .any(|p| running && p.container_port == port && p.proto == proto)
                {
                    out.push(json!({"PrivatePort": port, "Type": proto.as_str()}));
                }
            }
        }
        out
    }

    /// `Networks` of the container list's NetworkSettings.
    pub(crate) fn summary_networks(&self, rec: &Record) -> Value {
        self.network_settings_json(rec)["Networks"].clone()
    }

    /// `POST /networks/{id}/connect`.
    pub async fn network_connect(
        &self,
        network: &str,
        container: &str,
        endpoint: Option<&Value>,
    ) -> Result<()> {
        let n = self.networks.find(network)?;
        let c = self.containers.get(container)?;
        let _op = c.op.lock().await;
        let rec = c.record();
        if !is_bridged(&rec.host_config.network_mode) || !n.is_bridge() {
            return Err(Error::Forbidden(format!(
                "container sharing network namespace with another container or host cannot be \
                 connected to any other network (mode {}, network {})",
                rec.host_config.network_mode, n.name
            )));
        }
        let (aliases, ipv4) = endpoint_conf(endpoint)?;
        let mut net = ContainerNet::load(&c.dir);
        if net.networks.iter().any(|x| x.network_id == n.id) {
            return Err(Error::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, n.name
            )));
        }
        let conf = NetConf {
            name: n.name.clone(),
            network_id: n.id.clone(),
            aliases,
            ipv4,
            live: None,
        };
        let index = net.networks.len();
        net.networks.push(conf.clone());
        if rec.state.status.is_live() && net.netns.is_some() {
            let live = match self.attach_endpoint(&c, &rec, &conf, index).await {
                Ok(l) => l,
                Err(e) => {
                    self.networks.remove_endpoint(&n.id, &c.id);
                    return Err(e);
                }
            };
            if let Some(last) = net.networks.last_mut() {
                last.live = Some(live);
            }
            self.networks.apply()?;
        }
        net.save(&c.dir, rec.durable())?;
        self.emit_event(
            "network",
            "connect",
            &n.id,
            &[
                ("container", c.id.clone()),
                ("name", n.name.clone()),
                ("type", n.driver.clone()),
            ],
        );
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn network_disconnect(
        &self,
        network: &str,
        container: &str,
        _force: bool,
    ) -> Result<()> {
        let n = self.networks.find(network)?;
        let c = self.containers.get(container)?;
        let _op = c.op.lock().await;
        let mut net = ContainerNet::load(&c.dir);
        let Some(pos) = net.networks.iter().position(|x| x.network_id == n.id) else {
            return Err(Error::Forbidden(format!(
                "container {} is not connected to network {}",
                c.id, n.name
            )));
        };
        let conf = net.networks.remove(pos);
        if conf.live.is_some() {
            if let Ok(mut nl) = Netlink::open() {
                let _ = bridge::detach(&mut nl, &bridge::veth_name(&format!("{}/{}", c.id, n.id)));
            }
            if let (Some(ep), Some(_)) = (&conf.live, n.dns_scope()) {
                self.networks
                    .dns
                    .update(|r| r.remove_endpoint(ep.gateway, ep.ip));
            }
            self.networks.remove_endpoint(&n.id, &c.id);
            if pos == 0 {
                self.networks.lock().ports.remove(&c.id);
                net.ports.clear();
            }
            self.networks.apply()?;
        }
        net.save(&c.dir, c.record().durable())?;
        self.emit_event(
            "network",
            "disconnect",
            &n.id,
            &[
                ("container", c.id.clone()),
                ("name", n.name.clone()),
                ("type", n.driver.clone()),
            ],
        );
        Ok(())
    }

    /// `GET /networks`.
    pub async fn network_list(
        &self,
        filters: crate::engine::Filters,
    ) -> Result<Vec<NetworkRecord>> {
        let mut out = Vec::new();
        for n in self.networks.all() {
            if super::manager::matches_filters(&n, &filters)? {
                out.push(n);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `GET /networks/{id}`.
    pub async fn network_inspect(&self, id: &str) -> Result<NetworkRecord> {
        self.networks.find(id)
    }

    /// `POST /networks/create`: `{"Id", "Warning"}`.
    pub async fn network_create(&self, req: super::manager::CreateNetwork) -> Result<Value> {
        let (n, warning) = self.networks.create(req).await?;
        self.emit_event(
            "network",
            "create",
            &n.id,
            &[("name", n.name.clone()), ("type", n.driver.clone())],
        );
        Ok(json!({"Id": n.id, "Warning": warning}))
    }

    /// `DELETE /networks/{id}`.
    pub async fn network_remove(&self, id: &str) -> Result<()> {
        let n = self.networks.remove(id)?;
        self.emit_event(
            "network",
            "destroy",
            &n.id,
            &[("name", n.name.clone()), ("type", n.driver.clone())],
        );
        Ok(())
    }

    /// `POST /networks/prune`: `{"NetworksDeleted": [names]}`.
    pub async fn network_prune(&self, filters: crate::engine::Filters) -> Result<Value> {
        let mut deleted = Vec::new();
        let mut filters = filters;
        filters.remove("until");
        for n in self.networks.all() {
            if n.is_predefined() || !n.containers.is_empty() {
                continue;
            }
            if !super::manager::matches_filters(&n, &filters)? {
                continue;
            }
            if self.network_remove(&n.id).await.is_ok() {
                deleted.push(n.name);
            }
        }
        Ok(json!({"NetworksDeleted": deleted}))
    }

    /// At a graceful daemon shutdown.
    pub fn shutdown_networks(&self) {
        self.networks.shutdown();
    }
}

fn endpoint_json(rec: &Record, conf: &NetConf) -> Value {
    let live = conf.live.as_ref();
    let mut dns_names = Vec::new();
    if live.is_some() && conf.name != DEFAULT_NETWORK {
        dns_names.push(rec.name.clone());
        dns_names.push(rec.id[..12].to_string());
        dns_names.extend(conf.aliases.iter().cloned());
    }
    json!({
        "IPAMConfig": conf.ipv4.map(|ip| json!({"IPv4Address": ip.to_string()})),
        "Links": null,
        "Aliases": if conf.aliases.is_empty() { Value::Null } else { json!(conf.aliases) },
        "MacAddress": "",
        "NetworkID": conf.network_id,
        "EndpointID": live.map(|e| e.endpoint_id.clone()).unwrap_or_default(),
        "Gateway": live.map(|e| e.gateway.to_string()).unwrap_or_default(),
        "IPAddress": live.map(|e| e.ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": live.map_or(0, |e| e.prefix),
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "DriverOpts": null,
        "DNSNames": if dns_names.is_empty() { Value::Null } else { json!(dns_names) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_ports() {
        assert!(validate_alias("web-1.svc_x").is_ok());
        assert!(validate_alias("bad alias").is_err());
        assert!(validate_alias("").is_err());
        assert_eq!(parse_port_key("80/tcp").unwrap(), (80, Proto::Tcp));
        assert_eq!(parse_port_key("53/udp").unwrap(), (53, Proto::Udp));
        assert!(parse_port_key("80/sctp").is_err());
        let host = HostConfig {
            port_bindings: Some(
                [(
                    "80/tcp".to_string(),
                    Some(vec![crate::types::PortBinding {
                        host_ip: "127.0.0.1".into(),
                        host_port: "8080".into(),
                    }]),
                )]
                .into(),
            ),
            publish_all_ports: true,
            ..HostConfig::default()
        };
        let config = ContainerConfig {
            exposed_ports: Some(
                [
                    ("80/tcp".to_string(), json!({})),
                    ("443/tcp".to_string(), json!({})),
                ]
                .into(),
            ),
            ..ContainerConfig::default()
        };
        let r = requested_ports(&config, &host).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0],
            (Proto::Tcp, Some(Ipv4Addr::LOCALHOST), (8080, 8080), 80)
        );
        assert_eq!(r[1], (Proto::Tcp, None, (0, 0), 443));
        assert!(overlaps(None, Some(Ipv4Addr::LOCALHOST)));
        assert!(!overlaps(
            Some(Ipv4Addr::LOCALHOST),
            Some(Ipv4Addr::new(10, 0, 0, 1))
        ));
    }
}
