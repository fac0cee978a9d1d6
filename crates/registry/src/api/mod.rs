//! The distribution API: each route's spec semantics (status codes, headers, errors) on top of
//! storage, auth and the pull-through cache.
//!
//! Handlers never touch files themselves; anything that may block on the disk for long
//! (fsync of a finished upload or manifest) runs on tokio's blocking pool.

use std::sync::Arc;

use http::header::{HeaderName, AUTHORIZATION, HOST};
use http::{Method, StatusCode};

use crate::auth::{Action, Auth, Scope};
use crate::error::{ApiError, ErrorCode};
use crate::http::{BoxFuture, Exchange, Handler, Request, Response};
use crate::log::Logger;
use crate::metrics::Metrics;
use crate::names::{self, Route};
use crate::proxy::Proxy;
use crate::storage::Storage;

mod blobs;
mod discovery;
mod manifests;
mod uploads;

pub const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
pub const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
pub const UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
pub const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
pub const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

type ApiResult = Result<Response, ApiError>;

/// The registry as an HTTP handler.
pub struct Registry {
    pub(crate) storage: Arc<Storage>,
    pub(crate) auth: Auth,
    pub(crate) proxy: Option<Proxy>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) log: Logger,
    pub(crate) max_manifest_size: usize,
}

impl Handler for Registry {
    fn handle<'a>(&'a self, request: Request<'a>) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            let mut response = self.serve(request).await;
            response
                .headers
                .insert(API_VERSION, http::HeaderValue::from_static("registry/2.0"));
            response
        })
    }

    fn completed(&self, exchange: &Exchange) {
        self.metrics.record(exchange);
        self.log.debug(|| {
            format!(
                "{} {} {} in={} out={} {:?}",
                exchange.method,
                exchange.route,
                exchange.status.as_u16(),
                exchange.bytes_in,
                exchange.bytes_out,
                exchange.elapsed
            )
        });
    }
}

impl Registry {
    async fn serve(&self, mut request: Request<'_>) -> Response {
        let route = match names::parse_route(&request.path) {
            Ok(Some(route)) => route,
            Ok(None) => return Response::new(StatusCode::NOT_FOUND).route("unknown"),
            Err(e) => return Response::from(e).route("invalid"),
        };
        match route {
            Route::Metrics => return self.metrics.response(&self.storage),
            Route::Token if request.method == Method::POST => {
                return self.auth.token_post(&mut request).await.route("token")
            }
            Route::Token => return self.auth.token(&request).await.route("token"),
            _ => {}
        }
        let scope = scope_of(&route, &request.method);
        let base_url = base_url(&request);
        if let Err(denied) = self
            .auth
            .check(request.header(AUTHORIZATION), &scope, &base_url)
        {
            return denied.route(label(&route));
        }
        let label = label(&route);
        let result = self.dispatch(route, &mut request, &base_url).await;
        match result {
            Ok(response) => response.route(label),
            Err(e) => {
                if e.code == ErrorCode::Unknown {
                    self.log.error(&format!(
                        "{} {}: {}",
                        request.method, request.path, e.message
                    ));
                }
                Response::from(e).route(label)
            }
        }
    }

    async fn dispatch(&self, route: Route, request: &mut Request<'_>, base_url: &str) -> ApiResult {
        let method = request.method.clone();
        match (route, method) {
            (Route::Base, Method::GET | Method::HEAD) => {
                Ok(Response::json(StatusCode::OK, &serde_json::json!({})))
            }
            (Route::Catalog, Method::GET) => discovery::catalog(self, request),
            (Route::Tags { name }, Method::GET) => discovery::tags(self, request, &name),
            (Route::Manifest { name, reference }, Method::GET | Method::HEAD) => {
                manifests::get(self, request, &name, &reference).await
            }
            (Route::Manifest { name, reference }, Method::PUT) => {
                manifests::put(self, request, &name, &reference).await
            }
            (Route::Manifest { name, reference }, Method::DELETE) => {
                manifests::delete(self, &name, &reference).await
            }
            (Route::Referrers { name, digest }, Method::GET) => {
                manifests::referrers(self, request, &name, &digest)
            }
            (Route::Blob { name, digest }, Method::GET | Method::HEAD) => {
                blobs::get(self, request, &name, &digest).await
            }
            (Route::Blob { name, digest }, Method::DELETE) => blobs::delete(self, &name, &digest),
            (Route::UploadStart { name }, Method::POST) => {
                uploads::start(self, request, &name, base_url).await
            }
            (Route::Upload { name, id }, Method::GET) => uploads::status(self, &name, &id),
            (Route::Upload { name, id }, Method::PATCH) => {
                uploads::patch(self, request, &name, &id).await
            }
            (Route::Upload { name, id }, Method::PUT) => {
                uploads::put(self, request, &name, &id).await
            }
            (Route::Upload { name, id }, Method::DELETE) => uploads::cancel(self, &name, &id),
            (_, method) => Err(ApiError::new(
                ErrorCode::Unsupported,
                format!("{method} is not supported on {}", request.path),
            )),
        }
    }

    /// Refuses writes to names the pull-through cache mirrors.
    pub(crate) fn writable(&self, name: &str) -> Result<(), ApiError> {
        match &self.proxy {
            Some(proxy) if proxy.mirrors(name) => Err(ApiError::new(
                ErrorCode::Unsupported,
                format!("{name} is a mirror of an upstream registry: it cannot be pushed to"),
            )),
            _ => Ok(()),
        }
    }

    /// Whether the requester may also pull from `repo` (cross-repository mounts).
    pub(crate) fn may_pull(&self, request: &Request<'_>, repo: &str, base_url: &str) -> bool {
        let scope = Scope::Repository {
            name: repo.to_string(),
            actions: vec![Action::Pull],
        };
        self.auth
            .check(request.header(AUTHORIZATION), &scope, base_url)
            .is_ok()
    }
}

/// What a route needs from auth, by method.
fn scope_of(route: &Route, method: &Method) -> Scope {
    let Some(name) = route.repository() else {
        return match route {
            Route::Catalog => Scope::Catalog,
            _ => Scope::Base,
        };
    };
    let actions = match (route, method) {
        (_, &Method::GET | &Method::HEAD) if !matches!(route, Route::Upload { .. }) => {
            vec![Action::Pull]
        }
        (Route::Manifest { .. } | Route::Blob { .. }, &Method::DELETE) => vec![Action::Delete],
        // Pushing needs pull too (clients check what is there), as in distribution.
        _ => vec![Action::Pull, Action::Push],
    };
    Scope::Repository {
        name: name.to_string(),
        actions,
    }
}

fn label(route: &Route) -> &'static str {
    match route {
        Route::Base => "base",
        Route::Catalog => "catalog",
        Route::Manifest { .. } => "manifest",
        Route::Blob { .. } => "blob",
        Route::UploadStart { .. } | Route::Upload { .. } => "upload",
        Route::Tags { .. } => "tags",
        Route::Referrers { .. } => "referrers",
        Route::Token => "token",
        Route::Metrics => "metrics",
    }
}

/// This registry's URL as the client addressed it, for token realms.
fn base_url(request: &Request<'_>) -> String {
    let scheme = if request.tls { "https" } else { "http" };
    let host = request
        .header(HOST)
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| request.peer.ip().to_string());
    format!("{scheme}://{host}")
}

/// Runs storage work that may block on the disk for long (fsync, hashing) off the event loop.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => Err(ApiError::new(
            ErrorCode::Unknown,
            format!("storage task failed: {e}"),
        )),
    }
}
