//! Exec instances: `docker exec` — a process started in a running container through
//! `gorae-runc exec`, its stdio pumped to the hijacked API connection.

/// Exec instances by id.
#[derive(Default)]
pub struct Execs {}
