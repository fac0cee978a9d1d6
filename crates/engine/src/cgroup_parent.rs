//! The engine's cgroup parent (`gorae`, or `gorae-<hash>` for another data root): the runtime
//! creates it under every hierarchy with the first container and nothing removes it but the
//! engine, which does so when the daemon stops with none of its containers running.
//!
//! Only `rmdir`: a parent that still has a child (a container that outlived the daemon, one
//! of another engine sharing a custom parent) stays, and so does any error — it is a tidy-up,
//! not a condition of stopping. Not done while the daemon serves: a container being created
//! at the same moment would find its parent gone between the runtime's mkdirs.

use std::path::{Path, PathBuf};

use crate::engine::Engine;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

impl Engine {
    /// Called by the daemon on a graceful stop: removes the engine's empty cgroup parent dirs
    /// unless one of its containers is still running (live restore keeps them).
    pub fn release_cgroup_parent(&self) {
        let live = self.containers.all().iter().any(|c| c.status().is_live());
        if !live {
            remove_empty(Path::new(CGROUP_ROOT), &self.config().cgroup_parent);
        }
    }
}

/// The parent's dir in each hierarchy under `cgroup_root`: the root itself when it is the
/// unified (v2-only) hierarchy, else each mounted v1 controller and the unified one.
pub fn parent_dirs(cgroup_root: &Path, parent: &str) -> Vec<PathBuf> {
    let parent = parent.trim_matches('/');
    if parent.is_empty() || parent.split('/').any(|p| p == ".." || p == ".") {
        return Vec::new();
    }
    if cgroup_root.join("cgroup.controllers").exists() {
        return vec![cgroup_root.join(parent)];
    }
    let Ok(entries) = std::fs::read_dir(cgroup_root) else {
        return Vec::new();
    };
    entries
        .flatten()
        // cpu -> cpu,cpuacct and the like: the same hierarchy under another name.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path().join(parent))
        .collect()
}

/// rmdir of every parent dir; the ones still in use or already gone are left as they are.
pub fn remove_empty(cgroup_root: &Path, parent: &str) {
    for dir in parent_dirs(cgroup_root, parent) {
        match std::fs::remove_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => {}
            Err(e) => crate::logging::warn(&format!("removing {}: {e}", dir.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_hierarchies_each_get_the_parent_and_links_are_skipped() {
        let root = tempfile::tempdir().expect("tempdir");
        for h in ["cpu,cpuacct", "memory", "unified"] {
            std::fs::create_dir(root.path().join(h)).expect("mkdir");
        }
        std::os::unix::fs::symlink("cpu,cpuacct", root.path().join("cpu")).expect("symlink");
        let mut dirs = parent_dirs(root.path(), "/gorae-1234/");
        dirs.sort();
        let want: Vec<PathBuf> = ["cpu,cpuacct", "memory", "unified"]
            .iter()
            .map(|h| root.path().join(h).join("gorae-1234"))
            .collect();
        assert_eq!(dirs, want);
    }

    #[test]
    fn the_unified_root_has_one_dir_and_odd_parents_none() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::write(root.path().join("cgroup.controllers"), "cpu\n").expect("write");
        assert_eq!(
            parent_dirs(root.path(), "gorae"),
            [root.path().join("gorae")]
        );
        assert!(parent_dirs(root.path(), "/").is_empty());
        assert!(parent_dirs(root.path(), "../etc").is_empty());
    }

    #[test]
    fn only_empty_dirs_are_removed_never_their_contents() {
        let root = tempfile::tempdir().expect("tempdir");
        for h in ["a", "b"] {
            std::fs::create_dir_all(root.path().join(h).join("gorae")).expect("mkdir");
        }
        std::fs::create_dir(root.path().join("b/gorae/child")).expect("mkdir");
        remove_empty(root.path(), "gorae");
        assert!(!root.path().join("a/gorae").exists());
        assert!(root.path().join("b/gorae/child").is_dir());
    }
}
