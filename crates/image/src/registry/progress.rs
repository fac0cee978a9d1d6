//! Per-layer progress like docker's: indicatif bars on a terminal, plain lines otherwise.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::digest::Digest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, plain lines otherwise.
    Auto,
    Plain,
    Quiet,
}

/// The progress display of one pull or push.
pub(crate) enum Progress {
    Bars(MultiProgress),
    Plain,
    Quiet,
}

impl Progress {
    pub fn new(mode: ProgressMode) -> Progress {
        match mode {
            ProgressMode::Auto if std::io::stderr().is_terminal() => {
                Progress::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
            }
            ProgressMode::Auto | ProgressMode::Plain => Progress::Plain,
            ProgressMode::Quiet => Progress::Quiet,
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
        BlobProgress {
            id,
            bar,
            plain: matches!(self, Progress::Plain),
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
}

impl BlobProgress {
    /// A transfer of `total` bytes starts, `done` of which are already here (a resume).
    pub fn start(&self, verb: &'static str, done: u64, total: u64) {
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
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    /// Restarts the count (a registry that ignored a Range request).
    pub fn reset(&self) {
        if let Some(bar) = &self.bar {
            bar.set_position(0);
        }
    }

    /// The blob's final state: "Pull complete", "Already exists", "Pushed", ...
    pub fn finish(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_style(message_style());
            bar.finish_with_message(message.to_string());
        } else if self.plain {
            eprintln!("{}: {message}", self.id);
        }
    }

    /// Another step of a blob still in progress ("Extracting", "Verifying").
    pub fn step(&self, message: &'static str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message);
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
    fn sizes_like_docker() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(999), "999B");
        assert_eq!(human(12_300_000), "12.3MB");
        assert_eq!(human(40_000_000_000), "40.0GB");
    }
}
