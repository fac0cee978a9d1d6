//! Network helpers for the engine's network tests: what a data root's networking leaves on
//! the machine (bridges, veths, the nft table, namespace files and mounts), named as the
//! engine names them, so a test can check that nothing is left; the host's own address.

use std::path::Path;
use std::process::Command;

use super::engine::Daemon;

/// 8 hex digits of the SHA-256 of the root's path (the engine's `root_hash`).
pub fn root_hash(root: &Path) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(root.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..4])
}

/// The host end of a container's endpoint on a network (the engine's `veth_name`).
pub fn veth_name(container_id: &str, network_id: &str) -> String {
    use sha2::Digest as _;
    let digest = hex::encode(sha2::Sha256::digest(
        format!("{container_id}/{network_id}").as_bytes(),
    ));
    format!("vg{}", &digest[..13])
}

/// The interface names of the host's namespace.
pub fn links() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// The nftables tables (`ip gorae-…`).
pub fn nft_tables() -> Vec<String> {
    let out = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .expect("nft list tables");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

/// The first global IPv4 address of an interface that is not one of the engines' bridges
/// or docker's: where a published port is reached from the machine and from containers.
pub fn host_address() -> Option<String> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let ifname = *f.get(1)?;
        let ours = ["gr", "gorae", "docker", "vg", "br-", "cni", "podman"]
            .iter()
            .any(|p| ifname.starts_with(p));
        (!ours).then(|| f.get(3)?.split('/').next().map(str::to_string))?
    })
}

/// Which of `veths` are still there. The engine leaves the deletion of a stopped
/// container's pair to the kernel, which does it when the namespace goes, in a worker of its
/// own: a pair may outlive its container by a few milliseconds, so this waits (a bounded
/// time) for the kernel before it reports one.
pub fn veths_left(veths: &[String]) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let links = links();
        let left: Vec<String> = veths
            .iter()
            .filter(|v| links.contains(v))
            .cloned()
            .collect();
        if left.is_empty() || std::time::Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// What the networks of `d`'s root would leave: its table, default bridge, the bridges of
/// `network_ids`, the veths of `endpoints` (container id, network id), its namespace files
/// and mounts. Empty when clean.
pub fn leftovers(
    d: &Daemon,
    network_ids: &[String],
    endpoints: &[(String, String)],
) -> Vec<String> {
    let hash = root_hash(&d.root);
    let links = links();
    let mut left = Vec::new();
    let mut bridges = vec![format!("gr0-{hash}")];
    bridges.extend(network_ids.iter().map(|id| format!("gr-{}", &id[..8])));
    for b in bridges {
        if links.contains(&b) {
            left.push(format!("bridge {b}"));
        }
    }
    let veths: Vec<String> = endpoints.iter().map(|(c, n)| veth_name(c, n)).collect();
    left.extend(veths_left(&veths).into_iter().map(|v| format!("veth {v}")));
    let table = format!("table ip gorae-{hash}");
    if nft_tables().contains(&table) {
        left.push(table);
    }
    let netns = d.root.join("run/netns");
    for e in std::fs::read_dir(&netns).into_iter().flatten().flatten() {
        left.push(format!("netns file {}", e.path().display()));
    }
    left.extend(d.mounts().into_iter().map(|m| format!("mount {m}")));
    left
}
