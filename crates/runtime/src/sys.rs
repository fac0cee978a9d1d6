//! The system calls nix does not wrap, each in a small safe function. All of the runtime's
//! `unsafe` outside the seccomp, capabilities and cgroup-bpf modules lives here.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// `clone(2)` with fork semantics (no new stack: the child continues on a copy of the caller's)
/// and `flags` (CLONE_NEW* bits). Returns `None` in the child.
///
/// The caller must be single-threaded, as for `fork`; gorae-runc is.
pub fn clone_process(flags: libc::c_int) -> nix::Result<Option<Pid>> {
    // SAFETY: with a null stack pointer the kernel gives the child a copy-on-write copy of the
    // caller's address space and stack, exactly as fork(2) does; the remaining pointer arguments
    // (parent_tid, child_tid, tls) are unused because no CLONE_*TID/SETTLS flag is passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// `clone(2)` with CLONE_PARENT: the child becomes a sibling of the caller (a child of the
/// caller's parent), so the runtime that started the intermediate process can wait for it.
pub fn clone_sibling() -> nix::Result<Option<Pid>> {
    clone_process(libc::CLONE_PARENT)
}

/// `setdomainname(2)`.
pub fn set_domainname(name: &str) -> nix::Result<()> {
    let name = CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: the pointer and length describe a live, NUL-free buffer for the whole call.
    let ret = unsafe { libc::setdomainname(name.as_ptr(), name.as_bytes().len()) };
    Errno::result(ret).map(drop)
}

/// Marks every descriptor from `first` up close-on-exec (`close_range(2)`).
pub fn cloexec_from(first: u32) -> nix::Result<()> {
    // SAFETY: close_range only changes descriptor flags; no memory is passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    Errno::result(ret).map(drop)
}

/// Clears close-on-exec on one descriptor (for `--preserve-fds`).
pub fn clear_cloexec(fd: RawFd) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    // SAFETY: the descriptor is only borrowed for the fcntl calls; it stays open.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).map(drop)
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(2)` with AT_RECURSIVE on the mount at `fd` (an O_PATH descriptor).
pub fn mount_setattr_recursive(fd: BorrowedFd<'_>, set: u64, clear: u64) -> nix::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let empty = c"";
    // SAFETY: `attr` is a live, correctly laid out `struct mount_attr` whose size is passed;
    // the path is a valid empty C string used with AT_EMPTY_PATH on a live descriptor.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            empty.as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// `pidfd_open(2)`: a descriptor that becomes readable when the process exits.
pub fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: no memory is passed; the result is a new descriptor we take ownership of.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = Errno::result(ret)? as RawFd;
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Puts every signal back to its default action and unblocks all of them, so the container's
/// program does not inherit the runtime's dispositions (Rust ignores SIGPIPE, for one).
pub fn reset_signals() -> nix::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for signal in Signal::iterator() {
        if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL has none of the hazards of installing a Rust handler.
        unsafe { sigaction(signal, &default) }?;
    }
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&SigSet::empty()),
        None,
    )
}

/// Makes the terminal on `fd` the controlling terminal of the calling session (TIOCSCTTY).
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument, no memory.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    Errno::result(ret).map(drop)
}

/// Sets a terminal's window size (TIOCSWINSZ).
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> nix::Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a `struct winsize` from the pointer, which is live for the call.
    let ret = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCSWINSZ,
            &size as *const libc::winsize,
        )
    };
    Errno::result(ret).map(drop)
}

/// Reads a terminal's window size (TIOCGWINSZ); `None` if `fd` is not a terminal.
pub fn window_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a `struct winsize` into the pointer, which is live and writable.
    let ret = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCGWINSZ,
            &mut size as *mut libc::winsize,
        )
    };
    (ret == 0).then_some((size.ws_row, size.ws_col))
}

/// Exits the calling process at once, without running atexit handlers or flushing stdio
/// buffers that belong to the parent it was forked from.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Gives the calling process a new anonymous session keyring, so the container does not share
/// the host's (`keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)`).
pub fn join_new_session_keyring() -> nix::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    // SAFETY: a null name pointer asks for an anonymous keyring; no other memory is passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    match Errno::result(ret) {
        // Kernels without keys, or a seccomp profile that refuses keyctl: nothing to isolate.
        Err(Errno::ENOSYS) | Err(Errno::EPERM) => Ok(()),
        other => other.map(drop),
    }
}

/// `open_tree(2)` with OPEN_TREE_CLONE: a detached copy of the mount at `path` (with its
/// submounts when `recursive`), which can later be attached in another mount namespace.
pub fn open_tree_clone(path: &std::path::Path, recursive: bool) -> nix::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let path = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: the path is a live NUL-terminated string for the duration of the call.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    let fd = Errno::result(ret)? as RawFd;
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `move_mount(2)` of the detached mount `from` onto the path open as `to` (both by fd).
pub fn move_mount_fds(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> nix::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    let empty = c"";
    // SAFETY: both paths are the same live empty C string; the descriptors are borrowed for
    // the call only.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            empty.as_ptr(),
            to.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(ret).map(drop)
}

/// Kills a child this process cloned and reaps it (used when its setup fails half-way).
pub fn kill_and_reap(pid: i32) {
    let pid = Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
}
