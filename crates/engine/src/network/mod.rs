//! Container networking primitives (issue 6): network namespaces kept as bind-mounted files,
//! a small rtnetlink client, address management, the nftables ruleset of our own table, and
//! their composition into bridges and veth endpoints.
//!
//! Everything here acts on the network namespace of the *calling thread*: the engine calls
//! it from its own (host) namespace, tests call it from a thread inside a private namespace
//! (`netns::run_in`) so they never touch the machine's interfaces or rules. Nothing here
//! knows about containers or the engine's records; the engine owns naming and persistence.

pub mod bridge;
pub mod dns;
pub mod endpoints;
pub mod ipam;
pub mod manager;
pub mod netlink;
pub mod netns;
pub mod nft;
