//! Content discovery: tag lists and the catalog, paginated with `n` and `last` and a `Link`
//! header to the next page.

use http::header::LINK;
use http::StatusCode;

use super::{ApiResult, Registry};
use crate::error::{ApiError, ErrorCode};
use crate::http::{Request, Response};

/// The catalog's page size when the client gives none (it can be large; tags are not capped).
const CATALOG_PAGE: usize = 1000;

pub(super) fn tags(registry: &Registry, request: &Request<'_>, name: &str) -> ApiResult {
    let Some(all) = registry.storage.tags(name)? else {
        return Err(ApiError::new(
            ErrorCode::NameUnknown,
            format!("repository {name} is not known to this registry"),
        ));
    };
    let (page, next) = paginate(request, all, None)?;
    let body = serde_json::json!({ "name": name, "tags": page });
    let response = Response::json(StatusCode::OK, &body);
    Ok(with_link(response, &format!("/v2/{name}/tags/list"), next))
}

pub(super) fn catalog(registry: &Registry, request: &Request<'_>) -> ApiResult {
    let all = registry.storage.repositories()?;
    let (page, next) = paginate(request, all, Some(CATALOG_PAGE))?;
    let response = Response::json(StatusCode::OK, &serde_json::json!({ "repositories": page }));
    Ok(with_link(response, "/v2/_catalog", next))
}

/// The next page's `(n, last)` when there is one.
type Next = Option<(usize, String)>;

/// Cuts the sorted `all` to what follows `last`, at most `n` (or `default`) entries.
fn paginate(
    request: &Request<'_>,
    all: Vec<String>,
    default: Option<usize>,
) -> Result<(Vec<String>, Next), ApiError> {
    let n = match request.query_param("n") {
        Some(text) => Some(text.parse::<usize>().map_err(|_| {
            ApiError::new(
                ErrorCode::Unsupported,
                format!("invalid page size n={text:?}: must be a non-negative integer"),
            )
            .with_status(StatusCode::BAD_REQUEST)
        })?),
        None => default,
    };
    let last = request.query_param("last");
    let mut page: Vec<String> = match &last {
        Some(last) => all.into_iter().filter(|t| t > last).collect(),
        None => all,
    };
    let Some(n) = n else {
        return Ok((page, None));
    };
    if page.len() <= n {
        return Ok((page, None));
    }
    page.truncate(n);
    let next = page.last().map(|l| (n, l.clone()));
    Ok((page, next))
}

fn with_link(response: Response, path: &str, next: Next) -> Response {
    match next {
        Some((n, last)) => response.header(
            LINK,
            format!("<{path}?n={n}&last={}>; rel=\"next\"", encode(&last)),
        ),
        None => response,
    }
}

/// Tags and names are `[A-Za-z0-9._/-]`; only `/` needs escaping in a query.
fn encode(value: &str) -> String {
    value.replace('/', "%2F")
}
