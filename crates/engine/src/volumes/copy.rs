//! Copy-up: a volume mounted where the image has content gets that content when the volume
//! is empty, as docker does on a volume's first use (unless `nocopy`). Files keep their
//! modes, owners and modification times; symlinks are copied as symlinks, never followed;
//! device nodes and fifos are recreated; extended attributes are not copied.
//!
//! The source is the container's root before it ever ran (image content only); its path in
//! the image is resolved inside the root (openat2 RESOLVE_IN_ROOT), so an image's symlink
//! cannot point the copy at the host's files.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;

use crate::error::{IoContext, Result};

/// Copies `dest_in_image` (a path in the container) from `rootfs` into `volume_dir` if the
/// volume is empty and the path is a directory in the image. Returns whether it copied.
pub fn copy_up(rootfs: &Path, dest_in_image: &str, volume_dir: &Path) -> Result<bool> {
    let is_empty = std::fs::read_dir(volume_dir)
        .at(volume_dir)?
        .next()
        .is_none();
    if !is_empty {
        return Ok(false);
    }
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    let fd = match crate::archive::open_in_root(rootfs, dest_in_image, flags) {
        Ok(fd) => fd,
        // Nothing (or no directory) there in the image: nothing to copy.
        Err(_) => return Ok(false),
    };
    let src = std::fs::read_link(crate::archive::fd_path(&fd)).at(crate::archive::fd_path(&fd))?;
    let root = rootfs.canonicalize().at(rootfs)?;
    if !src.starts_with(&root) {
        return Ok(false);
    }
    copy_tree(&src, volume_dir)?;
    copy_attributes(&src, volume_dir)?;
    Ok(true)
}

/// Copies the entries of `src` into the existing directory `dst`, depth first.
fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    for entry in std::fs::read_dir(src).at(src)? {
        let entry = entry.at(src)?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&from).at(&from)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            std::fs::create_dir(&to).at(&to)?;
            copy_tree(&from, &to)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&from).at(&from)?;
            std::os::unix::fs::symlink(&target, &to).at(&to)?;
        } else if kind.is_file() {
            std::fs::copy(&from, &to).at(&to)?;
        } else {
            let sflag = SFlag::from_bits_truncate(meta.mode() & SFlag::S_IFMT.bits());
            let perm = Mode::from_bits_truncate(meta.mode() & 0o7777);
            nix::sys::stat::mknod(&to, sflag, perm, meta.rdev())
                .map_err(|e| crate::error::Error::io(&to, e.into()))?;
        }
        copy_attributes(&from, &to)?;
    }
    Ok(())
}

/// Owner, mode (not for symlinks) and times of `from` onto `to`.
fn copy_attributes(from: &Path, to: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(from).at(from)?;
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid())).at(to)?;
    if !meta.file_type().is_symlink() {
        let perm = std::fs::Permissions::from_mode(meta.mode() & 0o7777);
        std::fs::set_permissions(to, perm).at(to)?;
    }
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        to,
        &atime,
        &mtime,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| crate::error::Error::io(to, e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_into_an_empty_volume_only() {
        let root = tempfile::tempdir().unwrap();
        let rootfs = root.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("data/sub")).unwrap();
        std::fs::write(rootfs.join("data/sub/f"), "hi").unwrap();
        std::fs::set_permissions(
            rootfs.join("data/sub/f"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", rootfs.join("data/link")).unwrap();
        // An image symlink to an absolute path resolves inside the root.
        std::os::unix::fs::symlink("/data", rootfs.join("alias")).unwrap();
        let vol = root.path().join("vol");
        std::fs::create_dir(&vol).unwrap();
        assert!(copy_up(&rootfs, "/alias", &vol).unwrap());
        assert_eq!(std::fs::read_to_string(vol.join("sub/f")).unwrap(), "hi");
        let mode = std::fs::metadata(vol.join("sub/f")).unwrap().mode();
        assert_eq!(mode & 0o7777, 0o640);
        assert_eq!(
            std::fs::read_link(vol.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        // Not empty any more: a second copy leaves it alone.
        std::fs::remove_file(vol.join("sub/f")).unwrap();
        assert!(!copy_up(&rootfs, "/data", &vol).unwrap());
        assert!(!vol.join("sub/f").exists());
        let empty = root.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(!copy_up(&rootfs, "/nothing/here", &empty).unwrap());
    }
}
