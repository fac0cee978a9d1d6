//! Where the API listens: `unix:///path` (the default; 0660, a stale socket replaced only
//! when nothing answers on it), `tcp://host:port` with TLS and client certificates, or plain
//! tcp when the operator asked for it by name. Anyone who reaches the API is root on the
//! host, so an unauthenticated tcp listener is never a default.

use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, UnixListener};
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

use crate::error::{Error, Result};

/// One `-H` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    /// `host:port`.
    Tcp(String),
}

impl Host {
    pub fn parse(text: &str) -> Result<Host> {
        let bad = |reason: &str| Error::Host {
            host: text.to_string(),
            reason: reason.to_string(),
        };
        if let Some(path) = text.strip_prefix("unix://") {
            if path.is_empty() || !path.starts_with('/') {
                return Err(bad(
                    "a unix socket needs an absolute path: unix:///path/to.sock",
                ));
            }
            return Ok(Host::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = text.strip_prefix("tcp://") {
            let addr = addr.trim_end_matches('/');
            if addr.is_empty() || addr.contains('/') {
                return Err(bad("expected tcp://host:port"));
            }
            let has_port = match addr.rfind(']') {
                Some(bracket) => addr[bracket..].contains(':'),
                None => addr.contains(':'),
            };
            if !has_port {
                return Err(bad("a port is needed: tcp://host:port"));
            }
            return Ok(Host::Tcp(addr.to_string()));
        }
        Err(bad("expected unix:///path or tcp://host:port"))
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Unix(path) => write!(f, "unix://{}", path.display()),
            Host::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

/// The files of `--tls-cert`, `--tls-key` and `--tls-cacert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA that signs the client certificates the server accepts.
    pub ca: PathBuf,
}

/// Binds the socket: creates its directory, replaces a socket file only when nothing
/// answers on it, and makes it 0660.
pub fn bind_unix(path: &Path) -> Result<UnixListener> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another daemon is listening on this socket",
                )));
            }
            std::fs::remove_file(path).map_err(io)?;
        }
        Ok(_) => {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists and is not a socket",
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let listener = UnixListener::bind(path).map_err(|source| Error::Bind {
        addr: format!("unix://{}", path.display()),
        source,
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io)?;
    Ok(listener)
}

pub async fn bind_tcp(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| Error::Bind {
        addr: format!("tcp://{addr}"),
        source,
    })
}

/// A rustls server config that requires a client certificate signed by `files.ca`.
pub fn load_tls(files: &TlsFiles) -> Result<Arc<ServerConfig>> {
    let chain = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| tls_error(&files.key, format!("reading the private key: {e}")))?;
    let mut roots = RootCertStore::empty();
    for ca in read_certs(&files.ca)? {
        roots
            .add(ca)
            .map_err(|e| tls_error(&files.ca, format!("not a usable CA certificate: {e}")))?;
    }
    // The provider is named rather than the process default, which depends on which rustls
    // features other crates in the binary enable.
    let provider = Arc::new(ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| tls_error(&files.ca, format!("client verification: {e}")))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(&files.cert, format!("TLS setup: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            let reason = format!(
                "unusable with the certificate {}: {e}",
                files.cert.display()
            );
            tls_error(&files.key, reason)
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_error(path, format!("reading certificates: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(path, "no CERTIFICATE block in the file"));
    }
    Ok(certs)
}

fn tls_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Tls {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse() {
        assert_eq!(
            Host::parse("unix:///run/g.sock").unwrap(),
            Host::Unix("/run/g.sock".into())
        );
        assert_eq!(
            Host::parse("tcp://127.0.0.1:2376").unwrap(),
            Host::Tcp("127.0.0.1:2376".into())
        );
        assert_eq!(
            Host::parse("tcp://[::1]:2376/").unwrap(),
            Host::Tcp("[::1]:2376".into())
        );
        for bad in [
            "unix://rel.sock",
            "unix://",
            "tcp://host",
            "tcp://[::1]",
            "http://x:1",
            "x",
        ] {
            assert!(Host::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Host::parse("unix:///a").unwrap().to_string(), "unix:///a");
    }

    #[tokio::test]
    async fn a_live_socket_is_kept_and_a_stale_one_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/api.sock");
        let live = bind_unix(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o660);
        let err = bind_unix(&path).unwrap_err().to_string();
        assert!(err.contains("another daemon"), "{err}");
        drop(live);
        // The file stays behind, nothing answers: replaced.
        assert!(path.exists());
        let _again = bind_unix(&path).unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, "x").unwrap();
        assert!(bind_unix(&file)
            .unwrap_err()
            .to_string()
            .contains("not a socket"));
    }
}
