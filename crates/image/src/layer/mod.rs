//! Unpacked layers: each layer's tar is unpacked once into layers/sha256/<diff id>/ and shared
//! by every image that has it. Extraction never writes outside the layer directory, whatever
//! the tarball says; OCI whiteouts become overlay whiteouts.
//!
//! The layer directory is the unpacked tree itself (an overlay lowerdir). A layer is
//! unpacked into layers/tmp/<pid>-<n>/ and renamed into place only once complete and
//! verified, so a layer directory that exists is always whole.

mod entry_path;
mod extract;
mod own_cwd;
pub mod snapshot;
mod unpack;
mod whiteout;

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{RenameFlags, CWD};
use rustix::io::Errno;

use crate::digest::{Algorithm, Digest};
use crate::error::{Error, IoContext, Result};
use crate::layout::DataRoot;
use crate::media::Compression;

pub struct LayerStore {
    root: DataRoot,
}

/// What unpacking a layer found.
#[derive(Debug, Clone)]
pub struct UnpackedLayer {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Bytes of the uncompressed tar.
    pub tar_size: u64,
}

impl LayerStore {
    /// Opens the layer store, removing what unpacks interrupted by a crash left behind.
    pub fn open(root: &DataRoot) -> Result<LayerStore> {
        let store = LayerStore { root: root.clone() };
        remove_abandoned(&root.layers_tmp_dir(), "")?;
        Ok(store)
    }

    pub fn has(&self, diff_id: &Digest) -> bool {
        self.dir(diff_id).is_dir()
    }

    /// The unpacked tree of a layer: what overlayfs gets as a lowerdir.
    pub fn dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.layer(diff_id)
    }

    /// Unpacks a layer blob read from `blob` (compressed as `compression`) into a fresh
    /// directory under layers/tmp/, hashing the uncompressed stream. If `expected` is given
    /// and the diff ID differs, nothing is kept and a DigestMismatch is returned. On success
    /// the directory is renamed to layers/sha256/<diff id>/ (if another process got there
    /// first, ours is removed: both are the same content). `label` names the layer in errors
    /// (its blob digest, say). `blob` is always read to its end on success.
    pub fn unpack(
        &self,
        blob: &mut dyn Read,
        compression: Compression,
        expected: Option<&Digest>,
        label: &str,
    ) -> Result<UnpackedLayer> {
        let tmp = TempTree::create(&self.root.layers_tmp_dir(), "")?;
        let algorithm = expected.map_or(Algorithm::Sha256, Digest::algorithm);
        let (diff_id, tar_size) =
            unpack::unpack_into(&tmp.path, blob, compression, algorithm, label)?;
        if let Some(expected) = expected {
            expected.check(&format!("layer {label} (uncompressed)"), diff_id.clone())?;
        }
        let dest = self.dir(&diff_id);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).at(parent)?;
        }
        match rustix::fs::renameat_with(CWD, &tmp.path, CWD, &dest, RenameFlags::NOREPLACE) {
            Ok(()) => tmp.keep(),
            // Someone else unpacked the same layer: theirs is as good as ours, which goes.
            Err(Errno::EXIST | Errno::NOTEMPTY) => {}
            Err(e) => return Err(Error::io(&dest, e.into())),
        }
        Ok(UnpackedLayer { diff_id, tar_size })
    }

    /// Removes a layer's directory (gone already is fine). It is first renamed out of
    /// place, so a failure half-way never leaves a partial tree under the layer's name.
    pub fn remove(&self, diff_id: &Digest) -> Result<()> {
        let dir = self.dir(diff_id);
        let tmp = TempTree::name(&self.root.layers_tmp_dir(), "")?;
        match std::fs::rename(&dir, &tmp) {
            Ok(()) => remove_tree(&tmp),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(dir, e)),
        }
    }

    /// Every layer present.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut layers = Vec::new();
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.layers_dir().join(algorithm.name());
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(dir, e)),
            };
            for entry in entries {
                let name = entry.at(&dir)?.file_name();
                let digest = format!("{}:{}", algorithm.name(), name.to_string_lossy());
                // Anything else in there is not ours to report.
                if let Ok(digest) = digest.parse() {
                    layers.push(digest);
                }
            }
        }
        layers.sort();
        Ok(layers)
    }
}

/// Removes the entries of `dir` named `<prefix>[kind-]<pid>-<n>` whose process is gone (killed,
/// or the machine crashed): temp trees nobody will finish or clean up.
pub(crate) fn remove_abandoned(dir: &Path, prefix: &str) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let is_pid = |t: &&str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        let pid = rest.split('-').find(is_pid);
        let alive = pid.is_some_and(|pid| Path::new("/proc").join(pid).exists());
        if !alive {
            remove_tree(&entry.path())?;
        }
    }
    Ok(())
}

/// A temp directory (under layers/tmp/, say) that is removed when dropped, unless kept.
pub(crate) struct TempTree {
    path: PathBuf,
    keep: bool,
}

impl TempTree {
    /// A fresh name in `dir`: `<prefix><pid>-<n>`, so that `remove_abandoned` can tell
    /// whether its owner is still alive.
    pub(crate) fn name(dir: &Path, prefix: &str) -> Result<PathBuf> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(dir).at(dir)?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Ok(dir.join(format!("{prefix}{}-{n}", std::process::id())))
    }

    pub(crate) fn create(dir: &Path, prefix: &str) -> Result<TempTree> {
        loop {
            let path = TempTree::name(dir, prefix)?;
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(TempTree { path, keep: false }),
                // Left by an earlier process with our pid.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(path, e)),
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        if !self.keep {
            // Best effort: the next open removes what is left.
            let _ = remove_tree(&self.path);
        }
    }
}

/// Removes a tree that may hold whiteout devices and read-only directories: as root
/// permissions do not matter, otherwise directories are made writable and it is retried.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            make_dirs_writable(path);
            std::fs::remove_dir_all(path).at(path)
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

fn make_dirs_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
    for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
        make_dirs_writable(&entry.path());
    }
}
