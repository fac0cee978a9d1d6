//! The container's terminal: a pty opened inside the container's devpts, its slave made the
//! process's stdio and controlling terminal and bind-mounted on /dev/console, its master sent
//! to the caller over `--console-socket` (SCM_RIGHTS, as runc does) or to gorae-runc itself.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::Process;

use crate::error::{Error, Result, SysContext};
use crate::sync::{send_with_fd, Channel, Msg};
use crate::sys;

/// Runs in the container's process after it is in the container's root: in the init (which
/// also mounts the slave on /dev/console) and in `exec`'s process (which does not).
pub fn setup(
    process: &Process,
    console_socket: Option<&OwnedFd>,
    channel: &Channel,
    mount_dev_console: bool,
) -> Result<()> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .ctx(|| "opening /dev/ptmx".into())?;
    nix::pty::grantpt(&master).ctx(|| "grantpt".into())?;
    nix::pty::unlockpt(&master).ctx(|| "unlockpt".into())?;
    let slave_path = nix::pty::ptsname_r(&master).ctx(|| "ptsname".into())?;
    let slave = open(
        Path::new(&slave_path),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("opening {slave_path}"))?;
    if let Some(size) = process.console_size() {
        sys::set_window_size(master.as_fd(), size.height() as u16, size.width() as u16)
            .ctx(|| "setting the console size".into())?;
    }
    if mount_dev_console {
        mount_console(&slave_path)?;
    }
    match console_socket {
        Some(socket) => send_with_fd(socket.as_fd(), b"/dev/ptmx", Some(master.as_fd()))
            .ctx(|| "sending the console to --console-socket".into())?,
        None => channel
            .send_with_fd(&Msg::Console, Some(master.as_fd()))
            .ctx(|| "sending the console".into())?,
    }
    drop(master);
    make_stdio(slave.as_fd())
}

/// Bind-mounts the pty slave on /dev/console, refusing anything but a plain file or a
/// character device there. The target is opened without following symlinks and checked, and
/// the mount goes onto that very descriptor, so a symlink swapped in cannot redirect it
/// (CVE-2025-52565).
fn mount_console(slave_path: &str) -> Result<()> {
    let console = Path::new("/dev/console");
    let flags = OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_WRONLY;
    match open(
        console,
        flags | OFlag::O_EXCL,
        Mode::from_bits_truncate(0o600),
    ) {
        Ok(_) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(Error::sys("creating /dev/console", e)),
    }
    let target = open(
        console,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "opening /dev/console".into())?;
    let st = nix::sys::stat::fstat(target.as_fd()).ctx(|| "stat /dev/console".into())?;
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    if kind != SFlag::S_IFREG && kind != SFlag::S_IFCHR {
        return Err(Error::Init(
            "/dev/console is neither a file nor a device (a symlink?); refusing to mount over it"
                .into(),
        ));
    }
    let path = crate::rootfs::secure::fd_path(target.as_fd());
    mount(
        Some(slave_path),
        &path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .ctx(|| format!("bind-mounting {slave_path} on /dev/console"))
}

fn make_stdio(slave: BorrowedFd<'_>) -> Result<()> {
    nix::unistd::dup2_stdin(slave).ctx(|| "dup2 console to stdin".into())?;
    nix::unistd::dup2_stdout(slave).ctx(|| "dup2 console to stdout".into())?;
    nix::unistd::dup2_stderr(slave).ctx(|| "dup2 console to stderr".into())?;
    sys::set_controlling_terminal(std::io::stdin().as_fd()).ctx(|| "TIOCSCTTY".into())
}
