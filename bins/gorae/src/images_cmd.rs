//! Commands over the local image store: images, tag, rmi, image inspect/prune/verify/mount.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use gorae_image::{ImageConfig, ImageRecord, Manifest, Reference, Store};
use serde_json::{json, Value};

use crate::cli::Global;
use crate::format;

#[derive(Args)]
pub struct ListArgs {
    /// Only image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Don't shorten image IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// `table` (default) or `json` (one object per line, as docker prints).
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Only images of this repository.
    pub repository: Option<String>,
}

#[derive(Args)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Args)]
pub struct RemoveArgs {
    /// Remove an image even if several names refer to it.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Remove every image, not only dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Don't ask (gorae never asks; accepted for docker compatibility).
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args)]
pub struct MountArgs {
    pub image: String,
    pub target: PathBuf,
}

#[derive(Args)]
pub struct UnmountArgs {
    pub target: PathBuf,
}

/// What a record looks like in `images`: repository, tag (or <none>).
fn repo_and_tag(record: &ImageRecord) -> (String, String) {
    match record.reference() {
        Some(r) if r.tag.is_some() || r.digest.is_some() => {
            let tag = r.tag.clone().unwrap_or_else(|| "<none>".into());
            (r.familiar_name(), tag)
        }
        _ => ("<none>".into(), "<none>".into()),
    }
}

struct Details {
    config: ImageConfig,
    raw_config: Value,
    size: u64,
    created: Option<i64>,
}

fn details(store: &Store, record: &ImageRecord) -> Result<Details> {
    let raw = store.content.read_document(&record.id)?;
    let config = ImageConfig::parse(&raw)?;
    let raw_config: Value = serde_json::from_slice(&raw)?;
    let manifest = store.content.read_document(&record.manifest.digest)?;
    let size = match Manifest::parse(&manifest, Some(&record.manifest.media_type))?.0 {
        Manifest::Image(m) => m.layers.iter().map(|l| l.size).sum::<u64>() + m.config.size,
        Manifest::Index(_) => 0,
    };
    let created = config.created.as_deref().and_then(format::parse_rfc3339);
    Ok(Details {
        config,
        raw_config,
        size,
        created,
    })
}

fn short_id(record: &ImageRecord, no_trunc: bool) -> String {
    if no_trunc {
        record.id.to_string()
    } else {
        record.id.hex()[..12].to_string()
    }
}

pub fn list(g: &Global, args: ListArgs) -> Result<()> {
    let store = g.store()?;
    let mut records = store.images.list()?;
    if let Some(repo) = &args.repository {
        let wanted = repo.parse::<Reference>()?;
        records.retain(|r| {
            r.reference().is_some_and(|n| {
                n.name() == wanted.name() && (wanted.tag.is_none() || n.tag == wanted.tag)
            })
        });
    }
    let mut rows = Vec::new();
    let mut seen_ids = std::collections::HashSet::new();
    for record in &records {
        if args.quiet {
            if seen_ids.insert(record.id.clone()) {
                println!("{}", short_id(record, args.no_trunc));
            }
            continue;
        }
        let d = details(&store, record)?;
        let (repo, tag) = repo_and_tag(record);
        let digest = record
            .index
            .as_ref()
            .unwrap_or(&record.manifest)
            .digest
            .to_string();
        if args.format == "json" {
            let row = json!({
                "Repository": repo, "Tag": tag, "ID": short_id(record, args.no_trunc),
                "Digest": digest, "CreatedSince": format::ago(d.created),
                "CreatedAt": d.config.created, "Size": format::human_size(d.size),
            });
            println!("{row}");
            continue;
        }
        let mut row = vec![repo, tag];
        if args.digests {
            row.push(digest);
        }
        row.extend([
            short_id(record, args.no_trunc),
            format::ago(d.created),
            format::human_size(d.size),
        ]);
        rows.push(row);
    }
    if !args.quiet && args.format == "table" {
        let mut header = vec!["REPOSITORY", "TAG"];
        if args.digests {
            header.push("DIGEST");
        }
        header.extend(["IMAGE ID", "CREATED", "SIZE"]);
        format::print_table(&header, &rows);
    } else if args.format != "table" && args.format != "json" {
        bail!("--format {:?}: use table or json", args.format);
    }
    Ok(())
}

pub fn tag(g: &Global, args: TagArgs) -> Result<()> {
    let target: Reference = args.target.parse()?;
    if target.digest.is_some() {
        bail!("{}: a tag target cannot have a digest", args.target);
    }
    let store = g.store()?;
    let _lock = store.lock_shared()?;
    store.images.tag(&args.source, &target.with_default_tag())?;
    Ok(())
}

pub fn remove(g: &Global, args: RemoveArgs) -> Result<()> {
    let store = g.store()?;
    let mut failed = false;
    for name in &args.images {
        match store.images.remove(name, args.force) {
            Ok(removed) => {
                for r in removed {
                    let (repo, tag) = repo_and_tag(&r);
                    if repo != "<none>" {
                        println!("Untagged: {repo}:{tag}");
                    }
                }
            }
            Err(e) => {
                eprintln!("gorae: {e}");
                failed = true;
            }
        }
    }
    let report = gorae_image::gc::collect(&store)?;
    if report.blobs_removed + report.layers_removed > 0 {
        println!(
            "Deleted: {} blobs, {} layers ({})",
            report.blobs_removed,
            report.layers_removed,
            format::human_size(report.bytes_freed)
        );
    }
    if failed {
        bail!("some images could not be removed");
    }
    Ok(())
}

fn inspect_one(store: &Store, record: &ImageRecord, all: &[ImageRecord]) -> Result<Value> {
    let d = details(store, record)?;
    let mut tags = Vec::new();
    let mut digests = Vec::new();
    for r in all.iter().filter(|r| r.id == record.id) {
        if let Some(reference) = r.reference() {
            if reference.tag.is_some() {
                tags.push(reference.familiar());
            }
            let repo = reference.familiar_name();
            let digest = &r.index.as_ref().unwrap_or(&r.manifest).digest;
            let repo_digest = format!("{repo}@{digest}");
            if !digests.contains(&repo_digest) {
                digests.push(repo_digest);
            }
        }
    }
    let raw = &d.raw_config;
    Ok(json!({
        "Id": record.id.to_string(),
        "RepoTags": tags,
        "RepoDigests": digests,
        "Parent": "",
        "Comment": raw.pointer("/history/0/comment").cloned().unwrap_or(json!("")),
        "Created": d.config.created,
        "Author": d.config.author.clone().unwrap_or_default(),
        "Architecture": d.config.architecture,
        "Os": d.config.os,
        "Variant": d.config.variant,
        "Size": d.size,
        "Config": raw.get("config").cloned().unwrap_or(Value::Null),
        "RootFS": {
            "Type": "layers",
            "Layers": d.config.rootfs.diff_ids.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
        },
        "Descriptor": record.manifest,
        "Metadata": { "LastTagTime": record.created },
    }))
}

pub fn inspect(g: &Global, args: InspectArgs) -> Result<()> {
    let store = g.store()?;
    let all = store.images.list()?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in &args.images {
        match store.images.resolve(name) {
            Ok(record) => out.push(inspect_one(&store, &record, &all)?),
            Err(e) => missing.push(e.to_string()),
        }
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    if !missing.is_empty() {
        bail!("{}", missing.join("; "));
    }
    Ok(())
}

pub fn prune(g: &Global, args: PruneArgs) -> Result<()> {
    let store = g.store()?;
    let mut removed = Vec::new();
    if args.all {
        for record in store.images.list()? {
            removed.extend(store.images.remove(&record.name, true)?);
        }
    }
    let (dangling, report) = gorae_image::gc::prune(&store)?;
    removed.extend(dangling);
    for r in &removed {
        println!("deleted: {}", r.id);
    }
    println!(
        "Total reclaimed space: {}",
        format::human_size(report.bytes_freed)
    );
    Ok(())
}

pub fn verify(g: &Global) -> Result<()> {
    let store = g.store()?;
    let bad = store.content.verify_all()?;
    if bad.is_empty() {
        println!("all blobs match their digests");
        return Ok(());
    }
    for blob in &bad {
        eprintln!("{}: {}", blob.path.display(), blob.problem);
    }
    bail!("{} blob(s) do not match their digests", bad.len());
}

pub fn mount(g: &Global, args: MountArgs) -> Result<()> {
    let store = g.store()?;
    let record = store.images.resolve(&args.image)?;
    let d = details(&store, &record)?;
    store
        .snapshots
        .mount_readonly(&d.config.rootfs.diff_ids, &args.target)?;
    Ok(())
}

pub fn unmount(g: &Global, args: UnmountArgs) -> Result<()> {
    let store = g.store()?;
    store.snapshots.unmount(&args.target)?;
    Ok(())
}
