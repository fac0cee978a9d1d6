//! The name table: per network (keyed by the address the server listens on for it, the
//! network's gateway) the endpoints on it and their names.
//!
//! A query is answered from the scope of the address it arrived on, so a container sees only
//! the names of the networks it is attached to — the isolation docker gives. A container on
//! several networks asks one gateway (its resolv.conf has one nameserver) yet, as in docker,
//! resolves the names of all its networks: endpoints carry their container's id, and a name
//! not found on the network asked is looked for on the asking container's other networks.
//! An endpoint's first name is its canonical one (the container name), which reverse lookups
//! return.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};

/// How one network's names behave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeOptions {
    /// A suffix that also belongs to the network (its name: `web.mynet` is `web`), lower-case,
    /// without dots at the ends.
    pub domain: Option<String>,
    /// `--internal` networks: nothing is forwarded (no route out), unknown names get
    /// NXDOMAIN, outside names REFUSED.
    pub no_forward: bool,
    /// The network's subnet (address, prefix length). When set, only sources inside it are
    /// answered: a gateway address is reachable from other bridges through the host, and
    /// another network's containers must not read this one's names through it.
    pub subnet: Option<(Ipv4Addr, u8)>,
}

#[derive(Debug, Clone, Default)]
struct Endpoint {
    /// Normalised; the first is the canonical one.
    names: Vec<String>,
    /// The container the endpoint belongs to, linking its endpoints on several networks.
    container: Option<String>,
    /// The container's own resolvers (`--dns`), asked instead of the host's.
    upstreams: Option<Vec<SocketAddr>>,
}

#[derive(Debug, Clone, Default)]
struct Scope {
    options: ScopeOptions,
    endpoints: BTreeMap<Ipv4Addr, Endpoint>,
}

impl Scope {
    /// The name with the network's domain taken off, if it had it.
    fn local<'a>(&self, name: &'a str) -> &'a str {
        match &self.options.domain {
            Some(d) => name
                .strip_suffix(d.as_str())
                .and_then(|n| n.strip_suffix('.'))
                .unwrap_or(name),
            None => name,
        }
    }

    fn find(&self, name: &str) -> Vec<Ipv4Addr> {
        let local = self.local(name);
        self.endpoints
            .iter()
            .filter(|(_, e)| e.names.iter().any(|n| n == local))
            .map(|(ip, _)| *ip)
            .collect()
    }

    fn has_container(&self, container: &str) -> bool {
        self.endpoints
            .values()
            .any(|e| e.container.as_deref() == Some(container))
    }
}

/// What the table says about a name asked on one listening address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A name of the network, with its addresses (may be several: a scaled service).
    Found(Vec<Ipv4Addr>),
    /// In the network's own namespace (a single label, or under its domain) but unknown.
    NoSuchName,
    /// Not the network's to answer: forward it.
    Forward,
    /// Not the network's, and the network forwards nothing.
    Refuse,
}

/// All networks' names. Cheap to clone for tests; the server holds one behind a lock.
#[derive(Debug, Clone, Default)]
pub struct Records {
    scopes: HashMap<Ipv4Addr, Scope>,
}

/// Lower-case, no trailing dot: the form names are stored and matched in.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn in_subnet(ip: Ipv4Addr, (net, len): (Ipv4Addr, u8)) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

impl Records {
    pub fn new() -> Records {
        Records::default()
    }

    /// Creates (or re-options, keeping its endpoints) the scope of one listening address.
    pub fn add_network(&mut self, listen: Ipv4Addr, mut options: ScopeOptions) {
        options.domain = options
            .domain
            .map(|d| normalize(d.trim_start_matches('.')))
            .filter(|d| !d.is_empty());
        self.scopes.entry(listen).or_default().options = options;
    }

    /// Drops a network's scope and all its names.
    pub fn remove_network(&mut self, listen: Ipv4Addr) -> bool {
        self.scopes.remove(&listen).is_some()
    }

    /// Sets an endpoint's names (the first is its canonical name), replacing any it had;
    /// creates the network's scope with default options if there is none. No names: the
    /// endpoint is removed.
    pub fn set_endpoint<S: AsRef<str>>(&mut self, listen: Ipv4Addr, ip: Ipv4Addr, names: &[S]) {
        self.put(listen, ip, None, names)
    }

    /// [`Records::set_endpoint`] for a container's endpoint: the container's endpoints on
    /// other networks then see this network's names too (and the reverse).
    pub fn set_container_endpoint<S: AsRef<str>>(
        &mut self,
        listen: Ipv4Addr,
        ip: Ipv4Addr,
        container: &str,
        names: &[S],
    ) {
        self.put(listen, ip, Some(container.to_string()), names)
    }

    fn put<S: AsRef<str>>(
        &mut self,
        listen: Ipv4Addr,
        ip: Ipv4Addr,
        container: Option<String>,
        names: &[S],
    ) {
        let mut list: Vec<String> = Vec::with_capacity(names.len());
        for n in names {
            let n = normalize(n.as_ref());
            if !n.is_empty() && !list.contains(&n) {
                list.push(n);
            }
        }
        let scope = self.scopes.entry(listen).or_default();
        if list.is_empty() {
            scope.endpoints.remove(&ip);
        } else {
            let upstreams = scope.endpoints.remove(&ip).and_then(|e| e.upstreams);
            let names = list;
            let endpoint = Endpoint {
                names,
                container,
                upstreams,
            };
            scope.endpoints.insert(ip, endpoint);
        }
    }

    /// Sets the resolvers the names an endpoint's container asks for are relayed to (docker's
    /// `--dns` with the embedded server); `None` goes back to the server's. False if there is
    /// no such endpoint.
    pub fn set_endpoint_upstreams(
        &mut self,
        listen: Ipv4Addr,
        ip: Ipv4Addr,
        upstreams: Option<Vec<SocketAddr>>,
    ) -> bool {
        let endpoint = self
            .scopes
            .get_mut(&listen)
            .and_then(|s| s.endpoints.get_mut(&ip));
        match endpoint {
            Some(e) => {
                e.upstreams = upstreams;
                true
            }
            None => false,
        }
    }

    /// The resolvers set for the endpoint at `source` on the network of `listen`.
    pub fn upstreams_of(&self, listen: Ipv4Addr, source: Ipv4Addr) -> Option<&[SocketAddr]> {
        let scope = self.scopes.get(&listen)?;
        scope.endpoints.get(&source)?.upstreams.as_deref()
    }

    /// Removes an endpoint (a container leaving the network).
    pub fn remove_endpoint(&mut self, listen: Ipv4Addr, ip: Ipv4Addr) -> bool {
        self.scopes
            .get_mut(&listen)
            .is_some_and(|s| s.endpoints.remove(&ip).is_some())
    }

    /// Removes a container's endpoints on every network.
    pub fn remove_container(&mut self, container: &str) {
        for scope in self.scopes.values_mut() {
            scope
                .endpoints
                .retain(|_, e| e.container.as_deref() != Some(container));
        }
    }

    /// Whether the table has a scope for this listening address.
    pub fn has_network(&self, listen: Ipv4Addr) -> bool {
        self.scopes.contains_key(&listen)
    }

    /// Whether the network of `listen` answers `source` (see [`ScopeOptions::subnet`]).
    pub fn admits(&self, listen: Ipv4Addr, source: Ipv4Addr) -> bool {
        self.scopes
            .get(&listen)
            .and_then(|s| s.options.subnet)
            .is_none_or(|net| in_subnet(source, net))
    }

    /// Looks a name up in the scope of `listen`. `name` is in the form
    /// [`super::wire::Question::key`] gives (lower-case, no trailing dot).
    pub fn lookup(&self, listen: Ipv4Addr, name: &str) -> Lookup {
        let Some(scope) = self.scopes.get(&listen) else {
            return Lookup::Forward;
        };
        let name = name.trim_end_matches('.');
        if name.is_empty() {
            return Lookup::Forward; // the root: NS ., priming queries
        }
        let ips = scope.find(name);
        if !ips.is_empty() {
            Lookup::Found(ips)
        } else if scope.local(name) != name || !name.contains('.') {
            Lookup::NoSuchName
        } else if scope.options.no_forward {
            Lookup::Refuse
        } else {
            Lookup::Forward
        }
    }

    /// [`Records::lookup`] for a query from `source`: a name unknown on the network asked is
    /// also looked for on the other networks of the container `source` belongs to.
    pub fn lookup_from(&self, listen: Ipv4Addr, source: Ipv4Addr, name: &str) -> Lookup {
        let first = self.lookup(listen, name);
        if matches!(first, Lookup::Found(_)) {
            return first;
        }
        let name = name.trim_end_matches('.');
        for scope in self.sibling_scopes(listen, source) {
            let ips = scope.find(name);
            if !ips.is_empty() {
                return Lookup::Found(ips);
            }
        }
        first
    }

    /// The other scopes the container at `source` (on the network of `listen`) is on, in a
    /// fixed order (by listening address).
    fn sibling_scopes(&self, listen: Ipv4Addr, source: Ipv4Addr) -> Vec<&Scope> {
        let container = self
            .scopes
            .get(&listen)
            .and_then(|s| s.endpoints.get(&source))
            .and_then(|e| e.container.as_deref());
        let Some(container) = container else {
            return Vec::new();
        };
        let mut others: Vec<(&Ipv4Addr, &Scope)> = self
            .scopes
            .iter()
            .filter(|(l, s)| **l != listen && s.has_container(container))
            .collect();
        others.sort_by_key(|(l, _)| **l);
        others.into_iter().map(|(_, s)| s).collect()
    }

    /// The canonical name of an endpoint address in the scope of `listen`.
    pub fn reverse(&self, listen: Ipv4Addr, ip: Ipv4Addr) -> Option<&str> {
        let scope = self.scopes.get(&listen)?;
        scope.endpoints.get(&ip)?.names.first().map(String::as_str)
    }

    /// [`Records::reverse`] over the asking container's networks too.
    pub fn reverse_from(&self, listen: Ipv4Addr, source: Ipv4Addr, ip: Ipv4Addr) -> Option<&str> {
        self.reverse(listen, ip).or_else(|| {
            self.sibling_scopes(listen, source)
                .into_iter()
                .find_map(|s| s.endpoints.get(&ip)?.names.first().map(String::as_str))
        })
    }

    /// Whether the network of `listen` forwards names it does not know.
    pub fn forwards(&self, listen: Ipv4Addr) -> bool {
        self.scopes
            .get(&listen)
            .is_none_or(|s| !s.options.no_forward)
    }
}

/// The address a reverse-lookup name (`4.3.2.1.in-addr.arpa`) stands for.
pub fn parse_reverse(name: &str) -> Option<Ipv4Addr> {
    let rest = name.trim_end_matches('.').strip_suffix(".in-addr.arpa")?;
    let parts: Vec<&str> = rest.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, p) in parts.iter().rev().enumerate() {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        octets[i] = p.parse().ok()?;
    }
    Some(Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const NET2: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
    const WEB: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    #[test]
    fn names_are_per_network_and_case_insensitive() {
        let mut r = Records::new();
        r.add_network(NET1, ScopeOptions::default());
        r.add_network(NET2, ScopeOptions::default());
        r.set_endpoint(NET1, WEB, &["Web1", "web", "web."]);
        assert_eq!(r.lookup(NET1, "web1"), Lookup::Found(vec![WEB]));
        assert_eq!(r.lookup(NET1, "web"), Lookup::Found(vec![WEB]));
        assert_eq!(r.lookup(NET1, "web."), Lookup::Found(vec![WEB]));
        assert_eq!(r.lookup(NET2, "web"), Lookup::NoSuchName);
        assert_eq!(r.lookup(NET2, "example.com"), Lookup::Forward);
        assert_eq!(r.reverse(NET1, WEB), Some("web1"));
        assert_eq!(r.reverse(NET2, WEB), None);
    }

    #[test]
    fn service_names_collect_every_endpoint() {
        let mut r = Records::new();
        let other = Ipv4Addr::new(10, 0, 0, 3);
        r.set_endpoint(NET1, WEB, &["p-web-1", "web"]);
        r.set_endpoint(NET1, other, &["p-web-2", "web"]);
        assert_eq!(r.lookup(NET1, "web"), Lookup::Found(vec![WEB, other]));
        assert!(r.remove_endpoint(NET1, WEB));
        assert_eq!(r.lookup(NET1, "web"), Lookup::Found(vec![other]));
        assert_eq!(r.lookup(NET1, "p-web-1"), Lookup::NoSuchName);
    }

    #[test]
    fn domain_and_internal_networks() {
        let mut r = Records::new();
        r.add_network(
            NET1,
            ScopeOptions {
                domain: Some("MyNet.".into()),
                no_forward: true,
                subnet: None,
            },
        );
        r.set_endpoint(NET1, WEB, &["web"]);
        assert_eq!(r.lookup(NET1, "web.mynet"), Lookup::Found(vec![WEB]));
        assert_eq!(r.lookup(NET1, "db.mynet"), Lookup::NoSuchName);
        assert_eq!(r.lookup(NET1, "example.com"), Lookup::Refuse);
        assert!(!r.forwards(NET1));
        assert!(r.forwards(NET2));
    }

    #[test]
    fn a_container_on_two_networks_sees_both() {
        let mut r = Records::new();
        let (app1, app2) = (Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(10, 0, 1, 5));
        let db = Ipv4Addr::new(10, 0, 1, 6);
        r.set_container_endpoint(NET1, app1, "c-app", &["app"]);
        r.set_container_endpoint(NET2, app2, "c-app", &["app"]);
        r.set_container_endpoint(NET2, db, "c-db", &["db"]);
        r.set_container_endpoint(NET1, WEB, "c-web", &["web"]);
        // app asks NET1's gateway for db, which is only on NET2: found through app's NET2 leg.
        assert_eq!(r.lookup_from(NET1, app1, "db"), Lookup::Found(vec![db]));
        assert_eq!(r.reverse_from(NET1, app1, db), Some("db"));
        // web is not on NET2: it does not see db.
        assert_eq!(r.lookup_from(NET1, WEB, "db"), Lookup::NoSuchName);
        assert_eq!(r.reverse_from(NET1, WEB, db), None);
        // The network asked comes first.
        assert_eq!(r.lookup_from(NET2, app2, "app"), Lookup::Found(vec![app2]));
        r.remove_container("c-app");
        assert_eq!(r.lookup_from(NET1, app1, "db"), Lookup::NoSuchName);
        assert_eq!(r.lookup(NET2, "app"), Lookup::NoSuchName);
    }

    #[test]
    fn subnets_limit_who_is_answered() {
        let mut r = Records::new();
        r.add_network(
            NET1,
            ScopeOptions {
                subnet: Some((Ipv4Addr::new(10, 0, 0, 0), 24)),
                ..ScopeOptions::default()
            },
        );
        assert!(r.admits(NET1, WEB));
        assert!(!r.admits(NET1, Ipv4Addr::new(10, 0, 1, 2)));
        assert!(
            r.admits(NET2, Ipv4Addr::new(192, 168, 0, 1)),
            "no scope: no limit"
        );
        assert!(in_subnet(WEB, (Ipv4Addr::UNSPECIFIED, 0)));
        assert!(in_subnet(WEB, (WEB, 32)));
        assert!(!in_subnet(WEB, (NET1, 32)));
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            parse_reverse("2.0.0.10.in-addr.arpa"),
            Some(Ipv4Addr::new(10, 0, 0, 2))
        );
        assert_eq!(parse_reverse("2.0.0.10.in-addr.arpa."), Some(WEB));
        for bad in [
            "0.0.10.in-addr.arpa",
            "256.0.0.10.in-addr.arpa",
            "a.0.0.10.in-addr.arpa",
            "+1.0.0.10.in-addr.arpa",
            "1..0.10.in-addr.arpa",
            "1.0.0.10.ip6.arpa",
        ] {
            assert_eq!(parse_reverse(bad), None, "{bad}");
        }
    }
}
