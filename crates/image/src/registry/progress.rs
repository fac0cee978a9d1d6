//! Per-layer progress like docker's: indicatif bars on a terminal, plain lines otherwise,
//! or events handed to a caller's callback (the engine turns them into Docker's progress
//! JSON).

use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::digest::Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, plain lines otherwise.
    Auto,
    Plain,
    Quiet,
    /// Nothing printed; every step of every blob goes to the callback.
    Events(ProgressSink),
}

/// What happened to one blob (named by the first 12 hex digits of its digest, as docker
/// names layers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressEvent<'a> {
    /// The blob's turn came (pull: before it is looked for locally; push: before the HEAD).
    Queued {
        id: &'a str,
    },
    /// A transfer of `total` bytes starts with `done` of them already here (a resume).
    Started {
        id: &'a str,
        verb: &'static str,
        done: u64,
        total: u64,
    },
    Advanced {
        id: &'a str,
        bytes: u64,
    },
    /// The count starts again from 0 (a registry ignored a Range, a request was retried).
    Reset {
        id: &'a str,
    },
    /// Another step of a blob still in progress ("Preparing", "Extracting").
    Step {
        id: &'a str,
        message: &'static str,
    },
    /// The blob's final state ("Pull complete", "Already exists", "Pushed", ...).
    Finished {
        id: &'a str,
        message: &'a str,
    },
}

type Callback = dyn Fn(ProgressEvent<'_>) + Send + Sync;

/// The callback of `ProgressMode::Events`. Called from async tasks and from blocking
/// threads alike, so it must be quick and must not block.
#[derive(Clone)]
pub struct ProgressSink(Arc<Callback>);

impl ProgressSink {
    pub fn new(callback: impl Fn(ProgressEvent<'_>) + Send + Sync + 'static) -> ProgressSink {
        ProgressSink(Arc::new(callback))
    }

    fn emit(&self, event: ProgressEvent<'_>) {
        (self.0)(event)
    }
}

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}

impl PartialEq for ProgressSink {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ProgressSink {}

/// The progress display of one pull or push.
pub(crate) enum Progress {
    Bars(MultiProgress),
    Plain,
    Quiet,
    Events(ProgressSink),
}

impl Progress {
    pub fn new(mode: &ProgressMode) -> Progress {
        match mode {
            ProgressMode::Auto if std::io::stderr().is_terminal() => {
                Progress::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
            }
            ProgressMode::Auto | ProgressMode::Plain => Progress::Plain,
            ProgressMode::Quiet => Progress::Quiet,
            ProgressMode::Events(sink) => Progress::Events(sink.clone()),
        }
    }

    /// A line for one blob, identified as docker does by the first 12 hex digits.
    pub fn blob(&self, digest: &Digest) -> BlobProgress {
        let id = digest.hex().chars().take(12).collect::<String>();
        let bar = match self {
            Progress::Bars(multi) => {
                let bar = multi.add(ProgressBar::new(0));
                bar.set_style(message_style());
                bar.set_prefix(id.clone());
                bar.set_message("Waiting");
                Some(bar)
            }
            _ => None,
        };
        let sink = match self {
            Progress::Events(sink) => {
                sink.emit(ProgressEvent::Queued { id: &id });
                Some(sink.clone())
            }
            _ => None,
        };
        BlobProgress {
            id,
            bar,
            plain: matches!(self, Progress::Plain),
            sink,
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // indicatif leaves the cursor at the end of the last bar: what the caller prints
        // next must start on a line of its own.
        if let Progress::Bars(multi) = self {
            if !multi.is_hidden() {
                eprintln!();
            }
        }
    }
}

fn message_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg:<11} [{bar:40}] {bytes}/{total_bytes}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// One blob's line. Cheap to clone; usable from any thread.
#[derive(Clone)]
pub(crate) struct BlobProgress {
    id: String,
    bar: Option<ProgressBar>,
    plain: bool,
    sink: Option<ProgressSink>,
}

impl BlobProgress {
    /// A transfer of `total` bytes starts, `done` of which are already here (a resume).
    pub fn start(&self, verb: &'static str, done: u64, total: u64) {
        self.emit(ProgressEvent::Started {
            id: &self.id,
            verb,
            done,
            total,
        });
        if let Some(bar) = &self.bar {
            bar.set_style(bar_style());
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message(verb);
        } else if self.plain {
            let resumed = if done > 0 {
                format!(", resuming at {}", human(done))
            } else {
                String::new()
            };
            eprintln!("{}: {verb} {}{resumed}", self.id, human(total));
        }
    }

    pub fn advance(&self, bytes: u64) {
        self.emit(ProgressEvent::Advanced {
            id: &self.id,
            bytes,
        });
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    /// Restarts the count (a registry that ignored a Range request).
    pub fn reset(&self) {
        self.emit(ProgressEvent::Reset { id: &self.id });
        if let Some(bar) = &self.bar {
            bar.set_position(0);
        }
    }

    /// The blob's final state: "Pull complete", "Already exists", "Pushed", ...
    pub fn finish(&self, message: &str) {
        self.emit(ProgressEvent::Finished {
            id: &self.id,
            message,
        });
        if let Some(bar) = &self.bar {
            bar.set_style(message_style());
            bar.finish_with_message(message.to_string());
        } else if self.plain {
            eprintln!("{}: {message}", self.id);
        }
    }

    /// Another step of a blob still in progress ("Extracting", "Verifying").
    pub fn step(&self, message: &'static str) {
        self.emit(ProgressEvent::Step {
            id: &self.id,
            message,
        });
        if let Some(bar) = &self.bar {
            bar.set_message(message);
        }
    }
}

impl BlobProgress {
    fn emit(&self, event: ProgressEvent<'_>) {
        if let Some(sink) = &self.sink {
            sink.emit(event);
        }
    }
}

/// `12.3MB` as docker prints sizes (decimal units).
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_reach_the_sink() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let sink = ProgressSink::new(move |e| log.lock().unwrap().push(format!("{e:?}")));
        let progress = Progress::new(&ProgressMode::Events(sink));
        let blob = progress.blob(&Digest::sha256_of(b"layer"));
        blob.start("Downloading", 0, 10);
        blob.advance(10);
        blob.finish("Pull complete");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert!(seen[0].starts_with("Queued"), "{seen:?}");
        assert!(seen[2].contains("bytes: 10"), "{seen:?}");
        assert!(seen[3].contains("Pull complete"), "{seen:?}");
    }

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(999), "999B");
        assert_eq!(human(12_300_000), "12.3MB");
        assert_eq!(human(40_000_000_000), "40.0GB");
    }
}
