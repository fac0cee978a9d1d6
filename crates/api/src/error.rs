//! The API's errors: what a handler answers with (a status and Docker's `{"message"}`), and
//! what setting the server up can fail with.

use std::path::PathBuf;

/// A request that failed: the status and the one-line message of the `{"message"}` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400, Docker's answer to a request it cannot decode.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }

    /// Docker's 404 for a path no route matches.
    pub fn page_not_found() -> ApiError {
        ApiError::new(404, "page not found")
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, message)
    }
}

impl From<gorae_engine::Error> for ApiError {
    fn from(e: gorae_engine::Error) -> ApiError {
        ApiError::new(e.status(), e.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

/// Setting up the listeners.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid host {host:?}: {reason}")]
    Host { host: String, reason: String },
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Tls { path: PathBuf, reason: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
