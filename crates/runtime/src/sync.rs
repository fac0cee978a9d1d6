//! The channel between gorae-runc and the container's init while it is being set up: a
//! SOCK_SEQPACKET socket pair, one small message per step, file descriptors passed with
//! SCM_RIGHTS.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType, UnixAddr,
};

/// The steps of container setup that need the other side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// Runtime → init: ids are mapped and the cgroup joined; go on.
    Go,
    /// Intermediate → runtime: write the id mappings of this pid.
    MapIds(i32),
    /// Runtime → intermediate: mappings written.
    IdsMapped,
    /// Intermediate → runtime: the init process has this host pid.
    InitPid(i32),
    /// Init → runtime: run the createRuntime (and prestart) hooks now.
    RunCreateRuntimeHooks,
    /// Runtime → init: hooks done.
    HooksDone,
    /// Init → runtime: here is the console's master end (fd attached).
    Console,
    /// Init → runtime: set up and waiting for start.
    Ready,
    /// Runtime → init: start the program (`run` without an exec fifo).
    Start,
    /// Either way: this went wrong; the sender gives up.
    Error(String),
}

const MAX_MSG: usize = 4096;

impl Msg {
    fn encode(&self) -> Vec<u8> {
        let (tag, body): (u8, Vec<u8>) = match self {
            Msg::Go => (1, vec![]),
            Msg::MapIds(pid) => (2, pid.to_le_bytes().to_vec()),
            Msg::IdsMapped => (3, vec![]),
            Msg::InitPid(pid) => (4, pid.to_le_bytes().to_vec()),
            Msg::RunCreateRuntimeHooks => (5, vec![]),
            Msg::HooksDone => (6, vec![]),
            Msg::Console => (7, vec![]),
            Msg::Ready => (8, vec![]),
            Msg::Start => (9, vec![]),
            Msg::Error(text) => {
                let mut text = text.clone().into_bytes();
                text.truncate(MAX_MSG - 1);
                (10, text)
            }
        };
        let mut out = Vec::with_capacity(body.len() + 1);
        out.push(tag);
        out.extend_from_slice(&body);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Msg> {
        let (&tag, body) = bytes.split_first()?;
        let pid = || Some(i32::from_le_bytes(body.try_into().ok()?));
        Some(match tag {
            1 => Msg::Go,
            2 => Msg::MapIds(pid()?),
            3 => Msg::IdsMapped,
            4 => Msg::InitPid(pid()?),
            5 => Msg::RunCreateRuntimeHooks,
            6 => Msg::HooksDone,
            7 => Msg::Console,
            8 => Msg::Ready,
            9 => Msg::Start,
            10 => Msg::Error(String::from_utf8_lossy(body).into_owned()),
            _ => return None,
        })
    }
}

/// One end of the setup channel.
#[derive(Debug)]
pub struct Channel(OwnedFd);

impl Channel {
    /// A connected pair, both ends close-on-exec.
    pub fn pair() -> nix::Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((Channel(a), Channel(b)))
    }

    pub fn send(&self, msg: &Msg) -> nix::Result<()> {
        self.send_with_fd(msg, None)
    }

    pub fn send_with_fd(&self, msg: &Msg, fd: Option<BorrowedFd<'_>>) -> nix::Result<()> {
        send_with_fd(self.0.as_fd(), &msg.encode(), fd)
    }

    /// The next message; `EPIPE` when the other side closed its end (it died or exited).
    pub fn recv(&self) -> nix::Result<(Msg, Option<OwnedFd>)> {
        let mut buf = vec![0u8; MAX_MSG];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<UnixAddr>(
            self.0.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        let mut fd = None;
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for raw in fds {
                    // SAFETY: SCM_RIGHTS just installed this descriptor in our table; we own it.
                    let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                    fd.get_or_insert(owned);
                }
            }
        }
        let len = msg.bytes;
        if len == 0 {
            return Err(Errno::EPIPE);
        }
        let msg = Msg::decode(&buf[..len]).ok_or(Errno::EPROTO)?;
        Ok((msg, fd))
    }

    /// Waits for `want`. An `Error` from the other side becomes that error; any other
    /// message is a protocol error. `waiting_for` names the step in the message.
    pub fn expect(&self, want: &Msg, waiting_for: &str) -> crate::Result<()> {
        let (msg, _) = self
            .recv()
            .map_err(|e| crate::Error::sys(format!("waiting for {waiting_for}"), e))?;
        match msg {
            msg if &msg == want => Ok(()),
            Msg::Error(e) => Err(crate::Error::Init(e)),
            other => Err(crate::Error::Init(format!(
                "unexpected message {other:?} while waiting for {waiting_for}"
            ))),
        }
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Sends `payload` with an optional descriptor attached (SCM_RIGHTS); used for the setup
/// channel and for the caller's `--console-socket`.
pub fn send_with_fd(
    socket: BorrowedFd<'_>,
    payload: &[u8],
    fd: Option<BorrowedFd<'_>>,
) -> nix::Result<()> {
    let iov = [IoSlice::new(payload)];
    let raw = fd.map(|fd| [fd.as_raw_fd()]);
    let cmsgs: Vec<ControlMessage<'_>> = raw.iter().map(|r| ControlMessage::ScmRights(r)).collect();
    sendmsg::<UnixAddr>(
        socket.as_raw_fd(),
        &iov,
        &cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let (a, b) = Channel::pair().unwrap();
        for msg in [
            Msg::Go,
            Msg::InitPid(4242),
            Msg::Error("boom".into()),
            Msg::Ready,
        ] {
            a.send(&msg).unwrap();
            assert_eq!(b.recv().unwrap().0, msg);
        }
        drop(a);
        assert_eq!(b.recv().unwrap_err(), Errno::EPIPE);
    }

    #[test]
    fn a_descriptor_travels_with_its_message() {
        let (a, b) = Channel::pair().unwrap();
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        a.send_with_fd(&Msg::Console, Some(file.as_fd())).unwrap();
        let (msg, fd) = b.recv().unwrap();
        assert_eq!(msg, Msg::Console);
        assert!(fd.is_some());
    }
}
