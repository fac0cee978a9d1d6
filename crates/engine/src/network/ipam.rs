//! IPv4 address management: subnets (CIDR parsing and arithmetic), the choice of a free subnet
//! for a new network from docker's default pools, and per-network address allocation.
//!
//! A subnet is free when it overlaps neither another network's subnet nor a route of the host
//! (read from the calling thread's namespace: /proc/thread-self/net/route, because
//! /proc/net follows the process's main thread, not the caller). The pool state is plain serde
//! data so the engine persists it with the network record.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// docker's error for a requested subnet that overlaps an existing network.
pub const OVERLAP_MESSAGE: &str = "Pool overlaps with other one on this address space";

/// An IPv4 network: address with no host bits set, and a prefix length 0..=32.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// A subnet from its network address; host bits set are an error, as in docker
    /// ("invalid subnet 172.28.5.1/16: it should be 172.28.0.0/16").
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet> {
        if prefix > 32 {
            return Err(Error::InvalidParameter(format!(
                "invalid subnet {addr}/{prefix}: prefix length must be 0 to 32"
            )));
        }
        let subnet = Subnet {
            network: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        };
        if subnet.network != addr {
            return Err(Error::InvalidParameter(format!(
                "invalid subnet {addr}/{prefix}: it should be {subnet}"
            )));
        }
        Ok(subnet)
    }

    /// The subnet containing `addr` (host bits cleared).
    pub fn containing(addr: Ipv4Addr, prefix: u8) -> Result<Subnet> {
        let prefix = prefix.min(32);
        Subnet::new(Ipv4Addr::from(u32::from(addr) & mask(prefix)), prefix)
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask(self.prefix))
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix))
    }

    /// Number of addresses, network and broadcast included.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.prefix) == u32::from(self.network)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// The `n`th address of the subnet (0 is the network address), if inside it.
    pub fn nth(&self, n: u64) -> Option<Ipv4Addr> {
        (n < self.size()).then(|| Ipv4Addr::from(u32::from(self.network) + n as u32))
    }

    /// docker's default gateway: the first host address.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        (self.prefix <= 30).then(|| Ipv4Addr::from(u32::from(self.network) + 1))
    }

    /// Whether `addr` may be given to a host: inside, and neither the network nor the
    /// broadcast address (for prefixes that have them).
    pub fn is_host(&self, addr: Ipv4Addr) -> bool {
        self.contains(addr)
            && (self.prefix >= 31 || (addr != self.network && addr != self.broadcast()))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = Error;

    fn from_str(s: &str) -> Result<Subnet> {
        let bad = || Error::InvalidParameter(format!("invalid CIDR address: {s}"));
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Subnet::new(addr, prefix)
    }
}

impl TryFrom<String> for Subnet {
    type Error = Error;

    fn try_from(s: String) -> Result<Subnet> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

/// docker's default address pools, in the order it tries them: 172.17.0.0/16 to
/// 172.31.0.0/16, then 192.168.0.0/16 cut into /20s.
pub fn default_pools() -> Vec<Subnet> {
    let wide = (17..=31).map(|b| Subnet {
        network: Ipv4Addr::new(172, b, 0, 0),
        prefix: 16,
    });
    let narrow = (0..16).map(|i| Subnet {
        network: Ipv4Addr::new(192, 168, i * 16, 0),
        prefix: 20,
    });
    wide.chain(narrow).collect()
}

/// The first default pool that overlaps none of `in_use` (other networks' subnets and the
/// host's routes).
pub fn choose_subnet(in_use: &[Subnet]) -> Result<Subnet> {
    default_pools()
        .into_iter()
        .find(|pool| !in_use.iter().any(|used| used.overlaps(pool)))
        .ok_or_else(|| {
            Error::Conflict(
                "could not find an available, non-overlapping IPv4 address pool among the \
                 defaults to assign to the network"
                    .into(),
            )
        })
}

/// A subnet the user asked for must not overlap another network's (docker checks only its
/// own networks here, not the host's routes).
pub fn check_requested(requested: &Subnet, networks: &[Subnet]) -> Result<()> {
    if networks.iter().any(|n| n.overlaps(requested)) {
        return Err(Error::Conflict(OVERLAP_MESSAGE.into()));
    }
    Ok(())
}

/// The destinations of the calling thread's namespace's IPv4 routes, the default route left
/// out (it overlaps everything).
pub fn host_routes() -> Result<Vec<Subnet>> {
    let path = "/proc/thread-self/net/route";
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(parse_proc_net_route(&text))
}

/// Parses /proc/net/route: a header line, then per route "Iface Destination Gateway Flags
/// RefCnt Use Metric Mask ...", addresses in hex, in the kernel's (little-endian) byte order.
pub fn parse_proc_net_route(text: &str) -> Vec<Subnet> {
    // The kernel prints the big-endian address as a native integer: its native bytes are
    // the address's bytes.
    let hex = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|v| u32::from(Ipv4Addr::from(v.to_ne_bytes())))
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let dest = hex(fields.get(1)?)?;
            let netmask = hex(fields.get(7)?)?;
            let prefix = netmask.leading_ones() as u8;
            (prefix > 0).then(|| Subnet::containing(Ipv4Addr::from(dest), prefix).ok())?
        })
        .collect()
}

/// The addresses of one network: its subnet, gateway, and the addresses handed out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    #[serde(default)]
    pub allocated: BTreeSet<Ipv4Addr>,
}

impl Pool {
    /// A pool with docker's default gateway (.1).
    pub fn new(subnet: Subnet) -> Result<Pool> {
        let gateway = subnet.gateway().ok_or_else(|| {
            Error::InvalidParameter(format!("subnet {subnet} is too small for a network"))
        })?;
        Pool::with_gateway(subnet, gateway)
    }

    pub fn with_gateway(subnet: Subnet, gateway: Ipv4Addr) -> Result<Pool> {
        if !subnet.is_host(gateway) {
            return Err(Error::InvalidParameter(format!(
                "gateway {gateway} is not a host address of subnet {subnet}"
            )));
        }
        Ok(Pool {
            subnet,
            gateway,
            allocated: BTreeSet::new(),
        })
    }

    /// The lowest free host address. Lowest-first keeps addresses predictable; a released
    /// address may be handed out again at once.
    pub fn allocate(&mut self) -> Result<Ipv4Addr> {
        let free = (0..self.subnet.size())
            .filter_map(|n| self.subnet.nth(n))
            .find(|ip| self.is_free(*ip))
            .ok_or_else(|| {
                Error::Conflict(format!(
                    "no available IPv4 addresses on this network's address pools: {}",
                    self.subnet
                ))
            })?;
        self.allocated.insert(free);
        Ok(free)
    }

    /// Reserves an address the user asked for (`--ip`).
    pub fn allocate_specific(&mut self, ip: Ipv4Addr) -> Result<()> {
        if !self.subnet.is_host(ip) {
            return Err(Error::InvalidParameter(format!(
                "invalid address {ip}: it does not belong to the network's subnet {}",
                self.subnet
            )));
        }
        if !self.is_free(ip) {
            return Err(Error::Conflict(format!("Address already in use: {ip}")));
        }
        self.allocated.insert(ip);
        Ok(())
    }

    /// Gives an address back; false when it was not allocated.
    pub fn release(&mut self, ip: Ipv4Addr) -> bool {
        self.allocated.remove(&ip)
    }

    fn is_free(&self, ip: Ipv4Addr) -> bool {
        self.subnet.is_host(ip) && ip != self.gateway && !self.allocated.contains(&ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints() {
        let s = net("172.17.0.0/16");
        assert_eq!(s.to_string(), "172.17.0.0/16");
        assert_eq!(s.gateway(), Some(Ipv4Addr::new(172, 17, 0, 1)));
        assert_eq!(s.broadcast(), Ipv4Addr::new(172, 17, 255, 255));
        assert_eq!(s.mask(), Ipv4Addr::new(255, 255, 0, 0));
        assert_eq!(s.size(), 65536);
        assert_eq!(net("0.0.0.0/0").size(), 1 << 32);
        assert_eq!(net("10.0.0.7/32").broadcast(), Ipv4Addr::new(10, 0, 0, 7));
    }

    #[test]
    fn rejects_bad_cidrs() {
        for bad in [
            "",
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0/8",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "300.0.0.0/8",
            "a.b.c.d/8",
            "10.0.0.0/8/8",
            "::1/128",
            "10.0.0.0/ 8",
        ] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad:?} accepted");
        }
        let err = "172.28.5.1/16".parse::<Subnet>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid subnet 172.28.5.1/16: it should be 172.28.0.0/16"
        );
    }

    #[test]
    fn overlaps() {
        assert!(net("10.0.0.0/8").overlaps(&net("10.1.2.0/24")));
        assert!(net("10.1.2.0/24").overlaps(&net("10.0.0.0/8")));
        assert!(net("10.1.2.0/24").overlaps(&net("10.1.2.0/24")));
        assert!(!net("10.1.2.0/24").overlaps(&net("10.1.3.0/24")));
        assert!(!net("192.168.0.0/20").overlaps(&net("192.168.16.0/20")));
        assert!(net("0.0.0.0/0").overlaps(&net("1.2.3.4/32")));
    }

    #[test]
    fn chooses_free_pools() {
        assert_eq!(choose_subnet(&[]).unwrap(), net("172.17.0.0/16"));
        let used = [net("172.17.0.0/16"), net("172.18.5.0/24")];
        assert_eq!(choose_subnet(&used).unwrap(), net("172.19.0.0/16"));
        // A host route covering all of 172.16/12 pushes us to 192.168.
        let used = [net("172.16.0.0/12"), net("192.168.0.0/24")];
        assert_eq!(choose_subnet(&used).unwrap(), net("192.168.16.0/20"));
        let all = [net("172.16.0.0/12"), net("192.168.0.0/16")];
        assert!(matches!(choose_subnet(&all), Err(Error::Conflict(_))));
    }

    #[test]
    fn requested_subnet_overlap_is_dockers_error() {
        let err = check_requested(&net("172.18.1.0/24"), &[net("172.18.0.0/16")]).unwrap_err();
        assert_eq!(err.to_string(), OVERLAP_MESSAGE);
        assert_eq!(err.status(), 409);
        check_requested(&net("172.19.1.0/24"), &[net("172.18.0.0/16")]).unwrap();
    }

    #[test]
    fn parses_proc_net_route() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
            garbage line\n";
        assert_eq!(
            parse_proc_net_route(text),
            vec![net("192.168.0.0/24"), net("172.17.0.0/16")]
        );
    }

    #[test]
    fn allocates_and_releases() {
        let mut pool = Pool::new(net("10.9.0.0/29")).unwrap();
        assert_eq!(pool.gateway, Ipv4Addr::new(10, 9, 0, 1));
        let got: Vec<_> = (0..5).map(|_| pool.allocate().unwrap()).collect();
        assert_eq!(got[0], Ipv4Addr::new(10, 9, 0, 2));
        assert_eq!(got[4], Ipv4Addr::new(10, 9, 0, 6));
        let err = pool.allocate().unwrap_err();
        assert!(
            err.to_string().contains("no available IPv4 addresses"),
            "{err}"
        );
        assert!(pool.release(Ipv4Addr::new(10, 9, 0, 4)));
        assert!(!pool.release(Ipv4Addr::new(10, 9, 0, 4)));
        assert_eq!(pool.allocate().unwrap(), Ipv4Addr::new(10, 9, 0, 4));
    }

    #[test]
    fn specific_addresses() {
        let mut pool = Pool::new(net("10.9.0.0/24")).unwrap();
        pool.allocate_specific(Ipv4Addr::new(10, 9, 0, 2)).unwrap();
        assert!(matches!(
            pool.allocate_specific(Ipv4Addr::new(10, 9, 0, 2)),
            Err(Error::Conflict(_))
        ));
        for bad in [[10, 9, 0, 0], [10, 9, 0, 255], [10, 9, 1, 3]] {
            assert!(pool.allocate_specific(Ipv4Addr::from(bad)).is_err());
        }
        assert!(pool.allocate_specific(pool.gateway).is_err());
        assert_eq!(pool.allocate().unwrap(), Ipv4Addr::new(10, 9, 0, 3));
        assert!(Pool::new(net("10.9.0.0/31")).is_err());
        assert!(Pool::with_gateway(net("10.9.0.0/24"), Ipv4Addr::new(10, 9, 1, 1)).is_err());
    }

    #[test]
    fn serde_round_trip() {
        let mut pool = Pool::new(net("172.20.0.0/16")).unwrap();
        pool.allocate().unwrap();
        let json = serde_json::to_string(&pool).unwrap();
        assert_eq!(
            json,
            r#"{"subnet":"172.20.0.0/16","gateway":"172.20.0.1","allocated":["172.20.0.2"]}"#
        );
        assert_eq!(serde_json::from_str::<Pool>(&json).unwrap(), pool);
        assert!(serde_json::from_str::<Subnet>(r#""172.20.0.1/16""#).is_err());
    }
}
