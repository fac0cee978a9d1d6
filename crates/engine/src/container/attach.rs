//! Attach and resize. An attach to a running container connects to its monitor's
//! attach.sock at once; an attach to one that is not running yet is queued on the container,
//! and its start connects it (then waits for it) before the container begins, so none of the
//! output is missed. Detach keys (ctrl-p,ctrl-q by default) end an attach that sends stdin.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use crate::container::lifecycle::lock;
use crate::container::Status;
use crate::engine::{AttachOptions, DuplexStream, Engine, Hijack, StreamKind};
use crate::error::{Error, Result};
use crate::hijacked;
use crate::supervisor::{self, ATTACH_STDERR, ATTACH_STDIN, ATTACH_STDOUT};

const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

impl Engine {
    pub(crate) async fn attach_container(&self, id: &str, opts: AttachOptions) -> Result<Hijack> {
        let c = self.containers.get(id)?;
        let rec = c.record();
        match rec.state.status {
            Status::Paused => {
                return Err(Error::Conflict(
                    "You cannot attach to a paused container, unpause it first".into(),
                ))
            }
            Status::Removing | Status::Dead => {
                return Err(Error::Conflict(format!(
                    "container {} is being removed",
                    c.id
                )))
            }
            _ => {}
        }
        let stdin = opts.stdin && rec.config.open_stdin;
        let mut flags = 0;
        for (on, flag) in [
            (stdin, ATTACH_STDIN),
            (opts.stdout, ATTACH_STDOUT),
            (opts.stderr, ATTACH_STDERR),
        ] {
            if on {
                flags |= flag;
            }
        }
        let detach = detach_keys(opts.detach_keys.as_deref().unwrap_or(DEFAULT_DETACH_KEYS))?;
        let kind = if rec.config.tty {
            StreamKind::Raw
        } else {
            StreamKind::Multiplexed
        };
        self.emit_container(&c, "attach", &[]);
        let dir = self.config().monitor_dir(&c.id);
        let source = if rec.state.status.is_live() {
            Source::Ready(supervisor::attach(&dir, flags).await?)
        } else {
            let (tx, rx) = tokio::sync::oneshot::channel();
            lock(&c.pending_attaches).push(tx);
            Source::Pending(rx)
        };
        Ok(Hijack {
            kind,
            run: Box::new(move |conn| Box::pin(run(conn, source, flags, stdin, detach))),
        })
    }

    pub(crate) async fn resize_container(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let c = self.containers.get(id)?;
        if !c.status().is_live() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        supervisor::resize(&self.config().monitor_dir(&c.id), height, width).await?;
        self.emit_container(
            &c,
            "resize",
            &[("height", height.to_string()), ("width", width.to_string())],
        );
        Ok(())
    }
}

enum Source {
    Ready(UnixStream),
    /// Start sends the monitor dir and a channel to say "connected" on.
    Pending(tokio::sync::oneshot::Receiver<(std::path::PathBuf, tokio::sync::oneshot::Sender<()>)>),
}

/// The connection goes to `hijacked` at once, so that however the attach ends (the output's
/// end, a detach, a start that failed) it is closed only when the client is done with it.
async fn run(conn: DuplexStream, source: Source, flags: u8, stdin: bool, detach: Vec<u8>) {
    let (mut input, output) = hijacked::split(conn);
    let sock = match source {
        Source::Ready(sock) => sock,
        Source::Pending(rx) => {
            let Ok((dir, connected)) = rx.await else {
                return;
            };
            let sock = supervisor::attach(&dir, flags).await;
            let _ = connected.send(());
            match sock {
                Ok(sock) => sock,
                Err(_) => return,
            }
        }
    };
    if !stdin {
        // Whatever the client sends is discarded, never left queued.
        input.close();
    }
    let (mut from_monitor, mut to_monitor) = sock.into_split();
    let output = forward_output(&mut from_monitor, &output);
    let input = async {
        if stdin {
            let detached = pump_stdin(&mut input, &mut to_monitor, &detach).await;
            let _ = to_monitor.shutdown().await;
            if detached {
                return;
            }
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = output => {}
        () = input => {}
    }
}

/// The monitor's bytes to the client, until the monitor closes (the container has exited)
/// or the client has gone.
async fn forward_output(from: &mut (impl AsyncRead + Unpin), to: &mpsc::Sender<Bytes>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if to.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
            return;
        }
    }
}

/// Copies the client's input to the container, holding back bytes that may be the start
/// of the detach sequence; returns at EOF (false) or when the sequence is complete (true).
async fn pump_stdin(
    from: &mut mpsc::Receiver<Bytes>,
    to: &mut (impl AsyncWrite + Unpin),
    detach: &[u8],
) -> bool {
    let mut matched = 0usize;
    while let Some(chunk) = from.recv().await {
        let mut out = Vec::with_capacity(chunk.len());
        for &b in &chunk[..] {
            if !detach.is_empty() && b == detach[matched] {
                matched += 1;
                if matched == detach.len() {
                    let _ = to.write_all(&out).await;
                    return true;
                }
                continue;
            }
            out.extend_from_slice(&detach[..matched]);
            matched = 0;
            if !detach.is_empty() && b == detach[0] {
                matched = 1;
            } else {
                out.push(b);
            }
        }
        if to.write_all(&out).await.is_err() {
            return false;
        }
    }
    false
}

/// Docker's detach-key syntax: comma-separated `ctrl-<x>` and single characters.
pub fn detach_keys(spec: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for key in spec.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        let lower = key.to_ascii_lowercase();
        if let Some(c) = lower.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(bad_keys(spec)),
            };
            out.push(b);
        } else if key.len() == 1 {
            out.push(key.as_bytes()[0]);
        } else {
            return Err(bad_keys(spec));
        }
    }
    Ok(out)
}

fn bad_keys(spec: &str) -> Error {
    Error::InvalidParameter(format!("Invalid detach keys ({spec}) provided"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_detach_keys() {
        assert_eq!(detach_keys("ctrl-p,ctrl-q").unwrap(), [16, 17]);
        assert_eq!(detach_keys("a,ctrl-@").unwrap(), [b'a', 0]);
        assert!(detach_keys("ctrl-").is_err());
        assert!(detach_keys("shift-a").is_err());
    }

    #[tokio::test]
    async fn holds_back_partial_detach_sequences() {
        let (tx, mut rx) = mpsc::channel(4);
        // The sequence is cut across two reads of the client.
        for chunk in [&b"ab\x10c\x10"[..], b"\x11zz"] {
            tx.send(Bytes::from_static(chunk)).await.unwrap();
        }
        let mut out = Vec::new();
        assert!(pump_stdin(&mut rx, &mut out, &[16, 17]).await);
        assert_eq!(out, b"ab\x10c");
    }

    #[tokio::test]
    async fn input_ends_at_the_clients_eof() {
        let (tx, mut rx) = mpsc::channel(4);
        for chunk in [&b"in"[..], b"put\n"] {
            tx.send(Bytes::from_static(chunk)).await.unwrap();
        }
        drop(tx);
        let mut out = Vec::new();
        assert!(!pump_stdin(&mut rx, &mut out, &[16, 17]).await);
        assert_eq!(out, b"input\n");
    }
}
