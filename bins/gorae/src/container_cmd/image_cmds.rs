//! The image commands when a daemon owns the store: each goes through the API if the `-H`
//! daemon is set or something answers on the data root's socket, else falls back to the
//! command that works on the store directly. Output matches the direct commands'.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use gorae_api::client::{query, query_escape, Client, Host, Method, RequestBody};
use gorae_image::Reference;
use serde_json::{json, Value};

use super::images::{base64_json, progress_line, pull_stream, pull_to};
use super::template::indent_json;
use super::{block_on, exit, seg};
use crate::cli::Global;
use crate::{archive_cmd, format, images_cmd, transfer_cmd};

/// The daemon to send image commands to: the `-H` one, else the data root's if something
/// answers on its socket; `None` means the store is worked on directly.
pub fn daemon(g: &Global) -> Result<Option<Client>> {
    let host = super::host(g)?;
    if g.host.is_some() {
        return Ok(Some(super::client_for(g, host)?));
    }
    let answers = match &host {
        Host::Unix(path) => std::os::unix::net::UnixStream::connect(path).is_ok(),
        Host::Tcp(_) => false,
    };
    Ok(answers.then(|| Client::new(host)))
}

pub fn pull(g: &Global, a: transfer_cmd::PullArgs) -> Result<()> {
    let Some(c) = daemon(g)? else {
        return transfer_cmd::pull(g, a);
    };
    block_on(async move {
        let reference = a.image.parse::<Reference>()?.with_default_tag();
        if a.quiet {
            let mut stream = pull_stream(&c, &a.image, a.platform.as_deref()).await?;
            while let Some(message) = stream.json::<Value>().await? {
                progress_line(&message)?;
            }
        } else {
            pull_to(&c, &a.image, a.platform.as_deref(), true).await?;
        }
        println!("{reference}");
        Ok(())
    })
}

pub fn push(g: &Global, a: transfer_cmd::PushArgs) -> Result<()> {
    // Pushing under another name is gorae's own extension: the store does it directly.
    let client = match (daemon(g)?, &a.destination) {
        (Some(c), None) => c,
        _ => return transfer_cmd::push(g, a),
    };
    block_on(async move {
        let reference = a.image.parse::<Reference>()?.with_default_tag();
        // The daemon's stream starts with "The push refers to repository [...]".
        let tag = reference.tag.clone().unwrap_or_else(|| "latest".into());
        let path = format!(
            "/images/{}/push{}",
            seg(&reference.familiar_name()),
            query(&[("tag", tag.clone())])
        );
        let auth = base64_json(&json!({}));
        let headers = [("X-Registry-Auth", auth.as_str())];
        let mut stream = client
            .stream(Method::POST, &path, RequestBody::Empty, &headers)
            .await?;
        let mut digest = None;
        while let Some(message) = stream.json::<Value>().await? {
            if let Some(d) = message.pointer("/aux/Digest").and_then(Value::as_str) {
                digest = Some(d.to_string());
                continue;
            }
            match progress_line(&message)? {
                Some(line) if !a.quiet && !line.contains(": digest: ") => eprintln!("{line}"),
                _ => {}
            }
        }
        let digest =
            digest.ok_or_else(|| anyhow!("the daemon did not report the pushed digest"))?;
        println!("{tag}: digest: {digest}");
        Ok(())
    })
}

pub fn list(g: &Global, a: images_cmd::ListArgs) -> Result<()> {
    let Some(c) = daemon(g)? else {
        return images_cmd::list(g, a);
    };
    if a.format != "table" && a.format != "json" {
        bail!("--format {:?}: use table or json", a.format);
    }
    block_on(async move {
        let mut params = Vec::new();
        if let Some(repo) = &a.repository {
            params.push(("filters", json!({ "reference": [repo] }).to_string()));
        }
        if a.digests {
            params.push(("digests", "1".to_string()));
        }
        let images: Vec<Value> = c
            .get_json(&format!("/images/json{}", query(&params)))
            .await?;
        print_images(&images, &a);
        Ok(())
    })
}

/// (repository, tag) pairs of an image summary; `<none>` for an untagged one.
fn repo_tags(image: &Value) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = image["RepoTags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|t| t.rsplit_once(':'))
        .filter(|(_, tag)| !tag.contains('/'))
        .map(|(r, t)| (r.to_string(), t.to_string()))
        .collect();
    if tags.is_empty() {
        tags.push(("<none>".into(), "<none>".into()));
    }
    tags
}

fn print_images(images: &[Value], a: &images_cmd::ListArgs) {
    let mut rows = Vec::new();
    for image in images {
        let full_id = image["Id"].as_str().unwrap_or_default();
        let id = if a.no_trunc {
            full_id.to_string()
        } else {
            full_id
                .trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect()
        };
        if a.quiet {
            println!("{id}");
            continue;
        }
        let created = image["Created"].as_i64();
        let size = format::human_size(image["Size"].as_u64().unwrap_or(0));
        let digest = image["RepoDigests"][0]
            .as_str()
            .and_then(|d| d.split_once('@'))
            .map_or("<none>".to_string(), |(_, d)| d.to_string());
        for (repo, tag) in repo_tags(image) {
            if a.format == "json" {
                let row = json!({
                    "Repository": repo, "Tag": tag, "ID": id, "Digest": digest,
                    "CreatedSince": format::ago(created), "Size": size,
                });
                println!("{row}");
                continue;
            }
            let mut row = vec![repo, tag];
            if a.digests {
                row.push(digest.clone());
            }
            row.extend([id.clone(), format::ago(created), size.clone()]);
            rows.push(row);
        }
    }
    if !a.quiet && a.format == "table" {
        let mut header = vec!["REPOSITORY", "TAG"];
        if a.digests {
            header.push("DIGEST");
        }
        header.extend(["IMAGE ID", "CREATED", "SIZE"]);
        format::print_table(&header, &rows);
    }
}

pub fn tag(g: &Global, a: images_cmd::TagArgs) -> Result<()> {
    let Some(c) = daemon(g)? else {
        return images_cmd::tag(g, a);
    };
    let target: Reference = a.target.parse()?;
    if target.digest.is_some() {
        bail!("{}: a tag target cannot have a digest", a.target);
    }
    let tag = target.tag.clone().unwrap_or_else(|| "latest".into());
    let path = format!(
        "/images/{}/tag{}",
        seg(&a.source),
        query(&[("repo", target.familiar_name()), ("tag", tag)])
    );
    block_on(async move {
        c.call(Method::POST, &path, RequestBody::Empty).await?;
        Ok(())
    })
}

pub fn remove(g: &Global, a: images_cmd::RemoveArgs) -> Result<()> {
    let Some(c) = daemon(g)? else {
        return images_cmd::remove(g, a);
    };
    block_on(async move {
        let mut failed = false;
        let q = if a.force { "?force=1" } else { "" };
        for name in &a.images {
            match delete_json(&c, &format!("/images/{}{q}", seg(name))).await {
                Ok(items) => {
                    for item in items {
                        if let Some(u) = item["Untagged"].as_str() {
                            println!("Untagged: {u}");
                        }
                        if let Some(d) = item["Deleted"].as_str() {
                            println!("Deleted: {d}");
                        }
                    }
                }
                Err(e) => {
                    eprintln!("{}", super::message(&e));
                    failed = true;
                }
            }
        }
        if failed {
            return Err(exit(1));
        }
        Ok(())
    })
}

async fn delete_json(client: &Client, path: &str) -> Result<Vec<Value>> {
    let stream = client
        .stream(Method::DELETE, path, RequestBody::Empty, &[])
        .await?;
    let body = stream.into_bytes().await?;
    serde_json::from_slice(&body).context("the daemon's answer to an image removal")
}

pub fn inspect(g: &Global, a: images_cmd::InspectArgs) -> Result<()> {
    let Some(c) = daemon(g)? else {
        return images_cmd::inspect(g, a);
    };
    block_on(async move {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for name in &a.images {
            match c.get_bytes(&format!("/images/{}/json", seg(name))).await {
                Ok(raw) => found.push(String::from_utf8_lossy(&raw).trim().to_string()),
                Err(e) if e.status() == Some(404) => {
                    missing.push(format!("Error: No such image: {name}"))
                }
                Err(e) => return Err(e.into()),
            }
        }
        println!("{}", indent_json(&format!("[{}]", found.join(","))));
        for m in &missing {
            eprintln!("{m}");
        }
        if !missing.is_empty() {
            return Err(exit(1));
        }
        Ok(())
    })
}

pub fn prune(g: &Global, a: images_cmd::PruneArgs) -> Result<()> {
    let Some(c) = daemon(g)? else {
        return images_cmd::prune(g, a);
    };
    let filters = if a.all {
        format!("?filters={}", query_escape(r#"{"dangling":["false"]}"#))
    } else {
        String::new()
    };
    block_on(async move {
        let report: Value = c
            .post_json(&format!("/images/prune{filters}"), RequestBody::Empty)
            .await?;
        for item in report["ImagesDeleted"].as_array().into_iter().flatten() {
            if let Some(d) = item["Deleted"].as_str() {
                println!("deleted: {d}");
            }
        }
        let space = report["SpaceReclaimed"].as_u64().unwrap_or(0);
        println!("Total reclaimed space: {}", format::human_size(space));
        Ok(())
    })
}

pub fn save(g: &Global, a: archive_cmd::SaveArgs) -> Result<()> {
    let client = match daemon(g)? {
        Some(c) if matches!(a.format.as_str(), "docker" | "docker-archive") => c,
        // The daemon writes docker's format only; OCI archives come from the store directly.
        _ => return archive_cmd::save(g, a),
    };
    if a.output.is_none() && std::io::stdout().is_terminal() {
        bail!("refusing to write a tar archive to a terminal: use -o FILE or redirect");
    }
    block_on(async move {
        let names: Vec<(&str, String)> = a.images.iter().map(|n| ("names", n.clone())).collect();
        let path = format!("/images/get{}", query(&names));
        let mut stream = client
            .stream(Method::GET, &path, RequestBody::Empty, &[])
            .await?;
        let mut out: Box<dyn Write> = match &a.output {
            Some(p) => Box::new(create_partial(p)?),
            None => Box::new(std::io::stdout().lock()),
        };
        while let Some(chunk) = stream.chunk().await? {
            out.write_all(&chunk)?;
        }
        out.flush()?;
        drop(out);
        if let Some(p) = &a.output {
            std::fs::rename(partial_name(p), p)
                .with_context(|| format!("writing {}", p.display()))?;
        }
        Ok(())
    })
}

fn partial_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    name.into()
}

/// The archive is written to `<path>.partial` and renamed once complete: a failed save
/// leaves no file under the asked-for name.
fn create_partial(path: &Path) -> Result<std::io::BufWriter<std::fs::File>> {
    let partial = partial_name(path);
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    Ok(std::io::BufWriter::with_capacity(1 << 20, file))
}

pub fn load(g: &Global, a: archive_cmd::LoadArgs) -> Result<()> {
    let Some(c) = daemon(g)? else {
        return archive_cmd::load(g, a);
    };
    if a.input.is_none() && std::io::stdin().is_terminal() {
        bail!("requested load from stdin, but stdin is a terminal: use -i FILE or redirect");
    }
    block_on(async move {
        super::sigpipe::ignore();
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(16);
        let input = a.input.clone();
        let reader = tokio::task::spawn_blocking(move || read_into(input.as_deref(), &tx));
        let q = if a.quiet { "?quiet=1" } else { "" };
        let mut stream = c
            .stream(
                Method::POST,
                &format!("/images/load{q}"),
                RequestBody::Channel(rx),
                &[],
            )
            .await?;
        while let Some(message) = stream.json::<Value>().await? {
            if let Some(e) = message.get("error").and_then(Value::as_str) {
                bail!("{e}");
            }
            match message.get("stream").and_then(Value::as_str) {
                Some(text) if !a.quiet => print!("{text}"),
                _ => {}
            }
        }
        reader
            .await
            .map_err(|e| anyhow!("reading the archive: {e}"))??;
        Ok(())
    })
}

/// Sends the file (or stdin) in chunks; a read error is sent too, so the upload aborts.
fn read_into(
    input: Option<&Path>,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
) -> Result<()> {
    let mut source: Box<dyn Read> = match input {
        Some(p) if p != Path::new("-") => {
            Box::new(std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?)
        }
        _ => Box::new(std::io::stdin()),
    };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) => {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                return Err(e.into());
            }
        };
        let chunk = bytes::Bytes::copy_from_slice(&buf[..n]);
        if tx.blocking_send(Ok(chunk)).is_err() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_tags_of_summaries() {
        let v = json!({"RepoTags": ["localhost:5000/a/b:v1", "busybox:latest"]});
        assert_eq!(
            repo_tags(&v),
            vec![
                ("localhost:5000/a/b".to_string(), "v1".to_string()),
                ("busybox".to_string(), "latest".to_string())
            ]
        );
        assert_eq!(repo_tags(&json!({"RepoTags": []}))[0].0, "<none>");
        assert_eq!(repo_tags(&json!({}))[0].1, "<none>");
    }
}
