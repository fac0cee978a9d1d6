//! Container snapshots: a writable upper dir over an image's layers, mounted with overlayfs.
//!
//! `snapshots/<id>/` holds `upper/`, `work/` and `layers.json` (the diff IDs, base first,
//! and whether the snapshot is volatile).
//! A snapshot is built under a temporary name and renamed into place. Names in snapshots/
//! that start with `.` are temporary (ids cannot): `.new-` being created, `.rm-` being
//! removed, `.mnt-` short links for a deep mount; `Snapshots::open` removes those whose
//! process is gone.
//!
//! Deep images: mount(2) takes one page of options, and a layer path is ~100 bytes, so past
//! ~35 layers the lowerdir list does not fit. The mount is then made from a thread whose cwd
//! is a temp dir of short symlinks `0`, `1`, ... to the layer dirs, with a relative lowerdir
//! list (overlay resolves it at mount time; the links can go right after): that fits all
//! of overlay's 500-layer stack.
//!
//! Volatile snapshots are for roots that are thrown away with their container (`run --rm`):
//! overlay's `volatile` option drops every sync of the upper dir, also the sync of the
//! whole upper file system that the unmount of a normal overlay does (which waits for all
//! the host's dirty data there). After a host crash such an upper dir may miss writes, so its
//! owner must discard it rather than mount it again.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{RenameFlags, CWD};
use rustix::io::Errno;
use rustix::mount::{MountFlags, UnmountFlags};
use serde::{Deserialize, Serialize};

use super::{own_cwd, remove_abandoned, remove_tree, TempTree};
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::layout::DataRoot;

/// mount(2) copies at most one page of option data, NUL included.
const OPTIONS_LIMIT: usize = 4095;
/// The kernel's overlay stack limit (OVL_MAX_STACK).
const MAX_LAYERS: usize = 500;
/// What `get` reads back.
const LAYERS_FILE: &str = "layers.json";

pub struct Snapshots {
    root: DataRoot,
}

/// A prepared snapshot: what the runtime needs to mount a container's root.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub id: String,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// Layer directories, top-most first (overlay's lowerdir order).
    pub lowers: Vec<PathBuf>,
    /// Mounted with overlay's `volatile` (see the module doc).
    pub volatile: bool,
}

#[derive(Serialize, Deserialize)]
struct LayersFile {
    /// Diff IDs, base layer first.
    layers: Vec<Digest>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    volatile: bool,
}

/// Where overlay leaves its mark of a volatile mount (in the work dir); a later mount of the
/// same upper refuses to go on while it is there.
const VOLATILE_MARK: &str = "work/incompat/volatile";

impl Snapshots {
    pub fn open(root: &DataRoot) -> Result<Snapshots> {
        remove_abandoned(&root.snapshots_dir(), ".")?;
        Ok(Snapshots { root: root.clone() })
    }

    /// Creates snapshot `id` over `layers` (diff IDs, base layer first) and records the
    /// layers it needs so garbage collection keeps them.
    pub fn create(&self, id: &str, layers: &[Digest]) -> Result<Snapshot> {
        self.create_with(id, layers, false)
    }

    /// [`Self::create`]; with `volatile` the snapshot is mounted with overlay's `volatile`
    /// (see the module doc: the caller discards it after a host crash).
    pub fn create_with(&self, id: &str, layers: &[Digest], volatile: bool) -> Result<Snapshot> {
        let dir = self.root.snapshots_dir();
        check_id(&dir, id)?;
        self.check_layers(layers)?;
        let tmp = TempTree::create(&dir, ".new-")?;
        for sub in ["upper", "work"] {
            let path = tmp.path().join(sub);
            std::fs::create_dir(&path).at(&path)?;
            set_mode(&path, 0o755)?;
        }
        let record = LayersFile {
            layers: layers.to_vec(),
            volatile,
        };
        let json = serde_json::to_vec_pretty(&record).map_err(io::Error::from);
        let file = tmp.path().join(LAYERS_FILE);
        std::fs::write(&file, json.at(&file)?).at(&file)?;
        let dest = dir.join(id);
        match rustix::fs::renameat_with(CWD, tmp.path(), CWD, &dest, RenameFlags::NOREPLACE) {
            Ok(()) => tmp.keep(),
            Err(Errno::EXIST | Errno::NOTEMPTY) => {
                return Err(store_error(dest, "snapshot already exists"))
            }
            Err(e) => return Err(Error::io(dest, e.into())),
        }
        self.get(id)
    }

    pub fn get(&self, id: &str) -> Result<Snapshot> {
        let dir = self.root.snapshots_dir().join(id);
        check_id(&self.root.snapshots_dir(), id)?;
        let record = read_layers(&dir)?.ok_or_else(|| store_error(&dir, "no such snapshot"))?;
        Ok(Snapshot {
            id: id.to_string(),
            upper: dir.join("upper"),
            work: dir.join("work"),
            lowers: self.lowers(&record.layers),
            volatile: record.volatile,
        })
    }

    /// Mounts the snapshot's overlay at `target`. Works for any number of layers the
    /// kernel's overlay stack allows, even past the mount-option length limit.
    pub fn mount(&self, id: &str, target: &Path) -> Result<()> {
        let snapshot = self.get(id)?;
        let upper = std::path::absolute(&snapshot.upper).at(&snapshot.upper)?;
        let work = std::path::absolute(&snapshot.work).at(&snapshot.work)?;
        let mut tail = Vec::new();
        for (key, path) in [("upperdir", &upper), ("workdir", &work)] {
            tail.extend_from_slice(format!(",{key}=").as_bytes());
            tail.extend(escape(path));
        }
        if snapshot.volatile {
            // Left by the last volatile mount, cleanly unmounted or not: a volatile snapshot's
            // owner does not mount it again after a host crash (module doc).
            let mark = work.join(VOLATILE_MARK);
            if let Err(e) = std::fs::remove_dir_all(&mark) {
                if e.kind() != io::ErrorKind::NotFound {
                    return Err(Error::io(mark, e));
                }
            }
            let mut volatile = tail.clone();
            volatile.extend_from_slice(b",volatile");
            let mounted =
                self.mount_overlay(&snapshot.lowers, &volatile, target, MountFlags::empty());
            match mounted {
                // Kernels before 5.10 do not know the option: an ordinary mount then.
                Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::EINVAL) => {}
                other => return other,
            }
        }
        self.mount_overlay(&snapshot.lowers, &tail, target, MountFlags::empty())
    }

    /// Mounts just the image layers `layers` (base first) read-only at `target`, for
    /// looking at an image's files. A single layer is bind-mounted (overlay needs two
    /// lower dirs when it has no upper).
    pub fn mount_readonly(&self, layers: &[Digest], target: &Path) -> Result<()> {
        self.check_layers(layers)?;
        match layers {
            [] => Err(store_error(
                target,
                "an image without layers has nothing to mount",
            )),
            [only] => {
                let dir = self.root.layer(only);
                rustix::mount::mount_bind(&dir, target).at(target)?;
                let flags = MountFlags::BIND | MountFlags::RDONLY;
                let remounted = rustix::mount::mount_remount(target, flags, "").at(target);
                if remounted.is_err() {
                    let _ = rustix::mount::unmount(target, UnmountFlags::DETACH);
                }
                remounted
            }
            _ => self.mount_overlay(&self.lowers(layers), b"", target, MountFlags::RDONLY),
        }
    }

    pub fn unmount(&self, target: &Path) -> Result<()> {
        rustix::mount::unmount(target, UnmountFlags::empty()).at(target)
    }

    /// Removes the snapshot (it must not be mounted). A snapshot that is not there is
    /// already removed.
    pub fn remove(&self, id: &str) -> Result<()> {
        let snapshots = self.root.snapshots_dir();
        check_id(&snapshots, id)?;
        let dir = snapshots.join(id);
        let upper = std::path::absolute(dir.join("upper")).at(&dir)?;
        if is_mounted(&upper)? {
            return Err(store_error(dir, "snapshot is mounted"));
        }
        // Out of place first: a removal cut short never leaves a half snapshot under its id.
        let doomed = TempTree::name(&snapshots, ".rm-")?;
        match std::fs::rename(&dir, &doomed) {
            Ok(()) => remove_tree(&doomed),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(dir, e)),
        }
    }

    /// Every layer some snapshot needs: garbage collection roots.
    pub fn layers_in_use(&self) -> Result<Vec<Digest>> {
        let dir = self.root.snapshots_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(dir, e)),
        };
        let mut layers = Vec::new();
        for entry in entries {
            let entry = entry.at(&dir)?;
            // `.new-` snapshots are not in use yet, and their layers were checked present.
            if entry.file_name().as_bytes().starts_with(b".") {
                continue;
            }
            layers.extend(
                read_layers(&entry.path())?
                    .map(|r| r.layers)
                    .unwrap_or_default(),
            );
        }
        layers.sort();
        layers.dedup();
        Ok(layers)
    }

    fn check_layers(&self, layers: &[Digest]) -> Result<()> {
        if layers.len() > MAX_LAYERS {
            return Err(store_error(
                self.root.snapshots_dir(),
                format!(
                    "{} layers: overlayfs stacks at most {MAX_LAYERS}",
                    layers.len()
                ),
            ));
        }
        match layers.iter().find(|layer| !self.root.layer(layer).is_dir()) {
            Some(missing) => Err(Error::Layer {
                layer: missing.to_string(),
                reason: "not unpacked".to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Layer dirs in overlay's order: top-most first.
    fn lowers(&self, layers: &[Digest]) -> Vec<PathBuf> {
        layers.iter().rev().map(|d| self.root.layer(d)).collect()
    }

    /// Mounts overlay with `lowers` and the other options in `tail` (",key=value"...).
    fn mount_overlay(
        &self,
        lowers: &[PathBuf],
        tail: &[u8],
        target: &Path,
        flags: MountFlags,
    ) -> Result<()> {
        let mut tail = tail.to_vec();
        // As containerd does: no inode index, which would tie the layers to this upper.
        if Path::new("/sys/module/overlay/parameters/index").exists() {
            tail.extend_from_slice(b",index=off");
        }
        let target = std::path::absolute(target).at(target)?;
        let lowers = lowers
            .iter()
            .map(|lower| std::path::absolute(lower).at(lower))
            .collect::<Result<Vec<_>>>()?;
        let direct = options(lowers.iter().map(|l| escape(l)), &tail);
        if direct.len() <= OPTIONS_LIMIT {
            return overlay(&target, direct, flags).at(&target);
        }
        let links = TempTree::create(&self.root.snapshots_dir(), ".mnt-")?;
        for (i, lower) in lowers.iter().enumerate() {
            let link = links.path().join(i.to_string());
            std::os::unix::fs::symlink(lower, &link).at(&link)?;
        }
        let short = options((0..lowers.len()).map(|i| i.to_string().into_bytes()), &tail);
        if short.len() > OPTIONS_LIMIT {
            return Err(store_error(target, "overlay mount options too long"));
        }
        own_cwd::run_in(links.path(), || overlay(&target, short, flags)).at(&target)
    }
}

/// `lowerdir=a:b:c` followed by `tail`.
fn options(lowers: impl Iterator<Item = Vec<u8>>, tail: &[u8]) -> Vec<u8> {
    let mut options = b"lowerdir=".to_vec();
    for (i, lower) in lowers.enumerate() {
        if i > 0 {
            options.push(b':');
        }
        options.extend(lower);
    }
    options.extend_from_slice(tail);
    options
}

fn overlay(target: &Path, options: Vec<u8>, flags: MountFlags) -> io::Result<()> {
    let options = CString::new(options).map_err(io::Error::other)?;
    rustix::mount::mount("overlay", target, "overlay", flags, options.as_c_str())?;
    Ok(())
}

/// A path as overlay's option parser reads it: `,` separates options, `:` lower dirs.
fn escape(path: &Path) -> Vec<u8> {
    let mut escaped = Vec::new();
    for &b in path.as_os_str().as_bytes() {
        if matches!(b, b'\\' | b':' | b',') {
            escaped.push(b'\\');
        }
        escaped.push(b);
    }
    escaped
}

/// Whether some overlay mount in this mount namespace uses `upper`.
fn is_mounted(upper: &Path) -> Result<bool> {
    let mountinfo = Path::new("/proc/self/mountinfo");
    let table = std::fs::read(mountinfo).at(mountinfo)?;
    // The kernel shows the option octal-escaped (seq_show_option).
    let mut needle = b"upperdir=".to_vec();
    for &b in upper.as_os_str().as_bytes() {
        if matches!(b, b',' | b'=' | b' ' | b'\t' | b'\n' | b'\\') {
            needle.extend(format!("\\{b:03o}").bytes());
        } else {
            needle.push(b);
        }
    }
    Ok(table.split(|&b| b == b'\n').any(|line| {
        line.windows(needle.len()).enumerate().any(|(i, w)| {
            w == needle.as_slice() && matches!(line.get(i + needle.len()), None | Some(b',' | b' '))
        })
    }))
}

/// What a snapshot dir records; None if it has no layers.json (no such snapshot).
fn read_layers(dir: &Path) -> Result<Option<LayersFile>> {
    let file = dir.join(LAYERS_FILE);
    let data = match std::fs::read(&file) {
        Ok(data) => data,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(file, e)),
    };
    let record: LayersFile = serde_json::from_slice(&data).map_err(|e| Error::InvalidDocument {
        what: file.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(Some(record))
}

/// Ids become directory names: letters, digits, `_`, `-` and `.`, not starting with `.`.
fn check_id(snapshots: &Path, id: &str) -> Result<()> {
    let valid = (1..=128).contains(&id.len())
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        Ok(())
    } else {
        let shown: String = id.chars().take(140).collect();
        Err(store_error(
            snapshots,
            format!("invalid snapshot id {shown:?}: use 1-128 letters, digits, '_', '-', '.'"),
        ))
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).at(path)
}

fn store_error(path: impl Into<PathBuf>, reason: impl Into<String>) -> Error {
    Error::Store {
        path: path.into(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        let dir = Path::new("/s");
        for good in ["abc", "a-b_c.d", "0123456789abcdef"] {
            assert!(check_id(dir, good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a b",
            "-x",
            &"x".repeat(129),
        ] {
            assert!(check_id(dir, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn escapes_option_separators() {
        assert_eq!(escape(Path::new("/a:b,c\\d")), b"/a\\:b\\,c\\\\d");
    }
}
