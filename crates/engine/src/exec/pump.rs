//! Running one exec: the gorae-runc child, and the bytes between it (pipes or the pty master)
//! and the hijacked connection.

use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::{fdpass, runtime_error, start_failure_code, ExecInstance, Launch};
use crate::engine::DuplexStream;
use crate::error::{Error, Result};
use crate::logs::{frame, Stream};

/// Runs the exec to its end; returns its exit code. An exec that cannot be started says why
/// on the stream. `out` is still open when this returns, so that the caller records the exit
/// before the client sees the end of the stream (the docker CLI asks for the exit code then).
pub async fn run(inst: &Arc<ExecInstance>, launch: &Launch, reader: Reader, out: Out) -> i64 {
    match start(inst, launch, reader, out.clone()).await {
        Ok(code) => code,
        Err(e) => {
            if let Some(out) = &out {
                let _ = out
                    .send(message(inst.config.tty, &format!("{e}\r\n")))
                    .await;
            }
            126
        }
    }
}

async fn start(inst: &Arc<ExecInstance>, launch: &Launch, reader: Reader, out: Out) -> Result<i64> {
    let tty = inst.config.tty;
    let socket = launch.file("console.sock");
    let listener = if tty {
        let _ = std::fs::remove_file(&socket);
        Some(UnixListener::bind(&socket).map_err(|e| Error::io(&socket, e))?)
    } else {
        None
    };
    let want_stdin = inst.config.attach_stdin && reader.is_some();
    let mut cmd = Command::new(&launch.runtime);
    cmd.arg("--root")
        .arg(&launch.runtime_root)
        .arg("--log")
        .arg(launch.file("runtime.log"))
        .arg("--log-format")
        .arg("json")
        .arg("exec")
        .arg("--process")
        .arg(launch.file("process.json"))
        .arg("--pid-file")
        .arg(launch.file("pid"));
    if tty {
        cmd.arg("--console-socket").arg(&socket);
    }
    cmd.arg(&inst.container_id)
        .stdin(if want_stdin && !tty {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().map_err(|e| Error::io(&launch.runtime, e))?;
    let pid_watch = tokio::spawn(watch_pid(inst.clone(), launch.file("pid")));
    let status = match listener {
        Some(listener) => run_tty(inst, child, listener, reader, out.clone()).await,
        None => run_pipes(inst, child, reader, out.clone()).await,
    };
    pid_watch.abort();
    let code = status?;
    Ok(match runtime_error(&launch.file("runtime.log")) {
        Some(e) => start_failure_code(&e),
        None => code,
    })
}

/// How long a tty exec's output may still come after its process exited.
const TTY_DRAIN: Duration = Duration::from_millis(500);

/// The client's bytes (the process's stdin); the channel ends at the client's EOF.
pub type Reader = Option<mpsc::Receiver<Bytes>>;
pub type Out = Option<mpsc::Sender<Bytes>>;

/// The connection's input and output, owned by tasks that close it only once the client is
/// done with it (see `hijacked`), so that both output streams can write without a lock.
pub fn split(conn: Option<DuplexStream>) -> (Reader, Out) {
    conn.map(crate::hijacked::split).unzip()
}

/// The text as it appears on the stream: stderr frame, or raw with a tty.
pub fn message(tty: bool, text: &str) -> Bytes {
    if tty {
        return Bytes::copy_from_slice(text.as_bytes());
    }
    let mut out = BytesMut::new();
    frame(&mut out, Stream::Stderr, text.as_bytes());
    out.freeze()
}

async fn watch_pid(inst: Arc<ExecInstance>, path: std::path::PathBuf) {
    for _ in 0..500 {
        if let Ok(text) = tokio::fs::read_to_string(&path).await {
            if let Ok(pid) = text.trim().parse::<i64>() {
                inst.set_pid(pid);
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn exit_code(status: std::process::ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => i64::from(code),
        (None, Some(sig)) => 128 + i64::from(sig),
        _ => 126,
    }
}

async fn run_pipes(
    inst: &Arc<ExecInstance>,
    mut child: Child,
    reader: Reader,
    out: Out,
) -> Result<i64> {
    let stdin = child.stdin.take();
    let stdin_task = match (stdin, reader) {
        (Some(mut stdin), Some(mut reader)) => Some(tokio::spawn(async move {
            while let Some(chunk) = reader.recv().await {
                if stdin.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            let _ = stdin.shutdown().await;
        })),
        _ => None,
    };
    let keep = |on: bool| if on { out.clone() } else { None };
    let stdout = child.stdout.take().map(|s| {
        tokio::spawn(copy_framed(
            s,
            Stream::Stdout,
            keep(inst.config.attach_stdout),
        ))
    });
    let stderr = child.stderr.take().map(|s| {
        tokio::spawn(copy_framed(
            s,
            Stream::Stderr,
            keep(inst.config.attach_stderr),
        ))
    });
    let status = child
        .wait()
        .await
        .map_err(|e| Error::Internal(format!("waiting for exec {}: {e}", inst.id)));
    for task in [stdout, stderr].into_iter().flatten() {
        let _ = task.await;
    }
    if let Some(task) = stdin_task {
        task.abort();
    }
    Ok(exit_code(status?))
}

/// Copies a pipe to the connection in docker frames (or discards it when not attached).
async fn copy_framed(mut pipe: impl AsyncRead + Unpin, stream: Stream, out: Out) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if let Some(tx) = &out {
            let mut chunk = BytesMut::with_capacity(n + 8);
            frame(&mut chunk, stream, &buf[..n]);
            // A client gone away must not stop the process from running to its end.
            let _ = tx.send(chunk.freeze()).await;
        }
    }
}

async fn run_tty(
    inst: &Arc<ExecInstance>,
    mut child: Child,
    listener: UnixListener,
    reader: Reader,
    out: Out,
) -> Result<i64> {
    let mut errors = child.stderr.take();
    let mut child_out = child.stdout.take();
    let master = receive_console(&listener, &mut child).await?;
    drop(listener);
    let Some(master) = master else {
        // The runtime failed before the process had a tty: pass its error on.
        forward_raw(&mut errors, &out).await;
        forward_raw(&mut child_out, &out).await;
        let status = child
            .wait()
            .await
            .map_err(|e| Error::Internal(format!("exec {}: {e}", inst.id)))?;
        return Ok(exit_code(status));
    };
    let resize_fd = master.try_clone().map_err(|e| {
        Error::Internal(format!("exec {}: duplicating the pty master: {e}", inst.id))
    })?;
    inst.set_console(Some(Arc::new(resize_fd)));
    apply_initial_size(inst, &master);
    let flags =
        fcntl(&master, FcntlArg::F_GETFL).map_err(|e| Error::Internal(format!("pty: {e}")))?;
    fcntl(
        &master,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(|e| Error::Internal(format!("pty: {e}")))?;
    let master =
        Arc::new(fdpass::register(master).map_err(|e| Error::Internal(format!("pty: {e}")))?);
    let input = reader.map(|r| tokio::spawn(copy_to_pty(r, master.clone())));
    let output = tokio::spawn(copy_from_pty(master.clone(), out.clone()));
    let status = child
        .wait()
        .await
        .map_err(|e| Error::Internal(format!("exec {}: {e}", inst.id)));
    // What the process wrote before it exited is in the pty already; a background child
    // still holding the tty must not keep the exec open.
    let mut output = output;
    if tokio::time::timeout(TTY_DRAIN, &mut output).await.is_err() {
        output.abort();
    }
    if let Some(task) = input {
        task.abort();
    }
    forward_raw(&mut errors, &out).await;
    inst.set_console(None);
    Ok(exit_code(status?))
}

fn apply_initial_size(inst: &ExecInstance, master: &OwnedFd) {
    if let Some([h, w]) = inst.config.console_size.as_deref() {
        let _ = gorae_runtime::sys::set_window_size(master.as_fd(), *h as u16, *w as u16);
    }
}

/// The pty master the runtime sends; `None` when the runtime exited without sending one.
/// A short process can have run and exited, and the runtime with it, before this task gets
/// to the socket: the master then waits in the socket's queue, and the output in the pty.
async fn receive_console(listener: &UnixListener, child: &mut Child) -> Result<Option<OwnedFd>> {
    let console_error = |e: std::io::Error| Error::Internal(format!("console socket: {e}"));
    let stream = tokio::select! {
        biased;
        accepted = listener.accept() => accepted.map_err(console_error)?.0,
        _ = child.wait() => return console_left_behind(listener).map_err(console_error),
    };
    loop {
        tokio::select! {
            biased;
            ready = stream.readable() => ready.map_err(console_error)?,
            _ = child.wait() => {
                return fdpass::recv_fd(stream.as_fd()).or_else(none_if_would_block)
                    .map_err(console_error);
            }
        }
        match stream.try_io(tokio::io::Interest::READABLE, || {
            fdpass::recv_fd(stream.as_fd())
        }) {
            Ok(Some(fd)) => return Ok(Some(fd)),
            Ok(None) => {
                return Err(Error::Internal(
                    "console socket: no pty master was sent".into(),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(console_error(e)),
        }
    }
}

/// What a runtime that has exited left on the console socket: a connection still to be
/// accepted, with the master in it (everything it sent is queued by now).
fn console_left_behind(listener: &UnixListener) -> std::io::Result<Option<OwnedFd>> {
    // The listener is non-blocking (tokio's), so a clone of it accepts without waiting.
    let listener = std::os::unix::net::UnixListener::from(listener.as_fd().try_clone_to_owned()?);
    match listener.accept() {
        Ok((stream, _)) => fdpass::recv_fd(stream.as_fd()).or_else(none_if_would_block),
        Err(e) => none_if_would_block(e),
    }
}

fn none_if_would_block(e: std::io::Error) -> std::io::Result<Option<OwnedFd>> {
    match e.kind() {
        std::io::ErrorKind::WouldBlock => Ok(None),
        _ => Err(e),
    }
}

async fn forward_raw(pipe: &mut Option<impl AsyncRead + Unpin>, out: &Out) {
    let Some(pipe) = pipe else { return };
    let mut text = Vec::new();
    let _ = pipe.take(64 * 1024).read_to_end(&mut text).await;
    if let (Some(tx), false) = (out, text.is_empty()) {
        let _ = tx.send(Bytes::from(text)).await;
    }
}

/// pty output until the process side is gone (EIO once every slave fd is closed).
async fn copy_from_pty(master: Arc<AsyncFd<OwnedFd>>, out: Out) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let Ok(mut guard) = master.readable().await else {
            return;
        };
        match guard
            .try_io(|fd| nix::unistd::read(fd.get_ref(), &mut buf).map_err(std::io::Error::from))
        {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => {
                if let Some(tx) = &out {
                    let _ = tx.send(Bytes::copy_from_slice(&buf[..n])).await;
                }
            }
            Err(_would_block) => continue,
        }
    }
}

async fn copy_to_pty(mut reader: mpsc::Receiver<Bytes>, master: Arc<AsyncFd<OwnedFd>>) {
    while let Some(chunk) = reader.recv().await {
        let mut data = &chunk[..];
        while !data.is_empty() {
            let Ok(mut guard) = master.writable().await else {
                return;
            };
            match guard
                .try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(std::io::Error::from))
            {
                Ok(Ok(w)) => data = &data[w..],
                Ok(Err(_)) => return,
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;

    #[tokio::test]
    async fn a_master_sent_by_a_runtime_that_has_exited_is_still_received() {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("console.sock")).unwrap();
        assert!(console_left_behind(&listener).unwrap().is_none());
        let runtime =
            std::os::unix::net::UnixStream::connect(dir.path().join("console.sock")).unwrap();
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let fds = [theirs.as_raw_fd()];
        sendmsg::<UnixAddr>(
            runtime.as_raw_fd(),
            &[IoSlice::new(b"pty")],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        drop((runtime, theirs));
        let master = console_left_behind(&listener).unwrap().unwrap();
        // The received descriptor is the other end of `ours`.
        nix::unistd::write(&master, b"x").unwrap();
        let mut byte = [0u8; 1];
        std::io::Read::read_exact(&mut &ours, &mut byte).unwrap();
        assert_eq!(&byte, b"x");
    }
}
