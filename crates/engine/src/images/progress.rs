//! gorae-image's per-blob progress events turned into Docker's progress JSON messages
//! (`{"status":"Downloading","progressDetail":{"current":N,"total":M},"id":"<12 hex>"}`),
//! as `docker pull` and `docker push` render them.
//!
//! Byte counts arrive per network chunk; a Downloading/Pushing message goes out at most
//! every 100 ms per blob (and at the end), which is all a terminal can show.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gorae_image::registry::{ProgressEvent, ProgressSink};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;

const THROTTLE: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    Pull,
    /// Push of an image whose config blob (`config`: its 12-hex id) is not shown: docker
    /// lists layers only.
    Push {
        config: String,
    },
}

#[derive(Default)]
struct Blob {
    current: u64,
    total: u64,
    verb: &'static str,
    transferred: bool,
    last_sent: Option<Instant>,
    /// "Pulling fs layer" went out. It waits for the blob's next event: a layer that is
    /// already there gets only "Already exists", as docker shows it.
    announced: bool,
}

struct Translator {
    operation: Operation,
    blobs: Mutex<HashMap<String, Blob>>,
    out: UnboundedSender<Value>,
}

/// A sink that sends Docker's messages for `operation` to `out`.
pub fn sink(operation: Operation, out: UnboundedSender<Value>) -> ProgressSink {
    let translator = Translator {
        operation,
        blobs: Mutex::new(HashMap::new()),
        out,
    };
    ProgressSink::new(move |event| translator.handle(event))
}

/// `{"status": ..., "progressDetail": {}, "id": ...}`.
pub fn status(status: &str, id: &str) -> Value {
    json!({"status": status, "progressDetail": {}, "id": id})
}

/// `{"errorDetail": {"message": ...}, "error": ...}`.
pub fn error(message: &str) -> Value {
    json!({"errorDetail": {"message": message}, "error": message})
}

fn transfer(verb: &str, id: &str, blob: &Blob) -> Value {
    json!({
        "status": verb,
        "progressDetail": {"current": blob.current, "total": blob.total},
        "id": id,
    })
}

impl Translator {
    fn handle(&self, event: ProgressEvent<'_>) {
        let id = event_id(&event);
        if matches!(&self.operation, Operation::Push { config } if config == id) {
            return;
        }
        let mut blobs = self.blobs.lock().unwrap_or_else(|e| e.into_inner());
        let blob = blobs.entry(id.to_string()).or_default();
        let mut messages = self.messages(event, blob);
        let already_there = matches!(event, ProgressEvent::Finished { .. }) && !blob.transferred;
        if self.operation == Operation::Pull && !messages.is_empty() && !blob.announced {
            blob.announced = true;
            if !already_there {
                messages.insert(0, status("Pulling fs layer", id));
            }
        }
        for message in messages {
            // The receiver goes only when the operation is over; nothing to do then.
            let _ = self.out.send(message);
        }
    }

    fn messages(&self, event: ProgressEvent<'_>, blob: &mut Blob) -> Vec<Value> {
        let now = Instant::now();
        match event {
            ProgressEvent::Queued { .. } => Vec::new(),
            ProgressEvent::Started {
                id,
                verb,
                done,
                total,
            } => {
                *blob = Blob {
                    current: done,
                    total,
                    verb,
                    transferred: true,
                    last_sent: Some(now),
                    announced: blob.announced,
                };
                vec![transfer(verb, id, blob)]
            }
            ProgressEvent::Advanced { id, bytes } => {
                blob.current += bytes;
                let due = blob.last_sent.is_none_or(|t| now - t >= THROTTLE);
                if !due && blob.current < blob.total {
                    return Vec::new();
                }
                blob.last_sent = Some(now);
                vec![transfer(blob.verb, id, blob)]
            }
            ProgressEvent::Reset { .. } => {
                blob.current = 0;
                Vec::new()
            }
            ProgressEvent::Step { id, message } => vec![status(message, id)],
            ProgressEvent::Finished { id, message } => self.finished(id, message, blob),
        }
    }

    /// A pulled layer was unpacked as it downloaded: docker's "Download complete" and
    /// "Extracting" steps come just before "Pull complete".
    fn finished(&self, id: &str, message: &str, blob: &Blob) -> Vec<Value> {
        let mut out = Vec::new();
        if self.operation == Operation::Pull && message == "Pull complete" && blob.transferred {
            out.push(status("Download complete", id));
            out.push(status("Extracting", id));
        }
        out.push(status(message, id));
        out
    }
}

fn event_id<'a>(event: &ProgressEvent<'a>) -> &'a str {
    match *event {
        ProgressEvent::Queued { id }
        | ProgressEvent::Started { id, .. }
        | ProgressEvent::Advanced { id, .. }
        | ProgressEvent::Reset { id }
        | ProgressEvent::Step { id, .. }
        | ProgressEvent::Finished { id, .. } => id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses(operation: Operation, events: &[ProgressEvent<'_>]) -> Vec<Value> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let translator = Translator {
            operation,
            blobs: Mutex::new(HashMap::new()),
            out: tx,
        };
        for e in events {
            translator.handle(*e);
        }
        drop(translator);
        let mut out = Vec::new();
        while let Ok(v) = rx.try_recv() {
            out.push(v);
        }
        out
    }

    #[test]
    fn pull_messages_follow_docker() {
        let id = "0123456789ab";
        let out = statuses(
            Operation::Pull,
            &[
                ProgressEvent::Queued { id },
                ProgressEvent::Started {
                    id,
                    verb: "Downloading",
                    done: 0,
                    total: 10,
                },
                ProgressEvent::Advanced { id, bytes: 4 },
                ProgressEvent::Advanced { id, bytes: 6 },
                ProgressEvent::Finished {
                    id,
                    message: "Pull complete",
                },
            ],
        );
        let names: Vec<&str> = out.iter().filter_map(|v| v["status"].as_str()).collect();
        assert_eq!(names[0], "Pulling fs layer");
        assert_eq!(names[1], "Downloading");
        assert_eq!(
            &names[names.len() - 3..],
            ["Download complete", "Extracting", "Pull complete"]
        );
        let last_download = out.iter().rfind(|v| v["status"] == "Downloading").unwrap();
        assert_eq!(last_download["progressDetail"]["current"], 10);
        assert_eq!(last_download["progressDetail"]["total"], 10);
        assert!(out.iter().all(|v| v["id"] == id));
    }

    #[test]
    fn a_layer_already_there_is_only_said_so() {
        let id = "0123456789ab";
        let out = statuses(
            Operation::Pull,
            &[
                ProgressEvent::Queued { id },
                ProgressEvent::Finished {
                    id,
                    message: "Already exists",
                },
            ],
        );
        assert_eq!(out, vec![status("Already exists", id)]);
    }

    #[test]
    fn push_hides_the_config_blob() {
        let config = "cccccccccccc";
        let out = statuses(
            Operation::Push {
                config: config.into(),
            },
            &[
                ProgressEvent::Queued { id: config },
                ProgressEvent::Step {
                    id: config,
                    message: "Preparing",
                },
                ProgressEvent::Queued { id: "aaaaaaaaaaaa" },
                ProgressEvent::Step {
                    id: "aaaaaaaaaaaa",
                    message: "Preparing",
                },
                ProgressEvent::Finished {
                    id: "aaaaaaaaaaaa",
                    message: "Layer already exists",
                },
            ],
        );
        let names: Vec<&str> = out.iter().filter_map(|v| v["status"].as_str()).collect();
        assert_eq!(names, ["Preparing", "Layer already exists"]);
    }
}
