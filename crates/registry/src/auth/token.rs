//! Bearer tokens: JWTs signed with HMAC-SHA256 (HS256), in the shape of Docker's token spec
//! (`access: [{type, name, actions}]`), and the key they are signed with.
//!
//! Why `ring::hmac` and not the `jsonwebtoken` crate: the registry only ever verifies tokens
//! it issued itself, with one algorithm and one key, so the JWT part is a few lines of base64
//! and JSON. `ring` is already linked (rustls uses it) and its `hmac::verify` compares in
//! constant time; `jsonwebtoken` would add a second crypto stack and an algorithm menu whose
//! only use here would be to refuse everything but HS256.
//!
//! Verification order: the header must say HS256 (so `none` and every other algorithm are
//! refused before anything else), then the signature is checked, and only then are the claims
//! parsed: nothing an attacker wrote is interpreted beyond the header unless we signed it.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// Clock skew tolerated on `exp` and `nbf`.
pub(super) const LEEWAY_SECS: u64 = 60;

/// The shortest key accepted: HMAC-SHA256's own output size.
const MIN_KEY_BYTES: usize = 32;

/// One grant, as the Docker token spec writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct AccessEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Claims {
    pub iss: String,
    /// The user; empty for an anonymous token.
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    #[serde(default)]
    pub access: Vec<AccessEntry>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    /// Extensions the token says must be understood: we understand none.
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// Signs and verifies tokens for one service.
pub(super) struct Signer {
    key: hmac::Key,
    service: String,
}

impl Signer {
    pub(super) fn new(key: &[u8], service: &str) -> Signer {
        Signer {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            service: service.to_string(),
        }
    }

    /// A token for `sub` with `access`, valid from `now` for `lifetime` seconds.
    pub(super) fn issue(
        &self,
        sub: &str,
        access: Vec<AccessEntry>,
        now: u64,
        lifetime: u64,
    ) -> String {
        let claims = Claims {
            iss: self.service.clone(),
            sub: sub.to_string(),
            aud: self.service.clone(),
            exp: now.saturating_add(lifetime),
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            access,
        };
        // Serializing plain strings and integers cannot fail.
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        self.sign(br#"{"alg":"HS256","typ":"JWT"}"#, &payload)
    }

    fn sign(&self, header: &[u8], payload: &[u8]) -> String {
        let mut token = URL_SAFE_NO_PAD.encode(header);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let tag = hmac::sign(&self.key, token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(tag.as_ref()));
        token
    }

    /// The claims of a token we issued that is valid at `now`; otherwise why not.
    pub(super) fn verify(&self, token: &str, now: u64) -> std::result::Result<Claims, String> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWT (three dot-separated parts)".into());
        };
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| "bad base64url");
        let header: Header =
            serde_json::from_slice(&decode(header)?).map_err(|_| "bad JWT header")?;
        if header.alg != "HS256" {
            return Err(format!(
                "algorithm {:?} is not accepted (HS256 only)",
                header.alg
            ));
        }
        if header.crit.is_some() {
            return Err("critical header extensions are not supported".into());
        }
        let signed_len = token.len() - signature.len() - 1;
        hmac::verify(
            &self.key,
            &token.as_bytes()[..signed_len],
            &decode(signature)?,
        )
        .map_err(|_| "bad signature")?;
        let claims: Claims = serde_json::from_slice(&decode(payload)?).map_err(|_| "bad claims")?;
        if claims.iss != self.service || claims.aud != self.service {
            return Err(format!(
                "token is for {:?}, not {:?}",
                claims.aud, self.service
            ));
        }
        if now > claims.exp.saturating_add(LEEWAY_SECS) {
            return Err("token expired".into());
        }
        if claims.nbf > now.saturating_add(LEEWAY_SECS) {
            return Err("token not valid yet".into());
        }
        Ok(claims)
    }

    #[cfg(test)]
    pub(super) fn sign_raw(&self, header: &str, claims: &serde_json::Value) -> String {
        self.sign(header.as_bytes(), claims.to_string().as_bytes())
    }
}

/// The signing key: the file `configured` names, or `<root>/token.key`, made with 32 random
/// bytes on first start (mode 0600, published with a link so a concurrent start cannot
/// replace a key already in use).
pub(super) fn load_key(configured: Option<&Path>, root: &Path) -> Result<Vec<u8>> {
    if let Some(path) = configured {
        return read_key(path);
    }
    let path = root.join("token.key");
    match read_key(&path) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            create_key(root, &path)
        }
        other => other,
    }
}

fn read_key(path: &Path) -> Result<Vec<u8>> {
    let key = std::fs::read(path).at(path)?;
    if key.len() < MIN_KEY_BYTES {
        return Err(Error::Config {
            path: path.to_path_buf(),
            reason: format!(
                "token key is {} bytes; at least {MIN_KEY_BYTES} are needed",
                key.len()
            ),
        });
    }
    Ok(key)
}

fn create_key(root: &Path, path: &Path) -> Result<Vec<u8>> {
    let mut key = vec![0u8; MIN_KEY_BYTES];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key).map_err(|_| {
        Error::Other {
            what: path.display().to_string(),
            reason: "no randomness from the system for a token key".into(),
        }
    })?;
    std::fs::create_dir_all(root).at(root)?;
    let temp = root.join(format!(".token.key.{}", uuid::Uuid::new_v4().simple()));
    let written = write_synced(&temp, &key).and_then(|()| publish(&temp, path));
    let _ = std::fs::remove_file(&temp);
    match written? {
        true => {
            std::fs::File::open(root)
                .and_then(|d| d.sync_all())
                .at(root)?;
            Ok(key)
        }
        // Another process made one first: use theirs.
        false => read_key(path),
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .at(path)?;
    file.write_all(bytes).at(path)?;
    file.sync_all().at(path)
}

/// Links `temp` to `path`; false when `path` already exists.
fn publish(temp: &Path, path: &Path) -> Result<bool> {
    match std::fs::hard_link(temp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).at(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    const NOW: u64 = 1_800_000_000;

    fn signer() -> Signer {
        Signer::new(&[7u8; 32], "reg")
    }

    fn pull(name: &str) -> Vec<AccessEntry> {
        vec![AccessEntry {
            kind: "repository".into(),
            name: name.into(),
            actions: vec!["pull".into()],
        }]
    }

    #[test]
    fn issued_tokens_verify() {
        let s = signer();
        let token = s.issue("alice", pull("a/b"), NOW, 300);
        let claims = s.verify(&token, NOW + 10).unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.access, pull("a/b"));
        assert_eq!((claims.iss.as_str(), claims.aud.as_str()), ("reg", "reg"));
        assert_eq!(claims.exp, NOW + 300);
        assert!(s.verify(&token, NOW + 300 + LEEWAY_SECS).is_ok(), "leeway");
    }

    #[test]
    fn bad_tokens_are_refused() {
        let s = signer();
        let good = s.issue("alice", pull("a"), NOW, 300);
        let expired = s.issue("alice", pull("a"), NOW - 1000, 300);
        let future = s.issue("alice", pull("a"), NOW + 1000, 300);
        let other_service =
            Signer::new(&[7u8; 32], "elsewhere").issue("alice", pull("a"), NOW, 300);
        let other_key = Signer::new(&[8u8; 32], "reg").issue("alice", pull("a"), NOW, 300);
        let (head, rest) = good.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let tampered_claims = URL_SAFE_NO_PAD.encode(
            serde_json::json!({"iss":"reg","sub":"root","aud":"reg","exp":NOW+300,"nbf":NOW,
                "iat":NOW,"jti":"x","access":pull("a")})
            .to_string(),
        );
        let tampered = format!("{head}.{tampered_claims}.{sig}");
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            rest.split_once('.').unwrap().0
        );
        let claims = serde_json::json!({"iss":"reg","sub":"a","aud":"reg","exp":NOW+300,
            "nbf":NOW,"iat":NOW,"jti":"x"});
        let hs512 = s.sign_raw(r#"{"alg":"HS512"}"#, &claims);
        let crit = s.sign_raw(r#"{"alg":"HS256","crit":["exp"]}"#, &claims);
        let mut flipped = good.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        for (token, why) in [
            (expired, "expired"),
            (future, "not valid yet"),
            (other_service, "not \"reg\""),
            (other_key, "signature"),
            (tampered, "signature"),
            (flipped, ""),
            (none, "\"none\""),
            (hs512, "HS512"),
            (crit, "critical"),
            (String::new(), "three"),
            ("a.b".into(), "three"),
            ("a.b.c.d".into(), "three"),
            ("!!.!!.!!".into(), "base64"),
            (format!("{good}="), ""),
            ("e30.e30.e30".into(), "header"),
        ] {
            let e = s.verify(&token, NOW).unwrap_err();
            assert!(e.contains(why), "{token}: {e}");
        }
        assert!(s.verify(&good, NOW).is_ok());
    }

    #[test]
    fn a_key_is_made_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let key = load_key(None, &root).unwrap();
        assert_eq!(key.len(), 32);
        let path = root.join("token.key");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            load_key(None, &root).unwrap(),
            key,
            "the key survives a restart"
        );
        let leftovers: Vec<_> = std::fs::read_dir(&root).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_configured_key_must_be_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, b"short").unwrap();
        let e = load_key(Some(&path), dir.path()).unwrap_err().to_string();
        assert!(e.contains("/k") && e.contains("32"), "{e}");
        std::fs::write(&path, [1u8; 48]).unwrap();
        assert_eq!(load_key(Some(&path), dir.path()).unwrap(), vec![1u8; 48]);
        let e = load_key(Some(&dir.path().join("none")), dir.path()).unwrap_err();
        assert!(e.to_string().contains("none"), "{e}");
    }
}
