//! CVE-2019-5736: a container process that can reach the runtime's executable through
//! /proc/PID/exe could overwrite the runtime binary on the host. Before it does anything
//! with a container, gorae-runc re-executes itself from a sealed in-memory copy (a memfd
//! that can never be written again), so /proc/PID/exe of every runtime process leads
//! nowhere writable. Runtime processes are also non-dumpable until they exec.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsFd;

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

use crate::error::{Error, Result, SysContext};

const SEALS: SealFlag = SealFlag::F_SEAL_SEAL
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_WRITE);

/// Whether the running executable is a sealed copy.
pub fn running_sealed() -> bool {
    let Ok(exe) = File::open("/proc/self/exe") else {
        return false;
    };
    match fcntl(exe.as_fd(), FcntlArg::F_GET_SEALS) {
        Ok(bits) => SealFlag::from_bits_truncate(bits).contains(SEALS),
        Err(_) => false,
    }
}

/// Re-executes the current program from a sealed memfd copy of itself, with the same
/// arguments and environment; returns at once if already running from one.
pub fn reexec_sealed() -> Result<()> {
    if running_sealed() {
        return Ok(());
    }
    let mut exe = File::open("/proc/self/exe").map_err(|e| Error::io("/proc/self/exe", e))?;
    let memfd = memfd_create(
        c"gorae-runc",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .ctx(|| "memfd_create".into())?;
    let mut copy = File::from(memfd);
    std::io::copy(&mut exe, &mut copy).map_err(|e| Error::io("memfd copy of /proc/self/exe", e))?;
    fcntl(copy.as_fd(), FcntlArg::F_ADD_SEALS(SEALS)).ctx(|| "sealing the memfd".into())?;
    let to_c = |s: std::ffi::OsString| CString::new(s.into_encoded_bytes()).ok();
    let args: Vec<CString> = std::env::args_os().filter_map(to_c).collect();
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            to_c(kv)
        })
        .collect();
    let err = match nix::unistd::fexecve(copy.as_fd(), &args, &env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    Err(Error::sys("re-executing from the sealed copy", err))
}
