//! Writes a layer tar's entries into a directory, treating the tar as hostile.
//!
//! Every filesystem operation is relative to a directory fd, and parent directories are
//! opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)` from
//! the layer root, so no symlink (whatever the tar made earlier) is ever followed and nothing
//! outside the root can be reached. Files are created with `O_EXCL | O_NOFOLLOW`; links and
//! device nodes with the `*at` calls, which never follow the last component either.
//!
//! Needs root: ownership, device nodes, whiteouts and `trusted.` xattrs all do.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::fs::{
    AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;
use tar::EntryType;

use super::entry_path::EntryPath;
use super::unpack::MetadataBudget;
use super::whiteout::{Whiteout, OPAQUE_XATTR};
use crate::error::{Error, IoContext, Result};

/// Never follow a symlink, never leave the directory resolved from.
const BENEATH: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);
const DIR_PATH: OFlags = OFlags::PATH.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);
const DIR_READ: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);
const NEW_FILE: OFlags = OFlags::WRONLY
    .union(OFlags::CREATE)
    .union(OFlags::EXCL)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Big reads keep inflate and write syscalls efficient for large files.
const COPY_BUFFER: usize = 1 << 20;
/// Files at least this big get holes where their content is zeros.
const SPARSE_MIN: u64 = 1 << 20;
const HOLE_BLOCK: usize = 64 << 10;
/// A GNU sparse entry's size costs nothing in the tar, but its holes are still read (as
/// zeros) here: past this, a tiny tar could keep unpacking busy for minutes.
const SPARSE_LIMIT: u64 = 16 << 30;

/// Metadata of one entry, as the tar header and its PAX records give it.
struct Meta {
    mode: u32,
    uid: Uid,
    gid: Gid,
    mtime: Timespec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub(crate) struct Extractor {
    layer: String,
    root_path: PathBuf,
    root: OwnedFd,
    /// The parent directory of the previous entry: tars list siblings together, so most
    /// entries reuse it instead of resolving their path again.
    parent: Option<(Vec<u8>, OwnedFd)>,
    /// Directories' mtimes, set at the end, once nothing more is created in them.
    dir_times: Vec<(Vec<u8>, Timespec)>,
    buf: Vec<u8>,
    /// The current entry's name as written in the tar, for errors.
    current: Vec<u8>,
}

impl Extractor {
    /// Prepares extraction into `root`, an existing empty directory.
    pub(crate) fn new(root: &Path, layer: &str) -> Result<Extractor> {
        let fd = rustix::fs::open(root, DIR_READ, Mode::empty()).at(root)?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o755)).at(root)?;
        Ok(Extractor {
            layer: layer.to_string(),
            root_path: root.to_path_buf(),
            root: fd,
            parent: None,
            dir_times: Vec::new(),
            buf: vec![0; COPY_BUFFER],
            current: Vec::new(),
        })
    }

    /// Extracts every entry up to the tar's end-of-archive marker.
    pub(crate) fn run<R: Read>(
        &mut self,
        archive: &mut tar::Archive<R>,
        budget: &MetadataBudget,
    ) -> Result<()> {
        let mut entries = archive.entries().map_err(|e| self.tar_error(e))?;
        let mut data_end = 0;
        loop {
            budget.start();
            let next = entries.next();
            budget.stop();
            let mut entry = match next {
                None => break,
                // The stream stopped after the last entry's data, without its padding or
                // the end-of-archive blocks (umoci writes such layers). Go's archive/tar,
                // which every other client uses, reads that as the end; so do we.
                Some(Err(_)) if data_end > 0 && budget.ended_after(data_end) => break,
                Some(entry) => entry.map_err(|e| self.tar_error(e))?,
            };
            data_end = entry.raw_file_position() + entry.size();
            self.current = entry.path_bytes().into_owned();
            self.entry(&mut entry)?;
            // Whatever the entry type did not use (a hardlink's data, say) is skipped here,
            // so the parser's own skip never counts against the metadata budget.
            io::copy(&mut entry, &mut io::sink()).map_err(|e| self.tar_error(e))?;
        }
        self.parent = None;
        self.set_dir_times()
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        let path = EntryPath::parse(&self.current).map_err(|r| self.refuse(r))?;
        match Whiteout::classify(path.name()).map_err(|r| self.refuse(r))? {
            Whiteout::None => {}
            Whiteout::Skip => return Ok(()),
            Whiteout::Opaque => return self.opaque(path.dir()),
            Whiteout::Remove(hidden) => return self.whiteout(path.dir(), hidden),
        }
        let meta = Meta::read(entry).map_err(|r| self.refuse(r))?;
        let is_dir = kind.is_dir() || (kind == EntryType::Regular && self.current.ends_with(b"/"));
        if path.is_root() {
            if !is_dir {
                return Err(self.refuse("the layer root must be a directory"));
            }
            let fd = rustix::fs::openat(&self.root, ".", DIR_READ, Mode::empty())
                .map_err(|e| self.io_error(e))?;
            self.apply(&fd, &meta)?;
            self.dir_times.push((Vec::new(), meta.mtime));
            return Ok(());
        }
        let (dir, parent) = self.take_parent(path.dir())?;
        let result = match kind {
            _ if is_dir => self.directory(&parent, &path, &meta),
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.file(&parent, path.name(), entry, &meta)
            }
            EntryType::Symlink => self.symlink(&parent, path.name(), entry, &meta),
            EntryType::Link => self.hardlink(&parent, &path, entry),
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                self.node(&parent, path.name(), entry, &meta)
            }
            other => Err(self.refuse(format!(
                "unsupported entry type {:?}",
                other.as_byte() as char
            ))),
        };
        self.parent = Some((dir, parent));
        result
    }

    fn directory(&mut self, parent: &OwnedFd, path: &EntryPath, meta: &Meta) -> Result<()> {
        let name = path.name();
        let mode = Mode::from_raw_mode(0o700);
        match rustix::fs::mkdirat(parent, name, mode) {
            Ok(()) => {}
            // A directory over a directory keeps it (and what is in it).
            Err(Errno::EXIST) if is_dir_at(parent, name) => {}
            Err(Errno::EXIST) => {
                self.clear(parent, name)?;
                rustix::fs::mkdirat(parent, name, mode).map_err(|e| self.io_error(e))?;
            }
            Err(e) => return Err(self.io_error(e)),
        }
        let fd = rustix::fs::openat(parent, name, DIR_READ, Mode::empty())
            .map_err(|e| self.io_error(e))?;
        self.apply(&fd, meta)?;
        self.dir_times.push((path.as_bytes().to_vec(), meta.mtime));
        Ok(())
    }

    fn file<R: Read>(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        entry: &mut tar::Entry<R>,
        meta: &Meta,
    ) -> Result<()> {
        if entry.header().entry_type().is_gnu_sparse() && entry.size() > SPARSE_LIMIT {
            let limit = SPARSE_LIMIT >> 30;
            return Err(self.refuse(format!("sparse file larger than {limit} GiB")));
        }
        let private = Mode::from_raw_mode(0o600);
        let fd = self.create(parent, name, || {
            rustix::fs::openat(parent, name, NEW_FILE, private)
        })?;
        let file = File::from(fd);
        self.copy_data(entry, &file)?;
        self.apply(&file, meta)?;
        rustix::fs::futimens(&file, &times(meta.mtime)).map_err(|e| self.io_error(e))
    }

    /// Copies the entry's content; big files get holes where they are all zeros.
    fn copy_data<R: Read>(&mut self, entry: &mut tar::Entry<R>, file: &File) -> Result<()> {
        let sparse = entry.size() >= SPARSE_MIN;
        let mut offset = 0u64;
        let mut buf = std::mem::take(&mut self.buf);
        let result = loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(self.tar_error(e)),
            };
            if let Err(e) = write_chunk(file, &buf[..n], offset, sparse) {
                break Err(self.io_error(e));
            }
            offset += n as u64;
        };
        self.buf = buf;
        result?;
        // A trailing hole is not written at all: the size has to be set.
        if sparse {
            file.set_len(offset).map_err(|e| self.io_error(e))?;
        }
        Ok(())
    }

    fn symlink<R: Read>(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        entry: &tar::Entry<R>,
        meta: &Meta,
    ) -> Result<()> {
        let target = match entry.link_name_bytes() {
            Some(target) if !target.is_empty() => target.into_owned(),
            _ => return Err(self.refuse("symlink without a target")),
        };
        // Any target is fine: nothing here ever follows it.
        self.create(parent, name, || {
            rustix::fs::symlinkat(target.as_slice(), parent, name)
        })?;
        self.apply_at(parent, name, meta, false)
    }

    fn hardlink<R: Read>(
        &mut self,
        parent: &OwnedFd,
        path: &EntryPath,
        entry: &tar::Entry<R>,
    ) -> Result<()> {
        let raw = entry.link_name_bytes().unwrap_or_default().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let target = EntryPath::parse(&raw)
            .map_err(|r| self.refuse(format!("hardlink target {shown:?}: {r}")))?;
        if target.is_root() {
            return Err(self.refuse("hardlink to the layer root"));
        }
        if target == *path {
            return Ok(());
        }
        let outside = || format!("hardlink target {shown:?} is not a file in the layer");
        let target_dir = match self.resolve(target.dir(), false) {
            Err(Error::Io { .. }) => return Err(self.refuse(outside())),
            other => other?,
        };
        let link = || {
            rustix::fs::linkat(
                &target_dir,
                target.name(),
                parent,
                path.name(),
                AtFlags::empty(),
            )
        };
        match self.create(parent, path.name(), link) {
            Err(Error::LayerEntryIo { source, .. })
                if matches!(source.raw_os_error(), Some(libc::ENOENT | libc::EPERM)) =>
            {
                Err(self.refuse(outside()))
            }
            other => other,
        }
    }

    /// Character and block devices and fifos.
    fn node<R: Read>(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        entry: &tar::Entry<R>,
        meta: &Meta,
    ) -> Result<()> {
        let header = entry.header();
        let (file_type, dev) = match header.entry_type() {
            EntryType::Fifo => (FileType::Fifo, 0),
            kind => {
                let numbers = header
                    .device_major()
                    .and_then(|major| Ok((major, header.device_minor()?)));
                let Ok((Some(major), Some(minor))) = numbers else {
                    return Err(self.refuse("device entry without valid device numbers"));
                };
                let file_type = if kind == EntryType::Char {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                (file_type, rustix::fs::makedev(major, minor))
            }
        };
        let private = Mode::from_raw_mode(0o600);
        self.create(parent, name, || {
            rustix::fs::mknodat(parent, name, file_type, private, dev)
        })?;
        self.apply_at(parent, name, meta, true)
    }

    fn whiteout(&mut self, dir: &[u8], hidden: &[u8]) -> Result<()> {
        let (key, parent) = self.take_parent(dir)?;
        let result = self.create(&parent, hidden, || {
            let none = Mode::empty();
            rustix::fs::mknodat(&parent, hidden, FileType::CharacterDevice, none, 0)
        });
        self.parent = Some((key, parent));
        result
    }

    fn opaque(&mut self, dir: &[u8]) -> Result<()> {
        let (key, fd) = self.take_parent(dir)?;
        let result = rustix::fs::openat(&fd, ".", DIR_READ, Mode::empty())
            .and_then(|dir| rustix::fs::fsetxattr(&dir, OPAQUE_XATTR, b"y", XattrFlags::empty()))
            .map_err(|e| self.io_error(e));
        self.parent = Some((key, fd));
        result
    }

    /// Runs `make`; if the name is taken (by an earlier entry), removes that and retries:
    /// later entries replace earlier ones.
    fn create<T>(
        &self,
        parent: &OwnedFd,
        name: &[u8],
        make: impl Fn() -> rustix::io::Result<T>,
    ) -> Result<T> {
        match make() {
            Err(Errno::EXIST) => {
                self.clear(parent, name)?;
                make().map_err(|e| self.io_error(e))
            }
            other => other.map_err(|e| self.io_error(e)),
        }
    }

    /// Removes `name` in `parent`, whatever it is (a directory with all it holds).
    fn clear(&self, parent: &OwnedFd, name: &[u8]) -> Result<()> {
        match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(Errno::ISDIR) => {
                std::fs::remove_dir_all(proc_path(parent, name)).map_err(|e| self.io_error(e))
            }
            Err(e) => Err(self.io_error(e)),
        }
    }

    /// Owner, mode and xattrs of something open (a file or directory), in that order:
    /// chown clears setuid bits and file capabilities.
    fn apply(&self, fd: &impl AsFd, meta: &Meta) -> Result<()> {
        rustix::fs::fchown(fd, Some(meta.uid), Some(meta.gid)).map_err(|e| self.io_error(e))?;
        rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode)).map_err(|e| self.io_error(e))?;
        for (name, value) in meta.xattrs() {
            let set = rustix::fs::fsetxattr(fd, name, value, XattrFlags::empty());
            self.xattr_result(set)?;
        }
        Ok(())
    }

    /// The same for a symlink or device node, by name: nothing opens or follows them.
    fn apply_at(&self, parent: &OwnedFd, name: &[u8], meta: &Meta, chmod: bool) -> Result<()> {
        let err = |e| self.io_error(e);
        let nofollow = AtFlags::SYMLINK_NOFOLLOW;
        rustix::fs::chownat(parent, name, Some(meta.uid), Some(meta.gid), nofollow).map_err(err)?;
        if chmod {
            let mode = Mode::from_raw_mode(meta.mode);
            rustix::fs::chmodat(parent, name, mode, AtFlags::empty()).map_err(err)?;
        }
        for (xattr, value) in meta.xattrs() {
            let set =
                rustix::fs::lsetxattr(proc_path(parent, name), xattr, value, XattrFlags::empty());
            self.xattr_result(set)?;
        }
        rustix::fs::utimensat(parent, name, &times(meta.mtime), nofollow).map_err(err)
    }

    /// Filesystems without xattr support just lose them, as with `tar xf`.
    fn xattr_result(&self, result: rustix::io::Result<()>) -> Result<()> {
        match result {
            Ok(()) | Err(Errno::NOTSUP) => Ok(()),
            Err(e) => Err(self.io_error(e)),
        }
    }

    /// The parent directory `dir` (relative to the root), from the cache or resolved,
    /// creating missing directories as tar does. Callers put it back in `self.parent`.
    fn take_parent(&mut self, dir: &[u8]) -> Result<(Vec<u8>, OwnedFd)> {
        if let Some((key, fd)) = self.parent.take() {
            if key == dir {
                return Ok((key, fd));
            }
        }
        Ok((dir.to_vec(), self.resolve(dir, true)?))
    }

    /// Opens directory `dir` beneath the root without following any symlink.
    fn resolve(&self, dir: &[u8], create: bool) -> Result<OwnedFd> {
        let whole = if dir.is_empty() { b"." as &[u8] } else { dir };
        match rustix::fs::openat2(&self.root, whole, DIR_PATH, Mode::empty(), BENEATH) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) if create => {}
            Err(e) => return Err(self.resolve_error(e, dir)),
        }
        let mut fd = rustix::fs::openat2(&self.root, ".", DIR_PATH, Mode::empty(), BENEATH)
            .map_err(|e| self.io_error(e))?;
        for component in dir.split(|&b| b == b'/') {
            let open =
                |fd: &OwnedFd| rustix::fs::openat2(fd, component, DIR_PATH, Mode::empty(), BENEATH);
            fd = match open(&fd) {
                Err(Errno::NOENT) => {
                    match rustix::fs::mkdirat(&fd, component, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(self.io_error(e)),
                    }
                    open(&fd)
                }
                other => other,
            }
            .map_err(|e| self.resolve_error(e, dir))?;
        }
        Ok(fd)
    }

    fn resolve_error(&self, errno: Errno, dir: &[u8]) -> Error {
        let dir = String::from_utf8_lossy(dir);
        match errno {
            Errno::LOOP => self.refuse(format!(
                "{dir:?} is or goes through a symlink: refusing to write through it"
            )),
            Errno::NOTDIR => self.refuse(format!("{dir:?} is not a directory")),
            Errno::XDEV => self.refuse(format!("{dir:?} leads out of the layer")),
            Errno::NOENT => Error::io(self.root_path.join(&*dir), errno.into()),
            e => self.io_error(e),
        }
    }

    fn set_dir_times(&mut self) -> Result<()> {
        for (dir, mtime) in std::mem::take(&mut self.dir_times) {
            let path = if dir.is_empty() { b"." as &[u8] } else { &dir };
            let flags = DIR_READ;
            let fd = match rustix::fs::openat2(&self.root, path, flags, Mode::empty(), BENEATH) {
                Ok(fd) => fd,
                // A later entry replaced it.
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(e) => {
                    return Err(Error::io(
                        self.root_path.join(OsStr::from_bytes(&dir)),
                        e.into(),
                    ))
                }
            };
            rustix::fs::futimens(&fd, &times(mtime))
                .at(self.root_path.join(OsStr::from_bytes(&dir)))?;
        }
        Ok(())
    }

    fn entry_name(&self) -> String {
        String::from_utf8_lossy(&self.current).into_owned()
    }

    fn refuse(&self, reason: impl Into<String>) -> Error {
        Error::UnsafeLayerEntry {
            layer: self.layer.clone(),
            entry: self.entry_name(),
            reason: reason.into(),
        }
    }

    fn io_error(&self, source: impl Into<io::Error>) -> Error {
        Error::LayerEntryIo {
            layer: self.layer.clone(),
            entry: self.entry_name(),
            source: source.into(),
        }
    }

    fn tar_error(&self, e: io::Error) -> Error {
        let after = if self.current.is_empty() {
            String::new()
        } else {
            format!(" (after entry {:?})", self.entry_name())
        };
        Error::Layer {
            layer: self.layer.clone(),
            reason: format!("reading the tar{after}: {e}"),
        }
    }
}

impl Meta {
    fn read<R: Read>(entry: &mut tar::Entry<R>) -> Result<Meta, String> {
        let header = entry.header();
        let field = |what: &str, e: io::Error| format!("invalid {what} in the header: {e}");
        let id = |value: u64, what: &str| {
            u32::try_from(value)
                .ok()
                .filter(|&id| id != u32::MAX)
                .ok_or_else(|| format!("{what} {value} is out of range"))
        };
        // Empty numeric fields mean 0, as Go's archive/tar (which wrote many layers) reads them.
        let number = |raw: &[u8], value: io::Result<u64>, what: &str| {
            if raw.iter().all(|&b| b == 0 || b == b' ') {
                return Ok(0);
            }
            value.map_err(|e| field(what, e))
        };
        let old = header.as_old();
        let mode = number(&old.mode, header.mode().map(u64::from), "mode")? as u32 & 0o7777;
        let uid = id(number(&old.uid, header.uid(), "uid")?, "uid")?;
        let gid = id(number(&old.gid, header.gid(), "gid")?, "gid")?;
        let secs = number(&old.mtime, header.mtime(), "mtime")?;
        let mut mtime = Timespec {
            tv_sec: i64::try_from(secs).unwrap_or(i64::MAX),
            tv_nsec: 0,
        };
        let mut xattrs = Vec::new();
        let pax = entry
            .pax_extensions()
            .map_err(|e| field("PAX records", e))?;
        for record in pax.into_iter().flatten() {
            let record = record.map_err(|e| field("PAX record", e))?;
            let key = record.key_bytes();
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                xattrs.push((name.to_vec(), record.value_bytes().to_vec()));
            } else if key == b"mtime" {
                mtime = parse_pax_time(record.value_bytes()).unwrap_or(mtime);
            }
        }
        Ok(Meta {
            mode,
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(gid),
            mtime,
            xattrs,
        })
    }

    /// The xattrs to set. A layer must not forge overlayfs's own (redirects, metacopy,
    /// opacity; `user.` ones when overlay runs unprivileged): those come only from whiteouts.
    fn xattrs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let overlay = |name: &[u8]| {
            name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
        };
        self.xattrs
            .iter()
            .filter(move |(name, _)| !overlay(name))
            .map(|(name, value)| (name.as_slice(), value.as_slice()))
    }
}

/// A PAX time: decimal seconds with an optional fraction (`1700000000.5`).
fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let value = std::str::from_utf8(value).ok()?;
    let (secs, fraction) = value.split_once('.').unwrap_or((value, ""));
    let tv_sec = secs.parse::<i64>().ok()?;
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(9)
        .collect();
    let nanos = digits.parse::<i64>().ok()?;
    // Before the epoch the fraction counts backwards too; a Timespec's nanoseconds do not.
    if secs.starts_with('-') && nanos > 0 {
        return Some(Timespec {
            tv_sec: tv_sec.checked_sub(1)?,
            tv_nsec: 1_000_000_000 - nanos,
        });
    }
    let tv_nsec = nanos;
    Some(Timespec { tv_sec, tv_nsec })
}

fn times(mtime: Timespec) -> Timestamps {
    Timestamps {
        last_access: mtime,
        last_modification: mtime,
    }
}

fn is_dir_at(parent: &OwnedFd, name: &[u8]) -> bool {
    rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
}

/// A path naming `name` in the directory `parent` is open on, for the calls that have no
/// fd-relative form (lsetxattr, remove_dir_all). Only the fd is a magic link; `name` is one
/// component and the callers do not follow it.
fn proc_path(parent: &OwnedFd, name: &[u8]) -> PathBuf {
    Path::new(&format!("/proc/self/fd/{}", parent.as_raw_fd())).join(OsStr::from_bytes(name))
}

/// Writes `data` at `offset`; in sparse mode, blocks of zeros are left as holes.
fn write_chunk(file: &File, data: &[u8], offset: u64, sparse: bool) -> io::Result<()> {
    if !sparse {
        return file.write_all_at(data, offset);
    }
    let mut at = offset;
    for block in data.chunks(HOLE_BLOCK) {
        if !is_zeros(block) {
            file.write_all_at(block, at)?;
        }
        at += block.len() as u64;
    }
    Ok(())
}

fn is_zeros(block: &[u8]) -> bool {
    // OR-folding a page at a time vectorises; stopping at the first non-zero page keeps
    // ordinary data cheap.
    block
        .chunks(4096)
        .all(|page| page.iter().fold(0u8, |acc, &b| acc | b) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        let t = parse_pax_time(b"1700000000.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1700000000, 250_000_000));
        let t = parse_pax_time(b"12").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (12, 0));
        let t = parse_pax_time(b"-1.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 500_000_000));
        let t = parse_pax_time(b"-0.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-1, 750_000_000));
        assert!(parse_pax_time(b"x").is_none());
        assert!(parse_pax_time(b"1.2x").is_none());
    }

    #[test]
    fn zero_blocks() {
        assert!(is_zeros(&[0; 10000]));
        let mut v = vec![0; 10000];
        v[9999] = 1;
        assert!(!is_zeros(&v));
    }
}
