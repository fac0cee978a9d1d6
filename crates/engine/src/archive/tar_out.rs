//! A tar of a path in the container, written from descriptors: each child is opened with
//! `openat(dir, name, O_PATH | O_NOFOLLOW)` and read through its own descriptor, so a symlink
//! swapped in during the walk is archived as a symlink, never followed.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use tar::{EntryType, Header};

use super::{fd_path, kind, plain_name, Target};

/// Writes the tar of `target` (a directory with everything below it, its own name as the top
/// entry) to `sink`.
pub fn write_tar(target: Target, sink: impl Write) -> std::io::Result<()> {
    let mut builder = tar::Builder::new(sink);
    builder.follow_symlinks(false);
    // Directories still to be listed: their descriptor and their name in the tar.
    let mut pending: Vec<(OwnedFd, PathBuf)> = Vec::new();
    let top = PathBuf::from(&target.name);
    if append(&mut builder, &target.fd, &target.stat, &top)? {
        pending.push((target.fd, top));
    }
    while let Some((dir, name)) = pending.pop() {
        let mut children: Vec<std::ffi::OsString> = std::fs::read_dir(fd_path(&dir))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        children.sort();
        let mut subdirs = Vec::new();
        for child in children {
            let Some(child) = plain_name(&child) else {
                continue;
            };
            let fd = match openat(
                &dir,
                child,
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                // Gone meanwhile (a running container changes its files): skip it.
                Err(nix::errno::Errno::ENOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            let st = nix::sys::stat::fstat(&fd)?;
            let path = name.join(child);
            if append(&mut builder, &fd, &st, &path)? {
                subdirs.push((fd, path));
            }
        }
        // Depth first, in name order: the last pushed is listed next.
        pending.extend(subdirs.into_iter().rev());
    }
    builder.into_inner()?.flush()
}

/// Appends one entry; `true` when it is a directory whose children come next.
fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    fd: &OwnedFd,
    st: &FileStat,
    path: &std::path::Path,
) -> std::io::Result<bool> {
    let mut header = Header::new_gnu();
    header.set_mode(st.st_mode & 0o7777);
    header.set_uid(u64::from(st.st_uid));
    header.set_gid(u64::from(st.st_gid));
    header.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    header.set_size(0);
    let k = kind(st);
    if k == SFlag::S_IFDIR {
        header.set_entry_type(EntryType::Directory);
        let mut name = path.as_os_str().to_os_string();
        name.push("/");
        builder.append_data(&mut header, PathBuf::from(name), std::io::empty())?;
        return Ok(true);
    }
    if k == SFlag::S_IFLNK {
        header.set_entry_type(EntryType::Symlink);
        let target = nix::fcntl::readlinkat(fd, "")?;
        builder.append_link(&mut header, path, target)?;
        return Ok(false);
    }
    if k == SFlag::S_IFREG {
        return append_file(builder, fd, header, path).map(|()| false);
    }
    let entry_type = match k {
        SFlag::S_IFCHR => EntryType::Char,
        SFlag::S_IFBLK => EntryType::Block,
        SFlag::S_IFIFO => EntryType::Fifo,
        // Sockets have no tar form; docker leaves them out too.
        _ => return Ok(false),
    };
    header.set_entry_type(entry_type);
    let rdev = st.st_rdev;
    header.set_device_major(libc::major(rdev))?;
    header.set_device_minor(libc::minor(rdev))?;
    builder.append_data(&mut header, path, std::io::empty())?;
    Ok(false)
}

fn append_file<W: Write>(
    builder: &mut tar::Builder<W>,
    fd: &OwnedFd,
    mut header: Header,
    path: &std::path::Path,
) -> std::io::Result<()> {
    // Reopening the O_PATH descriptor through procfs opens this very inode; O_NONBLOCK keeps
    // a fifo swapped in from blocking the open.
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fd_path(fd))?;
    let st = nix::sys::stat::fstat(&file)?;
    if kind(&st) != SFlag::S_IFREG {
        return Ok(());
    }
    let size = u64::try_from(st.st_size).unwrap_or(0);
    header.set_entry_type(EntryType::Regular);
    header.set_size(size);
    // The file may grow or shrink while it is read: exactly `size` bytes go in, zero-padded.
    let body = file.take(size).chain(std::io::repeat(0)).take(size);
    builder.append_data(&mut header, path, body)
}
