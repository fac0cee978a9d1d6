//! Blob uploads: POST (session, monolithic, or cross-repository mount), PATCH (chunks,
//! streamed), PUT (finish, with an optional last chunk), GET (status), DELETE (cancel).

use gorae_image::Digest;
use http::header::{CONTENT_RANGE, LOCATION, RANGE};
use http::StatusCode;

use super::{blocking, ApiResult, Registry, CONTENT_DIGEST, UPLOAD_UUID};
use crate::error::{ApiError, ErrorCode};
use crate::http::{Request, Response};
use crate::names;
use crate::storage::{UploadInfo, UploadWriter};

pub(super) async fn start(
    registry: &Registry,
    request: &mut Request<'_>,
    name: &str,
    base_url: &str,
) -> ApiResult {
    registry.writable(name)?;
    if let Some(mount) = request.query_param("mount") {
        let digest = names::parse_digest(&mount)?;
        let from = request.query_param("from");
        // A source the client may not read, or that does not hold the blob, is no error:
        // the client gets an upload session instead, as the spec says.
        let allowed = match &from {
            Some(from) => {
                names::validate_name(from).is_ok() && registry.may_pull(request, from, base_url)
            }
            None => true,
        };
        if allowed {
            let storage = registry.storage.clone();
            let (repo, source, d) = (name.to_string(), from.clone(), digest.clone());
            let mounted =
                blocking(move || storage.mount_blob(&repo, source.as_deref(), &d)).await?;
            if mounted.is_some() {
                return Ok(created(name, &digest));
            }
        }
    }
    let session = registry.storage.start_upload(name)?;
    let Some(digest) = request.query_param("digest") else {
        return Ok(accepted(name, &session));
    };
    // Monolithic upload: the whole blob is this request's body.
    let digest = names::parse_digest(&digest)?;
    let written = write_chunk(registry, request, name, &session.id, None).await;
    if let Err(e) = written {
        let _ = registry.storage.cancel_upload(name, &session.id);
        return Err(e);
    }
    finish(registry, name, &session.id, digest).await
}

pub(super) fn status(registry: &Registry, name: &str, id: &str) -> ApiResult {
    let session = registry.storage.upload_status(name, id)?;
    let mut response = accepted(name, &session);
    response.status = StatusCode::NO_CONTENT;
    Ok(response)
}

pub(super) async fn patch(
    registry: &Registry,
    request: &mut Request<'_>,
    name: &str,
    id: &str,
) -> ApiResult {
    registry.writable(name)?;
    let start = content_range_start(request)?;
    let session = write_chunk(registry, request, name, id, start).await?;
    Ok(accepted(name, &session))
}

pub(super) async fn put(
    registry: &Registry,
    request: &mut Request<'_>,
    name: &str,
    id: &str,
) -> ApiResult {
    registry.writable(name)?;
    let digest = request.query_param("digest").ok_or_else(|| {
        ApiError::new(
            ErrorCode::DigestInvalid,
            "finishing an upload needs ?digest=<the blob's digest>",
        )
    })?;
    let digest = names::parse_digest(&digest)?;
    let has_body = request.body.content_length() != Some(0);
    if has_body {
        let start = content_range_start(request)?;
        write_chunk(registry, request, name, id, start).await?;
    } else {
        // Still refuse unknown sessions with the right code before hashing anything.
        registry.storage.upload_status(name, id)?;
    }
    finish(registry, name, id, digest).await
}

pub(super) fn cancel(registry: &Registry, name: &str, id: &str) -> ApiResult {
    registry.writable(name)?;
    registry.storage.cancel_upload(name, id)?;
    Ok(Response::new(StatusCode::NO_CONTENT))
}

async fn finish(registry: &Registry, name: &str, id: &str, digest: Digest) -> ApiResult {
    let storage = registry.storage.clone();
    let (repo, session, d) = (name.to_string(), id.to_string(), digest.clone());
    blocking(move || storage.finish_upload(&repo, &session, &d)).await?;
    Ok(created(name, &digest))
}

/// Streams the request body into the session; the session keeps whatever arrived even if the
/// client goes away, so it can resume from the offset GET reports.
async fn write_chunk(
    registry: &Registry,
    request: &mut Request<'_>,
    name: &str,
    id: &str,
    start: Option<u64>,
) -> Result<UploadInfo, ApiError> {
    let mut writer: UploadWriter = registry.storage.upload_writer(name, id, start)?;
    loop {
        match request.body.chunk().await {
            Ok(Some(piece)) => writer.write(&piece)?,
            Ok(None) => break,
            Err(e) => {
                let _ = writer.close();
                return Err(ApiError::new(
                    ErrorCode::BlobUploadInvalid,
                    format!("reading the upload body: {e}"),
                ));
            }
        }
    }
    Ok(writer.close()?)
}

/// The first byte of a chunk from `Content-Range: <start>-<end>` (the spec's form; `bytes `
/// and `bytes=` prefixes are accepted too).
fn content_range_start(request: &Request<'_>) -> Result<Option<u64>, ApiError> {
    let Some(text) = request.header(CONTENT_RANGE) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            ErrorCode::RangeInvalid,
            format!("invalid Content-Range {text:?}: expected <start>-<end>"),
        )
    };
    let spec = text
        .trim()
        .trim_start_matches("bytes")
        .trim_start_matches(['=', ' ']);
    let (start, end) = spec.split_once('-').ok_or_else(bad)?;
    let start: u64 = start.trim().parse().map_err(|_| bad())?;
    let end: u64 = end
        .split('/')
        .next()
        .unwrap_or("")
        .trim()
        .parse()
        .map_err(|_| bad())?;
    if end < start {
        return Err(bad());
    }
    if let Some(len) = request.body.content_length() {
        if len != end - start + 1 {
            return Err(ApiError::new(
                ErrorCode::RangeInvalid,
                format!("Content-Range {text:?} does not match Content-Length {len}"),
            ));
        }
    }
    Ok(Some(start))
}

/// 202 with where to send the next chunk and what has arrived.
fn accepted(name: &str, session: &UploadInfo) -> Response {
    Response::new(StatusCode::ACCEPTED)
        .header(LOCATION, format!("/v2/{name}/blobs/uploads/{}", session.id))
        .header(RANGE, format!("0-{}", session.offset.saturating_sub(1)))
        .header(UPLOAD_UUID, &session.id)
        .content_length(0)
}

fn created(name: &str, digest: &Digest) -> Response {
    Response::new(StatusCode::CREATED)
        .header(LOCATION, format!("/v2/{name}/blobs/{digest}"))
        .header(CONTENT_DIGEST, digest.to_string())
        .content_length(0)
}
