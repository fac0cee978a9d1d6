//! gorae-registry: an OCI Distribution 1.1 registry server.
//!
//! What it owns: the registry's storage root (blobs, repositories, upload sessions), the HTTP
//! server that speaks the distribution API, authentication and authorisation for it, the
//! pull-through cache, and its metrics. What it must not do: touch an engine's data root
//! (it is a separate service that happens to share the `gorae` binary), or trust anything a
//! client sends: paths, headers, bodies and manifests are all checked before they reach the
//! file system.
//!
//! Layers inside, top down: `server` (bind, TLS, background GC and expiry) → `api` (routes,
//! the spec's semantics and errors) → `auth`, `proxy`, `metrics` → `storage` (files) and
//! `http` (the wire). Digests and manifest parsing come from `gorae-image`, so the client and
//! the server agree on what a valid manifest is.
//!
//! Why these dependencies: tokio (one event loop for thousands of connections), httparse (a
//! fuzzed, allocation-free HTTP/1 head parser: the rest of HTTP/1.1 is small and lives in
//! `http`, see there why not hyper), rustix (sendfile and flock without unsafe), tokio-rustls
//! (TLS without OpenSSL), `http` (the standard header and status types), toml (the config),
//! uuid (upload session ids), bcrypt (htpasswd), ring (HMAC for tokens; already linked by
//! rustls), reqwest (the pull-through cache's upstream client, as gorae-image uses).

pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod log;
pub mod metrics;
pub mod names;
pub mod proxy;
pub mod server;
pub mod storage;

pub use config::Config;
pub use error::{ApiError, Error, ErrorCode, Result};
pub use storage::Storage;
