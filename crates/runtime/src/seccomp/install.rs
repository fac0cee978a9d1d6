//! The only `unsafe` code of the seccomp module: the seccomp(2) call that attaches a filter.

use super::bpf::Insn;
use super::SeccompError;
use std::os::fd::{FromRawFd, OwnedFd};

// `Insn` is passed to the kernel as `struct sock_filter`; their layouts must agree.
const _: () = {
    assert!(std::mem::size_of::<Insn>() == std::mem::size_of::<libc::sock_filter>());
    assert!(std::mem::align_of::<Insn>() == std::mem::align_of::<libc::sock_filter>());
    assert!(std::mem::offset_of!(Insn, code) == std::mem::offset_of!(libc::sock_filter, code));
    assert!(std::mem::offset_of!(Insn, jt) == std::mem::offset_of!(libc::sock_filter, jt));
    assert!(std::mem::offset_of!(Insn, jf) == std::mem::offset_of!(libc::sock_filter, jf));
    assert!(std::mem::offset_of!(Insn, k) == std::mem::offset_of!(libc::sock_filter, k));
};

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)`. With `listener`, the return value is the
/// new user-notification fd, which is returned owned. Does not allocate.
pub(super) fn set_mode_filter(
    insns: &[Insn],
    flags: u64,
    listener: bool,
) -> Result<Option<OwnedFd>, SeccompError> {
    let install_err = |source| SeccompError::Install { flags, source };
    let len = u16::try_from(insns.len())
        .map_err(|_| install_err(std::io::Error::from_raw_os_error(libc::EINVAL)))?;
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads the program; `Insn` is #[repr(C)] with the same layout as
        // `sock_filter` (checked above).
        filter: insns.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: seccomp(2) with SECCOMP_SET_MODE_FILTER reads `prog` and the `len` instructions
    // it points to, which `insns` keeps alive and valid for the duration of the call; it does
    // not write through either pointer. The flags are plain integers the kernel validates.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::c_ulong::from(libc::SECCOMP_SET_MODE_FILTER),
            flags as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        return Err(install_err(std::io::Error::last_os_error()));
    }
    if listener {
        let fd = i32::try_from(ret)
            .map_err(|_| install_err(std::io::Error::from_raw_os_error(libc::EBADF)))?;
        // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER a successful seccomp(2) returns a new
        // file descriptor that nothing else in this process owns; we take ownership of it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        return Ok(Some(fd));
    }
    if ret > 0 {
        // With TSYNC (without TSYNC_ESRCH) a positive value is the thread that could not sync.
        return Err(SeccompError::Tsync { tid: ret });
    }
    Ok(None)
}
