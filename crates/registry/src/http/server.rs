//! The accept loop.

use std::io;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_rustls::rustls::ServerConfig;

use super::{Handler, ServerOptions};

/// Serves connections from `listener` until `shutdown` turns true; then stops accepting and
/// returns once open exchanges have finished (idle connections are closed at once).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    handler: Arc<dyn Handler>,
    options: ServerOptions,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> io::Result<()> {
    let _ = (listener, tls, handler, options, shutdown);
    todo!("http helper")
}
