//! The host's cgroup layout: which hierarchies are mounted where, with which controllers, and
//! which cgroup the caller is in on each. Parsed from /proc/self/mountinfo and /proc/self/cgroup
//! text, defensively: malformed lines are skipped, never a panic.

use super::CgroupError;
use std::path::{Path, PathBuf};

/// v1 controllers the kernel knows; other mount options of a `cgroup` mount are ignored.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "debug",
];

/// One mounted hierarchy and the caller's place in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `true` for cgroup2.
    pub unified: bool,
    /// v1: controllers (and `name=...`) of the hierarchy; v2: empty.
    pub controllers: Vec<String>,
    /// Controllers as /proc/self/cgroup names them ("cpu,cpuacct", "" for v2).
    pub name: String,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The hierarchy path shown at the mount point (mountinfo field 4; "/" normally).
    pub root: PathBuf,
    /// The caller's cgroup in this hierarchy (from /proc/self/cgroup; "/" when unknown).
    pub own_path: PathBuf,
}

/// Which cgroup versions a layout mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutKind {
    /// Only v1 hierarchies.
    V1,
    /// Only the unified (v2) hierarchy.
    V2,
    /// v1 hierarchies plus a cgroup2 mount.
    Hybrid,
}

/// Every hierarchy of a host (or of a fake tree in a test).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    pub mounts: Vec<Mount>,
}

impl Layout {
    /// Reads /proc/self/mountinfo and /proc/self/cgroup.
    pub fn detect() -> Result<Self, CgroupError> {
        let read = |p: &str| {
            std::fs::read_to_string(p).map_err(|source| CgroupError::Read {
                path: PathBuf::from(p),
                source,
            })
        };
        let layout =
            Self::from_mountinfo(&read("/proc/self/mountinfo")?, &read("/proc/self/cgroup")?);
        if layout.mounts.is_empty() {
            return Err(CgroupError::Layout(
                "no cgroup or cgroup2 mount in /proc/self/mountinfo".into(),
            ));
        }
        Ok(layout)
    }

    /// Builds a layout from the text of a mountinfo file and of a /proc/<pid>/cgroup file.
    /// The first mount of each hierarchy wins; lines that do not parse are skipped.
    pub fn from_mountinfo(mountinfo: &str, proc_cgroup: &str) -> Self {
        let own = parse_proc_cgroup(proc_cgroup);
        let mut mounts: Vec<Mount> = Vec::new();
        for line in mountinfo.lines() {
            let Some((root, mount_point, fstype, super_opts)) = parse_mountinfo_line(line) else {
                continue;
            };
            let m = match fstype {
                "cgroup2" => {
                    if mounts.iter().any(|m| m.unified) {
                        continue;
                    }
                    let own_path = own
                        .iter()
                        .find(|(id, ctl, _)| *id == "0" && ctl.is_empty())
                        .map(|(_, _, p)| PathBuf::from(p))
                        .unwrap_or_else(|| PathBuf::from("/"));
                    Mount {
                        unified: true,
                        controllers: Vec::new(),
                        name: String::new(),
                        mount_point,
                        root,
                        own_path,
                    }
                }
                "cgroup" => {
                    let mut controllers: Vec<String> = super_opts
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                        .map(str::to_owned)
                        .collect();
                    if controllers.is_empty() {
                        continue;
                    }
                    controllers.sort();
                    if mounts
                        .iter()
                        .any(|m| !m.unified && m.controllers == controllers)
                    {
                        continue;
                    }
                    let found = own.iter().find(|(_, ctl, _)| {
                        let mut c: Vec<&str> = ctl.split(',').filter(|c| !c.is_empty()).collect();
                        c.sort_unstable();
                        c == controllers.iter().map(String::as_str).collect::<Vec<_>>()
                    });
                    let (name, own_path) = match found {
                        Some((_, ctl, p)) => (ctl.to_string(), PathBuf::from(p)),
                        None => (controllers.join(","), PathBuf::from("/")),
                    };
                    Mount {
                        unified: false,
                        controllers,
                        name,
                        mount_point,
                        root,
                        own_path,
                    }
                }
                _ => continue,
            };
            mounts.push(m);
        }
        Layout { mounts }
    }

    /// What this layout mounts; `None` when it mounts nothing.
    pub fn kind(&self) -> Option<LayoutKind> {
        let v1 = self.mounts.iter().any(|m| !m.unified);
        let v2 = self.mounts.iter().any(|m| m.unified);
        match (v1, v2) {
            (true, true) => Some(LayoutKind::Hybrid),
            (true, false) => Some(LayoutKind::V1),
            (false, true) => Some(LayoutKind::V2),
            (false, false) => None,
        }
    }

    /// This layout reduced to its unified hierarchy: a pure-v2 view of a hybrid host.
    pub fn only_unified(&self) -> Option<Self> {
        let m = self.mounts.iter().find(|m| m.unified)?;
        Some(Layout {
            mounts: vec![m.clone()],
        })
    }

    /// This layout without its unified hierarchy: a pure-v1 view.
    pub fn only_v1(&self) -> Self {
        Layout {
            mounts: self.mounts.iter().filter(|m| !m.unified).cloned().collect(),
        }
    }
}

/// `(hierarchy id, controllers, path)` per line of /proc/<pid>/cgroup.
fn parse_proc_cgroup(text: &str) -> Vec<(&str, &str, String)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let id = parts.next()?;
            let ctl = parts.next()?;
            let path = parts.next()?;
            if !path.starts_with('/') {
                return None;
            }
            let path = path.strip_suffix(" (deleted)").unwrap_or(path);
            Some((id, ctl, path.to_owned()))
        })
        .collect()
}

/// `(root, mount point, fstype, super options)` of one mountinfo line.
fn parse_mountinfo_line(line: &str) -> Option<(PathBuf, PathBuf, &str, &str)> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let _id = l.next()?;
    let _parent = l.next()?;
    let _dev = l.next()?;
    let root = unescape(l.next()?);
    let mount_point = unescape(l.next()?);
    let mut r = right.split(' ');
    let fstype = r.next()?;
    let _source = r.next()?;
    let super_opts = r.next().unwrap_or("");
    if !root.starts_with('/') || !mount_point.starts_with('/') {
        return None;
    }
    Some((
        PathBuf::from(root),
        PathBuf::from(mount_point),
        fstype,
        super_opts,
    ))
}

/// Undoes mountinfo's octal escapes (`\040` for a space and so on).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = (oct[0] - b'0') as u32 * 64
                    + (oct[1] - b'0') as u32 * 8
                    + (oct[2] - b'0') as u32;
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `path` (a hierarchy path like /a/b) as a directory under a mount showing `root` at
/// `mount_point`; `None` when the mount does not show that path.
pub(crate) fn dir_under(mount_point: &Path, root: &Path, path: &Path) -> Option<PathBuf> {
    let rel = path.strip_prefix(root).ok()?;
    Some(mount_point.join(rel))
}
