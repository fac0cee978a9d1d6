//! Blobs: GET (whole or one byte range, sent with sendfile), HEAD, DELETE.

use gorae_image::Digest;
use http::header::{ACCEPT_RANGES, CACHE_CONTROL, CONTENT_RANGE, CONTENT_TYPE, ETAG, RANGE};
use http::{Method, StatusCode};

use super::{ApiResult, Registry, CONTENT_DIGEST};
use crate::error::{ApiError, ErrorCode};
use crate::http::{Request, Response, ResponseBody};

pub(super) async fn get(
    registry: &Registry,
    request: &Request<'_>,
    name: &str,
    digest: &Digest,
) -> ApiResult {
    let head = request.method == Method::HEAD;
    if let Some(proxy) = registry.proxy.as_ref().filter(|p| p.mirrors(name)) {
        return match proxy.blob(name, digest, head).await? {
            Some(response) => Ok(response),
            None => Err(unknown(name, digest)),
        };
    }
    if head {
        let size = registry
            .storage
            .stat_blob(name, digest)?
            .ok_or_else(|| unknown(name, digest))?;
        return Ok(headers(digest).content_length(size));
    }
    let (file, size) = registry
        .storage
        .open_blob(name, digest)?
        .ok_or_else(|| unknown(name, digest))?;
    let range = match request.header(RANGE) {
        Some(text) => parse_range(text, size).ok_or_else(|| {
            ApiError::new(
                ErrorCode::RangeInvalid,
                format!("range {text:?} is not satisfiable for {size} bytes"),
            )
        })?,
        None => None,
    };
    let mut response = headers(digest);
    let (offset, len) = match range {
        Some((start, len)) => {
            response.status = StatusCode::PARTIAL_CONTENT;
            let end = start + len - 1;
            response = response.header(CONTENT_RANGE, format!("bytes {start}-{end}/{size}"));
            (start, len)
        }
        None => (0, size),
    };
    response.body = ResponseBody::File { file, offset, len };
    Ok(response)
}

pub(super) fn delete(registry: &Registry, name: &str, digest: &Digest) -> ApiResult {
    registry.writable(name)?;
    if !registry.storage.delete_blob(name, digest)? {
        return Err(unknown(name, digest));
    }
    Ok(Response::new(StatusCode::ACCEPTED))
}

fn unknown(name: &str, digest: &Digest) -> ApiError {
    ApiError::new(
        ErrorCode::BlobUnknown,
        format!("blob {digest} is not known to repository {name}"),
    )
    .with_detail(serde_json::json!({ "digest": digest.to_string() }))
}

/// The headers every successful blob response carries.
pub(super) fn headers(digest: &Digest) -> Response {
    Response::new(StatusCode::OK)
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_DIGEST, digest.to_string())
        .header(ETAG, format!("\"{digest}\""))
        .header(ACCEPT_RANGES, "bytes")
        // Content-addressed: it can never change.
        .header(CACHE_CONTROL, "max-age=31536000")
}

/// One `bytes=` range of a `size`-byte blob as (start, length). `Ok(None)` means serve it
/// all (a unit or form we do not handle, which HTTP lets a server ignore); `None` (the outer)
/// means not satisfiable (416).
fn parse_range(text: &str, size: u64) -> Option<Option<(u64, u64)>> {
    let Some(spec) = text.trim().strip_prefix("bytes=") else {
        return Some(None);
    };
    if spec.contains(',') {
        return Some(None);
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let (start, end) = if first.is_empty() {
        let suffix: u64 = last.parse().ok()?;
        if suffix == 0 || size == 0 {
            return None;
        }
        (size.saturating_sub(suffix), size - 1)
    } else {
        let start: u64 = first.parse().ok()?;
        let end = if last.is_empty() {
            size.checked_sub(1)?
        } else {
            last.parse::<u64>().ok()?.min(size.checked_sub(1)?)
        };
        (start, end)
    };
    if start > end || start >= size {
        return None;
    }
    Some(Some((start, end - start + 1)))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Some((0, 10))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Some((90, 10))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Some((90, 10))));
        assert_eq!(parse_range("bytes=50-500", 100), Some(Some((50, 50))));
        assert_eq!(parse_range("bytes=-500", 100), Some(Some((0, 100))));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("bytes=x-1", 100), None);
        assert_eq!(parse_range("bytes=0-", 0), None);
        assert_eq!(parse_range("items=0-1", 100), Some(None));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Some(None));
    }
}
