//! `/images/...`: pull (create), push, list, inspect, history, tag, remove, load, save,
//! prune. Names may contain slashes; the router has already joined them.

use std::io::Write as _;
use std::sync::Arc;

use base64::Engine as _;
use gorae_engine::engine::ListOptions;
use gorae_engine::images::RegistryAuth;
use gorae_engine::Engine;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Request;

use crate::body::{self, Resp};
use crate::error::ApiError;
use crate::query::Query;
use crate::router::ImageOp;

/// Loaded tarballs can be large; this bounds what one request may spool to disk.
const LOAD_LIMIT: u64 = 64 << 30;

pub async fn create(
    engine: &Arc<Engine>,
    q: &Query,
    req: &Request<Incoming>,
) -> Result<Resp, ApiError> {
    if q.non_empty("fromSrc").is_some() {
        return Err(ApiError::new(
            501,
            "importing an image with fromSrc is not supported: use `gorae import` or \
             `docker load`",
        ));
    }
    let from = q.required("fromImage")?;
    let auth = registry_auth(req)?;
    let rx = engine
        .images()
        .pull(from, q.non_empty("tag"), q.non_empty("platform"), auth)
        .await?;
    Ok(body::json_stream(rx))
}

pub async fn list(engine: &Arc<Engine>, q: &Query) -> Result<Resp, ApiError> {
    let images = engine
        .images()
        .list(q.flag("all"), q.flag("digests"), q.filters()?)
        .await?;
    Ok(body::json(200, &images))
}

pub async fn operate(
    engine: &Arc<Engine>,
    name: &str,
    op: ImageOp,
    q: &Query,
    req: &Request<Incoming>,
) -> Result<Resp, ApiError> {
    let images = engine.images();
    Ok(match op {
        ImageOp::Inspect => body::json(200, &images.inspect(name).await?),
        ImageOp::History => body::json(200, &images.history(name).await?),
        ImageOp::Tag => {
            images
                .tag(name, q.required("repo")?, q.non_empty("tag"))
                .await?;
            body::no_content(201)
        }
        ImageOp::Push => {
            let auth = registry_auth(req)?;
            body::json_stream(images.push(name, q.non_empty("tag"), auth).await?)
        }
        ImageOp::Save => save(engine, vec![name]).await?,
        ImageOp::Remove => {
            let in_use = images_in_use(engine).await?;
            let removed = images
                .remove(name, q.flag("force"), q.flag("noprune"), &in_use)
                .await?;
            body::json(200, &removed)
        }
    })
}

pub async fn save(engine: &Arc<Engine>, names: Vec<&str>) -> Result<Resp, ApiError> {
    let names: Vec<String> = names
        .into_iter()
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        return Err(ApiError::bad_request("missing query parameter names"));
    }
    let rx = engine.images().save(names).await?;
    Ok(body::bytes_stream("application/x-tar", rx))
}

pub async fn prune(engine: &Arc<Engine>, q: &Query) -> Result<Resp, ApiError> {
    let filters = q.filters()?;
    let in_use = images_in_use(engine).await?;
    Ok(body::json(
        200,
        &engine.images().prune(filters, &in_use).await?,
    ))
}

/// The tarball goes to a file under the data root first (the store reads it twice: the
/// manifest, then the layers), then the image service loads it.
pub async fn load(
    engine: &Arc<Engine>,
    _q: &Query,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let dir = engine.config().root.join("tmp");
    let spool = spool(req.into_body(), &dir).await?;
    let messages = engine.images().load(spool.path().to_path_buf()).await?;
    drop(spool);
    let mut out = Vec::new();
    for message in &messages {
        out.extend_from_slice(&body::json_bytes(message));
    }
    Ok(body::with_type(
        200,
        "application/json",
        body::Body::full(out),
    ))
}

async fn spool(
    mut incoming: Incoming,
    dir: &std::path::Path,
) -> Result<tempfile::NamedTempFile, ApiError> {
    let io_err = |what: &str, e: std::io::Error| {
        ApiError::internal(format!("{what} {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| io_err("creating", e))?;
    let file = tempfile::Builder::new()
        .prefix("load-")
        .tempfile_in(dir)
        .map_err(|e| io_err("creating a file in", e))?;
    let mut writer = std::io::BufWriter::new(file);
    let mut written = 0u64;
    while let Some(frame) = incoming.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        written += data.len() as u64;
        if written > LOAD_LIMIT {
            return Err(ApiError::bad_request(
                "the image tarball is larger than 64 GiB",
            ));
        }
        // Small synchronous writes into a page-cached file: not worth a blocking thread each.
        writer
            .write_all(&data)
            .map_err(|e| io_err("writing a file in", e))?;
    }
    if written == 0 {
        return Err(ApiError::bad_request(
            "the request body is empty: expected an image tarball",
        ));
    }
    writer
        .into_inner()
        .map_err(|e| io_err("writing a file in", e.into_error()))
}

/// `X-Registry-Auth`: base64url JSON (padded or not; some clients use the standard alphabet).
fn registry_auth(req: &Request<Incoming>) -> Result<Option<RegistryAuth>, ApiError> {
    let Some(value) = req.headers().get("x-registry-auth") else {
        return Ok(None);
    };
    decode_registry_auth(value.as_bytes())
}

pub fn decode_registry_auth(value: &[u8]) -> Result<Option<RegistryAuth>, ApiError> {
    let text: Vec<u8> = value
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .map(|b| match b {
            b'+' => b'-',
            b'/' => b'_',
            b => b,
        })
        .collect();
    if text.is_empty() {
        return Ok(None);
    }
    let bad = |why: String| ApiError::bad_request(format!("invalid X-Registry-Auth header: {why}"));
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&text)
        .map_err(|e| bad(e.to_string()))?;
    let auth: RegistryAuth = serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))?;
    let empty =
        auth.username.is_empty() && auth.password.is_empty() && auth.identitytoken.is_empty();
    Ok((!empty).then_some(auth))
}

/// The image IDs containers use, which image remove and prune must keep.
async fn images_in_use(engine: &Arc<Engine>) -> Result<Vec<String>, ApiError> {
    let all = ListOptions {
        all: true,
        ..Default::default()
    };
    let containers = engine.list(all).await?;
    Ok(containers.into_iter().map(|c| c.image_id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_auth_in_every_base64_spelling() {
        let json = br#"{"username":"u","password":"p?>","serveraddress":"localhost:5000"}"#;
        for engine in [
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
            base64::engine::general_purpose::STANDARD,
        ] {
            let auth = decode_registry_auth(engine.encode(json).as_bytes())
                .unwrap()
                .unwrap();
            assert_eq!(
                (auth.username.as_str(), auth.password.as_str()),
                ("u", "p?>")
            );
            assert_eq!(auth.serveraddress, "localhost:5000");
        }
        // The docker CLI sends "{}" when it has no credentials.
        assert!(decode_registry_auth(b"e30=").unwrap().is_none());
        assert!(decode_registry_auth(b"").unwrap().is_none());
        assert_eq!(decode_registry_auth(b"!!!").unwrap_err().status, 400);
        let not_json = base64::engine::general_purpose::URL_SAFE.encode(b"nope");
        assert_eq!(
            decode_registry_auth(not_json.as_bytes())
                .unwrap_err()
                .status,
            400
        );
    }
}
