//! One upstream registry: its HTTP client, the 401 → challenge → credentials or token →
//! retry flow (tokens cached per repository), and errors that name the upstream.
//!
//! Why not gorae-image's registry client: it is crate-private, takes `host[:port]` rather
//! than a URL, and waits 30 s for a connection; a cache must give up on a dead upstream fast
//! and serve what it has. The challenge parser, token URL and token answer are shared with it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use gorae_image::registry::auth::{self, Challenge, Credentials, TokenResponse};
use http::StatusCode;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION};
use reqwest::{Method, Response};

use crate::config::UpstreamConfig;
use crate::error::{ApiError, Error, ErrorCode, Result};

/// A dead upstream is given up on after this, so the cache answers instead.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// An upstream that stops sending mid-body (a blob) is given up on after this.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Manifests, HEADs and tokens are small: a whole exchange longer than this is a hung
/// upstream.
const SMALL_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Registries redirect blob GETs to object storage.
const MAX_REDIRECTS: usize = 10;
/// Caps what is read of token answers and error bodies.
const MAX_SMALL_BODY: usize = 1 << 20;

pub(super) struct Upstream {
    /// The configured URL without a trailing `/`: what errors name.
    pub url: String,
    pub prefix: Option<String>,
    pub tag_ttl: Duration,
    http: reqwest::Client,
    credentials: Option<Credentials>,
    /// Authorization header value per token scope, learned from challenges.
    auth: Mutex<HashMap<String, String>>,
}

impl Upstream {
    pub fn new(config: &UpstreamConfig) -> Result<Upstream> {
        let url = config.url.trim_end_matches('/').to_string();
        let invalid = |reason: String| Error::Other {
            what: format!("proxy.upstream url {:?}", config.url),
            reason,
        };
        let parsed = reqwest::Url::parse(&url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(invalid(
                "must be an http:// or https:// URL with a host".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .hickory_dns(true)
            .user_agent(concat!("gorae-registry/", env!("CARGO_PKG_VERSION")))
            // reqwest drops Authorization when a redirect changes host, so upstream
            // credentials never reach the storage a blob is redirected to.
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| invalid(format!("http client: {e}")))?;
        let credentials = match (&config.username, &config.password) {
            (Some(username), password) => Some(Credentials {
                username: username.clone(),
                password: password.clone().unwrap_or_default(),
            }),
            (None, _) => None,
        };
        Ok(Upstream {
            url,
            prefix: config.prefix.clone(),
            tag_ttl: config.tag_ttl,
            http,
            credentials,
            auth: Mutex::new(HashMap::new()),
        })
    }

    /// `method` on `/v2/<name>/<tail>` (tail: `manifests/<ref>` or `blobs/<digest>`), with
    /// the pull token for `name`. `small` requests get a deadline for the whole exchange;
    /// blob GETs only one per read.
    pub async fn request(
        &self,
        method: Method,
        name: &str,
        tail: &str,
        accept: Option<&str>,
        small: bool,
    ) -> Result<Response> {
        let what = format!("{method} {name}/{tail}");
        let url = format!("{}/v2/{name}/{tail}", self.url);
        let scope = format!("repository:{name}:pull");
        let send = |authorization: Option<String>| {
            let mut request = self.http.request(method.clone(), &url);
            if small {
                request = request.timeout(SMALL_REQUEST_TIMEOUT);
            }
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            if let Some(value) = authorization {
                request = request.header(AUTHORIZATION, value);
            }
            request.send()
        };
        let response = send(self.cached_auth(&scope))
            .await
            .map_err(|e| self.http_error(&what, &e))?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let header = self.authorize(response.headers(), &scope, &what).await?;
        self.auth
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(scope, header.clone());
        let response = send(Some(header))
            .await
            .map_err(|e| self.http_error(&what, &e))?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(self.error(&what, "credentials refused (401)"));
        }
        Ok(response)
    }

    fn cached_auth(&self, scope: &str) -> Option<String> {
        let cache = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(scope).cloned().or_else(|| {
            // Basic auth does not depend on the scope: reuse it everywhere.
            cache.values().find(|v| v.starts_with("Basic ")).cloned()
        })
    }

    /// Answers a 401's challenges with an Authorization header value.
    async fn authorize(&self, headers: &HeaderMap, scope: &str, what: &str) -> Result<String> {
        let challenges = auth::challenges_in(headers);
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            return self.fetch_token(bearer, scope, what).await;
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            return match &self.credentials {
                Some(c) => Ok(c.basic_header()),
                None => Err(self.error(what, "asks for credentials; none are configured")),
            };
        }
        Err(self.error(what, "401 without a Basic or Bearer challenge"))
    }

    async fn fetch_token(&self, challenge: &Challenge, scope: &str, what: &str) -> Result<String> {
        let url = auth::token_url(challenge, &[scope.to_string()])
            .map_err(|e| self.error(what, &e.to_string()))?;
        let realm = format!(
            "{what}: token server {}",
            url.origin().ascii_serialization()
        );
        let mut request = self.http.get(url).timeout(SMALL_REQUEST_TIMEOUT);
        if let Some(c) = &self.credentials {
            request = request.header(AUTHORIZATION, c.basic_header());
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.http_error(&realm, &e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.error(&realm, &format!("refused a token: {status}")));
        }
        let body = read_limited(response, MAX_SMALL_BODY)
            .await
            .map_err(|e| self.http_error(&realm, &e))?;
        let token = serde_json::from_slice::<TokenResponse>(&body)
            .ok()
            .and_then(TokenResponse::into_token)
            .ok_or_else(|| self.error(&realm, "answer has no token"))?;
        Ok(format!("Bearer {token}"))
    }

    /// What the client is told when this upstream fails and the cache cannot answer: a 502,
    /// since the client's request was fine.
    pub fn error(&self, what: &str, reason: &str) -> Error {
        Error::Api(
            ApiError::new(
                ErrorCode::Unknown,
                format!("upstream {}: {what}: {reason}", self.url),
            )
            .with_status(StatusCode::BAD_GATEWAY),
        )
    }

    pub fn http_error(&self, what: &str, e: &reqwest::Error) -> Error {
        // reqwest's Display hides the cause (connection refused, timed out); show the chain.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        self.error(what, &message)
    }

    /// A HEAD of `name/tail`: the response when the upstream has it, None on 404, an error
    /// naming `what` on anything else.
    pub async fn head(
        &self,
        name: &str,
        tail: &str,
        accept: Option<&str>,
        what: &str,
    ) -> Result<Option<Response>> {
        let response = self.request(Method::HEAD, name, tail, accept, true).await?;
        match response.status() {
            StatusCode::OK => Ok(Some(response)),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.status_error(what, response).await),
        }
    }

    /// An error for an unexpected status, with the upstream's own error code if it sent one.
    pub async fn status_error(&self, what: &str, response: Response) -> Error {
        let status = response.status();
        let body = read_limited(response, MAX_SMALL_BODY)
            .await
            .unwrap_or_default();
        let detail: String = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["errors"][0]["code"].as_str().map(|c| format!(" ({c})")))
            .unwrap_or_default();
        self.error(what, &format!("{status}{detail}"))
    }
}

/// Reads a body, stopping after `limit + 1` bytes: a result longer than `limit` means the
/// body was too large (callers refuse it rather than use a cut document).
pub(super) async fn read_limited(
    mut response: Response,
    limit: usize,
) -> std::result::Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit + 1 - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() > limit {
            break;
        }
    }
    Ok(body)
}
