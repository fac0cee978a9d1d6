//! Linux capabilities: the five OCI capability sets applied to the calling process.
//! (Skeleton: the implementation lands in its own commit.)

use oci_spec::runtime::LinuxCapabilities;

/// Why capabilities could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    #[error("capabilities: {0}")]
    Unsupported(String),
}

/// Drops every capability not in `caps.bounding` from the bounding set.
pub fn drop_bounding_set(_caps: &LinuxCapabilities) -> Result<(), CapabilityError> {
    Err(CapabilityError::Unsupported("not built yet".into()))
}

/// Sets the effective, permitted and inheritable sets, then raises the ambient set.
pub fn apply_process_sets(_caps: &LinuxCapabilities) -> Result<(), CapabilityError> {
    Err(CapabilityError::Unsupported("not built yet".into()))
}

/// PR_SET_KEEPCAPS: whether permitted capabilities survive the switch to a non-root uid.
pub fn keep_capabilities_on_setuid(_keep: bool) -> Result<(), CapabilityError> {
    Err(CapabilityError::Unsupported("not built yet".into()))
}
