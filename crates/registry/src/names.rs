//! Request paths to routes, and the spec's rules for repository names, tags and references.
//! Everything here is pure and fuzzed: paths are the first untrusted input a request brings.

use gorae_image::reference::{valid_component, valid_tag};
use gorae_image::Digest;

use crate::error::{ApiError, ErrorCode};

/// Longest repository name accepted (distribution's limit).
pub const MAX_NAME_LEN: usize = 255;

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/manifests/<reference>`
    Manifest { name: String, reference: Reference },
    /// `/v2/<name>/blobs/<digest>`
    Blob { name: String, digest: Digest },
    /// `/v2/<name>/blobs/uploads/`
    UploadStart { name: String },
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload { name: String, id: String },
    /// `/v2/<name>/tags/list`
    Tags { name: String },
    /// `/v2/<name>/referrers/<digest>`
    Referrers { name: String, digest: Digest },
    /// `/token`, the built-in token endpoint.
    Token,
    /// `/metrics`
    Metrics,
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t),
            Reference::Digest(d) => write!(f, "{d}"),
        }
    }
}

impl Route {
    /// The repository the route is about, if any.
    pub fn repository(&self) -> Option<&str> {
        match self {
            Route::Manifest { name, .. }
            | Route::Blob { name, .. }
            | Route::UploadStart { name }
            | Route::Upload { name, .. }
            | Route::Tags { name }
            | Route::Referrers { name, .. } => Some(name),
            Route::Base | Route::Catalog | Route::Token | Route::Metrics => None,
        }
    }
}

/// Parses a request path. `Ok(None)`: not a registry path at all (a plain 404). `Err`: a
/// registry path with a bad name (NAME_INVALID), digest (DIGEST_INVALID) or tag
/// (MANIFEST_INVALID, as distribution answers: the spec has no code for a bad tag).
pub fn parse_route(path: &str) -> Result<Option<Route>, ApiError> {
    match path {
        "/v2" | "/v2/" => return Ok(Some(Route::Base)),
        "/v2/_catalog" => return Ok(Some(Route::Catalog)),
        "/token" => return Ok(Some(Route::Token)),
        "/metrics" => return Ok(Some(Route::Metrics)),
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Ok(None);
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let n = segments.len();
    let tail = |k: usize| -> Option<&str> { n.checked_sub(k).map(|i| segments[i]) };
    let name_of = |k: usize| -> Result<String, ApiError> {
        let name = segments[..n - k].join("/");
        validate_name(&name)?;
        Ok(name)
    };
    if n >= 3 && tail(2) == Some("tags") && tail(1) == Some("list") {
        return Ok(Some(Route::Tags { name: name_of(2)? }));
    }
    if n >= 4 && tail(3) == Some("blobs") && tail(2) == Some("uploads") {
        let name = name_of(3)?;
        let id = segments[n - 1];
        if id.is_empty() {
            return Ok(Some(Route::UploadStart { name }));
        }
        validate_upload_id(id)?;
        return Ok(Some(Route::Upload {
            name,
            id: id.to_string(),
        }));
    }
    if n >= 3 && tail(2) == Some("blobs") && tail(1) == Some("uploads") {
        return Ok(Some(Route::UploadStart { name: name_of(2)? }));
    }
    if n >= 3 {
        let last = crate::http::percent_decode(segments[n - 1]);
        match tail(2) {
            Some("manifests") => {
                return Ok(Some(Route::Manifest {
                    name: name_of(2)?,
                    reference: parse_reference(&last)?,
                }))
            }
            Some("blobs") => {
                return Ok(Some(Route::Blob {
                    name: name_of(2)?,
                    digest: parse_digest(&last)?,
                }))
            }
            Some("referrers") => {
                return Ok(Some(Route::Referrers {
                    name: name_of(2)?,
                    digest: parse_digest(&last)?,
                }))
            }
            _ => {}
        }
    }
    Ok(None)
}

/// The spec's repository name grammar: components of `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
/// joined by `/`, at most 255 characters. This also rules out `..`, empty components and
/// anything a file system would treat specially, so a valid name is a safe relative path.
pub fn validate_name(name: &str) -> Result<(), ApiError> {
    let bad = |why: &str| {
        ApiError::new(
            ErrorCode::NameInvalid,
            format!("invalid repository name {:?}: {why}", truncate(name)),
        )
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(bad("longer than 255 characters"));
    }
    if !name.split('/').all(valid_component) {
        return Err(bad(
            "components must be lowercase letters and digits, separated by '.', '_', '__' or '-'",
        ));
    }
    Ok(())
}

/// A tag or a digest.
pub fn parse_reference(text: &str) -> Result<Reference, ApiError> {
    if text.contains(':') {
        return parse_digest(text).map(Reference::Digest);
    }
    if !valid_tag(text) {
        return Err(ApiError::new(
            ErrorCode::ManifestInvalid,
            format!(
                "invalid tag {:?}: must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}",
                truncate(text)
            ),
        ));
    }
    Ok(Reference::Tag(text.to_string()))
}

pub fn parse_digest(text: &str) -> Result<Digest, ApiError> {
    text.parse::<Digest>()
        .map_err(|e| ApiError::new(ErrorCode::DigestInvalid, e.to_string()))
}

/// Upload ids are ours (UUIDs); anything else cannot name a session and must not reach the
/// file system.
fn validate_upload_id(id: &str) -> Result<(), ApiError> {
    let ok =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::BlobUploadUnknown,
            format!("upload {:?} does not exist", truncate(id)),
        ))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    fn route(p: &str) -> Route {
        parse_route(p).unwrap().unwrap()
    }

    #[test]
    fn routes() {
        assert_eq!(route("/v2/"), Route::Base);
        assert_eq!(route("/v2/_catalog"), Route::Catalog);
        assert_eq!(
            route("/v2/a/b/tags/list"),
            Route::Tags { name: "a/b".into() }
        );
        assert_eq!(
            route("/v2/a/blobs/uploads/"),
            Route::UploadStart { name: "a".into() }
        );
        assert_eq!(
            route("/v2/a/blobs/uploads"),
            Route::UploadStart { name: "a".into() }
        );
        assert_eq!(
            route("/v2/a/b/blobs/uploads/1234-abcd"),
            Route::Upload {
                name: "a/b".into(),
                id: "1234-abcd".into()
            }
        );
        assert!(matches!(
            route(&format!("/v2/x/blobs/{D}")),
            Route::Blob { .. }
        ));
        assert!(matches!(
            route(&format!("/v2/x/manifests/{}", D.replace(':', "%3A"))),
            Route::Manifest {
                reference: Reference::Digest(_),
                ..
            }
        ));
        assert_eq!(
            route("/v2/x/y/manifests/v1.0"),
            Route::Manifest {
                name: "x/y".into(),
                reference: Reference::Tag("v1.0".into())
            }
        );
        assert!(matches!(
            route(&format!("/v2/x/referrers/{D}")),
            Route::Referrers { .. }
        ));
        assert_eq!(parse_route("/v1/x").unwrap(), None);
        assert_eq!(parse_route("/v2/x").unwrap(), None);
    }

    #[test]
    fn refuses_bad_names_and_references() {
        for p in [
            "/v2/../manifests/latest",
            "/v2/a/../b/manifests/latest",
            "/v2/A/manifests/latest",
            "/v2//manifests/latest",
            "/v2/a//b/tags/list",
            "/v2/a%2Fb/tags/list",
            "/v2/-a/tags/list",
        ] {
            let e = parse_route(p).unwrap_err();
            assert_eq!(e.code, ErrorCode::NameInvalid, "{p}");
        }
        let long = format!("/v2/{}/tags/list", "a".repeat(256));
        assert_eq!(parse_route(&long).unwrap_err().code, ErrorCode::NameInvalid);
        let e = parse_route("/v2/a/blobs/sha256:zz").unwrap_err();
        assert_eq!(e.code, ErrorCode::DigestInvalid);
        let e = parse_route("/v2/a/manifests/.bad").unwrap_err();
        assert_eq!(e.code, ErrorCode::ManifestInvalid);
        let e = parse_route("/v2/a/blobs/uploads/..%2F..").unwrap_err();
        assert_eq!(e.code, ErrorCode::BlobUploadUnknown);
    }
}
