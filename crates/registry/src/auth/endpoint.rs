//! The token endpoint: `GET /token` (Docker's token protocol) and `POST /token` (the OAuth2
//! password grant). Both come down to `Auth::issue`: check the credentials, if any, then sign
//! a token granting what was asked for intersected with what the access rules allow.

use http::header::CACHE_CONTROL;
use http::StatusCode;

use super::token::AccessEntry;
use super::{unix_now, Action, Auth, AuthState, Credentials};
use crate::error::{ApiError, ErrorCode};
use crate::http::{query_pairs, Response};

pub(super) fn oauth_error(error: &str, description: &str) -> Response {
    Response::json(
        StatusCode::BAD_REQUEST,
        &serde_json::json!({ "error": error, "error_description": description }),
    )
}

impl Auth {
    pub(super) fn issue_for_form(&self, form: &[u8]) -> Response {
        let form = String::from_utf8_lossy(form);
        let field = |key: &str| query_pairs(&form).find(|(k, _)| k == key).map(|(_, v)| v);
        match field("grant_type").as_deref() {
            Some("password") => {}
            Some(_) => return oauth_error("unsupported_grant_type", "only password is supported"),
            None => return oauth_error("invalid_request", "grant_type is missing"),
        }
        let (Some(user), Some(password)) = (field("username"), field("password")) else {
            return oauth_error("invalid_request", "username and password are needed");
        };
        let scopes: Vec<String> = query_pairs(&form)
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v)
            .collect();
        self.issue(Credentials::Basic { user, password }, &scopes)
    }

    /// A token for whoever `credentials` prove (anonymous without any) granting what
    /// `scopes` ask for and the access rules allow.
    pub(super) fn issue(&self, credentials: Credentials, scopes: &[String]) -> Response {
        let Some(state) = &self.inner else {
            return not_enabled();
        };
        let Some(tokens) = &state.tokens else {
            return not_enabled();
        };
        let user = match credentials {
            Credentials::Basic { user, password } if state.authenticate(&user, &password) => {
                Some(user)
            }
            Credentials::Basic { .. } | Credentials::Malformed => {
                return *state.basic_challenge("invalid username or password");
            }
            Credentials::None | Credentials::Bearer(_) => None,
        };
        let access = state.grant(user.as_deref(), scopes);
        let lifetime = tokens.lifetime.as_secs();
        let issued_at = gorae_image::store::now_rfc3339();
        let token =
            tokens
                .signer
                .issue(user.as_deref().unwrap_or(""), access, unix_now(), lifetime);
        let body = serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": lifetime,
            "issued_at": issued_at,
        });
        Response::json(StatusCode::OK, &body)
            .header(CACHE_CONTROL, "no-store")
            .route("token")
    }
}

fn not_enabled() -> Response {
    ApiError::new(
        ErrorCode::Unsupported,
        "this registry does not issue tokens",
    )
    .with_status(StatusCode::NOT_FOUND)
    .into()
}

impl AuthState {
    /// The access entries for `scopes` (each `type:name:actions`, several per value when
    /// space-separated as OAuth2 clients send them) that `user` is allowed. Scopes of unknown
    /// types, invalid names and unknown actions are left out, not refused: a token with less
    /// access is the answer to anything we cannot grant.
    fn grant(&self, user: Option<&str>, scopes: &[String]) -> Vec<AccessEntry> {
        let mut granted: Vec<AccessEntry> = Vec::new();
        for scope in scopes.iter().flat_map(|s| s.split_whitespace()) {
            let Some(entry) = self.grant_one(user, scope) else {
                continue;
            };
            match granted
                .iter_mut()
                .find(|e| e.kind == entry.kind && e.name == entry.name)
            {
                Some(existing) => {
                    for action in entry.actions {
                        if !existing.actions.contains(&action) {
                            existing.actions.push(action);
                        }
                    }
                }
                None => granted.push(entry),
            }
        }
        granted
    }

    fn grant_one(&self, user: Option<&str>, scope: &str) -> Option<AccessEntry> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        let asked: Vec<&str> = actions.split(',').collect();
        let entry = |actions: Vec<String>| AccessEntry {
            kind: kind.to_string(),
            name: name.to_string(),
            actions,
        };
        match kind {
            "registry" if name == "catalog" && asked.contains(&"*") => {
                self.catalog_allowed(user).then(|| entry(vec!["*".into()]))
            }
            "repository" if crate::names::validate_name(name).is_ok() => {
                let allowed = self.allowed(user, name);
                let actions: Vec<String> = Action::ALL
                    .into_iter()
                    .filter(|a| allowed.contains(a))
                    .filter(|a| asked.contains(&"*") || asked.contains(&a.as_str()))
                    .map(|a| a.as_str().to_string())
                    .collect();
                (!actions.is_empty()).then(|| entry(actions))
            }
            _ => None,
        }
    }
}
