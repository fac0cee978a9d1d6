//! The container's log in docker's json-file format: one JSON object per line,
//! `{"log":"...","stream":"stdout","time":"<RFC 3339, ns, UTC>"}`, rotated by size.
//!
//! Each read from the container is cut at newlines; a piece without one (the end of a read)
//! is its own entry. A failing write (disk full) is dropped: the log must never stop the
//! container.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Which of the container's streams a piece of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// An open json-file log and its rotation policy.
pub struct LogFile {
    path: PathBuf,
    file: File,
    size: u64,
    /// 0: never rotate.
    max_size: u64,
    /// Files kept in all (the live one included); at least 1.
    max_file: u32,
    line: Vec<u8>,
}

impl LogFile {
    pub fn open(path: &Path, max_size: u64, max_file: u32) -> std::io::Result<LogFile> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_file: max_file.max(1),
            line: Vec::new(),
        })
    }

    /// Logs one read's worth of output, stamped `time`.
    pub fn write(&mut self, stream: Stream, data: &[u8], time: &str) {
        for piece in data.split_inclusive(|b| *b == b'\n') {
            encode_entry(&mut self.line, piece, stream, time);
            self.rotate_for(self.line.len() as u64);
            if self.file.write_all(&self.line).is_ok() {
                self.size += self.line.len() as u64;
            }
        }
        if self.line.capacity() > 64 * 1024 {
            self.line = Vec::new();
        }
    }

    /// Rotates if writing `len` more bytes would take the file past max-size.
    fn rotate_for(&mut self, len: u64) {
        if self.max_size == 0 || self.size == 0 || self.size + len <= self.max_size {
            return;
        }
        if self.max_file == 1 {
            if self.file.set_len(0).is_ok() {
                self.size = 0;
            }
            return;
        }
        for n in (1..self.max_file - 1).rev() {
            let _ = std::fs::rename(numbered(&self.path, n), numbered(&self.path, n + 1));
        }
        let _ = std::fs::rename(&self.path, numbered(&self.path, 1));
        if let Ok(file) = open_append(&self.path) {
            self.file = file;
            self.size = 0;
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

/// `log` → `log.N`.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// One json-file line (with its newline) into `out`. Bytes that are not UTF-8 become U+FFFD,
/// as docker's encoder does.
fn encode_entry(out: &mut Vec<u8>, piece: &[u8], stream: Stream, time: &str) {
    out.clear();
    out.extend_from_slice(b"{\"log\":");
    let text = String::from_utf8_lossy(piece);
    // Serializing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text.as_ref());
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(stream.name().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2026-12-07T12:00:00.123456789Z";

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn output_is_cut_at_newlines_and_a_partial_line_is_its_own_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut log = LogFile::open(&path, 0, 1).unwrap();
        log.write(Stream::Stdout, b"one\ntwo\nthr", T);
        log.write(Stream::Stderr, b"\"q\"\t\xff\n", T);
        let got = lines(&path);
        let logs: Vec<&str> = got.iter().map(|v| v["log"].as_str().unwrap()).collect();
        assert_eq!(logs, ["one\n", "two\n", "thr", "\"q\"\t\u{fffd}\n"]);
        assert_eq!(got[0]["stream"], "stdout");
        assert_eq!(got[3]["stream"], "stderr");
        assert_eq!(got[0]["time"], T);
        let raw = std::fs::read_to_string(&path).unwrap();
        assert!(raw.starts_with(&format!(
            "{{\"log\":\"one\\n\",\"stream\":\"stdout\",\"time\":\"{T}\"}}\n"
        )));
    }

    #[test]
    fn rotation_keeps_max_file_files_none_over_max_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let entry_len = {
            let mut v = Vec::new();
            encode_entry(&mut v, b"0123456789\n", Stream::Stdout, T);
            v.len() as u64
        };
        let mut log = LogFile::open(&path, entry_len * 2, 3).unwrap();
        for _ in 0..9 {
            log.write(Stream::Stdout, b"0123456789\n", T);
        }
        for p in [path.clone(), numbered(&path, 1), numbered(&path, 2)] {
            let len = std::fs::metadata(&p).unwrap().len();
            assert_eq!(len, entry_len * if p == path { 1 } else { 2 }, "{p:?}");
        }
        assert!(!numbered(&path, 3).exists());
    }

    #[test]
    fn max_file_one_truncates_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut log = LogFile::open(&path, 100, 1).unwrap();
        for _ in 0..20 {
            log.write(Stream::Stdout, b"0123456789\n", T);
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 100);
        assert!(!numbered(&path, 1).exists());
        assert_eq!(lines(&path).len(), 1);
    }
}
