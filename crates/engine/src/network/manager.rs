//! The engine's networks: their records (`<root>/networks/<id>.json`, Docker's Network JSON,
//! rewritten atomically), the predefined `bridge`, `host` and `none`, the bridges, the
//! firewall table and the embedded DNS server that follow from them.
//!
//! Naming, all derived from the data root so several daemons live side by side and a test's
//! leak check finds everything: the default bridge is `gorae0` for the default root and
//! `gr0-<root hash>` otherwise; a user network's bridge is `gr-<8 hex of its id>`; the
//! nftables table is `gorae` or `gorae-<root hash>`.
//!
//! Lifetime: user networks' bridges are made at network create (and again at open); the
//! default bridge when its first container starts, with a subnet re-checked then against
//! the host's routes, under a lock shared by every gorae daemon of the machine (two daemons
//! would otherwise pick the same free pool). The firewall table is rebuilt from the model
//! (networks with a bridge, published ports of running containers) at every change, and
//! removed when it would be empty. At a graceful shutdown with no container running,
//! bridges and table are removed; while containers run (they outlive the daemon) they stay.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::dns::{DnsConfig, DnsServer, ScopeOptions};
use super::ipam::{self, Pool, Subnet};
use super::netlink::Netlink;
use super::nft::{self, PortMapping, Ruleset};
use super::{bridge, netns};
use crate::config::{root_hash, EngineConfig};
use crate::error::{Error, IoContext, Result};
use crate::logging;

pub const DEFAULT_NETWORK: &str = "bridge";
const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";
/// Held (flock) while a subnet is chosen and its bridge made, by every daemon.
const IPAM_LOCK: &str = "/run/gorae-ipam.lock";

/// Docker's `IPAM.Config[]` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfig {
    pub subnet: String,
    pub gateway: String,
    #[serde(rename = "IPRange", skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipam {
    pub driver: String,
    pub options: Option<BTreeMap<String, String>>,
    pub config: Vec<IpamConfig>,
}

/// Docker's `Containers{id: ...}` entry of a network.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointResource {
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub mac_address: String,
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// A network as Docker's `GET /networks/{id}` shows it; also the file's content.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkRecord {
    pub name: String,
    pub id: String,
    pub created: String,
    pub scope: String,
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_from: Value,
    pub config_only: bool,
    pub containers: BTreeMap<String, EndpointResource>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

impl NetworkRecord {
    fn new(name: &str, driver: &str) -> Result<NetworkRecord> {
        Ok(NetworkRecord {
            name: name.into(),
            id: crate::container::new_id()?,
            created: crate::container::time::format_ns(crate::container::time::now_ns()),
            scope: "local".into(),
            driver: driver.into(),
            enable_ipv6: false,
            ipam: Ipam {
                driver: "default".into(),
                options: None,
                config: Vec::new(),
            },
            internal: false,
            attachable: false,
            ingress: false,
            config_from: json!({"Network": ""}),
            config_only: false,
            containers: BTreeMap::new(),
            options: BTreeMap::new(),
            labels: BTreeMap::new(),
        })
    }

    pub fn is_bridge(&self) -> bool {
        self.driver == "bridge"
    }

    pub fn is_predefined(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }

    /// The subnet and gateway of the IPv4 config (bridge networks have one once chosen).
    pub fn pool_config(&self) -> Option<(Subnet, Ipv4Addr)> {
        let c = self.ipam.config.first()?;
        let subnet: Subnet = c.subnet.parse().ok()?;
        let gateway = c.gateway.parse().ok().or_else(|| subnet.gateway())?;
        Some((subnet, gateway))
    }

    pub fn bridge_name(&self) -> String {
        match self.options.get(BRIDGE_NAME_OPTION) {
            Some(name) => name.clone(),
            None => format!("gr-{}", &self.id[..8]),
        }
    }

    /// The addresses handed out: the gateway, and the endpoints'.
    fn pool(&self) -> Result<Pool> {
        let (subnet, gateway) = self.pool_config().ok_or_else(|| {
            Error::Internal(format!("network {} has no IPv4 address pool", self.name))
        })?;
        let mut pool = Pool::with_gateway(subnet, gateway)?;
        for e in self.containers.values() {
            if let Some(ip) = e
                .ipv4_address
                .split('/')
                .next()
                .and_then(|a| a.parse().ok())
            {
                pool.allocated.insert(ip);
            }
        }
        Ok(pool)
    }

    pub(crate) fn dns_scope(&self) -> Option<(Ipv4Addr, Subnet)> {
        if !self.is_bridge() || self.name == DEFAULT_NETWORK {
            return None;
        }
        self.pool_config().map(|(s, g)| (g, s))
    }
}

/// What `create` is asked for (`POST /networks/create`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateNetwork {
    pub name: String,
    pub check_duplicate: Option<bool>,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Option<Ipam>,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: Option<bool>,
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: Option<bool>,
    pub options: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub scope: String,
    pub config_only: bool,
}

/// One endpoint being attached: what `attach` needs and what it decided.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LiveEndpoint {
    pub network_id: String,
    pub endpoint_id: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub host_ifname: String,
    pub ifname: String,
}

pub(crate) struct State {
    pub nets: BTreeMap<String, NetworkRecord>,
    /// Published ports of running containers, by container id.
    pub ports: BTreeMap<String, Vec<PortMapping>>,
    /// Bridges made by this daemon (or found) and not removed since.
    pub bridges_up: std::collections::BTreeSet<String>,
    netns_ready: bool,
}

/// Every network of one engine.
pub struct Networks {
    dir: PathBuf,
    pub(crate) netns_dir: PathBuf,
    table: String,
    default_bridge: String,
    state: Mutex<State>,
    pub(crate) dns: DnsServer,
    /// The last nft script that ran successfully (None: none yet, or the table's state is
    /// unknown). Held while a script runs, so applies are serialised and a newer model never
    /// lands before an older one.
    applied: Mutex<Option<String>>,
    /// Runs an nft script (`nft::run_script`; tests count the runs instead).
    run_nft: NftRunner,
}

/// How the firewall's scripts are run.
pub(crate) type NftRunner = Box<dyn Fn(&str) -> Result<()> + Send + Sync>;

impl Networks {
    /// Loads the records and adds the predefined networks that are missing. Touches no
    /// interface: `reconcile` does, once the containers are known.
    pub fn open(config: &EngineConfig) -> Result<Networks> {
        let is_default = config.root == Path::new(gorae_image::DataRoot::DEFAULT);
        let (table, default_bridge) = if is_default {
            ("gorae".to_string(), "gorae0".to_string())
        } else {
            let h = root_hash(&config.root);
            (format!("gorae-{h}"), format!("gr0-{h}"))
        };
        let dir = config.root.join("networks");
        std::fs::create_dir_all(&dir).at(&dir)?;
        let mut nets = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).at(&dir)? {
            let path = entry.at(&dir)?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let loaded = std::fs::read(&path).at(&path).and_then(|d| {
                serde_json::from_slice::<NetworkRecord>(&d)
                    .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))
            });
            match loaded {
                Ok(n) => {
                    nets.insert(n.id.clone(), n);
                }
                Err(e) => logging::warn(&format!("skipping a network: {e}")),
            }
        }
        let networks = Networks {
            dir,
            netns_dir: config.run_dir.join("netns"),
            table,
            default_bridge,
            state: Mutex::new(State {
                nets,
                ports: BTreeMap::new(),
                bridges_up: Default::default(),
                netns_ready: false,
            }),
            dns: DnsServer::new(DnsConfig {
                upstreams: super::dns::forward::host_upstreams(),
                ..DnsConfig::default()
            }),
            applied: Mutex::new(None),
            run_nft: Box::new(nft::run_script),
        };
        networks.add_predefined()?;
        Ok(networks)
    }

    fn add_predefined(&self) -> Result<()> {
        let mut st = self.lock();
        for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
            if st.nets.values().any(|n| n.name == name) {
                continue;
            }
            let mut n = NetworkRecord::new(name, driver)?;
            if name == DEFAULT_NETWORK {
                n.options = [
                    ("com.docker.network.bridge.default_bridge", "true"),
                    ("com.docker.network.bridge.enable_icc", "true"),
                    ("com.docker.network.bridge.enable_ip_masquerade", "true"),
                    ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
                    (BRIDGE_NAME_OPTION, self.default_bridge.as_str()),
                    ("com.docker.network.driver.mtu", "1500"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            } else {
                n.ipam.driver = "default".into();
            }
            self.save(&n)?;
            st.nets.insert(n.id.clone(), n);
        }
        Ok(())
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub(crate) fn save(&self, n: &NetworkRecord) -> Result<()> {
        let path = self.dir.join(format!("{}.json", n.id));
        let tmp = self.dir.join(format!(".{}.json.tmp", n.id));
        crate::state_file::replace_json(&path, &tmp, n, true)
    }

    /// Docker's lookup: full id, then name, then unique id prefix.
    pub fn find(&self, id_or_name: &str) -> Result<NetworkRecord> {
        let st = self.lock();
        find_in(&st.nets, id_or_name).cloned()
    }

    pub fn all(&self) -> Vec<NetworkRecord> {
        self.lock().nets.values().cloned().collect()
    }

    /// `POST /networks/create`.
    pub async fn create(&self, req: CreateNetwork) -> Result<(NetworkRecord, String)> {
        let driver = match req.driver.as_str() {
            "" => "bridge",
            d => d,
        };
        if req.name.is_empty() {
            return Err(Error::InvalidParameter("network name is required".into()));
        }
        crate::container::names::validate(&req.name)
            .map_err(|_| Error::InvalidParameter(format!("invalid network name {:?}", req.name)))?;
        if driver != "bridge" {
            return Err(Error::InvalidParameter(format!(
                "could not find plugin {driver} in v1 plugin registry: plugin not found \
                 (gorae has the bridge driver only)"
            )));
        }
        if req.enable_ipv6 == Some(true) {
            return Err(Error::NotImplemented(
                "IPv6 networks are not supported".into(),
            ));
        }
        if req.config_only || req.ingress || (!req.scope.is_empty() && req.scope != "local") {
            return Err(Error::InvalidParameter(
                "only local-scoped, non-ingress, non-config-only networks are supported".into(),
            ));
        }
        let mut n = NetworkRecord::new(&req.name, driver)?;
        n.internal = req.internal;
        n.attachable = req.attachable;
        n.labels = req.labels.unwrap_or_default();
        n.options = req.options.unwrap_or_default();
        if let Some(name) = n.options.get(BRIDGE_NAME_OPTION) {
            return Err(Error::InvalidParameter(format!(
                "bridge name option {name:?} is not supported: gorae names its bridges"
            )));
        }
        let requested = req.ipam.as_ref().and_then(|i| i.config.first()).cloned();
        if let Some(ipam) = &req.ipam {
            if !matches!(ipam.driver.as_str(), "" | "default") {
                return Err(Error::InvalidParameter(format!(
                    "IPAM driver {:?} is not supported",
                    ipam.driver
                )));
            }
            n.ipam.options = ipam.options.clone();
        }
        let _global = ipam_lock()?;
        {
            let st = self.lock();
            if st.nets.values().any(|o| o.name == n.name) {
                return Err(Error::Conflict(format!(
                    "network with name {} already exists",
                    n.name
                )));
            }
            let (subnet, gateway) = choose_pool(&st.nets, requested.as_ref())?;
            n.ipam.config = vec![IpamConfig {
                subnet: subnet.to_string(),
                gateway: gateway.to_string(),
                ip_range: requested.map(|r| r.ip_range).unwrap_or_default(),
            }];
        }
        self.ensure_bridge(&n)?;
        if let Err(e) = self.save(&n) {
            let _ = self.remove_bridge(&n.bridge_name());
            return Err(e);
        }
        self.lock().nets.insert(n.id.clone(), n.clone());
        self.listen_dns(&n).await;
        if let Err(e) = self.apply() {
            logging::warn(&format!("network {}: firewall: {e}", n.name));
        }
        Ok((n, String::new()))
    }

    /// Removes a network that has no endpoints.
    pub fn remove(&self, id_or_name: &str) -> Result<NetworkRecord> {
        let n = {
            let mut st = self.lock();
            let n = find_in(&st.nets, id_or_name)?.clone();
            if n.is_predefined() {
                return Err(Error::Forbidden(format!(
                    "{} is a pre-defined network and cannot be removed",
                    n.name
                )));
            }
            if !n.containers.is_empty() {
                return Err(Error::Forbidden(format!(
                    "error while removing network: network {} id {} has active endpoints",
                    n.name, n.id
                )));
            }
            st.nets.remove(&n.id);
            n
        };
        if let Some((gateway, _)) = n.dns_scope() {
            self.dns.unlisten(SocketAddrV4::new(gateway, 53));
            self.dns.update(|r| r.remove_network(gateway));
        }
        let _ = self.remove_bridge(&n.bridge_name());
        let path = self.dir.join(format!("{}.json", n.id));
        std::fs::remove_file(&path).at(&path)?;
        if let Err(e) = self.apply() {
            logging::warn(&format!("network {}: firewall: {e}", n.name));
        }
        Ok(n)
    }

    /// Makes the network's bridge (the default one gets its subnet re-checked first: the
    /// host's routes may have changed since it was chosen).
    pub(crate) fn ensure_bridge(&self, n: &NetworkRecord) -> Result<()> {
        let name = n.bridge_name();
        if self.lock().bridges_up.contains(&name) {
            return Ok(());
        }
        let (subnet, gateway) = n
            .pool_config()
            .ok_or_else(|| Error::Internal(format!("network {} has no subnet", n.name)))?;
        let mut nl = Netlink::open()?;
        bridge::ensure_bridge(&mut nl, &name, subnet, gateway)?;
        self.lock().bridges_up.insert(name);
        Ok(())
    }

    /// The default network with its bridge up, its subnet chosen now if it has none or if
    /// its bridge is not there and a host route took the subnet meanwhile.
    pub(crate) fn ensure_default(&self) -> Result<NetworkRecord> {
        let n = self.find(DEFAULT_NETWORK)?;
        if self.lock().bridges_up.contains(&n.bridge_name()) {
            return Ok(n);
        }
        let _global = ipam_lock()?;
        let mut nl = Netlink::open()?;
        let exists = nl.link_index(&n.bridge_name())?.is_some();
        let mut n = self.find(DEFAULT_NETWORK)?;
        let routes = ipam::host_routes()?;
        let stale = match n.pool_config() {
            None => true,
            Some((s, _)) => {
                !exists && n.containers.is_empty() && routes.iter().any(|r| r.overlaps(&s))
            }
        };
        if stale {
            let mut st = self.lock();
            let others = st.nets.clone();
            let mut in_use = routes;
            in_use.extend(
                others
                    .values()
                    .filter(|o| o.id != n.id)
                    .filter_map(|o| o.pool_config().map(|(s, _)| s)),
            );
            let subnet = ipam::choose_subnet(&in_use)?;
            let gateway = Pool::new(subnet)?.gateway;
            n.ipam.config = vec![IpamConfig {
                subnet: subnet.to_string(),
                gateway: gateway.to_string(),
                ip_range: String::new(),
            }];
            self.save(&n)?;
            st.nets.insert(n.id.clone(), n.clone());
        }
        self.ensure_bridge(&n)?;
        Ok(n)
    }

    fn remove_bridge(&self, name: &str) -> Result<bool> {
        self.lock().bridges_up.remove(name);
        let mut nl = Netlink::open()?;
        bridge::remove_bridge(&mut nl, name)
    }

    pub(crate) async fn listen_dns(&self, n: &NetworkRecord) {
        let Some((gateway, subnet)) = n.dns_scope() else {
            return;
        };
        self.dns.update(|r| {
            r.add_network(
                gateway,
                ScopeOptions {
                    subnet: Some((subnet.network(), subnet.prefix())),
                    ..ScopeOptions::default()
                },
            )
        });
        if let Err(e) = self.dns.listen(SocketAddrV4::new(gateway, 53)).await {
            logging::warn(&format!("network {}: embedded DNS: {e}", n.name));
        }
    }

    /// Reserves an address on network `id` for `container` and records its endpoint.
    pub(crate) fn add_endpoint(
        &self,
        network_id: &str,
        container: &str,
        name: &str,
        requested: Option<Ipv4Addr>,
        ifname: &str,
    ) -> Result<LiveEndpoint> {
        let mut st = self.lock();
        let n = st
            .nets
            .get_mut(network_id)
            .ok_or_else(|| Error::NotFound(format!("network {network_id} not found")))?;
        let mut pool = n.pool()?;
        if let Some(e) = n.containers.get(container) {
            if let Some(ip) = e
                .ipv4_address
                .split('/')
                .next()
                .and_then(|a| a.parse().ok())
            {
                pool.release(ip);
            }
        }
        let ip = match requested {
            Some(ip) => pool.allocate_specific(ip).map(|()| ip)?,
            None => pool.allocate()?,
        };
        let endpoint_id = crate::container::new_id()?;
        let ep = LiveEndpoint {
            network_id: n.id.clone(),
            endpoint_id: endpoint_id.clone(),
            ip,
            prefix: pool.subnet.prefix(),
            gateway: pool.gateway,
            host_ifname: bridge::veth_name(&format!("{container}/{}", n.id)),
            ifname: ifname.to_string(),
        };
        n.containers.insert(
            container.to_string(),
            EndpointResource {
                name: name.to_string(),
                endpoint_id,
                mac_address: String::new(),
                ipv4_address: format!("{ip}/{}", ep.prefix),
                ipv6_address: String::new(),
            },
        );
        // Saved under the lock: concurrent saves of one network share its tmp file, and an
        // older snapshot must not land after a newer one.
        self.save(n)?;
        drop(st);
        Ok(ep)
    }

    /// Forgets `container`'s endpoint on network `id` (its address is free again).
    pub(crate) fn remove_endpoint(&self, network_id: &str, container: &str) {
        let mut st = self.lock();
        let Some(n) = st.nets.get_mut(network_id) else {
            return;
        };
        if n.containers.remove(container).is_none() {
            return;
        }
        if let Err(e) = self.save(n) {
            logging::warn(&format!("network {}: {e}", n.name));
        }
        drop(st);
    }

    pub(crate) fn prepare_netns_dir(&self) -> Result<()> {
        if self.lock().netns_ready {
            return Ok(());
        }
        netns::prepare_dir(&self.netns_dir)?;
        self.lock().netns_ready = true;
        Ok(())
    }

    /// The firewall model now: every network with its bridge up, every published port.
    pub(crate) fn ruleset(&self) -> Ruleset {
        let st = self.lock();
        let networks = st
            .nets
            .values()
            .filter(|n| n.is_bridge() && st.bridges_up.contains(&n.bridge_name()))
            .filter_map(|n| {
                n.pool_config().map(|(subnet, _)| nft::Network {
                    bridge: n.bridge_name(),
                    subnet,
                    internal: n.internal,
                })
            })
            .collect();
        Ruleset {
            table: self.table.clone(),
            networks,
            ports: st.ports.values().flatten().cloned().collect(),
        }
    }

    /// Applies the model; an empty one removes our table. Most container starts and exits
    /// change nothing in it (no published port): the script then equals the last one that
    /// ran and nft is not run again (forking it costs tens of milliseconds). After a failure
    /// nothing is remembered, so the next apply runs in any case.
    pub(crate) fn apply(&self) -> Result<()> {
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let rules = self.ruleset();
        let script = if rules.networks.is_empty() && rules.ports.is_empty() {
            nft::remove_script(&self.table)?
        } else {
            rules.render()?
        };
        if applied.as_deref() == Some(script.as_str()) {
            return Ok(());
        }
        *applied = None;
        (self.run_nft)(&script)?;
        *applied = Some(script);
        Ok(())
    }

    /// Removes our table now (whatever was applied before).
    fn remove_table(&self) -> Result<()> {
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        *applied = None;
        let script = nft::remove_script(&self.table)?;
        (self.run_nft)(&script)?;
        *applied = Some(script);
        Ok(())
    }

    /// At a graceful shutdown (and when the engine is dropped): with no endpoint left (no
    /// container on a bridge runs on), the bridges, the table and the namespace directory's
    /// mount go; they are made again when needed. While containers run they stay.
    pub fn shutdown(&self) {
        for addr in self.dns.listening() {
            self.dns.unlisten(addr);
        }
        let (idle, names, netns_ready) = {
            let st = self.lock();
            let idle = st.nets.values().all(|n| n.containers.is_empty()) && st.ports.is_empty();
            // Every bridge of ours, also those a killed daemon left and this one never used.
            let mut names: std::collections::BTreeSet<String> = st.bridges_up.clone();
            names.extend(
                st.nets
                    .values()
                    .filter(|n| n.is_bridge())
                    .map(|n| n.bridge_name()),
            );
            (idle, names, st.netns_ready)
        };
        if !idle {
            return;
        }
        for name in names {
            if let Err(e) = self.remove_bridge(&name) {
                logging::warn(&format!("removing bridge {name}: {e}"));
            }
        }
        if let Err(e) = self.remove_table() {
            logging::warn(&format!("removing table {}: {e}", self.table));
        }
        let empty = std::fs::read_dir(&self.netns_dir).is_ok_and(|mut d| d.next().is_none());
        if netns_ready || empty {
            if let Err(e) = netns::release_dir(&self.netns_dir) {
                logging::warn(&format!("{e}"));
            }
            self.lock().netns_ready = false;
        }
    }
}

impl Drop for Networks {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub(crate) fn find_in<'a>(
    nets: &'a BTreeMap<String, NetworkRecord>,
    id_or_name: &str,
) -> Result<&'a NetworkRecord> {
    let not_found = || Error::NotFound(format!("network {id_or_name} not found"));
    if id_or_name.is_empty() {
        return Err(not_found());
    }
    if let Some(n) = nets.get(id_or_name) {
        return Ok(n);
    }
    if let Some(n) = nets.values().find(|n| n.name == id_or_name) {
        return Ok(n);
    }
    let mut m = nets.values().filter(|n| n.id.starts_with(id_or_name));
    match (m.next(), m.next()) {
        (Some(n), None) => Ok(n),
        (Some(_), Some(_)) => Err(Error::NotFound(format!(
            "network {id_or_name} is ambiguous (2 matches found based on ID prefix)"
        ))),
        _ => Err(not_found()),
    }
}

/// A new network's subnet and gateway: the requested ones (checked against our networks), or
/// the first free default pool (free of the host's routes too).
fn choose_pool(
    nets: &BTreeMap<String, NetworkRecord>,
    requested: Option<&IpamConfig>,
) -> Result<(Subnet, Ipv4Addr)> {
    let ours: Vec<Subnet> = nets
        .values()
        .filter_map(|n| n.pool_config().map(|(s, _)| s))
        .collect();
    match requested.filter(|r| !r.subnet.is_empty()) {
        Some(r) => {
            let subnet: Subnet = r.subnet.parse()?;
            ipam::check_requested(&subnet, &ours)
                .map_err(|_| Error::Forbidden(ipam::OVERLAP_MESSAGE.into()))?;
            let pool = match r.gateway.as_str() {
                "" => Pool::new(subnet)?,
                g => {
                    let gw: Ipv4Addr = g.parse().map_err(|_| {
                        Error::InvalidParameter(format!("invalid gateway address {g:?}"))
                    })?;
                    Pool::with_gateway(subnet, gw)?
                }
            };
            Ok((subnet, pool.gateway))
        }
        None => {
            let mut in_use = ipam::host_routes()?;
            in_use.extend(ours);
            let subnet = ipam::choose_subnet(&in_use)?;
            Ok((subnet, Pool::new(subnet)?.gateway))
        }
    }
}

fn ipam_lock() -> Result<nix::fcntl::Flock<std::fs::File>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(IPAM_LOCK)
        .at(IPAM_LOCK)?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| Error::io(IPAM_LOCK, e.into()))
}

/// Docker's `docker network ls` filters: name (substring), id (prefix), label, driver,
/// type (custom, builtin), dangling (no endpoints).
pub fn matches_filters(n: &NetworkRecord, filters: &crate::engine::Filters) -> Result<bool> {
    for (key, values) in filters {
        if values.is_empty() {
            continue;
        }
        let ok = match key.as_str() {
            "name" => values.iter().any(|v| n.name.contains(v.as_str())),
            "id" => values.iter().any(|v| n.id.starts_with(v.as_str())),
            "driver" => values.contains(&n.driver),
            "scope" => values.contains(&n.scope),
            "type" => values.iter().any(|v| match v.as_str() {
                "custom" => !n.is_predefined(),
                "builtin" => n.is_predefined(),
                _ => false,
            }),
            "dangling" => values.iter().any(|v| {
                let want = matches!(v.as_str(), "true" | "1");
                (n.containers.is_empty() && !n.is_predefined()) == want
            }),
            "label" => values.iter().all(|v| match v.split_once('=') {
                Some((k, val)) => n.labels.get(k).is_some_and(|x| x == val),
                None => n.labels.contains_key(v.as_str()),
            }),
            "until" => true,
            other => return Err(Error::InvalidParameter(format!("invalid filter '{other}'"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(name: &str, subnet: &str) -> NetworkRecord {
        let mut n = NetworkRecord::new(name, "bridge").unwrap();
        n.ipam.config = vec![IpamConfig {
            subnet: subnet.into(),
            gateway: String::new(),
            ip_range: String::new(),
        }];
        n
    }

    #[test]
    fn lookup_and_overlap() {
        let a = net("a", "10.99.0.0/16");
        let nets: BTreeMap<_, _> = [(a.id.clone(), a.clone())].into();
        assert_eq!(find_in(&nets, "a").unwrap().id, a.id);
        assert_eq!(find_in(&nets, &a.id[..5]).unwrap().id, a.id);
        assert_eq!(
            find_in(&nets, "zz").unwrap_err().to_string(),
            "network zz not found"
        );
        let req = IpamConfig {
            subnet: "10.99.3.0/24".into(),
            ..IpamConfig::default()
        };
        let err = choose_pool(&nets, Some(&req)).unwrap_err();
        assert_eq!(err.status(), 403);
        assert_eq!(err.to_string(), ipam::OVERLAP_MESSAGE);
        let req = IpamConfig {
            subnet: "10.98.0.0/16".into(),
            gateway: "10.98.0.254".into(),
            ..IpamConfig::default()
        };
        let (s, g) = choose_pool(&nets, Some(&req)).unwrap();
        assert_eq!(
            (s.to_string(), g.to_string()),
            ("10.98.0.0/16".into(), "10.98.0.254".into())
        );
    }

    #[test]
    fn concurrent_endpoints_keep_the_record_on_disk() {
        // docker-compose restarts a project's containers in parallel: each start and exit
        // saves the network's record.
        let root = tempfile::tempdir().unwrap();
        let nets = Networks::open(&EngineConfig::for_root(root.path())).unwrap();
        let n = net("front", "10.96.0.0/24");
        nets.save(&n).unwrap();
        nets.lock().nets.insert(n.id.clone(), n.clone());
        std::thread::scope(|s| {
            for t in 0..8 {
                let (nets, id) = (&nets, &n.id);
                s.spawn(move || {
                    for i in 0..25 {
                        let c = format!("c{t}-{i}");
                        nets.add_endpoint(id, &c, &c, None, "eth0").unwrap();
                        if i % 2 == 0 {
                            nets.remove_endpoint(id, &c);
                        }
                    }
                });
            }
        });
        let path = root.path().join(format!("networks/{}.json", n.id));
        let on_disk: NetworkRecord = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(on_disk.containers.len(), 8 * 12);
        assert_eq!(on_disk, nets.find(&n.id).unwrap());
    }

    /// Networks whose nft scripts are recorded instead of run; `fail` makes the runs fail.
    fn counting_networks(
        root: &Path,
    ) -> (
        Networks,
        std::sync::Arc<Mutex<Vec<String>>>,
        std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) {
        let mut nets = Networks::open(&EngineConfig::for_root(root)).unwrap();
        let runs = std::sync::Arc::new(Mutex::new(Vec::new()));
        let fail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (r, f) = (runs.clone(), fail.clone());
        nets.run_nft = Box::new(move |script: &str| {
            r.lock().unwrap().push(script.to_string());
            if f.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(Error::Internal("nft -f: refused".into()));
            }
            Ok(())
        });
        (nets, runs, fail)
    }

    #[test]
    fn unchanged_ruleset_is_not_applied_again() {
        let root = tempfile::tempdir().unwrap();
        let (nets, runs, fail) = counting_networks(root.path());
        let n = net("front", "10.95.0.0/24");
        {
            let mut st = nets.lock();
            st.bridges_up.insert(n.bridge_name());
            st.nets.insert(n.id.clone(), n.clone());
        }
        let count = || runs.lock().unwrap().len();
        nets.apply().unwrap();
        assert_eq!(count(), 1, "the first apply always runs");
        assert!(runs.lock().unwrap()[0].contains(&n.bridge_name()));
        nets.apply().unwrap();
        nets.apply().unwrap();
        assert_eq!(count(), 1, "an unchanged model runs no nft");

        let port = PortMapping {
            proto: nft::Proto::Tcp,
            host_ip: None,
            host_port: 8080,
            container_ip: Ipv4Addr::new(10, 95, 0, 2),
            container_port: 80,
        };
        nets.lock().ports.insert("c1".into(), vec![port]);
        nets.apply().unwrap();
        assert_eq!(count(), 2, "a new published port is applied");
        nets.apply().unwrap();
        assert_eq!(count(), 2);

        // A failed apply is not remembered: the same model is tried again.
        nets.lock().ports.clear();
        fail.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(nets.apply().is_err());
        assert_eq!(count(), 3);
        fail.store(false, std::sync::atomic::Ordering::SeqCst);
        nets.apply().unwrap();
        assert_eq!(count(), 4);
        nets.apply().unwrap();
        assert_eq!(count(), 4);

        // An empty model removes the table, once.
        nets.lock().bridges_up.clear();
        nets.apply().unwrap();
        nets.apply().unwrap();
        assert_eq!(count(), 5);
        let last = runs.lock().unwrap()[4].clone();
        assert_eq!(last, nft::remove_script(nets.table()).unwrap());

        // A fresh daemon knows nothing of what the last one applied.
        drop(nets);
        let (nets, runs, _) = counting_networks(root.path());
        nets.apply().unwrap();
        assert_eq!(runs.lock().unwrap().len(), 1);
    }

    #[test]
    fn pool_counts_endpoints_and_filters() {
        let mut a = net("web-net", "10.97.0.0/24");
        a.containers.insert(
            "c".into(),
            EndpointResource {
                ipv4_address: "10.97.0.2/24".into(),
                ..EndpointResource::default()
            },
        );
        assert_eq!(
            a.pool().unwrap().allocate().unwrap().to_string(),
            "10.97.0.3"
        );
        let f =
            |k: &str, v: &str| -> crate::engine::Filters { [(k.into(), vec![v.into()])].into() };
        assert!(matches_filters(&a, &f("name", "web")).unwrap());
        assert!(!matches_filters(&a, &f("dangling", "true")).unwrap());
        assert!(matches_filters(&a, &f("type", "custom")).unwrap());
        assert!(matches_filters(&a, &f("nope", "x")).is_err());
        assert_eq!(a.bridge_name().len(), 11);
    }
}
