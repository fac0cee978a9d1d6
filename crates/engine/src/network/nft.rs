//! The engine's firewall: one nftables table of our own (`table ip gorae`, or `gorae-<hash>`
//! for another data root), rendered from a declarative model and replaced as a whole.
//!
//! Applied with `nft -f -` rather than nftables' netlink protocol: the script is one
//! transaction (the table is added, deleted and re-created atomically, so it works whether or
//! not it exists and the ruleset always equals the model), the text is easy to test and to read
//! back, and nft's netlink encoding of expressions is large and undocumented. Other tables
//! (docker's iptables-nft, netavark's) are never touched.
//!
//! What the table does, per network (a bridge and its subnet):
//! - masquerade of the subnet's traffic leaving by another interface (not for internal
//!   networks);
//! - published ports: DNAT of traffic to a local address (prerouting for traffic from outside
//!   and from containers, output for the host's own), the client's address kept;
//! - hairpin: a container reaching a published port is masqueraded onto the bridge so the
//!   reply comes back through the NAT; likewise the host's 127.0.0.0/8 sources (which also
//!   need `route_localnet` on the bridge, set by `bridge.rs`);
//! - isolation: no forwarding between two of our bridges, except connections to a published
//!   port (a container reaching another network's published port through the host, as with
//!   docker's userland proxy); an internal network forwards nothing to or from other
//!   interfaces.

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::ipam::Subnet;
use crate::error::{Error, Result};

/// One bridge network as the firewall sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub bridge: String,
    pub subnet: Subnet,
    pub internal: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// A published port: traffic to `host_ip` (any local address when None or 0.0.0.0) on `host_port`
/// goes to `container_ip:container_port`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub proto: Proto,
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

/// The whole content of our table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ruleset {
    /// The table's name (`gorae`, `gorae-<hash>`).
    pub table: String,
    pub networks: Vec<Network>,
    pub ports: Vec<PortMapping>,
}

impl Ruleset {
    /// The `nft -f` script that replaces our table by this ruleset in one transaction.
    pub fn render(&self) -> Result<String> {
        check_name("table", &self.table)?;
        for n in &self.networks {
            check_name("bridge", &n.bridge)?;
        }
        let t = &self.table;
        let mut s = format!("add table ip {t}\ndelete table ip {t}\ntable ip {t} {{\n");
        self.render_nat(&mut s);
        self.render_forward(&mut s);
        s.push_str("}\n");
        Ok(s)
    }

    fn render_nat(&self, s: &mut String) {
        s.push_str(
            "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\
             \t\tfib daddr type local jump ports\n\t}\n\
             \tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n\
             \t\tfib daddr type local jump ports\n\t}\n\
             \tchain ports {\n",
        );
        for p in &self.ports {
            let daddr = match p.host_ip {
                Some(ip) if !ip.is_unspecified() => format!("ip daddr {ip} "),
                _ => String::new(),
            };
            s.push_str(&format!(
                "\t\t{daddr}{proto} dport {} dnat to {}:{}\n",
                p.host_port,
                p.container_ip,
                p.container_port,
                proto = p.proto.as_str()
            ));
        }
        s.push_str(
            "\t}\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
        );
        for n in &self.networks {
            let (br, net) = (quote(&n.bridge), n.subnet);
            if !n.internal {
                s.push_str(&format!("\t\tip saddr {net} oifname != {br} masquerade\n"));
            }
            s.push_str(&format!(
                "\t\toifname {br} ip saddr {net} ct status dnat masquerade\n\
                 \t\toifname {br} ip saddr 127.0.0.0/8 masquerade\n"
            ));
        }
        s.push_str("\t}\n");
    }

    /// Internal networks first (nothing in or out, published or not), then connections to
    /// published ports pass between bridges (what docker's userland proxy gives), then the
    /// isolation of bridges from each other.
    fn render_forward(&self, s: &mut String) {
        s.push_str(
            "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n",
        );
        for n in self.networks.iter().filter(|n| n.internal) {
            let br = quote(&n.bridge);
            s.push_str(&format!(
                "\t\tiifname {br} oifname != {br} drop\n\t\toifname {br} iifname != {br} drop\n"
            ));
        }
        if self.networks.len() > 1 {
            s.push_str("\t\tct status dnat accept\n");
        }
        for n in &self.networks {
            let others: Vec<String> = self
                .networks
                .iter()
                .filter(|o| o.bridge != n.bridge)
                .map(|o| quote(&o.bridge))
                .collect();
            if !others.is_empty() {
                s.push_str(&format!(
                    "\t\tiifname {} oifname {{ {} }} drop\n",
                    quote(&n.bridge),
                    others.join(", ")
                ));
            }
        }
        s.push_str("\t}\n");
    }

    /// Replaces our table by this ruleset (atomically: on error the old table stays).
    pub fn apply(&self) -> Result<()> {
        run_script(&self.render()?)
    }
}

/// Deletes our table `table` if it exists; no other table is touched.
pub fn remove(table: &str) -> Result<()> {
    run_script(&remove_script(table)?)
}

/// The `nft -f` script that deletes our table `table` whether or not it exists.
pub fn remove_script(table: &str) -> Result<String> {
    check_name("table", table)?;
    Ok(format!("add table ip {table}\ndelete table ip {table}\n"))
}

/// `nft -j list table ip <table>`: the table as nft's JSON, None when it does not exist.
pub fn list_json(table: &str) -> Result<Option<serde_json::Value>> {
    check_name("table", table)?;
    let out = Command::new("nft")
        .args(["-j", "list", "table", "ip", table])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Internal(format!("nft: cannot run nft: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No such file or directory") {
            return Ok(None);
        }
        return Err(Error::Internal(format!(
            "nft list table ip {table}: {}",
            err.trim()
        )));
    }
    serde_json::from_slice(&out.stdout)
        .map(Some)
        .map_err(|e| Error::Internal(format!("nft list table ip {table}: bad JSON: {e}")))
}

/// Runs an `nft -f -` script as one transaction.
pub fn run_script(script: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Internal(format!("nft: cannot run nft: {e}")))?;
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(script.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Internal(format!("nft: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Internal(format!("nft -f: {}", err.trim())));
    }
    match written {
        Some(Err(e)) => Err(Error::Internal(format!("nft: writing the script: {e}"))),
        _ => Ok(()),
    }
}

/// Names go into the script verbatim: letters, digits, '-', '_', '.' only, so no name can
/// close a string or inject a statement.
fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphabetic();
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidParameter(format!(
            "invalid nftables {what} name {name:?}"
        )))
    }
}

fn quote(name: &str) -> String {
    format!("\"{name}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Ruleset {
        Ruleset {
            table: "gorae-test".into(),
            networks: vec![
                Network {
                    bridge: "gorae0".into(),
                    subnet: "172.17.0.0/16".parse().unwrap(),
                    internal: false,
                },
                Network {
                    bridge: "gr-0123abcd".into(),
                    subnet: "172.18.0.0/16".parse().unwrap(),
                    internal: true,
                },
            ],
            ports: vec![
                PortMapping {
                    proto: Proto::Tcp,
                    host_ip: None,
                    host_port: 8080,
                    container_ip: Ipv4Addr::new(172, 17, 0, 2),
                    container_port: 80,
                },
                PortMapping {
                    proto: Proto::Tcp,
                    host_ip: Some(Ipv4Addr::UNSPECIFIED),
                    host_port: 8443,
                    container_ip: Ipv4Addr::new(172, 17, 0, 2),
                    container_port: 443,
                },
                PortMapping {
                    proto: Proto::Udp,
                    host_ip: Some(Ipv4Addr::LOCALHOST),
                    host_port: 5353,
                    container_ip: Ipv4Addr::new(172, 17, 0, 3),
                    container_port: 53,
                },
            ],
        }
    }

    #[test]
    fn renders_the_whole_table() {
        let script = model().render().unwrap();
        let expected = "\
add table ip gorae-test
delete table ip gorae-test
table ip gorae-test {
\tchain prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tfib daddr type local jump ports
\t}
\tchain output {
\t\ttype nat hook output priority -100; policy accept;
\t\tfib daddr type local jump ports
\t}
\tchain ports {
\t\ttcp dport 8080 dnat to 172.17.0.2:80
\t\ttcp dport 8443 dnat to 172.17.0.2:443
\t\tip daddr 127.0.0.1 udp dport 5353 dnat to 172.17.0.3:53
\t}
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tip saddr 172.17.0.0/16 oifname != \"gorae0\" masquerade
\t\toifname \"gorae0\" ip saddr 172.17.0.0/16 ct status dnat masquerade
\t\toifname \"gorae0\" ip saddr 127.0.0.0/8 masquerade
\t\toifname \"gr-0123abcd\" ip saddr 172.18.0.0/16 ct status dnat masquerade
\t\toifname \"gr-0123abcd\" ip saddr 127.0.0.0/8 masquerade
\t}
\tchain forward {
\t\ttype filter hook forward priority filter; policy accept;
\t\tiifname \"gr-0123abcd\" oifname != \"gr-0123abcd\" drop
\t\toifname \"gr-0123abcd\" iifname != \"gr-0123abcd\" drop
\t\tct status dnat accept
\t\tiifname \"gorae0\" oifname { \"gr-0123abcd\" } drop
\t\tiifname \"gr-0123abcd\" oifname { \"gorae0\" } drop
\t}
}
";
        assert_eq!(script, expected);
    }

    #[test]
    fn empty_model_is_an_empty_table() {
        let script = Ruleset {
            table: "gorae".into(),
            ..Default::default()
        }
        .render()
        .unwrap();
        assert!(script.starts_with("add table ip gorae\ndelete table ip gorae\n"));
        assert!(script.contains("chain ports {\n\t}"));
    }

    #[test]
    fn rejects_names_that_could_inject() {
        let mut m = model();
        m.table = "x; flush ruleset".into();
        assert!(m.render().is_err());
        let mut m = model();
        m.networks[0].bridge = "br\" drop".into();
        assert!(m.render().is_err());
        assert!(remove("").is_err());
        assert!(remove("1abc").is_err());
    }
}
