//! Tests of the whole: Basic and token mode through `Auth`, with htpasswd lines made by the
//! real `htpasswd` tool (apache2-utils).

use std::path::PathBuf;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use http::StatusCode;

use super::htpasswd::tests::htpasswd_line;
use super::*;
use crate::http::ResponseBody;

const ACCESS: &str = r#"
[[rule]]
repositories = ["team/**"]
users = ["alice"]
actions = ["pull", "push", "delete"]

[[rule]]
repositories = ["public/*"]
anonymous = true
actions = ["pull"]

[[rule]]
users = ["alice"]
catalog = true
"#;

const BASE_URL: &str = "http://127.0.0.1:5000";

struct Setup {
    dir: tempfile::TempDir,
    config: AuthConfig,
}

impl Setup {
    fn new(token: bool, access: Option<&str>) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let htpasswd = dir.path().join("htpasswd");
        let lines = [
            htpasswd_line("alice", "wonderland"),
            htpasswd_line("bob", "builder"),
        ];
        std::fs::write(&htpasswd, lines.join("\n")).unwrap();
        let access = access.map(|text| {
            let path = dir.path().join("access.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        let config = AuthConfig {
            htpasswd: Some(htpasswd),
            access,
            token,
            ..AuthConfig::default()
        };
        Setup { dir, config }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn auth(&self) -> Auth {
        Auth::new(&self.config, &self.root()).unwrap()
    }
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

fn repo(name: &str, actions: &[Action]) -> Scope {
    Scope::Repository {
        name: name.into(),
        actions: actions.to_vec(),
    }
}

fn challenge(response: &Response) -> &str {
    response
        .headers
        .get(http::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn json(response: &Response) -> serde_json::Value {
    match &response.body {
        ResponseBody::Bytes(b) => serde_json::from_slice(b).unwrap(),
        other => panic!("expected a JSON body, got {other:?}"),
    }
}

fn error_code(response: &Response) -> String {
    json(response)["errors"][0]["code"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn assert_unauthorized(result: Result<Identity, Box<Response>>, want_challenge: &str) {
    let response = result.unwrap_err();
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&response), "UNAUTHORIZED");
    assert!(
        challenge(&response).contains(want_challenge),
        "{}",
        challenge(&response)
    );
}

fn user(name: &str) -> Identity {
    Identity {
        user: Some(name.into()),
    }
}

/// The identity `auth` allows the scope to, or a failure showing what it answered instead.
fn allowed(auth: &Auth, authorization: Option<&str>, scope: &Scope) -> Identity {
    let result = auth.check(authorization, scope, BASE_URL);
    result.unwrap_or_else(|r| panic!("refused: {} {}", r.status, challenge(&r)))
}

const ANONYMOUS: Identity = Identity { user: None };

#[test]
fn disabled_allows_everything() {
    let auth = Auth::disabled();
    assert!(!auth.enabled());
    assert_eq!(
        allowed(&auth, None, &repo("a", &[Action::Delete])),
        ANONYMOUS
    );
}

#[test]
fn basic_mode_authenticates_and_authorises() {
    let auth = Setup::new(false, Some(ACCESS)).auth();
    assert!(auth.enabled());
    let alice = basic("alice", "wonderland");
    let push = repo("team/app", &[Action::Pull, Action::Push]);
    assert_eq!(allowed(&auth, Some(&alice), &push), user("alice"));
    assert_eq!(allowed(&auth, Some(&alice), &Scope::Catalog), user("alice"));
    assert_eq!(allowed(&auth, Some(&alice), &Scope::Base), user("alice"));

    let wrong = basic("alice", "builder");
    assert_unauthorized(
        auth.check(Some(&wrong), &push, BASE_URL),
        r#"Basic realm="gorae-registry""#,
    );
    let unknown = basic("carol", "wonderland");
    assert_unauthorized(auth.check(Some(&unknown), &push, BASE_URL), "Basic");
    assert_unauthorized(auth.check(Some("Basic !!!"), &push, BASE_URL), "Basic");
    assert_unauthorized(auth.check(Some("Basic Zm9v"), &push, BASE_URL), "Basic");

    let bob = basic("bob", "builder");
    for scope in [push.clone(), Scope::Catalog] {
        let denied = auth.check(Some(&bob), &scope, BASE_URL).unwrap_err();
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        assert_eq!(error_code(&denied), "DENIED");
    }
}

#[test]
fn anonymous_pull_is_allowed_by_a_rule_but_push_is_not() {
    let auth = Setup::new(false, Some(ACCESS)).auth();
    let pull = repo("public/busybox", &[Action::Pull]);
    assert_eq!(allowed(&auth, None, &pull), ANONYMOUS);
    let bob = basic("bob", "builder");
    assert_eq!(allowed(&auth, Some(&bob), &pull), user("bob"));
    let push = repo("public/busybox", &[Action::Pull, Action::Push]);
    assert_unauthorized(auth.check(None, &push, BASE_URL), "Basic realm=");
    assert_unauthorized(
        auth.check(None, &repo("team/app", &[Action::Pull]), BASE_URL),
        "Basic",
    );
    // The challenge on /v2/ is how clients discover the scheme.
    assert_unauthorized(auth.check(None, &Scope::Base, BASE_URL), "Basic");
}

#[test]
fn without_an_access_file_users_may_do_everything_and_anonymous_nothing() {
    let auth = Setup::new(false, None).auth();
    let bob = basic("bob", "builder");
    let delete = repo("any/thing", &[Action::Delete]);
    assert_eq!(allowed(&auth, Some(&bob), &delete), user("bob"));
    assert_eq!(allowed(&auth, Some(&bob), &Scope::Catalog), user("bob"));
    assert_unauthorized(
        auth.check(None, &repo("a", &[Action::Pull]), BASE_URL),
        "Basic",
    );
}

#[test]
fn the_second_basic_check_hits_the_cache() {
    let auth = Setup::new(false, Some(ACCESS)).auth();
    let runs = || {
        let state = auth.inner.as_ref().unwrap();
        state.users.as_ref().unwrap().bcrypt_runs()
    };
    let alice = basic("alice", "wonderland");
    let pull = repo("team/app", &[Action::Pull]);
    assert!(auth.check(Some(&alice), &pull, BASE_URL).is_ok());
    assert_eq!(runs(), 1);
    assert!(auth.check(Some(&alice), &pull, BASE_URL).is_ok());
    assert!(auth.check(Some(&alice), &Scope::Base, BASE_URL).is_ok());
    assert_eq!(runs(), 1);
}

#[test]
fn configuration_errors_name_the_file() {
    let setup = Setup::new(false, Some("[[rule]]\nusers = [\"a\"]\n"));
    let e = Auth::new(&setup.config, &setup.root())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("access.toml") && e.contains("rule 1"), "{e}");
    let mut config = setup.config.clone();
    config.htpasswd = Some(setup.dir.path().join("missing"));
    let e = Auth::new(&config, &setup.root()).err().unwrap().to_string();
    assert!(e.contains("missing"), "{e}");
    let e = Auth::new(&AuthConfig::default(), &setup.root())
        .err()
        .unwrap();
    assert!(e.to_string().contains("htpasswd"), "{e}");
}

/// The token a GET /token with these credentials and scopes returns, and its access list.
fn fetch_token(
    auth: &Auth,
    authorization: Option<&str>,
    scopes: &[&str],
) -> (String, serde_json::Value) {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    let response = auth.issue(Credentials::parse(authorization), &scopes);
    assert_eq!(response.status, StatusCode::OK);
    let body = json(&response);
    let token = body["token"].as_str().unwrap().to_string();
    assert_eq!(body["access_token"], body["token"]);
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    (token, claims["access"].clone())
}

#[test]
fn the_token_endpoint_grants_the_intersection() {
    let setup = Setup::new(true, Some(ACCESS));
    let auth = setup.auth();
    let alice = basic("alice", "wonderland");
    let (_, access) = fetch_token(
        &auth,
        Some(&alice),
        &[
            "repository:team/app:pull,push",
            "repository:public/x:push,pull registry:catalog:*",
            "repository:other:pull",
            "repository:team/app:delete",
            "repository:Bad..Name:pull",
            "nonsense",
        ],
    );
    assert_eq!(
        access,
        serde_json::json!([
            {"type": "repository", "name": "team/app", "actions": ["pull", "push", "delete"]},
            {"type": "repository", "name": "public/x", "actions": ["pull"]},
            {"type": "registry", "name": "catalog", "actions": ["*"]},
        ])
    );
    let (_, access) = fetch_token(&auth, None, &["repository:public/x:pull,push"]);
    let want = serde_json::json!([{"type": "repository", "name": "public/x", "actions": ["pull"]}]);
    assert_eq!(access, want);
    let (_, access) = fetch_token(
        &auth,
        None,
        &["repository:team/app:*", "registry:catalog:*"],
    );
    assert_eq!(
        access,
        serde_json::json!([]),
        "anonymous still gets a token, with no access"
    );
    let (_, access) = fetch_token(&auth, Some(&alice), &["repository:team/x:*"]);
    assert_eq!(
        access[0]["actions"],
        serde_json::json!(["pull", "push", "delete"])
    );

    let refused = auth.issue(Credentials::parse(Some(&basic("alice", "x"))), &[]);
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(challenge(&refused).starts_with("Basic"));
}

#[test]
fn a_token_checks_out_for_its_scope_only() {
    let auth = Setup::new(true, Some(ACCESS)).auth();
    let alice = basic("alice", "wonderland");
    let (token, _) = fetch_token(&auth, Some(&alice), &["repository:team/app:pull,push"]);
    let bearer = format!("Bearer {token}");
    let push = repo("team/app", &[Action::Pull, Action::Push]);
    assert_eq!(allowed(&auth, Some(&bearer), &push), user("alice"));
    assert_eq!(allowed(&auth, Some(&bearer), &Scope::Base), user("alice"));
    for (scope, want) in [
        (
            repo("team/app", &[Action::Delete]),
            r#"scope="repository:team/app:delete""#,
        ),
        (
            repo("team/other", &[Action::Pull]),
            r#"scope="repository:team/other:pull""#,
        ),
        (Scope::Catalog, r#"scope="registry:catalog:*""#),
    ] {
        let result = auth.check(Some(&bearer), &scope, BASE_URL);
        let response = result.as_ref().unwrap_err();
        assert!(
            challenge(response).contains(want),
            "{}",
            challenge(response)
        );
        assert_unauthorized(result, r#"error="insufficient_scope""#);
    }
}

#[test]
fn token_mode_challenges_name_realm_service_and_scope() {
    let mut setup = Setup::new(true, Some(ACCESS));
    let auth = setup.auth();
    let pull = repo("team/app", &[Action::Pull, Action::Push]);
    let result = auth.check(None, &pull, "http://reg.example:5000/");
    let response = result.as_ref().unwrap_err();
    assert_eq!(
        challenge(response),
        r#"Bearer realm="http://reg.example:5000/token",service="gorae-registry",scope="repository:team/app:pull,push""#
    );
    assert_unauthorized(result, "Bearer");
    // Basic credentials are not accepted in token mode: the client must fetch a token.
    let alice = basic("alice", "wonderland");
    assert_unauthorized(auth.check(Some(&alice), &pull, BASE_URL), "Bearer realm=");

    setup.config.token_realm = Some("https://auth.example/token".into());
    let auth = setup.auth();
    let response = auth.check(None, &Scope::Base, BASE_URL).unwrap_err();
    assert_eq!(
        challenge(&response),
        r#"Bearer realm="https://auth.example/token",service="gorae-registry""#
    );
}

#[test]
fn an_anonymous_token_opens_the_base_and_what_anonymous_may_pull() {
    let auth = Setup::new(true, Some(ACCESS)).auth();
    let (token, _) = fetch_token(&auth, None, &["repository:public/x:pull"]);
    let bearer = format!("Bearer {token}");
    assert_eq!(allowed(&auth, Some(&bearer), &Scope::Base), ANONYMOUS);
    let pull = repo("public/x", &[Action::Pull]);
    assert_eq!(allowed(&auth, Some(&bearer), &pull), ANONYMOUS);
}

#[test]
fn bad_tokens_get_invalid_token() {
    let setup = Setup::new(true, Some(ACCESS));
    let auth = setup.auth();
    let state = auth.inner.as_ref().unwrap();
    let signer = &state.tokens.as_ref().unwrap().signer;
    let entry = token::AccessEntry {
        kind: "repository".into(),
        name: "team/app".into(),
        actions: vec!["pull".into()],
    };
    let expired = signer.issue("alice", vec![entry.clone()], unix_now() - 3600, 300);
    let key = std::fs::read(setup.root().join("token.key")).unwrap();
    let elsewhere =
        Signer::new(&key, "elsewhere").issue("alice", vec![entry.clone()], unix_now(), 300);
    let good = signer.issue("alice", vec![entry], unix_now(), 300);
    let (head, rest) = good.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let mut wrong_signature = signature.to_string();
    wrong_signature.replace_range(0..1, if signature.starts_with('A') { "B" } else { "A" });
    let tampered = format!("{head}.{payload}.{wrong_signature}");
    let none = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#));
    let pull = repo("team/app", &[Action::Pull]);
    assert!(auth
        .check(Some(&format!("Bearer {good}")), &pull, BASE_URL)
        .is_ok());
    for token in [
        expired,
        elsewhere,
        tampered,
        none,
        "garbage".into(),
        String::new(),
        "a.b.c".into(),
    ] {
        let header = format!("Bearer {token}");
        assert_unauthorized(
            auth.check(Some(&header), &pull, BASE_URL),
            r#"error="invalid_token""#,
        );
    }
}

#[test]
fn the_token_key_is_made_once_and_reused() {
    let setup = Setup::new(true, Some(ACCESS));
    let first = setup.auth();
    let (token, _) = fetch_token(&first, None, &["repository:public/x:pull"]);
    let second = setup.auth();
    let bearer = format!("Bearer {token}");
    let pull = repo("public/x", &[Action::Pull]);
    assert_eq!(
        allowed(&second, Some(&bearer), &pull),
        ANONYMOUS,
        "after a restart"
    );
}

#[test]
fn the_password_grant_form_issues_tokens() {
    let auth = Setup::new(true, Some(ACCESS)).auth();
    let form = "grant_type=password&username=alice&password=wonderland&client_id=containerd\
                &service=gorae-registry&scope=repository%3Ateam%2Fapp%3Apull+repository%3Apublic%2Fx%3Apull";
    let response = auth.issue_for_form(form.as_bytes());
    assert_eq!(response.status, StatusCode::OK);
    let token = json(&response)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = format!("Bearer {token}");
    for name in ["team/app", "public/x"] {
        let scope = repo(name, &[Action::Pull]);
        assert_eq!(allowed(&auth, Some(&bearer), &scope), user("alice"));
    }
    let wrong = auth.issue_for_form(b"grant_type=password&username=alice&password=x");
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    for form in [
        "grant_type=refresh_token&refresh_token=x",
        "username=alice",
        "grant_type=password",
    ] {
        let response = auth.issue_for_form(form.as_bytes());
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{form}");
        assert!(json(&response)["error"].is_string());
    }
}

#[test]
fn basic_mode_has_no_token_endpoint() {
    let auth = Setup::new(false, Some(ACCESS)).auth();
    let response = auth.issue(Credentials::None, &[]);
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(
        Auth::disabled().issue(Credentials::None, &[]).status,
        StatusCode::NOT_FOUND
    );
}

/// Serves `/token` (GET and POST) and one repository scope through the real HTTP server.
struct TokenServer {
    auth: Auth,
}

impl crate::http::Handler for TokenServer {
    fn handle<'a>(&'a self, mut request: Request<'a>) -> crate::http::BoxFuture<'a, Response> {
        Box::pin(async move {
            match (request.method.as_str(), request.path.as_str()) {
                ("GET", "/token") => self.auth.token(&request).await,
                ("POST", "/token") => self.auth.token_post(&mut request).await,
                _ => {
                    let authorization = request.header(http::header::AUTHORIZATION);
                    let scope = repo("team/app", &[Action::Pull, Action::Push]);
                    match self.auth.check(authorization, &scope, "http://registry") {
                        Ok(id) => Response::new(StatusCode::OK)
                            .bytes("text/plain", id.user.unwrap_or_default()),
                        Err(refused) => *refused,
                    }
                }
            }
        })
    }
}

/// curl's status code and body.
async fn curl(args: Vec<String>) -> (u16, String) {
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}"])
            .args(&args)
            .output()
            .expect("curl runs")
    })
    .await
    .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_string())
}

/// Needs curl. The token endpoint through the real HTTP server: GET with Basic credentials,
/// POST with the password grant, and the tokens they give used on a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_over_http() {
    let setup = Setup::new(true, Some(ACCESS));
    let handler = std::sync::Arc::new(TokenServer { auth: setup.auth() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let options = crate::http::ServerOptions::default();
    let server = tokio::spawn(crate::http::serve(
        listener, None, handler, options, shutdown,
    ));

    let get =
        format!("{base}/token?service=gorae-registry&scope=repository%3Ateam%2Fapp%3Apull%2Cpush");
    let (status, body) = curl(vec!["-u".into(), "alice:wonderland".into(), get.clone()]).await;
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let bearer = format!("Authorization: Bearer {}", token["token"].as_str().unwrap());
    let (status, body) = curl(vec!["-H".into(), bearer, format!("{base}/v2/team/app")]).await;
    assert_eq!((status, body.as_str()), (200, "alice"));

    let (status, _) = curl(vec!["-u".into(), "alice:nope".into(), get]).await;
    assert_eq!(status, 401);

    let form = "grant_type=password&username=alice&password=wonderland&scope=repository%3Ateam%2Fapp%3Apull%2Cpush";
    let post = vec!["-d".into(), form.into(), format!("{base}/token")];
    let (status, body) = curl(post).await;
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let bearer = format!(
        "Authorization: Bearer {}",
        token["access_token"].as_str().unwrap()
    );
    let (status, body) = curl(vec!["-H".into(), bearer, format!("{base}/v2/team/app")]).await;
    assert_eq!((status, body.as_str()), (200, "alice"));

    let (status, body) = curl(vec![format!("{base}/v2/team/app")]).await;
    assert_eq!(status, 401, "{body}");

    stop.send(true).unwrap();
    server.await.unwrap().unwrap();
}
