//! Bridges and endpoints: the composition of netlink and netns the engine calls.
//!
//! A bridge is an L3 gateway for its subnet (the gateway address on the bridge itself); an
//! endpoint is a veth pair whose host end is a port of the bridge and whose other end is
//! `eth0` in the container's namespace file, with the container's address and a default route
//! via the gateway. Every function acts on the calling thread's namespace as the "host", and
//! is idempotent where the engine may repeat it after a crash (ensure, detach, remove).

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::Path;

use super::ipam::Subnet;
use super::netlink::Netlink;
use crate::error::{Error, Result};

/// The name of a container's first interface inside its namespace (then eth1, ...).
pub const CONTAINER_IFNAME: &str = "eth0";

/// Creates the bridge `name` if missing, gives it `gateway` in `subnet`, sets it up, and
/// turns on what published ports and routing need: `route_localnet` on the bridge (DNAT of
/// 127.0.0.1) and `ip_forward` (both in the calling thread's namespace).
pub fn ensure_bridge(
    nl: &mut Netlink,
    name: &str,
    subnet: Subnet,
    gateway: Ipv4Addr,
) -> Result<()> {
    if !subnet.is_host(gateway) {
        return Err(Error::InvalidParameter(format!(
            "gateway {gateway} is not a host address of subnet {subnet}"
        )));
    }
    if nl.link_index(name)?.is_none() {
        match nl.add_bridge(name) {
            Ok(()) => {}
            // Another caller made it between our lookup and create: the same outcome.
            Err(_) if nl.link_index(name)?.is_some() => {}
            Err(e) => return Err(e),
        }
    }
    nl.add_address(name, gateway, subnet.prefix())?;
    nl.set_up(name)?;
    write_sysctl(&format!("net/ipv4/conf/{name}/route_localnet"), "1")?;
    write_sysctl("net/ipv4/ip_forward", "1")
}

/// Deletes the bridge `name` (its ports are released, not deleted); false if there was none.
pub fn remove_bridge(nl: &mut Netlink, name: &str) -> Result<bool> {
    nl.delete_link(name)
}

/// One container's attachment to a bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint<'a> {
    /// The bridge to attach to (must exist).
    pub bridge: &'a str,
    /// The host end of the veth pair (`vg<hash>`, at most 15 bytes).
    pub host_ifname: &'a str,
    /// The namespace file the container end goes into.
    pub netns: &'a Path,
    /// The container end's name there (`eth0` for the first network, `eth1`...).
    pub ifname: &'a str,
    pub address: Ipv4Addr,
    pub prefix: u8,
    /// The default route's gateway (the bridge's address); None: no default route.
    pub gateway: Option<Ipv4Addr>,
}

/// Creates the veth pair with its peer directly inside the namespace (so the peer's name is
/// never taken in the host's), enslaves the host end to the bridge, and configures lo, the
/// peer, its address and default route there.
/// On failure the pair is deleted again.
pub fn attach(nl: &mut Netlink, ep: &Endpoint<'_>) -> Result<()> {
    let ns = File::open(ep.netns).map_err(|e| Error::io(ep.netns, e))?;
    nl.add_veth(ep.host_ifname, ep.ifname, Some(ns.as_fd()))?;
    let result = wire(nl, ep);
    if result.is_err() {
        let _ = nl.delete_link(ep.host_ifname);
    }
    result
}

fn wire(nl: &mut Netlink, ep: &Endpoint<'_>) -> Result<()> {
    nl.set_master(ep.host_ifname, ep.bridge)?;
    nl.set_up(ep.host_ifname)?;
    let mut inner = Netlink::open_in(ep.netns)?;
    inner.set_up("lo")?;
    inner.add_address(ep.ifname, ep.address, ep.prefix)?;
    inner.set_up(ep.ifname)?;
    if let Some(gateway) = ep.gateway {
        inner.add_default_route(ep.ifname, gateway)?;
    }
    Ok(())
}

/// Deletes the endpoint's veth pair by its host end (the container end goes with it);
/// false if there was none.
pub fn detach(nl: &mut Netlink, host_ifname: &str) -> Result<bool> {
    nl.delete_link(host_ifname)
}

/// Takes the endpoint off its bridge's traffic, for a pair whose namespace is about to go:
/// the kernel deletes a namespace's veths with it, in its own worker, while a `detach`
/// waits ~15 ms for the unregistration (RCU grace periods) on the caller's path. The host
/// end is set down first so that the dying namespace, whose address may be handed out again
/// at once, answers nothing on the bridge meanwhile. False if there was none.
pub fn retire(nl: &mut Netlink, host_ifname: &str) -> Result<bool> {
    match nl.set_down(host_ifname) {
        Ok(()) => Ok(true),
        Err(Error::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The host end's name for an endpoint `key` (e.g. container id + network id): `vg` and 13
/// hex digits of its SHA-256 (15 bytes, the most an interface name may have).
pub fn veth_name(key: &str) -> String {
    use sha2::Digest as _;
    let digest = hex::encode(sha2::Sha256::digest(key.as_bytes()));
    format!("vg{}", &digest[..13])
}

/// Brings up `lo` in a namespace that gets no endpoint (`--network none`).
pub fn loopback_up(netns: &Path) -> Result<()> {
    Netlink::open_in(netns)?.set_up("lo")
}

/// Writes a sysctl of the calling thread's namespace (/proc/sys/net follows the opening
/// thread's network namespace).
fn write_sysctl(key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{key}");
    if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(&path, value).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_fit_and_differ() {
        let a = veth_name("c1/n1");
        assert_eq!(a.len(), super::super::netlink::MAX_IFNAME);
        assert!(a.starts_with("vg"));
        assert_eq!(a, veth_name("c1/n1"));
        assert_ne!(a, veth_name("c1/n2"));
    }
}
