//! The container's filesystem: its mounts made inside the rootfs without ever following a
//! symlink out of it, /dev populated, the root switched with pivot_root (or MS_MOVE + chroot),
//! then masked paths, read-only paths and the read-only root applied.
//!
//! Runs in the container's init, in its own mount namespace; nothing here touches the host's
//! mount table (the namespace starts with "/" made a recursive slave).

pub mod devices;
pub mod options;
pub mod secure;

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::{Mount, Spec};

use self::options::MountOptions;
use self::secure::{fd_path, Root};
use crate::cgroups::Cgroup;
use crate::error::{Error, Result, SysContext};

/// What the rootfs is built from.
pub struct RootfsPlan<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    /// Inside a new user namespace: devices are bind-mounted, not created.
    pub in_user_ns: bool,
    pub cgroup: Option<&'a Cgroup>,
    /// The bind mounts' sources, opened by the runtime before the clone (one entry per
    /// mount, `None` for other mounts): inside a user namespace the init could not reach
    /// sources behind directories only host root may enter.
    pub bind_sources: &'a [Option<OwnedFd>],
}

/// For a container in a new user namespace: each bind mount's source as a detached copy of
/// its mount (open_tree), made by the runtime in its own namespaces, where it can reach
/// sources that the init, inside the user namespace, could not. `None` for other mounts, and
/// for every mount when there is no new user namespace (the init binds by path then).
pub fn open_bind_sources(
    spec: &Spec,
    bundle: &Path,
    in_user_ns: bool,
) -> Result<Vec<Option<OwnedFd>>> {
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    mounts
        .iter()
        .map(|m| {
            if !in_user_ns || !is_bind(m) {
                return Ok(None);
            }
            let source = m.source().clone().unwrap_or_default();
            let source = if source.is_absolute() {
                source
            } else {
                bundle.join(source)
            };
            let recursive = m
                .options()
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|o| o == "rbind");
            crate::sys::open_tree_clone(&source, recursive)
                .map(Some)
                .map_err(|e| Error::Config {
                    path: bundle.join("config.json"),
                    reason: format!(
                        "mounts {}: source {}: {e}",
                        m.destination().display(),
                        source.display()
                    ),
                })
        })
        .collect()
}

/// Everything before pivot_root: propagation, the config's mounts, /dev, the cwd.
pub fn prepare(plan: &RootfsPlan<'_>) -> Result<()> {
    let linux = plan.spec.linux().as_ref();
    let propagation = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .map(root_propagation)
        .transpose()?
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    // A shared "/" would leak our mounts to the host and makes pivot_root fail; the configured
    // sharing is applied to the new root after the pivot.
    let initial = if propagation.contains(MsFlags::MS_SHARED) {
        MsFlags::MS_SLAVE | MsFlags::MS_REC
    } else {
        propagation
    };
    mount(None::<&str>, "/", None::<&str>, initial, None::<&str>)
        .ctx(|| "making / a slave mount".into())?;
    mount(
        Some(plan.rootfs),
        plan.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("bind-mounting rootfs {}", plan.rootfs.display()))?;
    let root =
        Root::open(plan.rootfs).ctx(|| format!("opening rootfs {}", plan.rootfs.display()))?;
    let mut dev_from_host = false;
    for (i, m) in plan
        .spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if m.destination() == Path::new("/dev") && is_bind(m) {
            dev_from_host = true;
        }
        mount_one(
            &root,
            plan,
            m,
            plan.bind_sources.get(i).and_then(Option::as_ref),
        )?;
    }
    if !dev_from_host {
        let config_devices = linux.and_then(|l| l.devices().clone()).unwrap_or_default();
        let all = devices::all_devices(&config_devices).map_err(|reason| Error::Config {
            path: plan.bundle.join("config.json"),
            reason,
        })?;
        let old_umask = nix::sys::stat::umask(Mode::empty());
        let made = devices::create(&root, &all, plan.in_user_ns)
            .and_then(|()| devices::create_symlinks(&root));
        nix::sys::stat::umask(old_umask);
        made?;
    }
    if let Some(process) = plan.spec.process() {
        root.mkdir_all(process.cwd())
            .ctx(|| format!("creating cwd {}", process.cwd().display()))?;
    }
    Ok(())
}

fn root_propagation(value: &str) -> Result<MsFlags> {
    let flags = match value {
        "shared" | "rshared" => MsFlags::MS_SHARED,
        "slave" | "rslave" => MsFlags::MS_SLAVE,
        "private" | "rprivate" => MsFlags::MS_PRIVATE,
        "unbindable" | "runbindable" => MsFlags::MS_UNBINDABLE,
        other => {
            return Err(Error::Config {
                path: PathBuf::from("config.json"),
                reason: format!("linux.rootfsPropagation: unknown value {other:?}"),
            })
        }
    };
    Ok(flags | MsFlags::MS_REC)
}

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|o| o == "bind" || o == "rbind")
}

fn mount_one(
    root: &Root,
    plan: &RootfsPlan<'_>,
    m: &Mount,
    source_fd: Option<&OwnedFd>,
) -> Result<()> {
    let dest = m.destination();
    let what = || format!("mount {}", dest.display());
    let mut opts =
        MountOptions::parse(m.options().as_deref().unwrap_or_default()).map_err(|reason| {
            Error::Config {
                path: plan.bundle.join("config.json"),
                reason: format!("mounts {}: {reason}", dest.display()),
            }
        })?;
    let fstype = m.typ().as_deref().unwrap_or("");
    if fstype == "bind" {
        opts.bind = true;
        opts.flags |= MsFlags::MS_BIND;
    }
    if opts.bind {
        return bind_mount(root, plan, m, &opts, source_fd);
    }
    if fstype == "cgroup" || fstype == "cgroup2" {
        return mount_cgroup(root, plan.cgroup, dest, &opts);
    }
    let target = root
        .mkdir_all(dest)
        .ctx(|| format!("creating mount point {}", dest.display()))?;
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(fstype));
    let data = opts.data_string();
    let result = mount(
        Some(source.as_path()),
        &fd_path(target.as_fd()),
        Some(fstype),
        opts.flags,
        data.as_deref(),
    );
    match result {
        // sysfs cannot be mounted for a network namespace the container's user namespace does
        // not own; a read-only recursive bind of the host's /sys is what runc does instead.
        Err(Errno::EPERM) if fstype == "sysfs" => {
            let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
            mount(
                Some("/sys"),
                &fd_path(target.as_fd()),
                None::<&str>,
                flags,
                None::<&str>,
            )
            .ctx(what)?;
        }
        other => other.ctx(what)?,
    }
    apply_after_mount(root, dest, &opts)
}

fn bind_mount(
    root: &Root,
    plan: &RootfsPlan<'_>,
    m: &Mount,
    opts: &MountOptions,
    source_fd: Option<&OwnedFd>,
) -> Result<()> {
    let dest = m.destination();
    let named = m.source().clone().unwrap_or_default();
    let named = if named.is_absolute() {
        named
    } else {
        plan.bundle.join(named)
    };
    let is_dir = match source_fd {
        Some(fd) => {
            let st =
                nix::sys::stat::fstat(fd.as_fd()).ctx(|| format!("stat {}", named.display()))?;
            SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR
        }
        None => std::fs::metadata(&named)
            .map_err(|e| Error::io(&named, e))?
            .is_dir(),
    };
    let target = if is_dir {
        root.mkdir_all(dest)
    } else {
        root.touch(dest)
    }
    .ctx(|| format!("creating mount point {}", dest.display()))?;
    match source_fd {
        // The runtime's detached copy of the source: attach it.
        Some(fd) => crate::sys::move_mount_fds(fd.as_fd(), target.as_fd()),
        None => mount(
            Some(named.as_path()),
            &fd_path(target.as_fd()),
            None::<&str>,
            opts.flags & (MsFlags::MS_BIND | MsFlags::MS_REC),
            None::<&str>,
        ),
    }
    .ctx(|| format!("bind-mounting {} on {}", named.display(), dest.display()))?;
    let remount = opts.remount_flags();
    if !remount.is_empty() {
        remount_bind(root, dest, remount)?;
    }
    apply_after_mount(root, dest, opts)
}

/// Changes the flags of the bind mount at `dest`, keeping the flags the kernel locks (a bind
/// mount inherits nosuid/nodev/noexec/ro from its source and may not drop them in a user ns).
fn remount_bind(root: &Root, dest: &Path, flags: MsFlags) -> Result<()> {
    let mounted = root
        .resolve(dest)
        .ctx(|| format!("reopening {}", dest.display()))?;
    let path = fd_path(mounted.as_fd());
    let locked = locked_flags(&path);
    mount(
        None::<&str>,
        &path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | locked,
        None::<&str>,
    )
    .ctx(|| format!("remounting {}", dest.display()))
}

fn locked_flags(path: &Path) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

/// Propagation and recursive attributes, applied to the mount now at `dest`.
fn apply_after_mount(root: &Root, dest: &Path, opts: &MountOptions) -> Result<()> {
    if opts.propagation.is_empty() && opts.rec_set == 0 && opts.rec_clear == 0 {
        return Ok(());
    }
    let mounted = root
        .resolve(dest)
        .ctx(|| format!("reopening {}", dest.display()))?;
    for flag in &opts.propagation {
        mount(
            None::<&str>,
            &fd_path(mounted.as_fd()),
            None::<&str>,
            *flag,
            None::<&str>,
        )
        .ctx(|| format!("setting propagation of {}", dest.display()))?;
    }
    if opts.rec_set != 0 || opts.rec_clear != 0 {
        crate::sys::mount_setattr_recursive(mounted.as_fd(), opts.rec_set, opts.rec_clear)
            .ctx(|| format!("mount_setattr on {}", dest.display()))?;
    }
    Ok(())
}

/// /sys/fs/cgroup: on cgroup v1 (and hybrid) a tmpfs with one bind of the container's cgroup
/// per hierarchy; on pure v2 a bind of the container's unified cgroup.
fn mount_cgroup(
    root: &Root,
    cgroup: Option<&Cgroup>,
    dest: &Path,
    opts: &MountOptions,
) -> Result<()> {
    let Some(cgroup) = cgroup else { return Ok(()) };
    let flags = opts.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    let ro = opts.flags & MsFlags::MS_RDONLY;
    let target = root
        .mkdir_all(dest)
        .ctx(|| format!("creating {}", dest.display()))?;
    let pure_v2 = cgroup.hierarchies.len() == 1 && cgroup.hierarchies[0].unified;
    if pure_v2 {
        let dir = &cgroup.hierarchies[0].dir;
        mount(
            Some(dir.as_path()),
            &fd_path(target.as_fd()),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx(|| format!("bind-mounting {}", dir.display()))?;
        return remount_bind(root, dest, flags | ro);
    }
    mount(
        Some("tmpfs"),
        &fd_path(target.as_fd()),
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )
    .ctx(|| format!("mounting tmpfs on {}", dest.display()))?;
    for h in &cgroup.hierarchies {
        let Some(name) = h.mount_point.file_name() else {
            continue;
        };
        let sub = dest.join(name);
        let target = root
            .mkdir_all(&sub)
            .ctx(|| format!("creating {}", sub.display()))?;
        mount(
            Some(h.dir.as_path()),
            &fd_path(target.as_fd()),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx(|| format!("bind-mounting {}", h.dir.display()))?;
        remount_bind(root, &sub, flags | ro)?;
    }
    if !ro.is_empty() {
        let mounted = root
            .resolve(dest)
            .ctx(|| format!("reopening {}", dest.display()))?;
        mount(
            None::<&str>,
            &fd_path(mounted.as_fd()),
            None::<&str>,
            MsFlags::MS_REMOUNT | flags | ro,
            Some("mode=755"),
        )
        .ctx(|| format!("remounting {} read-only", dest.display()))?;
    }
    Ok(())
}

/// Makes `rootfs` the root: pivot_root, or with `no_pivot` MS_MOVE and chroot.
pub fn switch_root(rootfs: &Path, no_pivot: bool) -> Result<()> {
    use nix::fcntl::{open, OFlag};
    if no_pivot {
        nix::unistd::chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
        mount(
            Some(rootfs),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .ctx(|| "moving rootfs to /".into())?;
        nix::unistd::chroot(".").ctx(|| "chroot".into())?;
        return nix::unistd::chdir("/").ctx(|| "chdir /".into());
    }
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old_root = open("/", flags, Mode::empty()).ctx(|| "opening /".into())?;
    let new_root =
        open(rootfs, flags, Mode::empty()).ctx(|| format!("opening {}", rootfs.display()))?;
    nix::unistd::fchdir(new_root.as_fd()).ctx(|| "fchdir rootfs".into())?;
    // pivot_root(".", ".") stacks the old root on top of the new one; unmounting "." then
    // removes the old root without needing a directory for it inside the rootfs.
    nix::unistd::pivot_root(".", ".").ctx(|| format!("pivot_root to {}", rootfs.display()))?;
    nix::unistd::fchdir(old_root.as_fd()).ctx(|| "fchdir old root".into())?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| "making the old root a slave".into())?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "unmounting the old root".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}

/// After the switch: rootfs propagation, masked and read-only paths, read-only root.
pub fn finish(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    if let Some(prop) = linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        let flags = root_propagation(prop)?;
        if flags.contains(MsFlags::MS_SHARED) {
            mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
                .ctx(|| "making / shared".into())?;
        }
    }
    for path in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or_default()
    {
        readonly_path(Path::new(path))?;
    }
    let masked = linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or_default();
    if !masked.is_empty() {
        let null = verified_dev_null()?;
        for path in masked {
            mask_path(Path::new(path), &null)?;
        }
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let flags = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | locked_flags(Path::new("/"));
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
            .ctx(|| "remounting / read-only".into())?;
    }
    Ok(())
}

fn readonly_path(path: &Path) -> Result<()> {
    match mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Err(Errno::ENOENT) => return Ok(()),
        other => other.ctx(|| format!("bind-mounting read-only path {}", path.display()))?,
    }
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_REC
        | locked_flags(path);
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
        .ctx(|| format!("remounting {} read-only", path.display()))
}

/// /dev/null, checked to be the real character device 1:3 before anything is masked with it.
fn verified_dev_null() -> Result<PathBuf> {
    let null = PathBuf::from("/dev/null");
    let st = nix::sys::stat::lstat(&null).ctx(|| "stat /dev/null".into())?;
    let is_char = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFCHR;
    if !is_char || st.st_rdev != nix::sys::stat::makedev(1, 3) {
        return Err(Error::Init(
            "/dev/null in the container is not the null device (1:3)".into(),
        ));
    }
    Ok(null)
}

fn mask_path(path: &Path, null: &Path) -> Result<()> {
    let st = match nix::sys::stat::lstat(path) {
        Err(Errno::ENOENT) => return Ok(()),
        other => other.ctx(|| format!("stat masked path {}", path.display()))?,
    };
    let is_dir = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR;
    if is_dir {
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
    } else {
        mount(
            Some(null),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    }
    .ctx(|| format!("masking {}", path.display()))
}
