//! The registry's TOML configuration. Every field has a safe default, so an empty file (or
//! none) gives an anonymous registry on 127.0.0.1:5000.
//!
//! ```toml
//! addr = "127.0.0.1:5000"
//! root = "/var/lib/gorae/registry"
//! log = "info"                     # error, warn, info, debug
//!
//! [tls]                            # https when both are given
//! cert = "/etc/gorae/registry.crt"
//! key = "/etc/gorae/registry.key"
//!
//! [storage]
//! upload_expiry = "24h"            # abandoned upload sessions are removed after this
//! gc_interval = "1h"               # online garbage collection; "0s" turns it off
//! gc_grace = "1h"                  # blobs younger (or used more recently) than this are kept
//! max_manifest_size = 4194304
//!
//! [auth]                           # absent: no authentication
//! htpasswd = "/etc/gorae/htpasswd" # bcrypt entries, as `htpasswd -B` writes them
//! access = "/etc/gorae/access.toml"
//! token = true                     # Bearer tokens from this registry's /token endpoint
//! token_expiry = "5m"
//!
//! [[proxy.upstream]]               # pull-through cache of one or more registries
//! url = "https://registry.example.com"
//! prefix = "example"               # optional: only names under example/ go here
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub addr: SocketAddr,
    pub root: PathBuf,
    pub log: LogLevel,
    pub tls: Option<TlsConfig>,
    pub storage: StorageConfig,
    pub auth: Option<AuthConfig>,
    pub proxy: ProxyConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 5000)),
            root: PathBuf::from("/var/lib/gorae/registry"),
            log: LogLevel::Info,
            tls: None,
            storage: StorageConfig::default(),
            auth: None,
            proxy: ProxyConfig::default(),
        }
    }
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text).map_err(|reason| Error::Config {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses config text; the error is one line naming the field.
    pub fn parse(text: &str) -> std::result::Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| one_line(&e.to_string()))?;
        if let Some(tls) = &config.tls {
            if tls.cert.as_os_str().is_empty() || tls.key.as_os_str().is_empty() {
                return Err("tls: both cert and key are needed".into());
            }
        }
        for upstream in &config.proxy.upstream {
            if !(upstream.url.starts_with("http://") || upstream.url.starts_with("https://")) {
                return Err(format!(
                    "proxy.upstream url {:?}: must start with http:// or https://",
                    upstream.url
                ));
            }
        }
        Ok(config)
    }
}

pub(crate) fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^'))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    #[serde(deserialize_with = "duration")]
    pub upload_expiry: Duration,
    #[serde(deserialize_with = "duration")]
    pub gc_interval: Duration,
    #[serde(deserialize_with = "duration")]
    pub gc_grace: Duration,
    pub max_manifest_size: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            upload_expiry: Duration::from_secs(24 * 3600),
            gc_interval: Duration::from_secs(3600),
            gc_grace: Duration::from_secs(3600),
            max_manifest_size: gorae_image::manifest::MAX_DOCUMENT_SIZE,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// bcrypt htpasswd file. Without it only anonymous access (from the access file) exists.
    pub htpasswd: Option<PathBuf>,
    /// Who may do what where. Without it every authenticated user may do everything and
    /// anonymous users nothing.
    pub access: Option<PathBuf>,
    /// Bearer tokens from the built-in /token endpoint instead of Basic on every request.
    pub token: bool,
    #[serde(deserialize_with = "duration")]
    pub token_expiry: Duration,
    /// The realm URL put in challenges. Default: this registry's own /token, from the Host
    /// header of the request.
    pub token_realm: Option<String>,
    /// The `service` and token issuer name.
    pub service: String,
    /// HMAC key for tokens. Default: `<root>/token.key`, made on first start.
    pub token_key: Option<PathBuf>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            htpasswd: None,
            access: None,
            token: false,
            token_expiry: Duration::from_secs(300),
            token_realm: None,
            service: "gorae-registry".into(),
            token_key: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    pub upstream: Vec<UpstreamConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub url: String,
    /// Names under `prefix/` go to this upstream with the prefix removed. Upstreams without
    /// a prefix are tried in order for every other name.
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// How long a tag's cached manifest is served without asking the upstream again.
    #[serde(default = "default_tag_ttl", deserialize_with = "duration")]
    pub tag_ttl: Duration,
}

fn default_tag_ttl() -> Duration {
    Duration::from_secs(60)
}

/// "90s", "5m", "24h", "7d", "0s" (or a bare number of seconds).
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?} (like 30s, 5m, 24h, 7d)"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("invalid duration unit in {text:?} (s, m, h or d)")),
    };
    n.checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("duration {text:?} is too long"))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_safe_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:5000");
        assert!(c.auth.is_none() && c.tls.is_none() && c.proxy.upstream.is_empty());
    }

    #[test]
    fn parses_everything() {
        let c = Config::parse(
            r#"
            addr = "0.0.0.0:5443"
            root = "/srv/r"
            log = "debug"
            [tls]
            cert = "c.pem"
            key = "k.pem"
            [storage]
            upload_expiry = "2h"
            gc_interval = "0s"
            [auth]
            htpasswd = "h"
            token = true
            [[proxy.upstream]]
            url = "http://a:5000"
            prefix = "a"
            tag_ttl = "10s"
            [[proxy.upstream]]
            url = "https://b"
            "#,
        )
        .unwrap();
        assert_eq!(c.storage.upload_expiry, Duration::from_secs(7200));
        assert_eq!(c.storage.gc_interval, Duration::ZERO);
        assert!(c.auth.unwrap().token);
        assert_eq!(c.proxy.upstream.len(), 2);
        assert_eq!(c.proxy.upstream[1].tag_ttl, Duration::from_secs(60));
    }

    #[test]
    fn errors_name_the_field() {
        let e = Config::parse("adr = \"x\"").unwrap_err();
        assert!(e.contains("adr"), "{e}");
        let e = Config::parse("[storage]\ngc_grace = \"5y\"").unwrap_err();
        assert!(e.contains("5y"), "{e}");
        let e = Config::parse("[[proxy.upstream]]\nurl = \"ftp://x\"").unwrap_err();
        assert!(e.contains("ftp://x"), "{e}");
        assert!(!e.contains('\n'));
    }
}
