//! Errors. Two kinds live here:
//!
//! - [`Error`]: what goes wrong inside the registry (files, configuration, TLS), each naming the
//!   file or setting it is about. Storage, auth and the server return it.
//! - [`ApiError`]: what a client is told, with the distribution spec's error code, the HTTP
//!   status that goes with it and a message. Handlers turn `Error`s into `ApiError`s at the
//!   edge; an internal error becomes a 500 whose message names the object but never leaks a
//!   host path.

use std::path::PathBuf;

use http::StatusCode;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config {}: {reason}", path.display())]
    Config { path: PathBuf, reason: String },
    #[error("{0}")]
    Image(#[from] gorae_image::Error),
    /// A client-visible failure raised deep inside storage or auth (a missing blob, a bad
    /// manifest): passed through to the client unchanged.
    #[error("{}", .0.message)]
    Api(#[from] ApiError),
    #[error("{what}: {reason}")]
    Other { what: String, reason: String },
}

/// Attaches a path to an io::Error, as `gorae_image::error::IoContext` does.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}

/// The error codes of the distribution spec (plus the few registries commonly add).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    /// A chunk out of order or a Range that cannot be served: status 416. The spec's table has
    /// no code of its own for it and says a body's code must come from the table, so the
    /// body says BLOB_UPLOAD_INVALID (distribution's RANGE_INVALID is not in the table).
    RangeInvalid,
    /// 500s. The spec has no code for them; distribution says UNKNOWN.
    Unknown,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::TooManyRequests => "TOOMANYREQUESTS",
            ErrorCode::RangeInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::Unknown => "UNKNOWN",
        }
    }

    /// The status the spec (or, where it is silent, distribution) pairs with the code.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BlobUnknown
            | ErrorCode::BlobUploadUnknown
            | ErrorCode::ManifestUnknown
            | ErrorCode::NameUnknown => StatusCode::NOT_FOUND,
            ErrorCode::BlobUploadInvalid
            | ErrorCode::DigestInvalid
            | ErrorCode::ManifestBlobUnknown
            | ErrorCode::ManifestInvalid
            | ErrorCode::NameInvalid
            | ErrorCode::SizeInvalid => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Denied => StatusCode::FORBIDDEN,
            ErrorCode::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
            ErrorCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// One client-visible error: `{"errors":[{"code":..,"message":..,"detail":..}]}`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ApiError {
    pub code: ErrorCode,
    /// Overrides the code's usual status (413 for a too-large manifest, 416, 405 ...).
    pub status: Option<StatusCode>,
    pub message: String,
    pub detail: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            status: None,
            message: message.into(),
            detail: None,
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = Some(status);
        self
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> ApiError {
        self.detail = Some(detail);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or_else(|| self.code.status())
    }

    /// The JSON body the spec prescribes.
    pub fn body(&self) -> Vec<u8> {
        let mut entry = serde_json::json!({
            "code": self.code.as_str(),
            "message": self.message,
        });
        if let Some(detail) = &self.detail {
            entry["detail"] = detail.clone();
        }
        serde_json::to_vec(&serde_json::json!({ "errors": [entry] })).unwrap_or_default()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        match e {
            Error::Api(api) => api,
            Error::Image(gorae_image::Error::InvalidDigest { value, reason }) => ApiError::new(
                ErrorCode::DigestInvalid,
                format!("invalid digest {value:?}: {reason}"),
            ),
            Error::Image(
                e @ (gorae_image::Error::InvalidDocument { .. }
                | gorae_image::Error::UnsupportedMediaType { .. }),
            ) => ApiError::new(ErrorCode::ManifestInvalid, e.to_string()),
            Error::Image(e @ gorae_image::Error::DigestMismatch { .. }) => {
                ApiError::new(ErrorCode::DigestInvalid, e.to_string())
            }
            Error::Image(e @ gorae_image::Error::SizeMismatch { .. }) => {
                ApiError::new(ErrorCode::SizeInvalid, e.to_string())
            }
            // Internal failures: the message names the object; file paths under the storage
            // root are the registry's business, so only their last two components are shown.
            Error::Io { path, source } => ApiError::new(
                ErrorCode::Unknown,
                format!("storage error on {}: {source}", short_path(&path)),
            ),
            other => ApiError::new(ErrorCode::Unknown, other.to_string()),
        }
    }
}

fn short_path(path: &std::path::Path) -> String {
    let parts: Vec<_> = path.iter().rev().take(2).collect();
    parts
        .into_iter()
        .rev()
        .map(|p| p.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
