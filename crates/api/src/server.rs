//! The server: binds every host, serves each connection with hyper (HTTP/1.1, upgrades
//! for hijacking), runs each request in its own task so that a panic in one handler is a
//! 500 and not a dead connection or daemon, puts Docker's headers on every response, and
//! on shutdown stops accepting, lets requests in flight finish (for a bounded time) and
//! removes its unix sockets.

use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gorae_engine::Engine;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::body::{self, Resp};
use crate::error::{ApiError, Error, Result};
use crate::listen::{self, Host, TlsFiles};
use crate::log;
use crate::router::API_VERSION;

/// What the daemon's command line and config file say about listening.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    pub hosts: Vec<Host>,
    /// Required for a tcp host unless `insecure_plain_tcp`.
    pub tls: Option<TlsFiles>,
    /// Serve tcp hosts without TLS: anyone who reaches the port controls the host.
    pub insecure_plain_tcp: bool,
}

/// How long requests in flight get after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// TLS handshakes that take longer are dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

enum Listener {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener, Option<TlsAcceptor>),
}

pub struct Server {
    engine: Arc<Engine>,
    listeners: Vec<Listener>,
    addresses: Vec<String>,
}

impl Server {
    pub async fn bind(config: &ServerConfig, engine: Arc<Engine>) -> Result<Server> {
        if config.hosts.is_empty() {
            return Err(Error::Host {
                host: String::new(),
                reason: "no host to listen on".into(),
            });
        }
        let tls = match &config.tls {
            Some(files) => Some(TlsAcceptor::from(listen::load_tls(files)?)),
            None => None,
        };
        let mut listeners = Vec::new();
        let mut addresses = Vec::new();
        for host in &config.hosts {
            match host {
                Host::Unix(path) => {
                    listeners.push(Listener::Unix(listen::bind_unix(path)?, path.clone()));
                    addresses.push(host.to_string());
                }
                Host::Tcp(addr) => {
                    if tls.is_none() && !config.insecure_plain_tcp {
                        return Err(Error::Host {
                            host: host.to_string(),
                            reason: "tcp needs TLS with client certificates (--tls-cert, \
                                     --tls-key, --tls-cacert), or --insecure-plain-tcp"
                                .into(),
                        });
                    }
                    let listener = listen::bind_tcp(addr).await?;
                    let local = listener
                        .local_addr()
                        .map(|a| a.to_string())
                        .unwrap_or_else(|_| addr.clone());
                    if tls.is_none() {
                        log::warn(format_args!(
                            "tcp://{local} serves the API without TLS: anyone who can reach \
                             it controls this host"
                        ));
                    }
                    addresses.push(format!("tcp://{local}"));
                    listeners.push(Listener::Tcp(listener, tls.clone()));
                }
            }
        }
        Ok(Server {
            engine,
            listeners,
            addresses,
        })
    }

    /// `unix:///path` and `tcp://ip:port` (with the port the system chose for port 0).
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// Serves until `shutdown` completes, then drains.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        // Every connection holds a clone; when all are gone, recv() returns None.
        let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
        let mut sockets = Vec::new();
        let mut accepts = Vec::new();
        for listener in self.listeners {
            if let Listener::Unix(_, path) = &listener {
                sockets.push(path.clone());
            }
            let ctx = ConnCtx {
                engine: self.engine.clone(),
                stop: stop_rx.clone(),
                alive: alive_tx.clone(),
            };
            accepts.push(tokio::spawn(accept_loop(listener, ctx)));
        }
        drop(alive_tx);
        shutdown.await;
        log::info(format_args!("shutting down: no new connections"));
        let _ = stop_tx.send(true);
        for accept in accepts {
            let _ = accept.await;
        }
        for path in &sockets {
            let _ = std::fs::remove_file(path);
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, alive_rx.recv())
            .await
            .is_err()
        {
            log::warn(format_args!(
                "requests still running after {}s: dropping them",
                SHUTDOWN_GRACE.as_secs()
            ));
        }
        Ok(())
    }
}

#[derive(Clone)]
struct ConnCtx {
    engine: Arc<Engine>,
    stop: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
}

async fn accept_loop(listener: Listener, ctx: ConnCtx) {
    let mut stop = ctx.stop.clone();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = accept(&listener) => match accepted {
                Ok(Accepted::Unix(stream)) => {
                    tokio::spawn(serve_connection(stream, ctx.clone()));
                }
                Ok(Accepted::Tcp(stream, None)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_connection(stream, ctx.clone()));
                }
                Ok(Accepted::Tcp(stream, Some(tls))) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_tls(stream, tls, ctx.clone()));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    log::error(format_args!("accepting a connection: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

enum Accepted {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream, Option<TlsAcceptor>),
}

async fn accept(listener: &Listener) -> std::io::Result<Accepted> {
    match listener {
        Listener::Unix(l, _) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
        Listener::Tcp(l, tls) => l.accept().await.map(|(s, _)| Accepted::Tcp(s, tls.clone())),
    }
}

async fn serve_tls(stream: tokio::net::TcpStream, tls: TlsAcceptor, ctx: ConnCtx) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
        Ok(Ok(stream)) => serve_connection(stream, ctx).await,
        Ok(Err(e)) => log::info(format_args!("TLS handshake with {peer} failed: {e}")),
        Err(_) => log::info(format_args!("TLS handshake with {peer} timed out")),
    }
}

async fn serve_connection<IO>(io: IO, ctx: ConnCtx)
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let ConnCtx {
        engine,
        mut stop,
        alive,
    } = ctx;
    let stop_streams = stop.clone();
    let service = service_fn(move |req| {
        let engine = engine.clone();
        let stop = stop_streams.clone();
        async move { Ok::<_, Infallible>(serve_request(engine, stop, req).await) }
    });
    // half_close: a client that shuts its write side after the request (nc -N, scripts)
    // still gets its answer. The header timeout also closes idle keep-alive connections
    // (hyper starts it while waiting for the next request): dockerd's 5 minutes.
    let conn = http1::Builder::new()
        .half_close(true)
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(300))
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(e) = result {
        log::debug(format_args!("connection ended: {e}"));
    }
    drop(alive);
}

async fn serve_request(engine: Arc<Engine>, stop: body::Shutdown, req: Request<Incoming>) -> Resp {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let mut resp = match tokio::spawn(crate::handlers::handle(engine, stop, req)).await {
        Ok(resp) => resp,
        Err(e) => {
            log::error(format_args!("{method} {uri}: the handler failed: {e}"));
            body::error(&ApiError::internal(format!(
                "internal error while serving {method} {}",
                uri.path()
            )))
        }
    };
    add_docker_headers(resp.headers_mut());
    let status = resp.status().as_u16();
    if status >= 500 {
        log::warn(format_args!("{method} {uri} -> {status}"));
    } else {
        log::debug(format_args!("{method} {uri} -> {status}"));
    }
    resp
}

fn add_docker_headers(headers: &mut hyper::HeaderMap) {
    let api = format!("{}.{}", API_VERSION.0, API_VERSION.1);
    let server = concat!("gorae/", env!("CARGO_PKG_VERSION"));
    for (name, value) in [
        ("api-version", api.as_str()),
        ("docker-experimental", "false"),
        ("ostype", "linux"),
        ("server", server),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}
