//! cgroups v1, v2 and the hybrid of both: one container's cgroup, created, limited, frozen,
//! listed and removed.
//!
//! What it owns: the container's cgroup directories (one per mounted hierarchy, recorded in
//! [`Cgroup`] and serialized into the container state), the values it writes there, and the
//! eBPF device programs it attaches to the container's cgroup2 directory.
//!
//! The hybrid rule: each controller is driven through the v1 hierarchy that has it; a
//! controller no v1 hierarchy has (on a hybrid host typically only `hugetlb`) is driven through
//! the unified hierarchy. Processes join every hierarchy, the unified one included (as runc
//! does), so a hybrid host sees the container in cgroup2 too. v1-only knobs with no v2
//! equivalent (swappiness, kernelTCP, realtime, leafWeight, disableOOMKiller=true,
//! useHierarchy=false) are an error when their controller is on v2; the deprecated
//! `memory.kernel` is ignored on v2, as runc and crun do.
//!
//! What it must not do: touch anything outside the container's own directories other than
//! enabling controllers in `cgroup.subtree_control` of its ancestors (v2) and copying
//! `cpuset.cpus`/`cpuset.mems` into the directories it creates (v1); write any value before
//! every value of a request has been validated and routed; remove a directory it did not
//! resolve as the container's; panic on anything read from /proc or cgroupfs.

mod bpf;
mod devices;
mod layout;
mod oom;
mod resources;
mod stats;
#[cfg(test)]
mod tests;

pub use layout::{Layout, LayoutKind, Mount};
pub use oom::{OomCheck, OomWatcher};
pub use stats::{
    Blkio, BlkioEntry, Cpu, CpuUsage, Hugetlb, Memory, MemoryEntry, Pids, Stats, Throttling,
};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// The text of an OS error without Rust's "(os error N)" suffix.
fn errno_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

/// Why a cgroup operation failed; names the file or controller and the value.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A write to a cgroup file failed.
    #[error("cgroup {controller}: writing '{value}' to {}: {}", path.display(), errno_text(source))]
    Write {
        controller: String,
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    /// A read failed.
    #[error("cgroup: reading {}: {}", path.display(), errno_text(source))]
    Read { path: PathBuf, source: io::Error },
    /// mkdir, rmdir, open of a cgroup directory failed.
    #[error("cgroup: {op} {}: {}", path.display(), errno_text(source))]
    Fs {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A value is set but the kernel has no file for it.
    #[error("cgroup {controller}: {field} is set but {} does not exist", path.display())]
    MissingFile {
        controller: String,
        field: String,
        path: PathBuf,
    },
    /// A value is set but no mounted hierarchy has its controller.
    #[error("cgroup {controller}: {field} is set but no mounted hierarchy has the {controller} controller")]
    NoController { controller: String, field: String },
    /// A v1-only value is set while its controller is on cgroup v2.
    #[error("cgroup {controller}: {field} has no cgroup v2 equivalent")]
    V1Only { controller: String, field: String },
    /// A value makes no sense.
    #[error("cgroup resources: invalid {field} '{value}': {reason}")]
    Invalid {
        field: String,
        value: String,
        reason: String,
    },
    /// A `unified` key cannot be honoured.
    #[error("unified resources need cgroup v2: key '{key}': {reason}")]
    NeedsV2 { key: String, reason: String },
    /// The cgroups path is not acceptable.
    #[error("cgroup path '{path}': {reason}")]
    BadPath { path: String, reason: String },
    /// The host layout could not be read.
    #[error("cgroup layout: {0}")]
    Layout(String),
    /// Freezing or thawing did not settle.
    #[error("cgroup freezer: {} did not become {want} within {} ms", path.display(), waited.as_millis())]
    Timeout {
        path: PathBuf,
        want: &'static str,
        waited: Duration,
    },
    /// A bpf(2) call of the v2 device controller failed.
    #[error("cgroup devices: bpf {op} on {}: {}", path.display(), errno_text(source))]
    Bpf {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
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

impl Hierarchy {
    fn has(&self, controller: &str) -> bool {
        !self.unified && self.controllers.split(',').any(|c| c == controller)
    }
}

/// A container's cgroup across every hierarchy of the host. Serialized into the container state
/// so later commands find the same directories whatever cgroup they run in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cgroup {
    pub hierarchies: Vec<Hierarchy>,
}

/// How long freeze/thaw wait for the kernel, and destroy retries EBUSY.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
const RMDIR_RETRIES: u32 = 10;

/// Rejects `..`, and `.` components that would make the path ambiguous.
fn check_components(p: &Path) -> Result<(), CgroupError> {
    for c in p.components() {
        if matches!(c, Component::ParentDir) {
            return Err(CgroupError::BadPath {
                path: p.display().to_string(),
                reason: "'..' components are not allowed".into(),
            });
        }
    }
    Ok(())
}

/// `a` joined with the normal components of `b` (so an absolute `b` does not replace `a`).
fn join_rel(a: &Path, b: &Path) -> PathBuf {
    let mut out = a.to_path_buf();
    for c in b.components() {
        if let Component::Normal(n) = c {
            out.push(n);
        }
    }
    out
}

pub(crate) fn read_file(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `value` to an existing file (cgroupfs files are never created).
pub(crate) fn write_file(controller: &str, path: &Path, value: &str) -> Result<(), CgroupError> {
    use std::io::Write;
    let err = |source| CgroupError::Write {
        controller: controller.to_string(),
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)
}

impl Cgroup {
    /// Resolves `cgroups_path` (absolute, or relative to the caller's cgroup; default
    /// `gorae-<id>` relative) on the host's layout, detected from /proc/self/mountinfo.
    /// Touches nothing.
    pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<Self, CgroupError> {
        Self::resolve_in(&Layout::detect()?, cgroups_path, id)
    }

    /// [`Cgroup::resolve`] on an explicit layout (a fake tree, or a reduced view of the host).
    pub fn resolve_in(
        layout: &Layout,
        cgroups_path: Option<&Path>,
        id: &str,
    ) -> Result<Self, CgroupError> {
        let default = PathBuf::from(format!("gorae-{id}"));
        let requested = cgroups_path.unwrap_or(&default);
        check_components(requested)?;
        if requested
            .components()
            .all(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(CgroupError::BadPath {
                path: requested.display().to_string(),
                reason: "names no cgroup below the root".into(),
            });
        }
        if layout.mounts.is_empty() {
            return Err(CgroupError::Layout("no cgroup hierarchy is mounted".into()));
        }
        let mut hierarchies = Vec::new();
        for m in &layout.mounts {
            let path = if requested.is_absolute() {
                join_rel(Path::new("/"), requested)
            } else {
                check_components(&m.own_path)?;
                join_rel(&m.own_path, requested)
            };
            let dir = layout::dir_under(&m.mount_point, &m.root, &path).ok_or_else(|| {
                CgroupError::BadPath {
                    path: path.display().to_string(),
                    reason: format!(
                        "not visible under {} (which shows {})",
                        m.mount_point.display(),
                        m.root.display()
                    ),
                }
            })?;
            hierarchies.push(Hierarchy {
                unified: m.unified,
                controllers: m.name.clone(),
                mount_point: m.mount_point.clone(),
                dir,
                path,
            });
        }
        Ok(Cgroup { hierarchies })
    }

    /// The layout this cgroup lives on.
    pub fn kind(&self) -> LayoutKind {
        let v1 = self.hierarchies.iter().any(|h| !h.unified);
        let v2 = self.hierarchies.iter().any(|h| h.unified);
        match (v1, v2) {
            (true, true) => LayoutKind::Hybrid,
            (false, true) => LayoutKind::V2,
            _ => LayoutKind::V1,
        }
    }

    /// The v1 hierarchy that has `controller`.
    fn v1(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.has(controller))
    }

    /// The unified hierarchy, if mounted.
    fn unified(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.unified)
    }

    /// Creates the directories (and enables v2 controllers on the way down).
    pub fn create(&self) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            if h.unified {
                self.create_unified(h)?;
            } else {
                create_v1(h)?;
            }
        }
        Ok(())
    }

    fn create_unified(&self, h: &Hierarchy) -> Result<(), CgroupError> {
        let rel = h.dir.strip_prefix(&h.mount_point).unwrap_or(Path::new(""));
        let mut cur = h.mount_point.clone();
        let comps = rel.components();
        for c in comps {
            // Enable in `cur` every controller it has that no v1 hierarchy drives; failures are
            // left for apply to report by the missing file, as the value may never be set.
            let available =
                std::fs::read_to_string(cur.join("cgroup.controllers")).unwrap_or_default();
            let wanted: Vec<&str> = available
                .split_whitespace()
                .filter(|c| self.v1(c).is_none())
                .collect();
            let enabled =
                std::fs::read_to_string(cur.join("cgroup.subtree_control")).unwrap_or_default();
            let missing: Vec<String> = wanted
                .iter()
                .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
                .map(|c| format!("+{c}"))
                .collect();
            if !missing.is_empty() {
                let sc = cur.join("cgroup.subtree_control");
                if write_file("cgroup", &sc, &missing.join(" ")).is_err() {
                    for m in &missing {
                        let _ = write_file("cgroup", &sc, m);
                    }
                }
            }
            cur.push(c);
            mkdir(&cur)?;
        }
        Ok(())
    }

    /// Validates and writes every limit in `resources`. Nothing is written when any value is
    /// invalid or has nowhere to go.
    pub fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        let plan = resources::plan(self, resources)?;
        for w in &plan.writes {
            write_file(&w.controller, &w.path, &w.value)?;
        }
        if let Some((dir, rules)) = &plan.bpf_devices {
            apply_device_prog(dir, rules)?;
        }
        Ok(())
    }

    /// Changes the limits of an existing cgroup (`update`): only the fields set in
    /// `resources` are written; device rules are not taken (they need the whole list, as at
    /// create). Everything is validated first; when the kernel then refuses a write, the
    /// single-value files already written get their previous values back.
    pub fn update(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        let mut resources = resources.clone();
        resources.set_devices(None);
        let plan = resources::plan(self, &resources)?;
        let mut done: Vec<(&resources::Write, Option<String>)> = Vec::new();
        for w in &plan.writes {
            let old = std::fs::read_to_string(&w.path)
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty() && !t.contains('\n'));
            if let Err(e) = write_file(&w.controller, &w.path, &w.value) {
                for (w, old) in done.iter().rev() {
                    if let Some(old) = old {
                        let _ = write_file(&w.controller, &w.path, old);
                    }
                }
                return Err(e);
            }
            done.push((w, old));
        }
        Ok(())
    }

    /// Moves `pid` into the cgroup of every hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        if pid <= 0 {
            return Err(CgroupError::Invalid {
                field: "pid".into(),
                value: pid.to_string(),
                reason: "must be positive".into(),
            });
        }
        for h in &self.hierarchies {
            let name = if h.unified { "cgroup2" } else { &h.controllers };
            write_file(name, &h.dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Freezes (v1 freezer or v2 cgroup.freeze) and waits until frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.set_frozen(true)
    }

    /// Thaws a frozen cgroup.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let start = Instant::now();
        let mut delay = Duration::from_micros(100);
        if let Some(h) = self.v1("freezer") {
            let path = h.dir.join("freezer.state");
            let want = if frozen { "FROZEN" } else { "THAWED" };
            loop {
                write_file("freezer", &path, want)?;
                if read_file(&path)?.trim() == want {
                    return Ok(());
                }
                if start.elapsed() > FREEZE_TIMEOUT {
                    if frozen {
                        let _ = write_file("freezer", &path, "THAWED");
                    }
                    return Err(CgroupError::Timeout {
                        path,
                        want,
                        waited: start.elapsed(),
                    });
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(10));
            }
        }
        let h = self.unified().ok_or_else(|| CgroupError::NoController {
            controller: "freezer".into(),
            field: "freeze".into(),
        })?;
        let path = h.dir.join("cgroup.freeze");
        write_file("freezer", &path, if frozen { "1" } else { "0" })?;
        loop {
            if self.is_frozen()? == frozen {
                return Ok(());
            }
            if start.elapsed() > FREEZE_TIMEOUT {
                if frozen {
                    let _ = write_file("freezer", &path, "0");
                }
                return Err(CgroupError::Timeout {
                    path: h.dir.join("cgroup.events"),
                    want: if frozen { "frozen 1" } else { "frozen 0" },
                    waited: start.elapsed(),
                });
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(10));
        }
    }

    /// Whether the cgroup is frozen (v1 freezer.state FROZEN, v2 cgroup.events "frozen 1").
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        if let Some(h) = self.v1("freezer") {
            return Ok(read_file(&h.dir.join("freezer.state"))?.trim() == "FROZEN");
        }
        match self.unified() {
            Some(h) => Ok(read_file(&h.dir.join("cgroup.events"))?
                .lines()
                .any(|l| l.trim() == "frozen 1")),
            None => Ok(false),
        }
    }

    /// Every pid in the cgroup and its descendants, sorted.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let h = self
            .v1("pids")
            .or_else(|| self.v1("memory"))
            .or_else(|| self.unified())
            .or_else(|| self.hierarchies.first());
        let Some(h) = h else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        let mut stack = vec![h.dir.clone()];
        while let Some(dir) = stack.pop() {
            match std::fs::read_to_string(dir.join("cgroup.procs")) {
                Ok(text) => out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
                Err(e) if e.kind() == io::ErrorKind::NotFound && dir == h.dir => {
                    return Ok(Vec::new())
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(CgroupError::Read {
                        path: dir.join("cgroup.procs"),
                        source,
                    })
                }
            }
            stack.extend(subdirs(&dir)?);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Removes the directories, children first; succeeds when they are already gone.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        for h in &self.hierarchies {
            if let Err(e) = remove_tree(&h.dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

fn mkdir(dir: &Path) -> Result<(), CgroupError> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(CgroupError::Fs {
            op: "mkdir",
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// mkdir -p; every cpuset directory created gets its parent's cpus/mems when empty.
fn create_v1(h: &Hierarchy) -> Result<(), CgroupError> {
    let cpuset = h.has("cpuset");
    let rel = h.dir.strip_prefix(&h.mount_point).unwrap_or(Path::new(""));
    let mut cur = h.mount_point.clone();
    for c in rel.components() {
        let parent = cur.clone();
        cur.push(c);
        mkdir(&cur)?;
        if cpuset {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let mine = cur.join(f);
                if !mine.exists() {
                    continue;
                }
                if read_file(&mine)?.trim().is_empty() {
                    let from_parent = read_file(&parent.join(f))?;
                    let v = from_parent.trim();
                    if !v.is_empty() {
                        write_file("cpuset", &mine, v)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// The entries of a cgroup directory; none when it does not exist (already removed).
fn dir_entries(dir: &Path) -> Result<Vec<std::fs::DirEntry>, CgroupError> {
    match std::fs::read_dir(dir) {
        Ok(rd) => Ok(rd.filter_map(Result::ok).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(CgroupError::Fs {
            op: "listing",
            path: dir.to_path_buf(),
            source,
        }),
    }
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    Ok(dir_entries(dir)?
        .into_iter()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect())
}

/// rmdir `dir` and its descendants, leaves first, retrying EBUSY briefly.
fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    for child in subdirs(dir)? {
        remove_tree(&child)?;
    }
    let mut delay = Duration::from_millis(1);
    for attempt in 0..=RMDIR_RETRIES {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < RMDIR_RETRIES => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(CgroupError::Fs {
                    op: "rmdir",
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Attaches a new device program to the cgroup2 directory, then detaches the ones that were
/// attached before (so there is no window without a filter).
fn apply_device_prog(dir: &Path, rules: &[devices::Rule]) -> Result<(), CgroupError> {
    use std::os::fd::AsFd;
    let bpf_err = |op: &'static str| {
        move |source| CgroupError::Bpf {
            op,
            path: dir.to_path_buf(),
            source,
        }
    };
    let dirfd = std::fs::File::open(dir).map_err(|source| CgroupError::Fs {
        op: "opening",
        path: dir.to_path_buf(),
        source,
    })?;
    let old = bpf::query_device_progs(dirfd.as_fd()).map_err(bpf_err("BPF_PROG_QUERY"))?;
    let prog = bpf::load_device_prog(&devices::compile(rules)).map_err(bpf_err("BPF_PROG_LOAD"))?;
    bpf::attach_device_prog(dirfd.as_fd(), prog.as_fd()).map_err(bpf_err("BPF_PROG_ATTACH"))?;
    for id in old {
        match bpf::detach_device_prog(dirfd.as_fd(), id) {
            Ok(()) => {}
            // Detached or unloaded meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(source) => return Err(bpf_err("BPF_PROG_DETACH")(source)),
        }
    }
    Ok(())
}
