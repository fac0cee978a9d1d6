//! Who may do what: htpasswd (bcrypt) Basic auth, a built-in Bearer token endpoint (JWT), and
//! per-repository rules from an access file (which also turns on anonymous pull).
//!
//! The API layer asks one question per request, `Auth::check(authorization, scope, base_url)`,
//! and gets either the identity or the response to send (401 with a `WWW-Authenticate`
//! challenge, or 403 DENIED).
//!
//! Two modes, as distribution has them:
//! - **Basic** (`token = false`): every request carries `Authorization: Basic`, checked against
//!   the htpasswd file (`htpasswd.rs`, with a cache so bcrypt runs once per credential), then
//!   against the access rules (`access.rs`). Missing or wrong credentials get a 401 with a Basic
//!   challenge unless the access rules let anonymous clients have the scope; a known user
//!   without the right gets 403 DENIED.
//! - **Token** (`token = true`): clients fetch a JWT from `GET /token` (`Auth::token`), which
//!   grants what was asked for intersected with what the access rules allow, and send it as
//!   `Authorization: Bearer`. `check` then only verifies the token (`token.rs`) and looks at
//!   what it grants; a token lacking the scope gets a 401 `insufficient_scope` challenge, as
//!   distribution does, so the client asks for a new token. Access rules changed while a token
//!   lives take effect when it expires (`token_expiry`).
//!
//! `GET /v2/` ([`Scope::Base`]) needs credentials (Basic) or any valid token, anonymous ones
//! included (token mode): the 401 an anonymous client gets there is how Docker and Podman learn
//! which scheme to use.
//!
//! bcrypt runs inside `check` on the calling thread (once per credential thanks to the cache,
//! ~50 ms at cost 10); the caller may move `check` off the event loop if that matters.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::header::WWW_AUTHENTICATE;

use crate::config::AuthConfig;
use crate::error::{ApiError, Error, ErrorCode, Result};
use crate::http::{Request, Response};

mod access;
mod endpoint;
mod htpasswd;
mod token;

use access::AccessRules;
use htpasswd::Htpasswd;
use token::{Claims, Signer};

/// What a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `GET /v2/`: valid credentials, or (token mode) any valid token, anonymous ones too.
    Base,
    /// `GET /v2/_catalog` (`registry:catalog:*`).
    Catalog,
    Repository {
        name: String,
        actions: Vec<Action>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Pull, Action::Push, Action::Delete];

    /// The name in access files and token scopes.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// Who a request comes from; None is anonymous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: Option<String>,
}

pub struct Auth {
    inner: Option<AuthState>,
}

struct AuthState {
    service: String,
    /// None: no users, only what the access rules give anonymous clients.
    users: Option<Htpasswd>,
    /// None: authenticated users may do everything, anonymous ones nothing.
    access: Option<AccessRules>,
    /// Some in token mode.
    tokens: Option<TokenMode>,
}

struct TokenMode {
    signer: Signer,
    realm: Option<String>,
    lifetime: Duration,
}

/// What the Authorization header holds.
enum Credentials {
    None,
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
    /// A Basic header whose payload is not base64 of `user:password`.
    Malformed,
}

impl Auth {
    /// No authentication: everyone may do everything.
    pub fn disabled() -> Auth {
        Auth { inner: None }
    }

    /// From the `[auth]` config. `root` is the storage root (where a token key is made when
    /// the config names none).
    pub fn new(config: &AuthConfig, root: &Path) -> Result<Auth> {
        if config.htpasswd.is_none() && config.access.is_none() {
            return Err(Error::Other {
                what: "[auth]".into(),
                reason: "neither htpasswd nor access is set: nobody could use the registry".into(),
            });
        }
        let users = config.htpasswd.as_deref().map(Htpasswd::load).transpose()?;
        let access = config
            .access
            .as_deref()
            .map(AccessRules::load)
            .transpose()?;
        let tokens = match config.token {
            false => None,
            true => Some(TokenMode {
                signer: Signer::new(
                    &token::load_key(config.token_key.as_deref(), root)?,
                    &config.service,
                ),
                realm: config.token_realm.clone(),
                lifetime: config.token_expiry,
            }),
        };
        Ok(Auth {
            inner: Some(AuthState {
                service: config.service.clone(),
                users,
                access,
                tokens,
            }),
        })
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Whether the holder of `authorization` (the Authorization header) may have `scope`.
    /// `base_url` is this registry's URL as the client sees it (`http://host:port`), for the
    /// default token realm.
    pub fn check(
        &self,
        authorization: Option<&str>,
        scope: &Scope,
        base_url: &str,
    ) -> Result<Identity, Box<Response>> {
        let Some(state) = &self.inner else {
            return Ok(Identity { user: None });
        };
        let credentials = Credentials::parse(authorization);
        match &state.tokens {
            Some(tokens) => state.check_bearer(tokens, credentials, scope, base_url),
            None => state.check_basic(credentials, scope),
        }
    }

    /// Serves `GET /token` (the token endpoint): `service`, repeated `scope`, Basic
    /// credentials or none. Grants the intersection of what was asked and what is allowed.
    /// `account` is ignored (the token's subject is whoever the credentials prove), and so is
    /// a `service` other than ours (the token is only ever good here).
    pub async fn token(&self, request: &Request<'_>) -> Response {
        let scopes = request.query_params("scope");
        self.issue(
            Credentials::parse(request.header(http::header::AUTHORIZATION)),
            &scopes,
        )
    }

    /// Serves `POST /token`, the OAuth2 password grant containerd tries first: a form body
    /// with `grant_type=password`, `username`, `password`, `scope` (space-separated) and
    /// `service`. Other grant types get 400 `unsupported_grant_type` (containerd then uses
    /// `GET /token`).
    pub async fn token_post(&self, request: &mut Request<'_>) -> Response {
        const MAX_FORM_BYTES: usize = 64 * 1024;
        match request.body.to_bytes(MAX_FORM_BYTES).await {
            Ok(form) => self.issue_for_form(&form),
            Err(e) => endpoint::oauth_error("invalid_request", &e.to_string()),
        }
    }
}

impl Credentials {
    fn parse(header: Option<&str>) -> Credentials {
        let Some(header) = header.map(str::trim) else {
            return Credentials::None;
        };
        let (scheme, value) = header.split_once(' ').unwrap_or((header, ""));
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return Credentials::Bearer(value.to_string());
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Credentials::None;
        }
        let decoded = STANDARD
            .decode(value)
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((user, password)) if !user.is_empty() => Credentials::Basic {
                user: user.to_string(),
                password: password.to_string(),
            },
            _ => Credentials::Malformed,
        }
    }
}

impl AuthState {
    fn check_basic(
        &self,
        credentials: Credentials,
        scope: &Scope,
    ) -> Result<Identity, Box<Response>> {
        let user = match credentials {
            Credentials::Basic { user, password } if self.authenticate(&user, &password) => {
                Some(user)
            }
            Credentials::Basic { .. } | Credentials::Malformed => {
                return Err(self.basic_challenge("invalid username or password"));
            }
            Credentials::None | Credentials::Bearer(_) => None,
        };
        if self.grants(user.as_deref(), scope) {
            return Ok(Identity { user });
        }
        match user {
            None => Err(self.basic_challenge("authentication required")),
            Some(user) => Err(Box::new(
                ApiError::new(
                    ErrorCode::Denied,
                    format!("user {user:?} may not {}", describe(scope)),
                )
                .into(),
            )),
        }
    }

    fn check_bearer(
        &self,
        tokens: &TokenMode,
        credentials: Credentials,
        scope: &Scope,
        base_url: &str,
    ) -> Result<Identity, Box<Response>> {
        let challenge = |error: Option<&str>, message: String| {
            Box::new(self.bearer_challenge(tokens, scope, base_url, error, message))
        };
        let Credentials::Bearer(token) = credentials else {
            return Err(challenge(None, "authentication required".into()));
        };
        let claims = tokens
            .signer
            .verify(&token, unix_now())
            .map_err(|why| challenge(Some("invalid_token"), format!("invalid token: {why}")))?;
        if !token_grants(&claims, scope) {
            let message = format!("the token does not allow to {}", describe(scope));
            return Err(challenge(Some("insufficient_scope"), message));
        }
        let user = (!claims.sub.is_empty()).then_some(claims.sub);
        Ok(Identity { user })
    }

    fn authenticate(&self, user: &str, password: &str) -> bool {
        self.users
            .as_ref()
            .is_some_and(|u| u.verify(user, password))
    }

    /// What `user` (None: anonymous) may do in repository `name`.
    fn allowed(&self, user: Option<&str>, name: &str) -> BTreeSet<Action> {
        match (&self.access, user) {
            (Some(rules), _) => rules.actions(user, name),
            (None, Some(_)) => Action::ALL.into_iter().collect(),
            (None, None) => BTreeSet::new(),
        }
    }

    fn catalog_allowed(&self, user: Option<&str>) -> bool {
        match &self.access {
            Some(rules) => rules.catalog(user),
            None => user.is_some(),
        }
    }

    fn grants(&self, user: Option<&str>, scope: &Scope) -> bool {
        match scope {
            Scope::Base => user.is_some(),
            Scope::Catalog => self.catalog_allowed(user),
            Scope::Repository { actions, .. } if actions.is_empty() => user.is_some(),
            Scope::Repository { name, actions } => {
                let allowed = self.allowed(user, name);
                actions.iter().all(|a| allowed.contains(a))
            }
        }
    }

    fn basic_challenge(&self, message: &str) -> Box<Response> {
        let response = Response::from(ApiError::new(ErrorCode::Unauthorized, message));
        let challenge = format!("Basic realm={}", quoted(&self.service));
        Box::new(response.header(WWW_AUTHENTICATE, challenge))
    }

    fn bearer_challenge(
        &self,
        tokens: &TokenMode,
        scope: &Scope,
        base_url: &str,
        error: Option<&str>,
        message: String,
    ) -> Response {
        let realm = match &tokens.realm {
            Some(realm) => realm.clone(),
            None => format!("{}/token", base_url.trim_end_matches('/')),
        };
        let mut challenge = format!(
            "Bearer realm={},service={}",
            quoted(&realm),
            quoted(&self.service)
        );
        if let Some(scope) = scope_string(scope) {
            challenge.push_str(&format!(",scope={}", quoted(&scope)));
        }
        if let Some(error) = error {
            challenge.push_str(&format!(",error={}", quoted(error)));
        }
        Response::from(ApiError::new(ErrorCode::Unauthorized, message))
            .header(WWW_AUTHENTICATE, challenge)
    }
}

/// Whether a verified token's access list covers `scope`.
fn token_grants(claims: &Claims, scope: &Scope) -> bool {
    match scope {
        Scope::Base => true,
        Scope::Catalog => claims.access.iter().any(|e| {
            e.kind == "registry" && e.name == "catalog" && e.actions.iter().any(|a| a == "*")
        }),
        Scope::Repository { name, actions } => actions.iter().all(|action| {
            claims.access.iter().any(|e| {
                e.kind == "repository"
                    && e.name == *name
                    && e.actions.iter().any(|a| a == action.as_str())
            })
        }),
    }
}

/// The token scope a request needs, as challenges carry it.
fn scope_string(scope: &Scope) -> Option<String> {
    match scope {
        Scope::Base => None,
        Scope::Catalog => Some("registry:catalog:*".into()),
        Scope::Repository { name, actions } => {
            let actions: Vec<_> = actions.iter().map(|a| a.as_str()).collect();
            Some(format!("repository:{name}:{}", actions.join(",")))
        }
    }
}

/// "push to team/app", for error messages.
fn describe(scope: &Scope) -> String {
    match scope {
        Scope::Base => "use this registry".into(),
        Scope::Catalog => "list the catalog".into(),
        Scope::Repository { name, actions } => {
            let actions: Vec<_> = actions.iter().map(|a| a.as_str()).collect();
            format!("{} {name}", actions.join("/"))
        }
    }
}

/// An RFC 7230 quoted-string.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
