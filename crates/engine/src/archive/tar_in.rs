//! Extracting an untrusted tar under a directory of the container.
//!
//! Each entry's parent directory is opened by its container path with RESOLVE_IN_ROOT (so a
//! symlink the tar made earlier, or one already in the container, resolves inside the
//! container's root), and the entry itself is created with `*at()` calls on that descriptor
//! that never follow a final symlink. Entry paths that climb above the extraction directory
//! are refused.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::EntryType;

use super::{clean_path, entry_components, kind, open_under};
use crate::error::{Error, Result};

/// Extracts `tar` under `dest` (a directory, by its path in the container) of the container
/// root `root`.
pub fn extract(
    root: &OwnedFd,
    dest: &str,
    no_overwrite_dir_non_dir: bool,
    tar: impl Read,
) -> Result<()> {
    let dest_fd = open_under(root, dest, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(|e| Error::Internal(format!("extraction point {dest}: {e}")))?;
    drop(dest_fd);
    let x = Extractor {
        root,
        dest: clean_path(dest),
        no_overwrite_dir_non_dir,
    };
    let mut archive = tar::Archive::new(tar);
    let entries = archive.entries().map_err(|e| bad_tar(&e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad_tar(&e))?;
        x.entry(&mut entry)?;
    }
    // The client still sends the zero blocks after the end marker (tar pads to its record
    // size): read them, so that the answer does not cut its upload short.
    let _ = std::io::copy(&mut archive.into_inner(), &mut std::io::sink());
    Ok(())
}

/// The tar reader quotes the header bytes it could not parse: a garbage upload would be echoed
/// back raw, so only printable ASCII of a bounded length is kept.
fn bad_tar(e: &std::io::Error) -> Error {
    let text: String = e
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(200)
        .collect();
    Error::InvalidParameter(format!("reading the archive: {}", text.trim_end()))
}

struct Extractor<'a> {
    root: &'a OwnedFd,
    /// The extraction directory's container path.
    dest: String,
    no_overwrite_dir_non_dir: bool,
}

fn sys(what: &str, name: &Path, e: Errno) -> Error {
    Error::Internal(format!(
        "extracting {}: {what}: {}",
        name.display(),
        e.desc()
    ))
}

impl Extractor<'_> {
    fn entry<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let path = entry.path().map_err(|e| bad_tar(&e))?.into_owned();
        let comps = entry_components(&path).ok_or_else(|| {
            Error::InvalidParameter(format!(
                "archive entry {} leaves the extraction directory",
                path.display()
            ))
        })?;
        let Some((name, parents)) = comps.split_last() else {
            // The extraction directory itself ("./"): nothing to create.
            return Ok(());
        };
        let header = entry.header();
        let mode = Mode::from_bits_truncate(header.mode().unwrap_or(0o644) & 0o7777);
        let (uid, gid) = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
        let mtime = header.mtime().unwrap_or(0);
        let etype = header.entry_type();
        let parent = self.dir(parents, &path, true)?;
        let is_dir = etype == EntryType::Directory;
        self.make_room(&parent, name, is_dir, &path)?;
        match etype {
            EntryType::Directory => match mkdirat(&parent, name.as_os_str(), mode) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(sys("mkdir", &path, e)),
            },
            EntryType::Regular | EntryType::Continuous => {
                self.file(&parent, name, mode, entry, &path)?
            }
            EntryType::Symlink => {
                let target = entry.link_name().map_err(|e| bad_tar(&e))?.ok_or_else(|| {
                    Error::InvalidParameter(format!("symlink {} has no target", path.display()))
                })?;
                symlinkat(target.as_ref(), &parent, name.as_os_str())
                    .map_err(|e| sys("symlink", &path, e))?;
            }
            EntryType::Link => self.hardlink(&parent, name, entry, &path)?,
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (kind, dev) = match etype {
                    EntryType::Char => (SFlag::S_IFCHR, device(entry.header())),
                    EntryType::Block => (SFlag::S_IFBLK, device(entry.header())),
                    _ => (SFlag::S_IFIFO, 0),
                };
                mknodat(&parent, name.as_os_str(), kind, mode, dev)
                    .map_err(|e| sys("mknod", &path, e))?;
            }
            // pax/GNU extension headers are read by the tar crate; anything else is skipped.
            _ => return Ok(()),
        }
        self.finish(&parent, name, uid, gid, mode, mtime, etype, &path)
    }

    /// Opens the directory `parents` below the extraction point, creating what is missing
    /// when `create`.
    fn dir(&self, parents: &[OsString], path: &Path, create: bool) -> Result<OwnedFd> {
        let mut logical = self.dest.clone();
        let mut fd = open_under(self.root, &logical, OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(|e| Error::Internal(format!("extraction point {}: {e}", self.dest)))?;
        for comp in parents {
            logical.push('/');
            logical.push_str(&comp.to_string_lossy());
            match open_under(self.root, &logical, OFlag::O_PATH | OFlag::O_DIRECTORY) {
                Ok(next) => fd = next,
                Err(e) if create && e.raw_os_error() == Some(libc::ENOENT) => {
                    match mkdirat(&fd, comp.as_os_str(), Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(sys("mkdir", path, e)),
                    }
                    fd = open_under(self.root, &logical, OFlag::O_PATH | OFlag::O_DIRECTORY)
                        .map_err(|e| {
                            Error::Internal(format!("extracting {}: {e}", path.display()))
                        })?;
                }
                Err(e) => {
                    return Err(Error::Internal(format!(
                        "extracting {}: {e}",
                        path.display()
                    )))
                }
            }
        }
        Ok(fd)
    }

    /// Removes what is in the way of a new entry: a non-directory always (a directory stays
    /// for a directory entry); a directory is never replaced by a non-directory.
    fn make_room(&self, parent: &OwnedFd, name: &OsStr, is_dir: bool, path: &Path) -> Result<()> {
        let st = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(sys("stat", path, e)),
        };
        let existing_dir = kind(&st) == SFlag::S_IFDIR;
        match (existing_dir, is_dir) {
            (true, true) => Ok(()),
            (true, false) => Err(Error::InvalidParameter(format!(
                "cannot overwrite directory {:?} with non-directory {:?}",
                path.display().to_string(),
                path.display().to_string()
            ))),
            (false, true) if self.no_overwrite_dir_non_dir => {
                Err(Error::InvalidParameter(format!(
                    "cannot overwrite non-directory {:?} with directory {:?}",
                    path.display().to_string(),
                    path.display().to_string()
                )))
            }
            (false, _) => unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)
                .map_err(|e| sys("unlink", path, e)),
        }
    }

    fn file<R: Read>(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        mode: Mode,
        entry: &mut tar::Entry<'_, R>,
        path: &Path,
    ) -> Result<()> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(parent, name, flags, mode).map_err(|e| sys("create", path, e))?;
        let mut file = std::fs::File::from(fd);
        std::io::copy(entry, &mut file)
            .map_err(|e| Error::Internal(format!("extracting {}: {e}", path.display())))?;
        Ok(())
    }

    fn hardlink<R: Read>(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        entry: &mut tar::Entry<'_, R>,
        path: &Path,
    ) -> Result<()> {
        let link = entry.link_name().map_err(|e| bad_tar(&e))?.ok_or_else(|| {
            Error::InvalidParameter(format!("hard link {} has no target", path.display()))
        })?;
        let comps = entry_components(&link).ok_or_else(|| {
            Error::InvalidParameter(format!(
                "hard link {} points out of the extraction directory",
                path.display()
            ))
        })?;
        let Some((src_name, src_parents)) = comps.split_last() else {
            return Err(Error::InvalidParameter(format!(
                "hard link {} has no target",
                path.display()
            )));
        };
        let src_dir = self.dir(src_parents, path, false)?;
        linkat(
            &src_dir,
            src_name.as_os_str(),
            parent,
            name,
            AtFlags::empty(),
        )
        .map_err(|e| sys("link", path, e))
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        uid: u64,
        gid: u64,
        mode: Mode,
        mtime: u64,
        etype: EntryType,
        path: &Path,
    ) -> Result<()> {
        let (uid, gid) = (
            u32::try_from(uid).unwrap_or(0),
            u32::try_from(gid).unwrap_or(0),
        );
        fchownat(
            parent,
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| sys("chown", path, e))?;
        if etype == EntryType::Symlink || etype == EntryType::Link {
            return Ok(());
        }
        // chown cleared set-id bits, and the umask trimmed the mode: both are the tar's. The
        // chmod goes through an O_PATH descriptor of the entry itself, so a symlink the
        // container swapped in is not followed.
        let fd = openat(
            parent,
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| sys("open", path, e))?;
        let st = nix::sys::stat::fstat(&fd).map_err(|e| sys("stat", path, e))?;
        if kind(&st) != SFlag::S_IFLNK {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                super::fd_path(&fd),
                std::fs::Permissions::from_mode(mode.bits()),
            )
            .map_err(|e| Error::Internal(format!("extracting {}: chmod: {e}", path.display())))?;
        }
        let t = nix::sys::time::TimeSpec::new(i64::try_from(mtime).unwrap_or(0), 0);
        let _ = nix::sys::stat::utimensat(
            parent,
            name,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        );
        Ok(())
    }
}

fn device(header: &tar::Header) -> libc::dev_t {
    let major = header.device_major().ok().flatten().unwrap_or(0);
    let minor = header.device_minor().ok().flatten().unwrap_or(0);
    libc::makedev(major, minor)
}
