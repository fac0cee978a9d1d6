//! gorae-runtime: the OCI runtime library.
//!
//! It turns an OCI bundle (a `config.json` plus a root filesystem) into a process isolated by
//! Linux namespaces, limited by cgroups (v1, v2 or the hybrid of both), rooted in its own
//! filesystem by `pivot_root`, and confined by capabilities and seccomp. It owns the state
//! directory of the containers it creates (one directory per container under a root such as
//! `/run/gorae-runc`) and everything it puts on the host for them: cgroups, mounts, processes.
//!
//! It must not: start threads before it forks a container (the container's init is a `fork` of
//! the caller, not a re-exec, which is what makes it fast), use an async runtime, or print to
//! stdout/stderr on its own; errors are returned to the caller, which decides how to show them.
//!
//! Dependencies: `oci-spec` for the spec types (the contract with every OCI caller), `nix` and
//! `libc` for the system calls, `serde_json` for config and state files, `thiserror` for errors.

pub mod capabilities;
pub mod cgroups;
pub mod config;
pub mod console;
pub mod container;
pub mod error;
pub mod events;
pub mod exec;
pub mod foreground;
pub mod hooks;
pub mod init;
pub mod namespaces;
pub mod process;
pub mod procfs;
pub mod rootfs;
pub mod sealed_exe;
pub mod seccomp;
pub mod spawn;
pub mod specgen;
pub mod state;
pub mod sync;
pub mod sys;
pub mod update;

pub use container::{CreateOptions, Runtime};
pub use error::{Error, Result};
pub use exec::ExecOptions;
pub use state::Status;
