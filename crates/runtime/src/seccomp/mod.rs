//! OCI seccomp: compiles `linux.seccomp` into a classic BPF program and installs it.
//! (Skeleton: the full compiler lands in its own commit.)

use oci_spec::runtime::LinuxSeccomp;
use std::os::fd::OwnedFd;

/// Why a seccomp profile could not be compiled or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: {0}")]
    Unsupported(String),
}

/// A compiled filter, ready to install in the process that will exec the container's program.
#[derive(Debug, Clone)]
pub struct SeccompProgram {
    _private: (),
}

/// Compiles an OCI seccomp profile for the host's architecture.
pub fn compile(_profile: &LinuxSeccomp) -> Result<SeccompProgram, SeccompError> {
    Err(SeccompError::Unsupported("not built yet".into()))
}

impl SeccompProgram {
    /// Installs the filter on the calling thread (with the profile's flags). Returns the
    /// user-notification listener fd when the profile uses SCMP_ACT_NOTIFY.
    pub fn install(&self) -> Result<Option<OwnedFd>, SeccompError> {
        Err(SeccompError::Unsupported("not built yet".into()))
    }
}
