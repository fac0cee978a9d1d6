//! The name table: per network (keyed by the address the server listens on for it, the
//! network's gateway) the endpoints on it and their names.
//!
//! A query is answered from the scope of the address it arrived on, so a container sees only
//! the names of the networks it is attached to — the isolation docker gives. An endpoint's
//! first name is its canonical one (the container name), which reverse lookups return.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

/// How one network's names behave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeOptions {
    /// A suffix that also belongs to the network (its name: `web.mynet` is `web`), lower-case,
    /// without dots at the ends.
    pub domain: Option<String>,
    /// `--internal` networks: nothing is forwarded (no route out), unknown names get
    /// NXDOMAIN.
    pub no_forward: bool,
}

#[derive(Debug, Clone, Default)]
struct Scope {
    options: ScopeOptions,
    /// Endpoint address → its names, normalised; the first is the canonical one.
    endpoints: BTreeMap<Ipv4Addr, Vec<String>>,
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
    /// creates the network's scope with default options if there is none.
    pub fn set_endpoint<S: AsRef<str>>(&mut self, listen: Ipv4Addr, ip: Ipv4Addr, names: &[S]) {
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
            scope.endpoints.insert(ip, list);
        }
    }

    /// Removes an endpoint (a container leaving the network).
    pub fn remove_endpoint(&mut self, listen: Ipv4Addr, ip: Ipv4Addr) -> bool {
        self.scopes
            .get_mut(&listen)
            .is_some_and(|s| s.endpoints.remove(&ip).is_some())
    }

    /// Whether the table has a scope for this listening address.
    pub fn has_network(&self, listen: Ipv4Addr) -> bool {
        self.scopes.contains_key(&listen)
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
        let local = match &scope.options.domain {
            Some(d) => name
                .strip_suffix(d.as_str())
                .and_then(|n| n.strip_suffix('.'))
                .unwrap_or(name),
            None => name,
        };
        let ips: Vec<Ipv4Addr> = scope
            .endpoints
            .iter()
            .filter(|(_, names)| names.iter().any(|n| n == local))
            .map(|(ip, _)| *ip)
            .collect();
        if !ips.is_empty() {
            Lookup::Found(ips)
        } else if local != name || !name.contains('.') {
            Lookup::NoSuchName
        } else if scope.options.no_forward {
            Lookup::Refuse
        } else {
            Lookup::Forward
        }
    }

    /// The canonical name of an endpoint address in the scope of `listen`.
    pub fn reverse(&self, listen: Ipv4Addr, ip: Ipv4Addr) -> Option<&str> {
        let scope = self.scopes.get(&listen)?;
        scope.endpoints.get(&ip)?.first().map(String::as_str)
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
