//! gorae-api: the Docker Engine API (1.44–1.51) over HTTP/1.1 — the daemon's server and the
//! client the `gorae` CLI uses.
//!
//! What it owns: routing, Docker's status codes and `{"message"}` error bodies, request
//! decoding (bounded bodies, typed JSON), streaming responses and connection hijacking for
//! attach and exec. What it must not do: hold container state or touch the data root; every
//! operation is one call into gorae-engine.
//!
//! Dependencies: hyper (HTTP/1.1 with upgrades for hijacking), hyper-util (tokio glue),
//! tokio (unix and tcp listeners), serde_json (bodies).
pub mod client;
