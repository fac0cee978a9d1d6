//! Credentials (`gorae login` store in auth.json) and the WWW-Authenticate challenge flow.
//!
//! auth.json uses Docker's config.json shape (`{"auths":{"host":{"auth":"base64(u:p)"}}}`) so
//! a user can copy credentials between the two. Docker keys Docker Hub as
//! `https://index.docker.io/v1/`; we write that key too and accept every alias on lookup.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::layout::DataRoot;

/// Docker's key for Docker Hub in config.json.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    // Never print the password, even in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}, <password>)", self.username)
    }
}

impl Credentials {
    /// The value of a `Basic` Authorization header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    fn decode(what: &str, auth: &str) -> Result<Credentials> {
        let invalid = |reason: &str| Error::InvalidDocument {
            what: what.to_string(),
            reason: reason.to_string(),
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| invalid("\"auth\" is not base64"))?;
        let raw = String::from_utf8(raw).map_err(|_| invalid("\"auth\" is not UTF-8"))?;
        let (username, password) = raw
            .split_once(':')
            .ok_or_else(|| invalid("\"auth\" is not user:password"))?;
        Ok(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        })
    }
}

#[derive(Default, Serialize, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    /// Whatever else a copied Docker config.json holds is kept as it is.
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Default, Serialize, Deserialize)]
struct AuthEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

/// Every spelling a registry may be keyed by in a Docker-style auth file.
fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

/// `https://host:port/v1/` → `host:port`, so URL-shaped keys match plain hosts.
fn key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

fn same_registry(key: &str, registry: &str) -> bool {
    let host = key_host(key);
    host == registry || (is_docker_hub(host) && is_docker_hub(registry))
}

/// The `gorae login` credential file.
pub struct CredentialStore {
    path: PathBuf,
}

impl CredentialStore {
    pub fn new(root: &DataRoot) -> CredentialStore {
        CredentialStore::at(root.auth_file())
    }

    pub fn at(path: impl Into<PathBuf>) -> CredentialStore {
        CredentialStore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<AuthFile> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::InvalidDocument {
                what: self.path.display().to_string(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuthFile::default()),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }

    /// Replaces the file atomically, readable by its owner only.
    fn write(&self, file: &AuthFile) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).at(dir)?;
        let tmp = self
            .path
            .with_extension(format!("json.tmp{}", std::process::id()));
        let bytes = serde_json::to_vec_pretty(file).map_err(|e| Error::Store {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(&bytes)?;
                f.sync_all()
            })
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.at(&self.path)
    }

    /// The saved credentials for `registry` (`host[:port]`, `docker.io` for Docker Hub).
    pub fn lookup(&self, registry: &str) -> Result<Option<Credentials>> {
        let file = self.read()?;
        let what = format!("{}: credentials for {registry}", self.path.display());
        // An exact key wins over an alias (a file may hold both spellings).
        let entry = file.auths.get(registry).or_else(|| {
            file.auths
                .iter()
                .find(|(k, _)| same_registry(k, registry))
                .map(|(_, v)| v)
        });
        match entry.and_then(|e| e.auth.as_deref()) {
            Some(auth) if !auth.is_empty() => Ok(Some(Credentials::decode(&what, auth)?)),
            _ => Ok(None),
        }
    }

    /// Saves `credentials` for `registry`, replacing any alias of it.
    pub fn save(&self, registry: &str, credentials: &Credentials) -> Result<()> {
        let mut file = self.read()?;
        file.auths.retain(|k, _| !same_registry(k, registry));
        let key = if is_docker_hub(registry) {
            DOCKER_HUB_AUTH_KEY
        } else {
            registry
        };
        let encoded = credentials
            .basic_header()
            .trim_start_matches("Basic ")
            .to_string();
        file.auths.insert(
            key.to_string(),
            AuthEntry {
                auth: Some(encoded),
                other: BTreeMap::new(),
            },
        );
        self.write(&file)
    }

    /// Forgets `registry`'s credentials; false if there were none.
    pub fn remove(&self, registry: &str) -> Result<bool> {
        let mut file = self.read()?;
        let before = file.auths.len();
        file.auths.retain(|k, _| !same_registry(k, registry));
        if file.auths.len() == before {
            return Ok(false);
        }
        self.write(&file)?;
        Ok(true)
    }
}

/// One challenge of a WWW-Authenticate header (RFC 7235): a scheme and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lowercased (`basic`, `bearer`).
    pub scheme: String,
    /// Parameter names lowercased; values unquoted.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Every challenge in a response's `WWW-Authenticate` headers (a 401 may send several).
pub fn challenges_in(headers: &reqwest::header::HeaderMap) -> Vec<Challenge> {
    headers
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_challenges)
        .collect()
}

/// Parses a WWW-Authenticate value into its challenges. Tolerant: a malformed tail ends the
/// parse instead of failing it, since a registry's odd header should not hide a good
/// challenge that came before it.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        p.skip_separators();
        let Some(scheme) = p.token() else { break };
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        loop {
            p.skip_separators();
            let save = p.i;
            let Some(name) = p.token() else { break };
            p.skip_ws();
            if !p.eat(b'=') {
                // A token not followed by `=` starts the next challenge.
                p.i = save;
                break;
            }
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.token68()
            };
            let Some(value) = value else {
                return finish(out, challenge);
            };
            challenge.params.insert(name.to_ascii_lowercase(), value);
        }
        out.push(challenge);
    }
    out
}

fn finish(mut out: Vec<Challenge>, last: Challenge) -> Vec<Challenge> {
    out.push(last);
    out
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    fn take_while(&mut self, ok: impl Fn(u8) -> bool) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(&ok) {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// An RFC 7230 token.
    fn token(&mut self) -> Option<String> {
        self.take_while(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
    }

    /// A bare parameter value: a token, also allowing `/`, `:` and `=` as registries put
    /// unquoted URLs and base64 there.
    fn token68(&mut self) -> Option<String> {
        self.take_while(|c| c.is_ascii_graphic() && c != b',' && c != b'"')
    }

    /// A quoted-string with `\` quoted-pairs; None if it is not terminated.
    fn quoted(&mut self) -> Option<String> {
        self.i += 1;
        let mut value = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(String::from_utf8_lossy(&value).into_owned());
                }
                b'\\' => {
                    self.i += 1;
                    value.push(self.peek()?);
                    self.i += 1;
                }
                c => {
                    value.push(c);
                    self.i += 1;
                }
            }
        }
    }
}

/// The `scope` for pulling from (and, if `push`, pushing to) `repository`.
pub fn repository_scope(repository: &str, push: bool) -> String {
    let actions = if push { "pull,push" } else { "pull" };
    format!("repository:{repository}:{actions}")
}

/// The URL to ask a Bearer challenge's realm for a token covering `scopes`. The
/// challenge's own scope is asked for too: the registry said it needs that.
pub fn token_url(challenge: &Challenge, scopes: &[String]) -> Result<reqwest::Url> {
    let realm = challenge.param("realm").ok_or_else(|| Error::Registry {
        registry: "token realm".into(),
        message: "Bearer challenge without a realm".into(),
    })?;
    let mut url = reqwest::Url::parse(realm).map_err(|e| Error::Registry {
        registry: realm.to_string(),
        message: format!("invalid token realm: {e}"),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Registry {
            registry: realm.to_string(),
            message: "token realm is not an http(s) URL".into(),
        });
    }
    {
        let mut query = url.query_pairs_mut();
        if let Some(service) = challenge.param("service") {
            query.append_pair("service", service);
        }
        let mut all: Vec<&str> = scopes.iter().map(String::as_str).collect();
        for s in challenge
            .param("scope")
            .into_iter()
            .flat_map(|s| s.split(' '))
        {
            if !s.is_empty() && !all.contains(&s) {
                all.push(s);
            }
        }
        for scope in all {
            query.append_pair("scope", scope);
        }
    }
    Ok(url)
}

/// What a token endpoint answers (Docker's `token`, OAuth2's `access_token`). Expiry is
/// not tracked: an expired token earns a 401, which fetches a fresh one.
#[derive(Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

impl TokenResponse {
    pub fn into_token(self) -> Option<String> {
        self.token
            .filter(|t| !t.is_empty())
            .or(self.access_token)
            .filter(|t| !t.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(h: &str) -> Challenge {
        let mut v = parse_challenges(h);
        assert_eq!(v.len(), 1, "{h}: {v:?}");
        v.remove(0)
    }

    #[test]
    fn parses_docker_hub_bearer() {
        let c = one(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        assert_eq!(c.param("scope"), Some("repository:library/busybox:pull"));
    }

    #[test]
    fn parses_quoted_pairs_commas_and_spacing() {
        let v = parse_challenges(
            r#"bearer  Realm = "http://x/t?a=1,b=2" , service="a \"q\" \\ b",scope=x:y:pull,push"#,
        );
        let c = &v[0];
        assert_eq!(c.param("realm"), Some("http://x/t?a=1,b=2"));
        assert_eq!(c.param("service"), Some(r#"a "q" \ b"#));
        // Unquoted, the comma ends the value and `push` is read as the next challenge.
        assert_eq!(c.param("scope"), Some("x:y:pull"));
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].scheme, "push");
    }

    #[test]
    fn parses_several_challenges() {
        let v = parse_challenges(
            r#"Basic realm="Registry Realm", Bearer realm="https://t/x",service=reg"#,
        );
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].scheme, "basic");
        assert_eq!(v[0].param("realm"), Some("Registry Realm"));
        assert_eq!(v[1].scheme, "bearer");
        assert_eq!(v[1].param("service"), Some("reg"));
    }

    #[test]
    fn survives_garbage() {
        for h in [
            "",
            ",,,",
            "Bearer",
            "Bearer realm=\"unterminated",
            "=x",
            "Bearer realm",
            "\"\"",
        ] {
            let _ = parse_challenges(h);
        }
        assert_eq!(one("Bearer realm=\"unterminated").param("realm"), None);
        assert_eq!(parse_challenges("Basic").len(), 1);
    }

    #[test]
    fn builds_token_requests() {
        let c = one(
            r#"Bearer realm="https://auth.example/token?x=1",service="reg.example",scope="repository:a:pull""#,
        );
        let url = token_url(
            &c,
            &["repository:b:pull,push".into(), "repository:a:pull".into()],
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://auth.example/token?x=1&service=reg.example&scope=repository%3Ab%3Apull%2Cpush&scope=repository%3Aa%3Apull"
        );
        let no_realm = one("Bearer service=x");
        assert!(token_url(&no_realm, &[]).is_err());
        let bad = one(r#"Bearer realm="file:///etc/passwd""#);
        assert!(token_url(&bad, &[]).is_err());
    }

    #[test]
    fn token_response_prefers_token() {
        let t: TokenResponse = serde_json::from_str(r#"{"token":"a","access_token":"b"}"#).unwrap();
        assert_eq!(t.into_token().as_deref(), Some("a"));
        let t: TokenResponse = serde_json::from_str(r#"{"access_token":"b"}"#).unwrap();
        assert_eq!(t.into_token().as_deref(), Some("b"));
        let t: TokenResponse = serde_json::from_str(r#"{}"#).unwrap();
        assert!(t.into_token().is_none());
    }

    #[test]
    fn credential_store_round_trip_and_hub_alias() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::at(dir.path().join("auth.json"));
        assert!(store.lookup("localhost:5000").unwrap().is_none());
        let c = Credentials {
            username: "u".into(),
            password: "p:w".into(),
        };
        store.save("localhost:5000", &c).unwrap();
        store.save("docker.io", &c).unwrap();
        assert_eq!(store.lookup("localhost:5000").unwrap(), Some(c.clone()));
        assert_eq!(
            store.lookup("registry-1.docker.io").unwrap(),
            Some(c.clone())
        );
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(text.contains(DOCKER_HUB_AUTH_KEY), "{text}");
        assert!(text.contains("dTpwOnc="), "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(store.remove("docker.io").unwrap());
        assert!(!store.remove("docker.io").unwrap());
        assert!(store.lookup("docker.io").unwrap().is_none());
        assert!(store.lookup("localhost:5000").unwrap().is_some());
    }

    #[test]
    fn reads_docker_config_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        std::fs::write(
            &path,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"https://r.example:444":{"auth":"YTpi"}},"credsStore":"x"}"#,
        )
        .unwrap();
        let store = CredentialStore::at(&path);
        assert_eq!(store.lookup("docker.io").unwrap().unwrap().username, "u");
        assert_eq!(
            store.lookup("r.example:444").unwrap().unwrap().password,
            "b"
        );
        store
            .save(
                "other:1",
                &Credentials {
                    username: "x".into(),
                    password: "y".into(),
                },
            )
            .unwrap();
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("credsStore"));
        std::fs::write(&path, r#"{"auths":{"h":{"auth":"!!"}}}"#).unwrap();
        assert!(store.lookup("h").is_err());
    }
}
