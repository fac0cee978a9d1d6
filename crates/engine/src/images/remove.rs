//! `DELETE /images/{name}` and `POST /images/prune` with Docker's rules.
//!
//! Removing by name untags that name (and, when it was the repository's last tag, the
//! repository's digest references); the image itself goes only when no name is left. An
//! image a container uses keeps its last name unless forced, and then stays as a dangling
//! image rather than being deleted. Removing by ID takes every name with it, which needs
//! force if the names span several repositories. An image a running container uses is
//! never deleted. The messages are docker's.

use std::collections::BTreeSet;

use gorae_image::{ImageRecord, Reference, Store};
use serde_json::{json, Value};

use super::details::{load_all, load_one, Image};
use super::events::Events;
use super::list::{label_matches, parse_bool_filter, until};
use super::{image_error, short, Use};
use crate::engine::Filters;
use crate::error::{Error, Result};

/// The containers that use one image: one running and one stopped, if any.
#[derive(Default)]
struct Users {
    running: Option<String>,
    stopped: Option<String>,
}

impl Users {
    fn of(in_use: &[Use], image: &Image) -> Users {
        let mut users = Users::default();
        for u in in_use.iter().filter(|u| u.image_hex == image.id.hex()) {
            let slot = if u.running {
                &mut users.running
            } else {
                &mut users.stopped
            };
            slot.get_or_insert_with(|| u.container_id.clone());
        }
        users
    }

    fn any(&self) -> Option<&str> {
        self.running.as_deref().or(self.stopped.as_deref())
    }
}

/// `stopped container 0123456789ab`; "a stopped container" when the caller did not say
/// which (it gave bare image IDs).
fn container_named(state: &str, id: &str) -> String {
    if id.is_empty() {
        format!("a {state}container")
    } else {
        format!("{state}container {}", short(id))
    }
}

/// Why an image cannot be deleted; `used` when a container is the reason.
struct DeleteConflict {
    message: String,
    used: bool,
}

pub fn remove(
    store: &Store,
    name: &str,
    force: bool,
    in_use: &[Use],
    events: &Events,
) -> Result<Vec<Value>> {
    let image = load_one(store, name)?;
    let refs: Vec<Reference> = image.named().map(|(_, r)| r).collect();
    let users = Users::of(in_use, &image);
    let by_id = image.id.to_string().starts_with(name) || image.id.hex().starts_with(name);
    let mut out = Vec::new();
    if by_id {
        if is_single_reference(&refs) {
            if let Some(c) = conflict(&image, &users, !force, false) {
                return Err(Error::Conflict(c.message));
            }
            for r in &refs {
                untag(store, &r.to_string(), &mut out, events)?;
            }
        }
        delete(store, &image, force, false, &users, &mut out, events)?;
        return Ok(out);
    }
    if let Some(container) = users.any().filter(|_| !force && is_single_reference(&refs)) {
        return Err(Error::Conflict(format!(
            "conflict: unable to remove repository reference \"{name}\" (must force) - \
             {} is using its referenced image {}",
            container_named("", container),
            short(image.id.hex())
        )));
    }
    let removed = untag(store, name, &mut out, events)?;
    let remaining = untag_orphaned_digests(store, &image, &removed, &mut out, events)?;
    if remaining == 0 {
        delete(store, &image, force, true, &users, &mut out, events)?;
    }
    Ok(out)
}

/// Removes the records `name` designates; adds an `Untagged` entry for each.
fn untag(
    store: &Store,
    name: &str,
    out: &mut Vec<Value>,
    events: &Events,
) -> Result<Vec<ImageRecord>> {
    let removed = store
        .images
        .remove(name, true)
        .map_err(|e| image_error(name, e))?;
    for r in &removed {
        if let Some(reference) = r.reference() {
            out.push(json!({"Untagged": reference.familiar()}));
            events.emit("untag", &r.id.to_string(), &reference.familiar());
        }
    }
    Ok(removed)
}

/// The `Deleted` entry and event of an image.
fn deleted(image: &Image, out: &mut Vec<Value>, events: &Events) {
    let id = image.id.to_string();
    out.push(json!({"Deleted": id}));
    events.emit("delete", &id, &id);
}

/// After a tag is removed, the digest references of a repository that has no tag left
/// go too (docker's rule). Returns how many names the image still has.
fn untag_orphaned_digests(
    store: &Store,
    image: &Image,
    removed: &[ImageRecord],
    out: &mut Vec<Value>,
    events: &Events,
) -> Result<usize> {
    let removed_names: BTreeSet<&str> = removed.iter().map(|r| r.name.as_str()).collect();
    let mut remaining: Vec<Reference> = image
        .named()
        .filter(|(r, _)| !removed_names.contains(r.name.as_str()))
        .map(|(_, reference)| reference)
        .collect();
    for tag in removed.iter().filter_map(ImageRecord::reference) {
        if tag.digest.is_some() || remaining.iter().any(|r| is_tag_in(r, &tag)) {
            continue;
        }
        let (orphans, kept): (Vec<Reference>, Vec<Reference>) = remaining
            .into_iter()
            .partition(|r| r.digest.is_some() && r.name() == tag.name());
        for orphan in orphans {
            untag(store, &orphan.to_string(), out, events)?;
        }
        remaining = kept;
    }
    Ok(remaining.len())
}

fn is_tag_in(r: &Reference, repository: &Reference) -> bool {
    r.digest.is_none() && r.name() == repository.name()
}

/// Docker's `isSingleReference`: one name at least, at most one tag, all in one repository.
fn is_single_reference(refs: &[Reference]) -> bool {
    let tags = refs.iter().filter(|r| r.digest.is_none()).count();
    let repositories: BTreeSet<String> = refs.iter().map(Reference::name).collect();
    !refs.is_empty() && tags <= 1 && repositories.len() == 1
}

/// Docker's conflict check. A running container always conflicts; with `soft`, so do a
/// stopped container and the image's names (if `named`: it still has some).
fn conflict(image: &Image, users: &Users, soft: bool, named: bool) -> Option<DeleteConflict> {
    let id = short(image.id.hex());
    if let Some(c) = &users.running {
        return Some(DeleteConflict {
            message: format!(
                "conflict: unable to delete {id} (cannot be forced) - \
                 image is being used by {}",
                container_named("running ", c)
            ),
            used: true,
        });
    }
    let must = |why: String, used| DeleteConflict {
        message: format!("conflict: unable to delete {id} (must be forced) - {why}"),
        used,
    };
    if soft && named {
        return Some(must(
            "image is referenced in multiple repositories".into(),
            false,
        ));
    }
    match &users.stopped {
        Some(c) if soft => Some(must(
            format!("image is being used by {}", container_named("stopped ", c)),
            true,
        )),
        _ => None,
    }
}

/// Deletes the image with whatever names it has left, unless a conflict stops it. `quiet`
/// (its last name was just untagged): a container using it keeps it, as a dangling image.
fn delete(
    store: &Store,
    image: &Image,
    force: bool,
    quiet: bool,
    users: &Users,
    out: &mut Vec<Value>,
    events: &Events,
) -> Result<()> {
    let left: Vec<ImageRecord> = store
        .images
        .list()?
        .into_iter()
        .filter(|r| r.id == image.id)
        .collect();
    let has_names = left.iter().any(|r| !r.is_dangling());
    if let Some(c) = conflict(image, users, !force, has_names) {
        if quiet && c.used {
            keep_dangling(store, image)?;
            return Ok(());
        }
        return Err(Error::Conflict(c.message));
    }
    if !left.is_empty() {
        untag(store, &image.id.to_string(), out, events)?;
    }
    deleted(image, out, events);
    Ok(())
}

/// Puts back a nameless record for an image whose last name went, so it stays listed.
fn keep_dangling(store: &Store, image: &Image) -> Result<()> {
    let Some(first) = image.records.first() else {
        return Ok(());
    };
    let record = ImageRecord::new(
        None,
        first.manifest.clone(),
        first.index.clone(),
        image.id.clone(),
    );
    Ok(store.images.put(record)?)
}

/// `POST /images/prune`: dangling images (every unused one with `dangling=false`) that no
/// container uses, narrowed by `until` and `label`/`label!`; then the blobs and layers
/// nothing needs any more.
pub fn prune(store: &Store, filters: &Filters, in_use: &[Use], events: &Events) -> Result<Value> {
    let mut dangling_only = true;
    let mut until_time = None;
    for (key, values) in filters {
        match key.as_str() {
            "dangling" => dangling_only = parse_bool_filter(key, values)?,
            "until" => until_time = Some(until(values)?),
            "label" | "label!" => {}
            _ => return Err(Error::InvalidParameter(format!("invalid filter '{key}'"))),
        }
    }
    let labels = filters.get("label").map(Vec::as_slice).unwrap_or(&[]);
    let not_labels = filters.get("label!").map(Vec::as_slice).unwrap_or(&[]);
    let used: BTreeSet<&str> = in_use.iter().map(|u| u.image_hex.as_str()).collect();
    let mut out = Vec::new();
    for image in load_all(store)? {
        let wanted = !used.contains(image.id.hex())
            && (!dangling_only || image.is_dangling())
            && until_time.is_none_or(|t| image.created < t)
            && labels.iter().all(|l| label_matches(&image, l))
            && !not_labels.iter().any(|l| label_matches(&image, l));
        if wanted {
            untag(store, &image.id.to_string(), &mut out, events)?;
            deleted(&image, &mut out, events);
        }
    }
    let report = gorae_image::gc::collect(store)?;
    events.emit_with(
        "prune",
        "",
        &[("reclaimed", report.bytes_freed.to_string())],
    );
    Ok(json!({"ImagesDeleted": out, "SpaceReclaimed": report.bytes_freed}))
}
