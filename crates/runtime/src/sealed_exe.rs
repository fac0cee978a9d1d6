//! CVE-2019-5736: a container process that can reach the runtime's executable through
//! /proc/PID/exe could overwrite the runtime binary on the host. Before it does anything
//! with a container, gorae-runc makes sure the file behind its own /proc/self/exe cannot be
//! written, by re-executing itself from:
//!
//! - a read-only bind mount of its binary, made in a throwaway mount namespace: the runtime
//!   returns to the caller's mount namespace right after the exec, and the file it runs from
//!   stays on that detached read-only mount (EROFS for any writer). Costs two mounts and an
//!   exec; nothing is copied.
//! - or, where mount namespaces are not available (rootless), a sealed memfd copy.
//!
//! A binary already on a read-only mount needs neither. Runtime processes are also
//! non-dumpable until they exec the container's program.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, SealFlag};
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::statvfs::{fstatvfs, FsFlags};

use crate::error::{Error, Result, SysContext};

const SEALS: SealFlag = SealFlag::F_SEAL_SEAL
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_WRITE);

/// Carries the caller's mount namespace across the re-exec.
const HOST_MNTNS_ENV: &str = "_GORAE_RUNC_MNTNS_FD";

/// Whether the running executable cannot be written: on a read-only mount or sealed.
pub fn running_protected() -> bool {
    let Ok(exe) = File::open("/proc/self/exe") else {
        return false;
    };
    if fstatvfs(exe.as_fd()).is_ok_and(|st| st.flags().contains(FsFlags::ST_RDONLY)) {
        return true;
    }
    fcntl(exe.as_fd(), FcntlArg::F_GET_SEALS)
        .is_ok_and(|bits| SealFlag::from_bits_truncate(bits).contains(SEALS))
}

/// Makes /proc/self/exe unwritable (see the module doc); returns when it is. Call it first
/// thing: it may re-execute the program with the same arguments and environment.
pub fn protect_exe() -> Result<()> {
    return_to_caller_mount_ns()?;
    if running_protected() {
        return Ok(());
    }
    match reexec_from_readonly_bind() {
        Ok(never) => match never {},
        // No mount namespace for us (rootless): copy instead.
        Err(_) => reexec_from_sealed_copy(),
    }
}

/// After a re-exec from the read-only bind: go back to the caller's mount namespace.
fn return_to_caller_mount_ns() -> Result<()> {
    let Some(value) = std::env::var_os(HOST_MNTNS_ENV) else {
        return Ok(());
    };
    std::env::remove_var(HOST_MNTNS_ENV);
    let fd: RawFd = value
        .to_str()
        .and_then(|v| v.parse().ok())
        .filter(|fd| *fd > 2)
        .ok_or_else(|| Error::Init(format!("{HOST_MNTNS_ENV}: not a descriptor number")))?;
    // SAFETY: the descriptor was opened by this program before its re-exec and handed over
    // by number; nothing else in this process knows or owns it.
    let ns = unsafe { OwnedFd::from_raw_fd(fd) };
    // setns() moves the cwd to the namespace's root: keep the caller's cwd by path.
    let cwd = nix::unistd::getcwd().ctx(|| "getcwd".into())?;
    setns(ns.as_fd(), CloneFlags::CLONE_NEWNS)
        .ctx(|| "returning to the caller's mount namespace".into())?;
    nix::unistd::chdir(&cwd).ctx(|| format!("chdir {}", cwd.display()))
}

fn reexec_from_readonly_bind() -> Result<std::convert::Infallible> {
    let exe = std::fs::read_link("/proc/self/exe").map_err(|e| Error::io("/proc/self/exe", e))?;
    if !exe.is_absolute() || exe.to_string_lossy().ends_with(" (deleted)") {
        return Err(Error::Init(
            "the runtime's binary has no path to bind".into(),
        ));
    }
    let caller_ns =
        File::open("/proc/self/ns/mnt").map_err(|e| Error::io("/proc/self/ns/mnt", e))?;
    unshare(CloneFlags::CLONE_NEWNS).ctx(|| "unshare(CLONE_NEWNS)".into())?;
    let in_private_ns = || -> Result<std::convert::Infallible> {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx(|| "making / a slave".into())?;
        mount(
            Some(&exe),
            &exe,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx(|| format!("bind-mounting {}", exe.display()))?;
        let flags = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV;
        mount(None::<&str>, &exe, None::<&str>, flags, None::<&str>)
            .ctx(|| format!("remounting {} read-only", exe.display()))?;
        let ns_fd: OwnedFd = caller_ns
            .try_clone()
            .map_err(|e| Error::io("/proc/self/ns/mnt", e))?
            .into();
        fcntl(ns_fd.as_fd(), FcntlArg::F_SETFD(FdFlag::empty()))
            .ctx(|| "passing the mount namespace".into())?;
        let mut env = environment();
        env.push(c_string(OsString::from(format!(
            "{HOST_MNTNS_ENV}={}",
            ns_fd.as_raw_fd()
        )))?);
        let path = c_string(exe.clone().into_os_string())?;
        let err = match nix::unistd::execve(&path, &arguments(), &env) {
            Err(e) => e,
            Ok(never) => match never {},
        };
        Err(Error::sys(format!("re-executing {}", exe.display()), err))
    };
    let cwd = nix::unistd::getcwd().ctx(|| "getcwd".into())?;
    let result = in_private_ns();
    // The exec failed: go back before anything else happens.
    setns(caller_ns.as_fd(), CloneFlags::CLONE_NEWNS)
        .ctx(|| "returning to the caller's mount namespace".into())?;
    nix::unistd::chdir(&cwd).ctx(|| format!("chdir {}", cwd.display()))?;
    result
}

fn reexec_from_sealed_copy() -> Result<()> {
    let mut exe = File::open("/proc/self/exe").map_err(|e| Error::io("/proc/self/exe", e))?;
    let memfd = memfd_create(
        c"gorae-runc",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .ctx(|| "memfd_create".into())?;
    let mut copy = File::from(memfd);
    std::io::copy(&mut exe, &mut copy).map_err(|e| Error::io("memfd copy of /proc/self/exe", e))?;
    fcntl(copy.as_fd(), FcntlArg::F_ADD_SEALS(SEALS)).ctx(|| "sealing the memfd".into())?;
    let err = match nix::unistd::fexecve(copy.as_fd(), &arguments(), &environment()) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    Err(Error::sys("re-executing from the sealed copy", err))
}

fn c_string(s: OsString) -> Result<CString> {
    CString::new(s.into_encoded_bytes())
        .map_err(|_| Error::Init("an argument contains a NUL byte".into()))
}

fn arguments() -> Vec<CString> {
    std::env::args_os()
        .filter_map(|a| c_string(a).ok())
        .collect()
}

fn environment() -> Vec<CString> {
    std::env::vars_os()
        .filter(|(k, _)| k != HOST_MNTNS_ENV)
        .filter_map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            c_string(kv).ok()
        })
        .collect()
}
