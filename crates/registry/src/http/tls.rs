//! TLS with rustls: a certificate chain and key from PEM files.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::ServerConfig;

use crate::error::{Error, Result};

/// Loads `cert` (a PEM chain) and `key` (PEM, PKCS#8, PKCS#1 or SEC1) into a server config
/// that offers HTTP/1.1 over ALPN.
pub fn load_tls(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| config_error(cert, format!("reading the certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(config_error(cert, "no CERTIFICATE block in the file"));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        let e = match e {
            rustls_pki_types::pem::Error::NoItemsFound => "no private key block".to_string(),
            e => e.to_string(),
        };
        config_error(key, format!("reading the private key: {e}"))
    })?;
    // The provider is named rather than taken from the process default, which depends on
    // which rustls features other crates in the binary happen to enable.
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(cert, format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| {
            let reason = format!("unusable with the certificate {}: {e}", cert.display());
            config_error(key, reason)
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn config_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Config {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}
