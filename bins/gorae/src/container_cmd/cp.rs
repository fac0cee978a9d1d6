//! `cp` both ways through the archive endpoints, with docker's destination rules: into an
//! existing directory the source keeps its name; to a path that does not exist it takes
//! that name; `-` streams a tar archive from stdin or to stdout.

use std::io::{IsTerminal, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use bytes::Bytes;
use clap::Args;
use gorae_api::client::{query, Client, Method, RequestBody};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{seg, with_code};

#[derive(Args)]
pub struct CpArgs {
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Archive mode (copy all uid/gid information).
    #[arg(short, long)]
    pub archive: bool,
    /// Suppress progress output during copy.
    #[arg(short, long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH or a local path (- for a tar on stdin).
    pub source: String,
    /// CONTAINER:DEST_PATH or a local path (- for a tar on stdout).
    pub destination: String,
}

/// `container:path` → Some((container, path)); a local path (containing no ':' before a
/// '/', or starting with '/' or '.') → None.
fn split_container(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    let (container, path) = arg.split_once(':')?;
    (!container.is_empty() && !container.contains('/')).then_some((container, path))
}

pub async fn cp(client: Client, args: CpArgs) -> Result<()> {
    let result = match (
        split_container(&args.source),
        split_container(&args.destination),
    ) {
        (Some((c, src)), None) => from_container(&client, c, src, &args.destination).await,
        (None, Some((c, dst))) => {
            to_container(&client, &args.source, c, dst, args.follow_link).await
        }
        (Some(_), Some(_)) => Err(anyhow!("copying between containers is not supported")),
        (None, None) => Err(anyhow!("must specify at least one container source")),
    };
    let copied = result.map_err(|e| with_code(1, e))?;
    // docker prints this on a terminal only (progress is suppressed otherwise).
    if !args.quiet && args.destination != "-" && std::io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {}",
            super::human_size(copied as f64),
            args.destination
        );
    }
    Ok(())
}

/// The `X-Docker-Container-Path-Stat` header: base64 JSON {name, size, mode, mtime,
/// linkTarget}.
fn path_stat(header: Option<&str>) -> Option<Value> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(header?.trim())
        .ok()?;
    serde_json::from_slice(&raw).ok()
}

/// Go's os.ModeDir bit, as the stat header carries the mode.
const GO_MODE_DIR: u64 = 1 << 31;

/// Returns the size of the archive received.
async fn from_container(client: &Client, container: &str, src: &str, dest: &str) -> Result<u64> {
    let path = format!(
        "/containers/{}/archive{}",
        seg(container),
        query(&[("path", src.to_string())])
    );
    let mut stream = client
        .stream(Method::GET, &path, RequestBody::Empty, &[])
        .await?;
    let stat = path_stat(stream.header("X-Docker-Container-Path-Stat"));
    let source_is_dir = stat
        .as_ref()
        .and_then(|s| s["mode"].as_u64())
        .is_some_and(|m| m & GO_MODE_DIR != 0);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(16);
    let dest = dest.to_string();
    let writer = tokio::task::spawn_blocking(move || -> Result<()> {
        let reader = ChannelReader {
            rx,
            buf: Bytes::new(),
        };
        if dest == "-" {
            let mut reader = reader;
            std::io::copy(&mut reader, &mut std::io::stdout().lock())?;
            return Ok(());
        }
        extract(reader, Path::new(&dest), source_is_dir)
    });
    let mut copied = 0u64;
    while let Some(chunk) = stream.chunk().await? {
        copied += chunk.len() as u64;
        if tx.send(chunk).is_err() {
            break;
        }
    }
    drop(tx);
    writer.await.map_err(|e| anyhow!("extracting: {e}"))??;
    Ok(copied)
}

/// A blocking reader over chunks a task sends.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Bytes>,
    buf: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.recv() {
                Ok(b) => self.buf = b,
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}

/// Where the archive's top entry goes: inside `dest` if it is an existing directory, else
/// `dest` itself.
fn extract(reader: impl Read, dest: &Path, source_is_dir: bool) -> Result<()> {
    let into_dir = dest.is_dir();
    if !into_dir {
        if dest.to_string_lossy().ends_with('/') {
            bail!("destination directory {:?} must exist", dest);
        }
        if source_is_dir && dest.exists() {
            bail!("cannot copy directory");
        }
        let parent = dest.parent().filter(|p| !p.as_os_str().is_empty());
        if parent.is_some_and(|p| !p.is_dir()) {
            bail!(
                "destination directory for {} does not exist",
                dest.display()
            );
        }
    }
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    for entry in archive.entries().context("reading the archive")? {
        let mut entry = entry.context("reading the archive")?;
        let name = entry.path()?.into_owned();
        let target = match safe_relative(&name) {
            Some(rel) if into_dir => dest.join(rel),
            Some(rel) => {
                // The top component is renamed to the destination.
                let mut parts = rel.components();
                parts.next();
                match parts.as_path() {
                    rest if rest.as_os_str().is_empty() => dest.to_path_buf(),
                    rest => dest.join(rest),
                }
            }
            None => bail!("archive entry {} escapes the destination", name.display()),
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        entry
            .unpack(&target)
            .with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(())
}

/// The entry's path without `.` and a leading `/`; `None` if it holds `..`.
fn safe_relative(name: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Where to PUT the archive and what to name its top entry: into an existing directory
/// as is; otherwise under the destination's parent, named as the destination.
async fn upload_target(
    client: &Client,
    src: &str,
    container: &str,
    dest: &str,
) -> Result<(String, Option<String>)> {
    // Whether the destination exists and is a directory decides the entry name.
    let stat_path = format!(
        "/containers/{}/archive{}",
        seg(container),
        query(&[("path", dest.to_string())])
    );
    let dest_is_dir = match client
        .send(Method::HEAD, &stat_path, RequestBody::Empty, &[])
        .await
    {
        Ok(resp) => {
            let header = resp
                .headers()
                .get("X-Docker-Container-Path-Stat")
                .and_then(|v| v.to_str().ok());
            path_stat(header)
                .and_then(|s| s["mode"].as_u64())
                .is_some_and(|m| m & GO_MODE_DIR != 0)
        }
        Err(e) if e.status() == Some(404) => false,
        Err(e) => return Err(e.into()),
    };
    Ok(if src == "-" || dest_is_dir {
        (dest.to_string(), None)
    } else {
        if dest.ends_with('/') {
            bail!("destination directory {dest:?} must exist in the container");
        }
        let dest_path = Path::new(dest);
        let parent = dest_path
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        let name = dest_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        (parent, name)
    })
}

/// Returns the size of the archive sent.
async fn to_container(
    client: &Client,
    src: &str,
    container: &str,
    dest: &str,
    follow: bool,
) -> Result<u64> {
    super::sigpipe::ignore();
    let (put_dir, entry_name) = upload_target(client, src, container, dest).await?;
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(16);
    let src_owned = src.to_string();
    let producer = tokio::task::spawn_blocking(move || {
        let sender = tx.clone();
        let mut writer = ChannelWriter { tx, written: 0 };
        let result = if src_owned == "-" {
            std::io::copy(&mut std::io::stdin().lock(), &mut writer).map(|_| ())
        } else {
            build_tar(&src_owned, entry_name.as_deref(), follow, &mut writer)
        };
        if let Err(e) = &result {
            let _ = sender.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
        result.map(|()| writer.written)
    });
    let put = format!(
        "/containers/{}/archive{}",
        seg(container),
        query(&[
            ("noOverwriteDirNonDir", "true".to_string()),
            ("path", put_dir)
        ])
    );
    let sent = client
        .call(Method::PUT, &put, RequestBody::Channel(rx))
        .await;
    let produced = producer
        .await
        .map_err(|e| anyhow!("archiving {src}: {e}"))?;
    let written = produced.with_context(|| format!("archiving {src}"))?;
    sent?;
    Ok(written)
}

/// A tar of `src` whose top entry is named `name` (default: the source's own name).
fn build_tar(
    src: &str,
    name: Option<&str>,
    follow: bool,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let path = Path::new(src);
    let meta = if follow {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    }
    .map_err(|e| std::io::Error::new(e.kind(), format!("{src}: {e}")))?;
    let own_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into());
    let name = name.map(str::to_string).unwrap_or(own_name);
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(follow);
    if meta.is_dir() {
        builder.append_dir_all(&name, path)?;
    } else {
        builder.append_path_with_name(path, &name)?;
    }
    builder.finish()
}

/// A blocking writer that sends what is written to the request body.
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    written: u64,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "the daemon closed the upload",
                )
            })?;
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths() {
        assert_eq!(
            split_container("web:/etc/hosts"),
            Some(("web", "/etc/hosts"))
        );
        assert_eq!(split_container("./a:b"), None);
        assert_eq!(split_container("/abs:x"), None);
        assert_eq!(split_container("local"), None);
        assert_eq!(split_container("dir/x:y"), None);
    }

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn extracts_with_docker_rules() {
        let dir = tempfile::tempdir().unwrap();
        let archive = tar_of(&[("d/a.txt", b"A"), ("d/sub/b.txt", b"B")]);
        // Into an existing directory: keeps the name.
        extract(&archive[..], dir.path(), true).unwrap();
        assert_eq!(std::fs::read(dir.path().join("d/sub/b.txt")).unwrap(), b"B");
        // To a new path: renamed.
        let renamed = dir.path().join("copy");
        extract(&archive[..], &renamed, true).unwrap();
        assert_eq!(std::fs::read(renamed.join("a.txt")).unwrap(), b"A");
        // A file to a new name.
        let file = tar_of(&[("hosts", b"127.0.0.1 localhost\n")]);
        let target = dir.path().join("h2");
        extract(&file[..], &target, false).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"127.0.0.1 localhost\n");
        // A directory onto a file is refused; a missing parent too.
        assert!(extract(&archive[..], &target, true).is_err());
        assert!(extract(&file[..], &dir.path().join("no/such"), false).is_err());
        assert_eq!(safe_relative(Path::new("../x")), None);
    }

    #[test]
    fn tars_with_a_given_name() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("f");
        std::fs::write(&src, b"hello").unwrap();
        let mut out = Vec::new();
        build_tar(src.to_str().unwrap(), Some("renamed"), false, &mut out).unwrap();
        let mut archive = tar::Archive::new(&out[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["renamed"]);
    }
}
