//! `attach.sock`: clients that stream the container's output and feed its stdin.
//!
//! A client's first byte says what it wants (1 stdin, 2 stdout, 4 stderr, or'ed). Without a
//! tty it then receives docker's multiplexed frames (`[stream, 0, 0, 0, len u32 BE]` then the
//! payload) of the streams it asked for; with a tty, the raw bytes. What it writes after the
//! flag byte is stdin. Output goes out without blocking: a client that falls more than
//! [`MAX_BACKLOG`] behind is disconnected, so it can never hold up the container or the log.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};

use super::logfile::Stream;

pub const WANT_STDIN: u8 = 1;
pub const WANT_STDOUT: u8 = 2;
pub const WANT_STDERR: u8 = 4;

/// How far (bytes) a client may fall behind before it is disconnected.
pub const MAX_BACKLOG: usize = 256 * 1024;

/// What reading from a client produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// Bytes for the container's stdin (from a client that asked for stdin).
    Stdin(Vec<u8>),
    /// A stdin client closed its end (half-close or disconnect).
    StdinEof,
    Nothing,
}

pub struct Client {
    stream: UnixStream,
    /// None until the flag byte has arrived.
    flags: Option<u8>,
    /// Output produced between the connect and the flag byte, replayed once it is known.
    early: Vec<(Stream, Vec<u8>)>,
    out: Vec<u8>,
    /// Still reading from the client (no EOF yet).
    reading: bool,
    pub dead: bool,
}

impl Client {
    fn new(stream: UnixStream) -> Client {
        Client {
            stream,
            flags: None,
            early: Vec::new(),
            out: Vec::new(),
            reading: true,
            dead: false,
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    pub fn wants_stdin(&self) -> bool {
        self.flags.is_some_and(|f| f & WANT_STDIN != 0)
    }

    /// Whether the loop should poll the client for input: always until the flag byte, then
    /// while it has not sent EOF (a stdin client only while the stdin buffer has room).
    pub fn wants_read(&self, stdin_has_room: bool) -> bool {
        match self.flags {
            None => true,
            Some(_) if !self.reading => false,
            Some(_) => stdin_has_room || !self.wants_stdin(),
        }
    }

    pub fn has_backlog(&self) -> bool {
        !self.out.is_empty()
    }

    /// Takes one read's worth from the client.
    pub fn read(&mut self, buf: &mut [u8]) -> Input {
        match self.stream.read(buf) {
            Ok(0) => self.eof(),
            Ok(n) => self.received(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                Input::Nothing
            }
            Err(_) => {
                self.dead = true;
                self.eof()
            }
        }
    }

    /// The client hung up entirely.
    pub fn hangup(&mut self) -> Input {
        self.dead = true;
        if self.reading {
            self.eof()
        } else {
            Input::Nothing
        }
    }

    fn eof(&mut self) -> Input {
        self.reading = false;
        if self.wants_stdin() {
            Input::StdinEof
        } else {
            Input::Nothing
        }
    }

    fn received(&mut self, data: &[u8]) -> Input {
        let data = match self.flags {
            Some(_) => data,
            None => {
                self.flags = Some(data[0]);
                for (stream, bytes) in std::mem::take(&mut self.early) {
                    self.queue(stream, &bytes, false);
                }
                &data[1..]
            }
        };
        if self.wants_stdin() && !data.is_empty() {
            Input::Stdin(data.to_vec())
        } else {
            Input::Nothing
        }
    }

    /// Queues output for the client (framed unless `tty`) and tries to send it.
    pub fn output(&mut self, stream: Stream, data: &[u8], tty: bool) {
        match self.flags {
            None => {
                let held: usize = self.early.iter().map(|(_, b)| b.len()).sum();
                if held + data.len() > MAX_BACKLOG {
                    self.dead = true;
                } else {
                    self.early.push((stream, data.to_vec()));
                }
            }
            Some(_) => {
                self.queue(stream, data, tty);
                self.flush();
            }
        }
    }

    fn queue(&mut self, stream: Stream, data: &[u8], tty: bool) {
        let flags = self.flags.unwrap_or(0);
        let bit = match stream {
            Stream::Stdout => WANT_STDOUT,
            Stream::Stderr => WANT_STDERR,
        };
        if tty {
            if flags & (WANT_STDOUT | WANT_STDERR) != 0 {
                self.out.extend_from_slice(data);
            }
        } else if flags & bit != 0 {
            self.out
                .extend_from_slice(&frame_header(stream, data.len()));
            self.out.extend_from_slice(data);
        }
        if self.out.len() > MAX_BACKLOG {
            self.dead = true;
        }
    }

    /// Sends what the socket takes now.
    pub fn flush(&mut self) {
        while !self.out.is_empty() && !self.dead {
            match self.stream.write(&self.out) {
                Ok(0) => self.dead = true,
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.dead = true,
            }
        }
        if self.out.is_empty() && self.out.capacity() > 64 * 1024 {
            self.out = Vec::new();
        }
    }
}

/// The 8-byte header of docker's stdcopy framing.
pub fn frame_header(stream: Stream, len: usize) -> [u8; 8] {
    let id = match stream {
        Stream::Stdout => 1,
        Stream::Stderr => 2,
    };
    let len = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    [id, 0, 0, 0, len[0], len[1], len[2], len[3]]
}

/// The listening socket and its clients.
pub struct AttachServer {
    listener: UnixListener,
    pub clients: Vec<Client>,
    tty: bool,
}

impl AttachServer {
    pub fn new(listener: UnixListener, tty: bool) -> AttachServer {
        AttachServer {
            listener,
            clients: Vec::new(),
            tty,
        }
    }

    pub fn listener_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Accepts every pending connection.
    pub fn accept_all(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.clients.push(Client::new(stream));
            }
        }
    }

    /// Sends output to every client (the disconnected stay until [`AttachServer::reap`], so
    /// that indices taken before stay valid).
    pub fn broadcast(&mut self, stream: Stream, data: &[u8]) {
        for client in &mut self.clients {
            client.output(stream, data, self.tty);
        }
    }

    /// Forgets disconnected clients.
    pub fn reap(&mut self) {
        self.clients.retain(|c| !c.dead);
    }

    pub fn backlog(&self) -> bool {
        self.clients.iter().any(Client::has_backlog)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Client, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (Client::new(a), b)
    }

    #[test]
    fn the_header_is_stream_then_big_endian_length() {
        assert_eq!(frame_header(Stream::Stderr, 258), [2, 0, 0, 0, 0, 0, 1, 2]);
    }

    #[test]
    fn output_before_the_flag_byte_is_replayed_for_the_streams_asked_for() {
        let (mut client, mut peer) = pair();
        client.output(Stream::Stdout, b"out", false);
        client.output(Stream::Stderr, b"err", false);
        peer.write_all(&[WANT_STDERR | WANT_STDIN, b'x']).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(client.read(&mut buf), Input::Stdin(b"x".to_vec()));
        client.flush();
        let mut got = [0u8; 11];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"\x02\0\0\0\0\0\0\x03err");
        drop(peer);
        assert_eq!(client.read(&mut buf), Input::StdinEof);
    }

    #[test]
    fn a_client_that_does_not_read_is_dropped_past_the_bound() {
        let (mut client, mut peer) = pair();
        peer.write_all(&[WANT_STDOUT]).unwrap();
        let mut buf = [0u8; 8];
        client.read(&mut buf);
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..32 {
            client.output(Stream::Stdout, &chunk, true);
        }
        assert!(client.dead);
    }
}
