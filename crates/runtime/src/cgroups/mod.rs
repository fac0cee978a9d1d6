//! cgroups v1, v2 and the hybrid of both: one container's cgroup, created, limited, frozen,
//! listed and removed. (Skeleton: the implementation lands in its own commit.)

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why a cgroup operation failed; names the file or controller and the value.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup: {0}")]
    Unsupported(String),
}

/// One mounted hierarchy the container's cgroup lives in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Hierarchy {
    /// `true` for cgroup2.
    pub unified: bool,
    /// Controllers of this hierarchy as named in /proc/self/cgroup ("cpu,cpuacct", "" for v2).
    pub controllers: String,
    /// Where the hierarchy is mounted on the host, e.g. /sys/fs/cgroup/memory.
    pub mount_point: PathBuf,
    /// The container's cgroup directory, absolute on the host.
    pub dir: PathBuf,
    /// The container's cgroup path relative to the hierarchy root, e.g. /gorae-abc.
    pub path: PathBuf,
}

/// A container's cgroup across every hierarchy of the host. Serialized into the container state
/// so later commands find the same directories whatever cgroup they run in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cgroup {
    pub hierarchies: Vec<Hierarchy>,
}

impl Cgroup {
    /// Resolves `cgroups_path` (absolute, or relative to the caller's cgroup; default
    /// `gorae-<id>` relative) on the host's layout, detected from /proc/self/mountinfo.
    /// Touches nothing.
    pub fn resolve(_cgroups_path: Option<&Path>, _id: &str) -> Result<Self, CgroupError> {
        Err(CgroupError::Unsupported("not built yet".into()))
    }

    /// Creates the directories (and enables v2 controllers on the way down).
    pub fn create(&self) -> Result<(), CgroupError> {
        Err(CgroupError::Unsupported("not built yet".into()))
    }

    /// Validates and writes every limit in `resources`.
    pub fn apply(&self, _resources: &LinuxResources) -> Result<(), CgroupError> {
        Err(CgroupError::Unsupported("not built yet".into()))
    }

    /// Moves `pid` into the cgroup of every hierarchy.
    pub fn add_process(&self, _pid: i32) -> Result<(), CgroupError> {
        Err(CgroupError::Unsupported("not built yet".into()))
    }

    /// Freezes (v1 freezer or v2 cgroup.freeze) and waits until frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        Err(CgroupError::Unsupported("not built yet".into()))
    }

    /// Thaws a frozen cgroup.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        Err(CgroupError::Unsupported("not built yet".into()))
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        Ok(false)
    }

    /// Every pid in the cgroup and its descendants.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        Ok(Vec::new())
    }

    /// Removes the directories; succeeds when they are already gone.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        Ok(())
    }
}
