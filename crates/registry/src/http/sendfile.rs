//! Zero-copy file responses: sendfile(2) from the page cache to a TCP socket.
//!
//! The socket is non-blocking (tokio's), so each `sendfile` moves what fits in the socket
//! buffer and returns; between calls the task waits for writability through tokio. The head
//! goes out first with `MSG_MORE`, so the kernel packs it with the file's first bytes instead
//! of sending a tiny packet of its own.
//!
//! Over TLS the kernel cannot encrypt, so the file is read in pieces and written through
//! rustls. Both paths read the file on the async thread: blobs being served are hot in the
//! page cache, and a thread hop per piece would cost more than the rare cold read.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use rustix::net::SendFlags;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::connection::{write_timed_out, Wire};

/// Most bytes asked of one sendfile call; it returns sooner when the socket buffer fills.
const MAX_SENDFILE: u64 = 4 * 1024 * 1024;
/// The piece size when copying a file through TLS.
const COPY_PIECE: u64 = 256 * 1024;

/// Sends `head`, then `len` bytes of `file` from `offset`, counting file bytes into `sent`.
pub(super) async fn send(
    tcp: &TcpStream,
    head: &[u8],
    file: &File,
    offset: u64,
    len: u64,
    limit: Duration,
    sent: &mut u64,
) -> io::Result<()> {
    let flags = if len > 0 {
        SendFlags::MORE
    } else {
        SendFlags::empty()
    };
    let mut head_done = 0;
    while head_done < head.len() {
        let rest = &head[head_done..];
        head_done += when_writable(tcp, limit, || rustix::net::send(tcp, rest, flags)).await?;
    }
    let mut position = offset;
    let mut done = 0;
    while done < len {
        let count = (len - done).min(MAX_SENDFILE) as usize;
        let n = when_writable(tcp, limit, || {
            rustix::fs::sendfile(tcp, file, Some(&mut position), count)
        })
        .await?;
        if n == 0 {
            return Err(file_ended(offset, len, done));
        }
        done += n as u64;
        *sent += n as u64;
    }
    Ok(())
}

/// Runs a non-blocking write `op` on `tcp` once the socket takes data, retrying while it
/// would block; fails if the socket stays full for `limit`.
async fn when_writable(
    tcp: &TcpStream,
    limit: Duration,
    mut op: impl FnMut() -> rustix::io::Result<usize>,
) -> io::Result<usize> {
    loop {
        timeout(limit, tcp.writable())
            .await
            .map_err(|_| write_timed_out(limit))??;
        match tcp.try_io(Interest::WRITABLE, || op().map_err(io::Error::from)) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            done => return done,
        }
    }
}

/// Copies `len` bytes of `file` from `offset` through the connection (TLS), piece by piece.
pub(super) async fn copy(
    wire: &mut Wire,
    file: &File,
    offset: u64,
    len: u64,
    sent: &mut u64,
) -> io::Result<()> {
    let mut piece = vec![0u8; len.min(COPY_PIECE) as usize];
    let mut done = 0;
    while done < len {
        let want = (len - done).min(piece.len() as u64) as usize;
        let n = file.read_at(&mut piece[..want], offset.saturating_add(done))?;
        if n == 0 {
            return Err(file_ended(offset, len, done));
        }
        wire.write_all(&piece[..n]).await?;
        done += n as u64;
        *sent += n as u64;
    }
    Ok(())
}

fn file_ended(offset: u64, len: u64, sent: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the file ended {sent} bytes into the {len} bytes to send from offset {offset}"),
    )
}
