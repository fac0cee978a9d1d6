//! The engine's state files (container records, network records, network plans, volume
//! metadata): pretty JSON that replaces the old file atomically, through a temporary file in
//! the same directory, so a daemon killed at any point leaves the old file or the new one.

use std::io::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, IoContext as _, Result};

/// Writes `value` to `tmp`, then renames it over `path`. `durable` also syncs it first, so
/// that the new file survives a host crash; without it, it survives the daemon's.
pub(crate) fn replace_json(
    path: &Path,
    tmp: &Path,
    value: &impl Serialize,
    durable: bool,
) -> Result<()> {
    let json = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?;
    let mut file = std::fs::File::create(tmp).at(tmp)?;
    file.write_all(&json).at(tmp)?;
    if durable {
        file.sync_all().at(tmp)?;
    }
    std::fs::rename(tmp, path).at(path)
}
