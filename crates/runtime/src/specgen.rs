//! The default `config.json` written by `gorae-runc spec`, and the `features` document.
//! (Skeleton: the implementation lands in its own commit.)

use oci_spec::runtime::Spec;

/// runc's default spec: `sh` in `rootfs`, the usual mounts, namespaces and masked paths.
pub fn default_spec(_rootless: bool) -> Spec {
    Spec::default()
}

/// The OCI `features` document (runtime-spec features.md) describing what this runtime supports.
pub fn features() -> serde_json::Value {
    serde_json::json!({})
}
