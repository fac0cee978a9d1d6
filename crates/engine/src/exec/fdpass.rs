//! Receiving the pty master that gorae-runc sends over the console socket (SCM_RIGHTS).

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};

/// One message from `socket`; the first descriptor it carries. `EAGAIN` when nothing is there
/// yet (the socket is non-blocking).
pub fn recv_fd(socket: BorrowedFd<'_>) -> std::io::Result<Option<OwnedFd>> {
    let mut buf = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<UnixAddr>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
    )
    .map_err(std::io::Error::from)?;
    let mut first = None;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for raw in fds {
                // SAFETY: SCM_RIGHTS has just installed `raw` in this process's table and
                // nothing else refers to it; owning it closes it exactly once.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                first.get_or_insert(owned);
            }
        }
    }
    Ok(first)
}

/// Registers the pty master with tokio's reactor.
pub fn register(fd: OwnedFd) -> std::io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd takes the OwnedFd by value, so the descriptor stays open and names
    // the same file for the AsyncFd's whole life, and `as_raw_fd` of an OwnedFd never changes.
    unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(|e| e.into())
}
