//! The embedded DNS server of user networks: one [`DnsServer`] in the daemon listens on each
//! network's gateway address (port 53, UDP and TCP, in the host namespace); a container's
//! resolv.conf names its gateway. A query is answered from the names of the network whose
//! address it arrived on (container names, aliases, compose service names: A records, PTR for
//! the network's addresses, empty NOERROR for AAAA), NXDOMAIN for unknown names in the
//! network's own namespace, and anything else is relayed to the host's resolvers. A container
//! on several networks resolves the names of all of them through the one gateway its
//! resolv.conf names (as with docker's 127.0.0.11); a network with a subnet set answers only
//! sources inside it, since any bridge can reach any gateway through the host.
//!
//! The wire format is written here rather than taken from hickory-proto (0.25.2, already in
//! Cargo.lock through reqwest): the server needs to read one question and write A/PTR
//! answers, a few hundred lines whose every bounds check is visible and fuzz-tested here,
//! while hickory-proto would be a new direct dependency of the engine with its own feature
//! set to build and audit, and relayed messages are passed on as bytes anyway.
//!
//! - [`wire`]: reading queries, writing answers (RFC 1035, EDNS0's OPT of RFC 6891).
//! - [`records`]: the name table, per network.
//! - [`forward`]: relaying to upstream resolvers (UDP, TCP on truncation), resolv.conf.
//! - [`server`]: the listeners and their bounds.

pub mod forward;
pub mod records;
pub mod server;
pub mod wire;

pub use records::{Lookup, Records, ScopeOptions};
pub use server::{DnsConfig, DnsServer};

#[cfg(test)]
mod fuzz_tests;
