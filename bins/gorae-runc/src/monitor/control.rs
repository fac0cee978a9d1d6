//! `control.sock`: one JSON request line in, one JSON reply line out, then the connection is
//! closed. `wait` clients are held until the container's init has exited.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};

use serde_json::Value;

/// Longest request line accepted.
const MAX_REQUEST: usize = 4096;
/// Connections whose request line is not complete yet, at most.
const MAX_PENDING: usize = 64;

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Start,
    Resize { height: u16, width: u16 },
    CloseStdin,
    State,
    Wait,
}

/// Reads a request line; the error is the reply's message.
pub fn parse(line: &[u8]) -> Result<Request, String> {
    let doc: Value =
        serde_json::from_slice(line).map_err(|e| format!("invalid request JSON: {e}"))?;
    let op = doc
        .get("op")
        .and_then(Value::as_str)
        .ok_or("the request has no \"op\" string")?;
    Ok(match op {
        "start" => Request::Start,
        "close_stdin" => Request::CloseStdin,
        "state" => Request::State,
        "wait" => Request::Wait,
        "resize" => {
            let dim = |name: &str| {
                doc.get(name)
                    .and_then(Value::as_u64)
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or_else(|| format!("resize: \"{name}\" must be a number from 0 to 65535"))
            };
            Request::Resize {
                height: dim("height")?,
                width: dim("width")?,
            }
        }
        other => return Err(format!("unknown op {other:?}")),
    })
}

/// A reply line for a failed request.
pub fn error_reply(message: &str) -> Value {
    serde_json::json!({"ok": false, "error": message})
}

/// Writes one reply line and closes the connection. The socket buffer of a fresh connection
/// holds a reply many times over, so this does not block.
pub fn reply(mut stream: UnixStream, doc: &Value) {
    let mut line = doc.to_string();
    line.push('\n');
    let _ = stream.write_all(line.as_bytes());
}

struct Pending {
    stream: UnixStream,
    line: Vec<u8>,
}

/// The listener, the clients whose request is not complete yet, and the waiters.
pub struct ControlServer {
    listener: UnixListener,
    pending: Vec<Pending>,
    pub waiters: Vec<UnixStream>,
}

impl ControlServer {
    pub fn new(listener: UnixListener) -> ControlServer {
        ControlServer {
            listener,
            pending: Vec::new(),
            waiters: Vec::new(),
        }
    }

    pub fn listener_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    pub fn pending_fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.pending.iter().map(|p| p.stream.as_fd())
    }

    pub fn accept_all(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            if self.pending.len() >= MAX_PENDING {
                // Clients that connect and never send must not pile up descriptors.
                self.pending.remove(0);
            }
            if stream.set_nonblocking(true).is_ok() {
                self.pending.push(Pending {
                    stream,
                    line: Vec::new(),
                });
            }
        }
    }

    /// The requests of clients that connected before the monitor stopped listening, read for
    /// up to `limit`: the monitor is about to exit, and the ones that asked for `wait` would
    /// otherwise see a reset instead of their reply.
    pub fn late_requests(&mut self, limit: std::time::Duration) -> Vec<(UnixStream, Request)> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        self.accept_all();
        let deadline = std::time::Instant::now() + limit;
        let mut done = Vec::new();
        while !self.pending.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let mut fds: Vec<PollFd<'_>> = self
                .pending_fds()
                .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
                .collect();
            let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
            if poll(&mut fds, timeout).is_err() {
                break;
            }
            let ready: Vec<usize> = fds
                .iter()
                .enumerate()
                .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
                .map(|(i, _)| i)
                .collect();
            drop(fds);
            done.extend(self.read_ready(&ready));
        }
        done
    }

    /// Reads from the pending clients whose index is in `ready`; returns the complete
    /// requests with their connections (bad requests already answered).
    pub fn read_ready(&mut self, ready: &[usize]) -> Vec<(UnixStream, Request)> {
        let mut done = Vec::new();
        let mut buf = [0u8; 1024];
        for &i in ready.iter().rev() {
            let Some(p) = self.pending.get_mut(i) else {
                continue;
            };
            match read_line(p, &mut buf) {
                LineState::More => continue,
                LineState::Gone => {
                    self.pending.swap_remove(i);
                }
                LineState::Line(line) => {
                    let p = self.pending.swap_remove(i);
                    match parse(&line) {
                        Ok(req) => done.push((p.stream, req)),
                        Err(msg) => reply(p.stream, &error_reply(&msg)),
                    }
                }
            }
        }
        done
    }
}

enum LineState {
    More,
    Gone,
    Line(Vec<u8>),
}

fn read_line(p: &mut Pending, buf: &mut [u8]) -> LineState {
    loop {
        match p.stream.read(buf) {
            Ok(0) if p.line.is_empty() => return LineState::Gone,
            // EOF without a newline: take what came as the request.
            Ok(0) => return LineState::Line(std::mem::take(&mut p.line)),
            Ok(n) => {
                p.line.extend_from_slice(&buf[..n]);
                if let Some(end) = p.line.iter().position(|b| *b == b'\n') {
                    p.line.truncate(end);
                    return LineState::Line(std::mem::take(&mut p.line));
                }
                if p.line.len() > MAX_REQUEST {
                    return LineState::Line(b"request too long".to_vec());
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return LineState::More,
            Err(_) => return LineState::Gone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        assert_eq!(parse(br#"{"op":"start"}"#), Ok(Request::Start));
        assert_eq!(parse(br#"{"op":"wait"}"#), Ok(Request::Wait));
        assert_eq!(
            parse(br#"{"op":"resize","height":24,"width":80}"#),
            Ok(Request::Resize {
                height: 24,
                width: 80
            })
        );
        assert!(parse(br#"{"op":"resize","height":-1,"width":80}"#).is_err());
        assert!(parse(br#"{"op":"fly"}"#)
            .unwrap_err()
            .contains("unknown op"));
        assert!(parse(b"nope").is_err());
        assert!(parse(br#"{"x":1}"#).is_err());
    }

    #[test]
    fn a_request_line_comes_back_with_its_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let mut server = ControlServer::new(listener);
        let mut client = UnixStream::connect(&path).unwrap();
        client.write_all(b"{\"op\":\"state\"}\n").unwrap();
        server.accept_all();
        let got = server.read_ready(&[0]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, Request::State);
        let mut bad = UnixStream::connect(&path).unwrap();
        bad.write_all(b"{\"op\":\"x\"}\n").unwrap();
        server.accept_all();
        assert!(server.read_ready(&[0]).is_empty());
        let mut reply = String::new();
        bad.read_to_string(&mut reply).unwrap();
        assert!(reply.contains("\"ok\":false"), "{reply}");
    }
}
