//! gorae-engine: the container engine behind `gorae daemon`.
//!
//! What it owns: the containers of one data root — their records (`containers/<id>/`), their
//! bundles and root snapshots, their logs, the monitors that supervise them (one
//! `gorae-runc monitor` per running container, which outlives the daemon), exec instances,
//! events, restart policies — and the image service over gorae-image's store.
//!
//! What it must not do: speak HTTP (gorae-api does), fork containers in its own process (the
//! daemon is multi-threaded; the runtime's fork-based create must not run in it: gorae-runc
//! does that), or print (it returns errors and logs through the `log` hook it is given).
//!
//! Dependencies: gorae-runtime (spec generation, cgroup stats, state), gorae-image (store,
//! snapshots), oci-spec (the bundle's config.json), tokio (the daemon's async runtime:
//! process spawning, timers, channels), `tar` (archive endpoints), serde for the Docker model.

pub mod archive;
pub mod cgroup_parent;
pub mod config;
pub mod container;
pub mod engine;
pub mod error;
pub mod events;
pub mod exec;
pub mod health;
mod hijacked;
pub mod images;
mod io_ops;
pub mod logging;
pub mod logs;
pub mod network;
pub mod restart;
pub mod spec;
mod state_file;
pub mod stats;
pub mod supervisor;
pub mod top;
pub mod types;
pub mod volumes;

pub use config::EngineConfig;
pub use engine::Engine;
pub use error::{Error, Result};
