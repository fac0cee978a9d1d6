//! Upload sessions. (storage helper)

use gorae_image::Digest;

use super::{Inner, UploadInfo, UploadWriter};
use crate::error::Result;

pub(crate) struct WriterState {}

impl WriterState {
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<()> {
        let _ = data;
        todo!("storage helper")
    }
    pub(crate) fn offset(&self) -> u64 {
        todo!("storage helper")
    }
    pub(crate) fn close(self) -> Result<UploadInfo> {
        todo!("storage helper")
    }
}

pub(crate) fn start(inner: &Inner, repo: &str) -> Result<UploadInfo> {
    let _ = (inner, repo);
    todo!("storage helper")
}

pub(crate) fn status(inner: &Inner, repo: &str, id: &str) -> Result<UploadInfo> {
    let _ = (inner, repo, id);
    todo!("storage helper")
}

pub(crate) fn writer(
    inner: &Inner,
    repo: &str,
    id: &str,
    start: Option<u64>,
) -> Result<UploadWriter> {
    let _ = (inner, repo, id, start);
    todo!("storage helper")
}

pub(crate) fn finish(inner: &Inner, repo: &str, id: &str, digest: &Digest) -> Result<u64> {
    let _ = (inner, repo, id, digest);
    todo!("storage helper")
}

pub(crate) fn cancel(inner: &Inner, repo: &str, id: &str) -> Result<()> {
    let _ = (inner, repo, id);
    todo!("storage helper")
}

pub(crate) fn expire(inner: &Inner) -> Result<usize> {
    let _ = inner;
    todo!("storage helper")
}
