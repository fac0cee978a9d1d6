//! OCI hooks: runs a hook program with the container state on stdin, its own env and a timeout.
//! (Skeleton: the implementation lands in its own commit.)

use oci_spec::runtime::Hook;

/// Why a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("hook {path}: {reason}")]
    Failed { path: String, reason: String },
}

/// Runs `hooks` in order, each with `state_json` on stdin; stops at the first failure.
pub fn run_hooks(hooks: &[Hook], state_json: &[u8]) -> Result<(), HookError> {
    if let Some(hook) = hooks.first() {
        let _ = state_json;
        return Err(HookError::Failed {
            path: hook.path().display().to_string(),
            reason: "not built yet".into(),
        });
    }
    Ok(())
}
