//! Linux namespaces: which to create with clone/unshare and which to join with setns, in the
//! order the kernel needs (a user namespace first, so it owns the ones created after it).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Linux, LinuxNamespaceType, Spec};

use crate::config::namespace_plan;
use crate::error::{Error, Result, SysContext};

pub fn clone_flag(typ: LinuxNamespaceType) -> CloneFlags {
    match typ {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// How the container's namespaces come to be.
#[derive(Debug, Clone)]
pub struct NamespacePlan {
    pub new: Vec<LinuxNamespaceType>,
    /// Joined by path, user namespace first.
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
}

impl NamespacePlan {
    pub fn from_spec(spec: &Spec) -> Self {
        let (new, mut join) = namespace_plan(spec);
        join.sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
        NamespacePlan { new, join }
    }

    pub fn creates(&self, typ: LinuxNamespaceType) -> bool {
        self.new.contains(&typ)
    }

    pub fn joins(&self, typ: LinuxNamespaceType) -> bool {
        self.join.iter().any(|(t, _)| *t == typ)
    }

    /// Whether one clone(2) can make the init: only when every joined namespace can be
    /// entered after the clone (or, for pid, by the runtime just before it) and no new time
    /// namespace (which clone(2) cannot create) or user namespace mixes with joined ones.
    pub fn single_clone(&self) -> bool {
        let user_mix = self.creates(LinuxNamespaceType::User) && !self.join.is_empty();
        !user_mix
            && !self.joins(LinuxNamespaceType::User)
            && !self.joins(LinuxNamespaceType::Time)
            && !self.creates(LinuxNamespaceType::Time)
    }

    /// The CLONE_NEW* flags to create at clone time. The cgroup namespace is left out: the
    /// init unshares it after it has joined its cgroup, so the namespace is rooted there.
    pub fn clone_flags(&self) -> CloneFlags {
        self.new
            .iter()
            .filter(|t| !matches!(t, LinuxNamespaceType::Cgroup | LinuxNamespaceType::Time))
            .fold(CloneFlags::empty(), |acc, t| acc | clone_flag(*t))
    }
}

/// Enters the namespace at `path`.
pub fn join(typ: LinuxNamespaceType, path: &Path) -> Result<()> {
    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::sys(format!("opening {typ} namespace {}", path.display()), e))?;
    setns(fd.as_fd(), clone_flag(typ)).ctx(|| format!("joining {typ} namespace {}", path.display()))
}

/// Writes uid_map and gid_map of `pid` from the config's mappings.
pub fn write_id_maps(pid: i32, linux: &Linux) -> Result<()> {
    let render = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.as_deref()
            .unwrap_or_default()
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    if !nix::unistd::geteuid().is_root() {
        return write_id_maps_unprivileged(pid, linux);
    }
    for (file, body) in [
        ("uid_map", render(linux.uid_mappings())),
        ("gid_map", render(linux.gid_mappings())),
    ] {
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        std::fs::write(&path, body).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

/// Rootless: newuidmap/newgidmap (setuid helpers that check /etc/subuid and /etc/subgid) when
/// installed; otherwise the kernel allows only mapping the caller's own ids, after setgroups
/// is denied.
fn write_id_maps_unprivileged(pid: i32, linux: &Linux) -> Result<()> {
    let args = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<String> {
        let mut out = vec![pid.to_string()];
        for m in maps.as_deref().unwrap_or_default() {
            out.extend([
                m.container_id().to_string(),
                m.host_id().to_string(),
                m.size().to_string(),
            ]);
        }
        out
    };
    let helpers = ["/usr/bin/newuidmap", "/usr/bin/newgidmap"];
    if helpers.iter().all(|h| Path::new(h).exists()) {
        for (helper, maps) in helpers
            .iter()
            .zip([linux.uid_mappings(), linux.gid_mappings()])
        {
            let out = std::process::Command::new(helper)
                .args(args(maps))
                .output()
                .map_err(|e| Error::io(*helper, e))?;
            if !out.status.success() {
                return Err(Error::Init(format!(
                    "{helper}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }
        return Ok(());
    }
    let setgroups = PathBuf::from(format!("/proc/{pid}/setgroups"));
    std::fs::write(&setgroups, "deny").map_err(|e| Error::io(setgroups, e))?;
    for (file, maps) in [
        ("uid_map", linux.uid_mappings()),
        ("gid_map", linux.gid_mappings()),
    ] {
        let body: String = maps
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        std::fs::write(&path, body).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

/// Writes the time namespace offsets (`linux.timeOffsets`) of the caller's children.
pub fn write_time_offsets(linux: &Linux) -> Result<()> {
    let Some(offsets) = linux.time_offsets() else {
        return Ok(());
    };
    let mut body = String::new();
    for (clock, offset) in offsets {
        if clock != "monotonic" && clock != "boottime" {
            return Err(Error::Init(format!(
                "linux.timeOffsets: unknown clock {clock:?}"
            )));
        }
        body.push_str(&format!(
            "{clock} {} {}\n",
            offset.secs().unwrap_or(0),
            offset.nanosecs().unwrap_or(0)
        ));
    }
    let path = PathBuf::from("/proc/self/timens_offsets");
    std::fs::write(&path, body).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: &str) -> NamespacePlan {
        NamespacePlan::from_spec(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn plain_namespaces_take_one_clone_without_cgroup() {
        let p = plan(
            r#"{"linux":{"namespaces":[{"type":"pid"},{"type":"mount"},{"type":"cgroup"},{"type":"network"}]}}"#,
        );
        assert!(p.single_clone());
        let f = p.clone_flags();
        assert!(f.contains(
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET
        ));
        assert!(!f.contains(CloneFlags::CLONE_NEWCGROUP));
    }

    #[test]
    fn a_new_user_namespace_with_joined_ones_needs_two_stages() {
        let p = plan(
            r#"{"linux":{"namespaces":[{"type":"user"},{"type":"network","path":"/proc/1/ns/net"}]}}"#,
        );
        assert!(!p.single_clone());
        let p = plan(
            r#"{"linux":{"namespaces":[{"type":"network","path":"/x"},{"type":"user","path":"/y"}]}}"#,
        );
        assert_eq!(p.join[0].0, LinuxNamespaceType::User);
        assert!(!p.single_clone());
    }
}
