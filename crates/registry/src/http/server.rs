//! The accept loop.
//!
//! Each connection is a task in a `JoinSet`, so shutdown can wait for them: when `shutdown`
//! turns true the listener is dropped, idle connections notice the same signal and close, and
//! connections inside an exchange finish it (answering with `Connection: close`) before
//! closing.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use super::connection::{self, shutdown_signalled, Transport};
use super::{Handler, ServerOptions};

/// How long to back off when accepting fails for lack of descriptors or memory.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves connections from `listener` until `shutdown` turns true; then stops accepting and
/// returns once open exchanges have finished (idle connections are closed at once).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    handler: Arc<dyn Handler>,
    options: ServerOptions,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let options = Arc::new(options);
    let acceptor = tls.map(TlsAcceptor::from);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = shutdown_signalled(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let serve_one = serve_connection(
                        tcp,
                        peer,
                        acceptor.clone(),
                        handler.clone(),
                        options.clone(),
                        shutdown.clone(),
                    );
                    connections.spawn(serve_one);
                }
                Err(e) => accept_failed(e).await?,
            },
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Serves one connection that is already open, over any byte stream (an in-memory pipe in
/// tests and the fuzzer), as plain HTTP, until it closes. `serve` is what listens on TCP;
/// this is its per-connection loop without the socket (so no sendfile) and without shutdown.
#[doc(hidden)]
pub async fn serve_stream<S>(
    stream: S,
    peer: SocketAddr,
    handler: Arc<dyn Handler>,
    options: ServerOptions,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static,
{
    // Held for the connection's life; nothing ever sends on it.
    let (_keep, shutdown) = watch::channel(false);
    let io = Transport::Stream(Box::new(stream));
    connection::run(io, peer, handler, Arc::new(options), shutdown).await;
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    handler: Arc<dyn Handler>,
    options: Arc<ServerOptions>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Without it, a response head sent apart from its body waits for the client's
    // delayed ACK.
    let _ = tcp.set_nodelay(true);
    let io = match acceptor {
        None => Transport::Plain(tcp),
        Some(acceptor) => {
            let handshake = timeout(options.head_timeout, acceptor.accept(tcp));
            tokio::select! {
                done = handshake => match done {
                    Ok(Ok(stream)) => Transport::Tls(Box::new(stream)),
                    _ => return,
                },
                _ = shutdown_signalled(&mut shutdown) => return,
            }
        }
    };
    connection::run(io, peer, handler, options, shutdown).await;
}

/// Decides whether an accept error ends the server. Most are about one connection (it was
/// reset before we took it) or passing (out of descriptors): keep accepting.
async fn accept_failed(e: io::Error) -> io::Result<()> {
    match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            Ok(())
        }
        Some(libc::EBADF | libc::EINVAL | libc::ENOTSOCK | libc::EOPNOTSUPP) => Err(e),
        _ => Ok(()),
    }
}
