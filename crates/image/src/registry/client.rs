//! One registry's HTTP endpoint: URL building, the 401 → challenge → token → retry flow with
//! tokens cached per scope, and turning registry error replies into one-line errors.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{HeaderMap, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use super::auth::{self, Challenge, CredentialStore, Credentials};
use super::RegistryOptions;
use crate::error::{Error, Result};
use crate::layout::DataRoot;
use crate::reference::{DEFAULT_REGISTRY, DOCKER_HUB_API};

/// How many redirects a blob GET may follow (registries send blobs to object storage).
const MAX_REDIRECTS: usize = 10;

pub(crate) struct Registry {
    http: reqwest::Client,
    /// As the user wrote it (`docker.io`, `localhost:5000`): what errors name.
    pub name: String,
    /// `http://host:port` or `https://host`.
    base: String,
    credentials: Option<Credentials>,
    /// Authorization header value per scope set, learned from challenges.
    auth: Mutex<HashMap<String, String>>,
}

/// Whether `host[:port]` is spoken to over plain http.
pub(crate) fn is_insecure(host: &str, insecure: &[String]) -> bool {
    if insecure.iter().any(|h| h == host) {
        return true;
    }
    let bare = match host.rsplit_once(':') {
        // `[::1]:5000` and `::1`: brackets mark an IPv6 address with a port.
        _ if host.starts_with('[') => host[1..].split(']').next().unwrap_or(""),
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    bare == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(crate) fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .hickory_dns(true)
        .user_agent(concat!("gorae/", env!("CARGO_PKG_VERSION")))
        // reqwest strips Authorization when a redirect changes host, so registry
        // credentials never reach the storage backend a blob is redirected to.
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .connect_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .pool_max_idle_per_host(16)
        .build()
        .map_err(|e| Error::Registry {
            registry: "http client".into(),
            message: e.to_string(),
        })
}

impl Registry {
    /// Connects to `registry` with the `given` credentials (a daemon's client sent them),
    /// else those `gorae login` saved.
    pub fn connect(
        root: &DataRoot,
        registry: &str,
        options: &RegistryOptions,
        given: Option<&Credentials>,
    ) -> Result<Registry> {
        let credentials = match given {
            Some(c) => Some(c.clone()),
            None => CredentialStore::new(root).lookup(registry)?,
        };
        Registry::with_credentials(registry, options, credentials)
    }

    pub fn with_credentials(
        registry: &str,
        options: &RegistryOptions,
        credentials: Option<Credentials>,
    ) -> Result<Registry> {
        let host = if registry == DEFAULT_REGISTRY {
            DOCKER_HUB_API
        } else {
            registry
        };
        let scheme =
            if is_insecure(registry, &options.insecure) || is_insecure(host, &options.insecure) {
                "http"
            } else {
                "https"
            };
        Ok(Registry {
            http: http_client()?,
            name: registry.to_string(),
            base: format!("{scheme}://{host}"),
            credentials,
            auth: Mutex::new(HashMap::new()),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Resolves a Location header (absolute, or relative to the registry) to a URL.
    pub fn resolve_location(&self, location: &str) -> Result<reqwest::Url> {
        let base = reqwest::Url::parse(&self.url("/")).map_err(|e| self.error(e.to_string()))?;
        base.join(location)
            .map_err(|e| self.error(format!("invalid Location {location:?}: {e}")))
    }

    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::Registry {
            registry: self.name.clone(),
            message: message.into(),
        }
    }

    pub fn http_error(&self, what: &str, e: reqwest::Error) -> Error {
        // reqwest's Display hides the cause (connection refused, DNS); show the chain.
        let mut message = format!("{what}: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        self.error(message)
    }

    /// Sends the request `build` makes, answering an auth challenge once if the registry
    /// asks. `build` is called again for the retry, so streaming bodies are made afresh.
    pub async fn send(
        &self,
        scopes: &[String],
        what: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response> {
        let key = scopes.join(" ");
        let cached = self.cached_auth(&key);
        let response = self.send_with(&build, cached.as_deref(), what).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let header = self.authorize(response.headers(), scopes).await?;
        self.auth
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, header.clone());
        let response = self.send_with(&build, Some(&header), what).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            let detail = error_detail(response).await;
            return Err(self.unauthorized(format!("{what}: credentials refused{detail}")));
        }
        Ok(response)
    }

    fn cached_auth(&self, key: &str) -> Option<String> {
        let cache = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(key).cloned().or_else(|| {
            // Basic auth does not depend on the scope: reuse it for every request.
            cache.values().find(|v| v.starts_with("Basic ")).cloned()
        })
    }

    async fn send_with(
        &self,
        build: &impl Fn(&reqwest::Client) -> RequestBuilder,
        auth: Option<&str>,
        what: &str,
    ) -> Result<Response> {
        let mut request = build(&self.http);
        if let Some(auth) = auth {
            request = request.header(AUTHORIZATION, auth);
        }
        request.send().await.map_err(|e| self.http_error(what, e))
    }

    fn unauthorized(&self, message: String) -> Error {
        Error::Unauthorized {
            registry: self.name.clone(),
            message,
        }
    }

    /// Turns a 401's challenges into an Authorization header value.
    async fn authorize(&self, headers: &HeaderMap, scopes: &[String]) -> Result<String> {
        let challenges = auth::challenges_in(headers);
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            return self.fetch_token(bearer, scopes).await;
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            return match &self.credentials {
                Some(c) => Ok(c.basic_header()),
                None => {
                    Err(self
                        .unauthorized(format!("no credentials (run `gorae login {}`)", self.name)))
                }
            };
        }
        Err(self.unauthorized("401 without a Basic or Bearer challenge".into()))
    }

    async fn fetch_token(&self, challenge: &Challenge, scopes: &[String]) -> Result<String> {
        let url = auth::token_url(challenge, scopes)?;
        let realm = format!("token server {}", url.origin().ascii_serialization());
        let mut request = self.http.get(url.clone());
        if let Some(c) = &self.credentials {
            request = request.header(AUTHORIZATION, c.basic_header());
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.http_error(&realm, e))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let hint = if self.credentials.is_none() {
                format!(" (run `gorae login {}`)", self.name)
            } else {
                String::new()
            };
            return Err(self.unauthorized(format!("{realm} refused a token: {status}{hint}")));
        }
        if !status.is_success() {
            return Err(self.error(format!("{realm}: {status}")));
        }
        let body = read_limited(response, 1 << 20)
            .await
            .map_err(|e| self.http_error(&realm, e))?;
        let token = serde_json::from_slice::<auth::TokenResponse>(&body)
            .ok()
            .and_then(|t| t.into_token())
            .ok_or_else(|| self.error(format!("{realm}: answer has no token")))?;
        Ok(format!("Bearer {token}"))
    }

    /// A one-line error for an unexpected status, with the registry's own error message.
    pub async fn status_error(&self, what: &str, response: Response) -> Error {
        let status = response.status();
        let detail = error_detail(response).await;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return self.unauthorized(format!("{what}: {status}{detail}"));
        }
        self.error(format!("{what}: {status}{detail}"))
    }

    /// A plain request with the registry's auth for `scopes`.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        scopes: &[String],
        what: &str,
    ) -> Result<Response> {
        self.send(scopes, what, |http| http.request(method.clone(), url))
            .await
    }
}

/// Reads a body of at most `limit` bytes (documents, token answers, error bodies).
pub(crate) async fn read_limited(
    mut response: Response,
    limit: usize,
) -> std::result::Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            body.extend_from_slice(&chunk[..limit - body.len()]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `: CODE: message` from a distribution error body (`{"errors":[{"code","message"}]}`).
async fn error_detail(response: Response) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let Ok(body) = read_limited(response, 64 * 1024).await else {
        return String::new();
    };
    match serde_json::from_slice::<Errors>(&body) {
        Ok(e) => e
            .errors
            .iter()
            .map(|e| format!(": {} {}", e.code, e.message))
            .collect(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_hosts() {
        let none: Vec<String> = vec![];
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:80",
            "127.9.9.9",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_insecure(h, &none), "{h}");
        }
        for h in [
            "docker.io",
            "10.0.0.1:5000",
            "localhost.example:5000",
            "[::2]:1",
        ] {
            assert!(!is_insecure(h, &none), "{h}");
        }
        assert!(is_insecure("reg.lan:5000", &["reg.lan:5000".to_string()]));
    }

    #[test]
    fn urls_and_locations() {
        let options = RegistryOptions {
            insecure: vec![],
            progress: super::super::ProgressMode::Quiet,
            chunk_size: None,
        };
        let r = Registry::with_credentials("docker.io", &options, None).unwrap();
        assert_eq!(r.url("/v2/"), "https://registry-1.docker.io/v2/");
        let r = Registry::with_credentials("127.0.0.1:5000", &options, None).unwrap();
        assert_eq!(
            r.resolve_location("/v2/a/blobs/uploads/x?_state=1")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/x?_state=1"
        );
        assert_eq!(
            r.resolve_location("https://s3.example/u").unwrap().as_str(),
            "https://s3.example/u"
        );
    }
}
