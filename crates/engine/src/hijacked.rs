//! A hijacked connection (exec or attach) owned by two tasks, so that it is closed only once
//! the client is done with it. Closing a unix socket whose input is still unread resets it:
//! the client then gets "connection reset by peer" instead of the end of the stream, and
//! docker's CLI fails the command. Its input can be left unread at the end for many reasons:
//! the CLI sends a byte from its terminal late, or pipes more stdin than the process takes.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::engine::DuplexStream;

/// How long, once the output has ended, the connection waits for the client to close it.
const LINGER: Duration = Duration::from_secs(5);

/// Channels to the two tasks that own `conn`: the output (what is sent is written in order;
/// when every sender is gone the write side is shut down) and the client's input (it ends at
/// the client's EOF). Once the input receiver is dropped the client's bytes are read and
/// discarded; the connection is dropped at the client's EOF, or `LINGER` after the output
/// ended.
pub(crate) fn split(conn: DuplexStream) -> (mpsc::Receiver<Bytes>, mpsc::Sender<Bytes>) {
    let (reader, mut writer) = tokio::io::split(conn);
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(32);
    let (in_tx, in_rx) = mpsc::channel::<Bytes>(8);
    let (ended_tx, ended) = oneshot::channel::<()>();
    tokio::spawn(async move {
        while let Some(chunk) = out_rx.recv().await {
            if writer.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
        drop(ended_tx);
    });
    tokio::spawn(read_client(reader, in_tx, ended));
    (in_rx, out_tx)
}

/// Passes the client's bytes on while they are taken, and discards them after, until the
/// client's EOF, or `LINGER` after the output ended.
async fn read_client(
    mut reader: tokio::io::ReadHalf<DuplexStream>,
    input: mpsc::Sender<Bytes>,
    mut ended: oneshot::Receiver<()>,
) {
    let mut input = Some(input);
    let mut deadline = None;
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        let linger = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let n = tokio::select! {
            read = reader.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = &mut ended, if deadline.is_none() => {
                deadline = Some(tokio::time::Instant::now() + LINGER);
                continue;
            }
            _ = linger => return,
        };
        if let Some(tx) = &input {
            if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                input = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn input_left_unread_at_the_end_does_not_reset_the_connection() {
        let (mut client, server) = tokio::net::UnixStream::pair().unwrap();
        let (input, out) = split(Box::new(server));
        // The exec has ended and takes no more input; the client's bytes come after.
        drop(input);
        client.write_all(b"late").await.unwrap();
        out.send(Bytes::from_static(b"output")).await.unwrap();
        drop(out);
        // Leave the server every chance to close before the client reads.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"output");
    }
}
