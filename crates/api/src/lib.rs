//! gorae-api: the Docker Engine API (1.24–1.51) over HTTP/1.1 — the daemon's server and the
//! client the `gorae` CLI uses.
//!
//! What it owns: listening (unix socket, tcp with TLS client certificates), routing, Docker's
//! status codes, headers and `{"message"}` error bodies, request decoding (bounded bodies,
//! typed JSON whose errors name the field), streaming responses and connection hijacking
//! for attach and exec. What it must not do: hold container state or touch the data root
//! (beyond spooling an uploaded image tarball); every operation is one call into
//! gorae-engine.
//!
//! Dependencies: hyper (HTTP/1.1 with upgrades for hijacking), hyper-util (tokio glue),
//! tokio (unix and tcp listeners), tokio-rustls (TLS, the ring provider gorae-registry
//! already builds), serde_json (bodies), base64 (`X-Registry-Auth`), tempfile (load spool).

pub mod body;
pub mod client;
pub mod decode;
pub mod error;
mod handlers;
pub mod listen;
pub mod log;
pub mod query;
pub mod router;
pub mod server;
#[cfg(test)]
mod testutil;

pub use error::{ApiError, Error, Result};
pub use listen::{Host, TlsFiles};
pub use server::{Server, ServerConfig};
