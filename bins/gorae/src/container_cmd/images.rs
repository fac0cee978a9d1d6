//! Images through the daemon: the pull that `run` does for a missing image, and the image
//! commands (`pull`, `images`, `tag`, `rmi`, `image inspect`, `image prune`, `push`,
//! `save`, `load`) when a daemon answers on the data root's socket — the daemon owns the
//! store then. Output is the same as the local commands'.

use std::io::Write;

use anyhow::{anyhow, Result};
use gorae_api::client::{query, Client, Method, RequestBody};
use gorae_image::Reference;
use serde_json::{json, Value};

pub use super::image_cmds::*;

/// `busybox` → `busybox:latest`, as docker names it in "Unable to find image".
pub fn normalize(image: &str) -> Result<String> {
    let reference: Reference = image.parse()?;
    Ok(reference.with_default_tag().familiar())
}

/// POST /images/create for `image`, printing docker's progress lines (to stderr when
/// `to_stderr`, as `run` does).
pub async fn pull_to(
    client: &Client,
    image: &str,
    platform: Option<&str>,
    to_stderr: bool,
) -> Result<()> {
    let mut stream = pull_stream(client, image, platform).await?;
    while let Some(message) = stream.json::<Value>().await? {
        if let Some(line) = progress_line(&message)? {
            if to_stderr {
                eprintln!("{line}");
            } else {
                println!("{line}");
                std::io::stdout().flush()?;
            }
        }
    }
    Ok(())
}

pub(super) async fn pull_stream(
    client: &Client,
    image: &str,
    platform: Option<&str>,
) -> Result<gorae_api::client::ResponseStream> {
    let reference: Reference = image.parse()?;
    let reference = reference.with_default_tag();
    let tag = reference
        .digest
        .as_ref()
        .map(|d| d.to_string())
        .or_else(|| reference.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let mut params = vec![("fromImage", reference.familiar_name()), ("tag", tag)];
    if let Some(p) = platform {
        params.push(("platform", p.to_string()));
    }
    let path = format!("/images/create{}", query(&params));
    let auth = base64_json(&json!({}));
    let headers = [("X-Registry-Auth", auth.as_str())];
    Ok(client
        .stream(Method::POST, &path, RequestBody::Empty, &headers)
        .await?)
}

/// docker's X-Registry-Auth encoding: base64url of the JSON credentials.
pub(super) fn base64_json(v: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE.encode(v.to_string())
}

/// One of docker's JSON progress messages as a line without a terminal: `id: status`, or
/// the status alone; progress-bar updates are skipped; an in-band error fails the pull.
pub(super) fn progress_line(message: &Value) -> Result<Option<String>> {
    if let Some(error) = message.get("error").and_then(Value::as_str) {
        return Err(anyhow!("{error}"));
    }
    if let Some(detail) = message
        .pointer("/errorDetail/message")
        .and_then(Value::as_str)
    {
        return Err(anyhow!("{detail}"));
    }
    let Some(status) = message.get("status").and_then(Value::as_str) else {
        return Ok(None);
    };
    if message.get("progress").is_some_and(|p| !p.is_null())
        || message
            .get("progressDetail")
            .and_then(Value::as_object)
            .is_some_and(|d| d.contains_key("current"))
    {
        return Ok(None);
    }
    Ok(Some(match message.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => format!("{id}: {status}"),
        _ => status.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn progress_lines() {
        let line = |v: Value| progress_line(&v).unwrap();
        assert_eq!(
            line(json!({"status": "Pulling from library/busybox", "id": "latest"})).as_deref(),
            Some("latest: Pulling from library/busybox")
        );
        assert_eq!(
            line(
                json!({"status": "Downloading", "id": "abc", "progressDetail": {"current": 5, "total": 9}, "progress": "[=>  ]"})
            ),
            None
        );
        assert_eq!(
            line(json!({"status": "Pull complete", "id": "abc", "progressDetail": {}})).as_deref(),
            Some("abc: Pull complete")
        );
        assert_eq!(
            line(json!({"status": "Digest: sha256:00"})).as_deref(),
            Some("Digest: sha256:00")
        );
        assert!(progress_line(&json!({"error": "pull access denied", "errorDetail": {"message": "pull access denied"}})).is_err());
        assert_eq!(normalize("busybox").unwrap(), "busybox:latest");
    }
}
