//! The monitor's `unsafe`: a descriptor received with SCM_RIGHTS, and giving memory back to
//! the kernel (see [`Shedder`]).

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};

/// Receives one message and the first descriptor attached to it.
pub fn recv_fd(socket: BorrowedFd<'_>) -> nix::Result<Option<OwnedFd>> {
    let mut buf = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<UnixAddr>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut got = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for raw in fds {
                // SAFETY: SCM_RIGHTS just installed this descriptor in our table; we own it.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                got.get_or_insert(owned);
            }
        }
    }
    Ok(got)
}

/// Gives memory the monitor is not using back to the kernel: free heap (malloc_trim), the
/// pages of its executable and read-only data that past work touched, and the stack below the
/// current depth. Called after setup and whenever the loop goes idle, so an idle monitor holds
/// little more than the pages its next wake-up needs.
pub struct Shedder {
    file_ranges: Vec<(usize, usize)>,
    stack: Option<(usize, usize)>,
}

/// Stack kept below the caller's frame: more than the shedding calls themselves use.
const STACK_MARGIN: usize = 64 * 1024;
const PAGE: usize = 4096;

impl Shedder {
    /// Finds the ranges once: the executable's mappings do not change after startup.
    pub fn new() -> Shedder {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
        Shedder {
            file_ranges: clean_file_ranges(&smaps),
            stack: stack_range(&smaps),
        }
    }

    pub fn shed(&self) {
        // SAFETY: malloc_trim only releases free heap memory; it takes no pointers.
        unsafe { libc::malloc_trim(0) };
        for &(start, end) in &self.file_ranges {
            // SAFETY: the range is a private file mapping that cannot be written and held no
            // anonymous (copied-on-write) page when it was found, and nothing makes it
            // writable since: every page in it equals the file's content, so MADV_DONTNEED
            // only unmaps them and a later access faults the same bytes back in.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        }
        self.shed_stack();
    }

    #[inline(never)]
    fn shed_stack(&self) {
        let Some((low, _)) = self.stack else { return };
        let here = 0u8;
        let sp = std::ptr::addr_of!(here) as usize;
        let cut = sp.saturating_sub(STACK_MARGIN) & !(PAGE - 1);
        if cut <= low {
            return;
        }
        // SAFETY: [low, cut) is the part of the main thread's stack more than STACK_MARGIN
        // below this function's own frame. Nothing live is there (the x86-64 ABI lets a
        // function use only 128 bytes below its stack pointer; no signal handler runs on
        // this stack, signals come through a signalfd), and pages dropped read back as
        // zeros when the stack grows into them again.
        unsafe { libc::madvise(low as *mut libc::c_void, cut - low, libc::MADV_DONTNEED) };
    }
}

/// The main thread's stack mapping, from /proc/self/smaps.
fn stack_range(smaps: &str) -> Option<(usize, usize)> {
    let line = smaps.lines().find(|l| l.ends_with("[stack]"))?;
    let (lo, hi) = line.split_whitespace().next()?.split_once('-')?;
    Some((
        usize::from_str_radix(lo, 16).ok()?,
        usize::from_str_radix(hi, 16).ok()?,
    ))
}

/// Address ranges of file mappings without write permission and without anonymous pages, from
/// /proc/self/smaps.
fn clean_file_ranges(smaps: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((lo, hi)) = first.split_once('-') {
            current = None;
            let perms = fields.next().unwrap_or("");
            let inode = fields.nth(2).unwrap_or("0");
            let path = fields.next().unwrap_or("");
            let file_backed = inode != "0" && path.starts_with('/');
            if file_backed && perms.starts_with('r') && perms.as_bytes().get(1) == Some(&b'-') {
                if let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                {
                    current = Some((lo, hi));
                }
            }
        } else if first == "Anonymous:" {
            let anon = fields.next().unwrap_or("1");
            if let (Some(range), "0") = (current.take(), anon) {
                out.push(range);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unwritable_file_mappings_without_anonymous_pages_are_picked() {
        let smaps = "\
00400000-00500000 r-xp 00000000 08:01 1234 /usr/bin/x
Size: 1024 kB
Anonymous: 0 kB
00500000-00600000 r--p 00100000 08:01 1234 /usr/bin/x
Anonymous: 8 kB
00600000-00700000 rw-p 00200000 08:01 1234 /usr/bin/x
Anonymous: 0 kB
00700000-00800000 rw-p 00000000 00:00 0 [heap]
Anonymous: 0 kB
7f0000000000-7f0000001000 r--p 00000000 00:00 0 [vvar]
Anonymous: 0 kB
";
        assert_eq!(clean_file_ranges(smaps), vec![(0x400000, 0x500000)]);
        let with_stack =
            format!("{smaps}7ffd317a0000-7ffd317f7000 rw-p 00000000 00:00 0 [stack]\n");
        assert_eq!(
            stack_range(&with_stack),
            Some((0x7ffd317a0000, 0x7ffd317f7000))
        );
    }
}
