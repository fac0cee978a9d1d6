//! Running a registry: storage, auth and the pull-through cache from the config, the listener
//! (plain or TLS), and the background garbage collection and upload expiry.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::Registry;
use crate::auth::Auth;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::{self, ServerOptions};
use crate::log::Logger;
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::storage::{Storage, StorageOptions};

/// The longest wait between two looks for abandoned upload sessions.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(600);
/// The shortest wait: a walk of uploads/ once a second is cheap, more often is waste.
const MIN_EXPIRY_INTERVAL: Duration = Duration::from_secs(1);

/// A session is removed between `upload_expiry` and 1.5 × that after its last write (or
/// 10 minutes late, for long expiries): a short expiry is meant to be short.
fn expiry_interval(upload_expiry: Duration) -> Duration {
    (upload_expiry / 2).clamp(MIN_EXPIRY_INTERVAL, EXPIRY_INTERVAL)
}

/// A registry ready to serve: storage opened (and locked), listener bound.
pub struct Server {
    listener: TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    registry: Arc<Registry>,
    config: Config,
}

impl Server {
    /// Opens the storage and binds the address: every configuration error surfaces here,
    /// before anything is served.
    pub async fn bind(config: Config) -> Result<Server> {
        let registry = Arc::new(Registry::open(&config)?);
        let tls = match &config.tls {
            Some(tls) => Some(http::load_tls(&tls.cert, &tls.key)?),
            None => None,
        };
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|e| Error::Other {
                what: format!("listening on {}", config.addr),
                reason: e.to_string(),
            })?;
        Ok(Server {
            listener,
            tls,
            registry,
            config,
        })
    }

    /// The address actually bound (port 0 in the config picks a free one).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(|e| Error::Other {
            what: "listener address".into(),
            reason: e.to_string(),
        })
    }

    /// Serves until `shutdown` completes, then finishes open exchanges and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let registry = self.registry.clone();
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        registry.log.info(&format!(
            "gorae registry serving {scheme}://{} from {}",
            self.local_addr()?,
            self.config.root.display()
        ));
        let (stop, stopped) = watch::channel(false);
        let maintenance = tokio::spawn(maintain(
            registry.clone(),
            self.config.clone(),
            stopped.clone(),
        ));
        let handler: Arc<dyn http::Handler> = registry.clone();
        let serving = http::serve(
            self.listener,
            self.tls,
            handler,
            ServerOptions::default(),
            stopped,
        );
        tokio::pin!(serving);
        let result = tokio::select! {
            result = &mut serving => result,
            () = shutdown => {
                registry.log.info("shutting down: finishing open requests");
                let _ = stop.send(true);
                serving.await
            }
        };
        let _ = stop.send(true);
        maintenance.abort();
        result.map_err(|e| Error::Other {
            what: "serving".into(),
            reason: e.to_string(),
        })
    }
}

impl Registry {
    /// The handler `config` describes, without a listener: storage opened (and locked), auth
    /// and the pull-through cache set up. `Server::bind` serves it; the fuzzer drives it
    /// through `http::serve_stream`.
    #[doc(hidden)]
    pub fn open(config: &Config) -> Result<Registry> {
        let storage = Storage::open(
            &config.root,
            StorageOptions {
                upload_expiry: config.storage.upload_expiry,
                gc_grace: config.storage.gc_grace,
                max_manifest_size: config.storage.max_manifest_size,
            },
        )?;
        let auth = match &config.auth {
            Some(auth) => Auth::new(auth, &config.root)?,
            None => Auth::disabled(),
        };
        let proxy = if config.proxy.upstream.is_empty() {
            None
        } else {
            Some(Proxy::new(&config.proxy.upstream, storage.clone())?)
        };
        Ok(Registry {
            storage,
            auth,
            proxy,
            metrics: Arc::new(Metrics::default()),
            log: Logger::new(config.log),
            max_manifest_size: config.storage.max_manifest_size,
        })
    }

    /// The storage it serves.
    #[doc(hidden)]
    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }
}

/// Garbage collection every `gc_interval` (never when it is zero) and upload expiry, each on
/// a blocking thread: both walk the file system.
async fn maintain(registry: Arc<Registry>, config: Config, mut stopped: watch::Receiver<bool>) {
    let gc_every = config.storage.gc_interval;
    let mut gc_tick = tokio::time::interval(if gc_every.is_zero() {
        EXPIRY_INTERVAL
    } else {
        gc_every
    });
    let mut expiry_tick = tokio::time::interval(expiry_interval(config.storage.upload_expiry));
    // The first tick of an interval is immediate: skip it, a fresh start has nothing to do.
    gc_tick.tick().await;
    expiry_tick.tick().await;
    loop {
        tokio::select! {
            _ = gc_tick.tick(), if !gc_every.is_zero() => {
                let storage = registry.storage.clone();
                match tokio::task::spawn_blocking(move || storage.collect_garbage()).await {
                    Ok(Ok(report)) => {
                        registry.metrics.record_gc(&report);
                        if report.blobs_removed > 0 {
                            registry.log.info(&format!(
                                "gc: removed {} blobs ({} bytes), {} in use, {} kept as recent",
                                report.blobs_removed, report.bytes_removed,
                                report.blobs_marked, report.blobs_kept_recent
                            ));
                        }
                    }
                    Ok(Err(e)) => registry.log.error(&format!("gc: {e}")),
                    Err(e) => registry.log.error(&format!("gc task: {e}")),
                }
            }
            _ = expiry_tick.tick() => {
                let storage = registry.storage.clone();
                match tokio::task::spawn_blocking(move || storage.expire_uploads()).await {
                    Ok(Ok(n)) => {
                        registry.metrics.record_expired_uploads(n);
                        if n > 0 {
                            registry.log.info(&format!("removed {n} abandoned upload sessions"));
                        }
                    }
                    Ok(Err(e)) => registry.log.error(&format!("upload expiry: {e}")),
                    Err(e) => registry.log.error(&format!("upload expiry task: {e}")),
                }
            }
            _ = stopped.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_runs_twice_per_expiry_period_within_bounds() {
        let secs = Duration::from_secs;
        assert_eq!(expiry_interval(secs(24 * 3600)), EXPIRY_INTERVAL);
        assert_eq!(expiry_interval(secs(60)), secs(30));
        assert_eq!(expiry_interval(secs(1)), MIN_EXPIRY_INTERVAL);
        assert_eq!(expiry_interval(Duration::ZERO), MIN_EXPIRY_INTERVAL);
    }
}
