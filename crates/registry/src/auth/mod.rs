//! Who may do what: htpasswd (bcrypt) Basic auth, a built-in Bearer token endpoint (JWT), and
//! per-repository rules from an access file (which also turns on anonymous pull).
//!
//! The API layer asks one question per request, `Auth::check(authorization, scope, realm)`,
//! and gets either the identity or the response to send (401 with a `WWW-Authenticate`
//! challenge, or 403 DENIED). (auth helper)

use std::path::Path;

use crate::config::AuthConfig;
use crate::error::Result;
use crate::http::{Request, Response};

mod access;
mod htpasswd;
mod token;

/// What a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `GET /v2/`: any valid credentials (or anonymous when anonymous access exists at all).
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

/// Who a request comes from; None is anonymous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: Option<String>,
}

pub struct Auth {
    inner: Option<AuthState>,
}

struct AuthState {}

impl Auth {
    /// No authentication: everyone may do everything.
    pub fn disabled() -> Auth {
        Auth { inner: None }
    }

    /// From the `[auth]` config. `root` is the storage root (where a token key is made when
    /// the config names none).
    pub fn new(config: &AuthConfig, root: &Path) -> Result<Auth> {
        let _ = (config, root);
        todo!("auth helper")
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
        let _ = (authorization, scope, base_url);
        todo!("auth helper")
    }

    /// Serves `GET /token` (the token endpoint): `service`, repeated `scope`, Basic
    /// credentials or none. Grants the intersection of what was asked and what is allowed.
    pub async fn token(&self, request: &Request<'_>) -> Response {
        let _ = request;
        todo!("auth helper")
    }
}
