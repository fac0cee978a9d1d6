//! Request bodies: Content-Length and chunked, read on demand, with `Expect: 100-continue`.

use std::io;

use bytes::Bytes;

use super::{Body, BodyError};

/// Where a body is read from; owned by the connection (http helper fills this in).
pub(crate) struct BodyState<'c> {
    pub(crate) _conn: std::marker::PhantomData<&'c mut ()>,
}

impl Body<'_> {
    /// The declared Content-Length; None for chunked bodies.
    pub fn content_length(&self) -> Option<u64> {
        todo!("http helper")
    }

    /// The next piece of the body, or None at its end. Sends `100 Continue` first if the
    /// client asked for it.
    pub async fn chunk(&mut self) -> io::Result<Option<Bytes>> {
        todo!("http helper")
    }

    /// The whole body, refused (without reading the rest) past `limit` bytes.
    pub async fn to_bytes(&mut self, limit: usize) -> Result<Bytes, BodyError> {
        let _ = limit;
        todo!("http helper")
    }

    /// Body bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        todo!("http helper")
    }
}
