//! The engine's errors. Each kind maps to the HTTP status Docker gives it; the message is
//! the one-line text the API sends as `{"message": ...}`, in Docker's words where Docker has
//! words for it ("No such container: x").

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 404: an unknown container, image, exec instance.
    #[error("{0}")]
    NotFound(String),
    /// 409: a name in use, removing a running container, a container in the wrong state.
    #[error("{0}")]
    Conflict(String),
    /// 403: what Docker forbids (removing a pre-defined network, an overlapping pool).
    #[error("{0}")]
    Forbidden(String),
    /// 400: a request that cannot be honoured as given.
    #[error("{0}")]
    InvalidParameter(String),
    /// 304: start of a running container, stop of a stopped one.
    #[error("{0}")]
    NotModified(String),
    /// 501: asked for something gorae does not do (yet), said plainly.
    #[error("{0}")]
    NotImplemented(String),
    /// 500: anything else.
    #[error("{0}")]
    Internal(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Image(#[from] gorae_image::Error),
    #[error(transparent)]
    Runtime(#[from] gorae_runtime::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status code Docker answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            Error::NotFound(_) => 404,
            Error::Conflict(_) => 409,
            Error::InvalidParameter(_) => 400,
            Error::Forbidden(_) => 403,
            Error::NotModified(_) => 304,
            Error::NotImplemented(_) => 501,
            Error::Image(e) => image_status(e),
            Error::Internal(_) | Error::Io { .. } | Error::Runtime(_) => 500,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

fn image_status(e: &gorae_image::Error) -> u16 {
    match e {
        gorae_image::Error::ImageNotFound(_) => 404,
        gorae_image::Error::InvalidReference { .. } => 400,
        _ => 500,
    }
}

/// Adds the path to an io::Error.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
