//! `POST /images/create` (pull) and `POST /images/{name}/push` as Docker streams them: the
//! registry client runs in a task while its progress events become Docker's JSON messages.
//!
//! A pull that fails before its first layer (bad name, unknown manifest, registry down)
//! fails the request itself with a status code, as docker's does when nothing has been
//! written yet; later failures end the stream with an error message. A push always starts
//! its stream with "The push refers to repository", as docker's does.

use std::sync::Arc;

use gorae_image::registry::{self, Credentials, ProgressMode, PullOptions, RegistryOptions};
use gorae_image::{Digest, ImageRecord, Platform, Reference, Store};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::events::Events;
use super::progress::{self, Operation};
use super::{blocking, short};
use crate::error::{Error, Result};

/// Messages buffered towards the API before the transfer waits for the client.
const DEPTH: usize = 64;

type Task<T> = JoinHandle<gorae_image::Result<T>>;

/// What every transfer needs besides its image.
pub struct Transfer {
    pub store: Arc<Store>,
    /// The daemon's registry settings; `progress` is replaced by the transfer's own.
    pub options: RegistryOptions,
    pub credentials: Option<Credentials>,
    pub events: Events,
}

pub async fn pull(
    transfer: Transfer,
    reference: Reference,
    platform: Platform,
    turn: tokio::sync::OwnedMutexGuard<()>,
) -> Result<mpsc::Receiver<Value>> {
    let Transfer {
        store,
        options,
        credentials,
        events: events_out,
    } = transfer;
    let name = reference.to_string();
    let before = blocking(&store, move |s| {
        Ok(s.images.resolve(&name).ok().map(|r| r.manifest.digest))
    })
    .await?;
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let options = PullOptions {
        registry: RegistryOptions {
            progress: ProgressMode::Events(progress::sink(Operation::Pull, events_tx)),
            ..options
        },
        platform,
    };
    let task_reference = reference.clone();
    let mut task: Task<ImageRecord> = run(move || async move {
        let pulled =
            registry::pull_as(&store, &task_reference, &options, credentials.as_ref()).await;
        drop(turn); // the next pull of this repository may start
        pulled
    });
    let (first, done) = tokio::select! {
        biased;
        Some(event) = events.recv() => (Some(event), None),
        joined = &mut task => match (joined_result(joined), events.try_recv()) {
            (Err(e), Err(_)) => return Err(pull_error(&reference, e)),
            (result, event) => (event.ok(), Some(result)),
        },
    };
    let (tx, rx) = mpsc::channel(DEPTH);
    tokio::spawn(async move {
        let _ = tx.send(pulling_from(&reference)).await;
        if let Some(first) = first {
            let _ = tx.send(first).await;
        }
        let result = match done {
            Some(result) => {
                while let Some(event) = events.recv().await {
                    let _ = tx.send(event).await;
                }
                result
            }
            None => forward(&tx, events, task).await,
        };
        let last = match result {
            Ok(record) => {
                let name = reference.familiar();
                events_out.emit("pull", &name, &name);
                pull_summary(&reference, before, &record)
            }
            Err(message) => vec![progress::error(&message)],
        };
        for message in last {
            let _ = tx.send(message).await;
        }
    });
    Ok(rx)
}

fn pulling_from(reference: &Reference) -> Value {
    let id = reference
        .tag
        .clone()
        .unwrap_or_else(|| reference.manifest_ref());
    json!({"status": format!("Pulling from {}", reference.repository), "id": id})
}

fn pull_summary(reference: &Reference, before: Option<Digest>, record: &ImageRecord) -> Vec<Value> {
    let digest = &record.index.as_ref().unwrap_or(&record.manifest).digest;
    let status = if before.as_ref() == Some(&record.manifest.digest) {
        "Image is up to date for"
    } else {
        "Downloaded newer image for"
    };
    vec![
        json!({"status": format!("Digest: {digest}")}),
        json!({"status": format!("Status: {status} {}", reference.familiar())}),
    ]
}

/// A registry's "not found" is docker's 404; anything else before the stream is a 500.
fn pull_error(reference: &Reference, e: String) -> Error {
    let not_found = ["404 Not Found", "MANIFEST_UNKNOWN", "NAME_UNKNOWN"];
    if not_found.iter().any(|n| e.contains(n)) {
        Error::NotFound(format!(
            "manifest for {} not found: {e}",
            reference.familiar()
        ))
    } else {
        Error::Internal(e)
    }
}

/// Runs a registry transfer on a blocking thread of its own. Its future is not `Send`
/// (rustc cannot prove it for the layer streams' closures), so it cannot be a task; its
/// I/O is still driven by the runtime, whose handle it blocks on.
fn run<T, F, Fut>(transfer: F) -> Task<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = gorae_image::Result<T>>,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(transfer()))
}

/// Sends every event to `tx` until the task is over (the events channel closes with it);
/// returns its result. A client that went away does not stop the transfer.
async fn forward<T>(
    tx: &mpsc::Sender<Value>,
    mut events: mpsc::UnboundedReceiver<Value>,
    task: Task<T>,
) -> std::result::Result<T, String> {
    while let Some(event) = events.recv().await {
        let _ = tx.send(event).await;
    }
    joined_result(task.await)
}

fn joined_result<T>(
    joined: std::result::Result<gorae_image::Result<T>, tokio::task::JoinError>,
) -> std::result::Result<T, String> {
    match joined {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(e) => Err(format!("the transfer task failed: {e}")),
    }
}

/// One tag to push, with what its final messages need.
pub struct PushTarget {
    pub reference: Reference,
    pub config: String,
    pub manifest_size: u64,
}

/// The tags `reference` stands for: itself if it has a tag, else every local tag of its
/// repository (as `docker push repo` pushes them all).
pub fn push_targets(store: &Store, reference: &Reference) -> Result<Vec<PushTarget>> {
    let missing = || {
        Error::NotFound(format!(
            "An image does not exist locally with the tag: {}",
            reference.familiar_name()
        ))
    };
    let mut records: Vec<ImageRecord> = if reference.tag.is_some() || reference.digest.is_some() {
        vec![store
            .images
            .resolve(&reference.to_string())
            .map_err(|_| missing())?]
    } else {
        store
            .images
            .list()?
            .into_iter()
            .filter(|r| {
                r.reference()
                    .is_some_and(|n| n.name() == reference.name() && n.tag.is_some())
            })
            .collect()
    };
    if records.is_empty() {
        return Err(missing());
    }
    records.sort_by(|a, b| a.name.cmp(&b.name));
    let mut targets = Vec::new();
    for record in records {
        let image = super::details::load_one(store, &record.id.to_string())?;
        let reference = match reference.tag.is_some() || reference.digest.is_some() {
            true => reference.clone(),
            false => record.reference().ok_or_else(missing)?,
        };
        targets.push(PushTarget {
            reference,
            config: short(image.manifest.config.digest.hex()).to_string(),
            manifest_size: record.manifest.size,
        });
    }
    Ok(targets)
}

pub fn push(
    transfer: Transfer,
    repository: String,
    targets: Vec<PushTarget>,
) -> mpsc::Receiver<Value> {
    let (tx, rx) = mpsc::channel(DEPTH);
    tokio::spawn(async move {
        let header = format!("The push refers to repository [{repository}]");
        let _ = tx.send(json!({"status": header})).await;
        for target in targets {
            let result = push_one(&transfer, &target, &tx).await;
            let messages = match result {
                Ok(digest) => {
                    let name = target.reference.familiar();
                    transfer.events.emit("push", &name, &name);
                    push_summary(&target, &digest)
                }
                Err(message) => vec![progress::error(&message)],
            };
            let failed = messages.iter().any(|m| m.get("error").is_some());
            for message in messages {
                let _ = tx.send(message).await;
            }
            if failed {
                break;
            }
        }
    });
    rx
}

async fn push_one(
    transfer: &Transfer,
    target: &PushTarget,
    tx: &mpsc::Sender<Value>,
) -> std::result::Result<Digest, String> {
    let (events_tx, events) = mpsc::unbounded_channel();
    let operation = Operation::Push {
        config: target.config.clone(),
    };
    let options = RegistryOptions {
        progress: ProgressMode::Events(progress::sink(operation, events_tx)),
        ..transfer.options.clone()
    };
    let store = transfer.store.clone();
    let credentials = transfer.credentials.clone();
    let reference = target.reference.clone();
    let task: Task<Digest> = run(move || async move {
        let source = reference.to_string();
        registry::push_as(&store, &source, &reference, &options, credentials.as_ref()).await
    });
    forward(tx, events, task).await
}

fn push_summary(target: &PushTarget, digest: &Digest) -> Vec<Value> {
    let tag = target
        .reference
        .tag_or_latest()
        .map(String::from)
        .unwrap_or_else(|| target.reference.manifest_ref());
    let size = target.manifest_size;
    vec![
        json!({"status": format!("{tag}: digest: {digest} size: {size}")}),
        json!({
            "progressDetail": {},
            "aux": {"Tag": tag, "Digest": digest.to_string(), "Size": size},
        }),
    ]
}
