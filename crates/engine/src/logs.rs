//! `docker logs`: reads a container's json-file log (the monitor writes it; rotated files are
//! `<log>.1` … `<log>.N`, the highest the oldest) and turns its entries into the framed stream
//! the API sends: docker's 8-byte multiplexing header per chunk without a tty, raw bytes with
//! one.
//!
//! Tail reads backwards from the end of the newest file, across files, so `--tail 10` of a
//! large log does not parse the whole of it. Follow keeps reading as the monitor appends,
//! moves on to the new file when the monitor renames the old one away (it checks the inode
//! behind the log's path), and ends once the container is no longer running and the file is
//! drained.
//!
//! A malformed line (the monitor was killed mid-write, a disk filled up) is skipped, never an
//! error: the rest of the log is still worth reading.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;
use tokio::sync::mpsc;

/// Which of the container's output streams an entry came from (docker's stream ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout = 1,
    Stderr = 2,
}

/// What to read and how to frame it.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub stdout: bool,
    pub stderr: bool,
    /// Unix nanoseconds; entries before it are skipped (0: no bound).
    pub since_nanos: i128,
    /// Unix nanoseconds; reading stops at the first entry after it (0: no bound).
    pub until_nanos: i128,
    pub timestamps: bool,
    /// Only the last N lines of the log (before the stream and time filters, as docker).
    pub tail: Option<usize>,
    pub follow: bool,
    /// Raw output (the container has a tty) instead of multiplexed frames.
    pub raw: bool,
    /// How often follow looks for new data.
    pub poll_interval: Duration,
}

/// Docker's multiplexing header and payload, appended to `out`. Empty payloads are not framed
/// (the docker CLI treats a zero-length frame as nothing anyway).
pub fn frame(out: &mut BytesMut, stream: Stream, payload: &[u8]) {
    for piece in payload.chunks(u32::MAX as usize) {
        out.put_u8(stream as u8);
        out.put_slice(&[0, 0, 0]);
        out.put_u32(piece.len() as u32);
        out.put_slice(piece);
    }
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub stream: Stream,
    pub log: String,
    /// Unix nanoseconds.
    pub time_nanos: i128,
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(default)]
    log: String,
    #[serde(default)]
    stream: String,
    #[serde(default)]
    time: String,
}

/// One line of the log, `None` when it is not a json-file entry.
pub fn parse_line(line: &[u8]) -> Option<Entry> {
    let raw: RawEntry = serde_json::from_slice(line).ok()?;
    let stream = match raw.stream.as_str() {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return None,
    };
    Some(Entry {
        stream,
        log: raw.log,
        time_nanos: parse_rfc3339(&raw.time)?,
    })
}

/// RFC 3339 (`2026-12-07T12:00:00.123456789Z`, any fraction, `Z` or `±hh:mm`) to unix
/// nanoseconds.
pub fn parse_rfc3339(text: &str) -> Option<i128> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos: i128 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        for (i, c) in frac.bytes().take(digits).enumerate() {
            if i < 9 {
                nanos = nanos * 10 + i128::from(c - b'0');
            }
        }
        for _ in digits..9 {
            nanos *= 10;
        }
        rest = &frac[digits..];
    }
    let offset_secs: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let (h, m) = rest.get(1..)?.split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    Some(i128::from(secs) * 1_000_000_000 + nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Docker's `RFC3339NanoFixed` in UTC: always nine fraction digits.
pub fn format_timestamp(nanos: i128) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let sub = nanos.rem_euclid(1_000_000_000) as u32;
    let time = u64::try_from(secs)
        .ok()
        .map(|s| std::time::UNIX_EPOCH + Duration::new(s, sub))
        .unwrap_or(std::time::UNIX_EPOCH);
    gorae_runtime::state::rfc3339(time)
}

/// Unix seconds with a fraction (the API's `since`/`until`) as nanoseconds; 0 stays 0.
pub fn seconds_to_nanos(secs: f64) -> i128 {
    if !secs.is_finite() || secs <= 0.0 {
        return 0;
    }
    let whole = secs.trunc();
    i128::from(whole as i64) * 1_000_000_000 + ((secs - whole) * 1e9).round() as i128
}

/// The log and its rotated files, oldest first: `<log>.N` … `<log>.1`, `<log>`. Only the
/// files that exist.
pub fn log_files(log: &Path) -> Vec<PathBuf> {
    let mut rotated = Vec::new();
    for n in 1.. {
        let p = rotated_name(log, n);
        if !p.exists() {
            break;
        }
        rotated.push(p);
    }
    rotated.reverse();
    if log.exists() {
        rotated.push(log.to_path_buf());
    }
    rotated
}

fn rotated_name(log: &Path, n: usize) -> PathBuf {
    let mut name = log.as_os_str().to_os_string();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Where the last `n` lines of `files` (oldest first) begin: the index of the file and the
/// byte offset in it. Reads backwards in blocks, newest file first.
pub fn tail_start(files: &[PathBuf], n: usize) -> std::io::Result<(usize, u64)> {
    if n == 0 {
        return Ok((files.len(), 0));
    }
    let mut remaining = n;
    for (index, path) in files.iter().enumerate().rev() {
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        if let Some(offset) = tail_in_file(&mut file, len, &mut remaining)? {
            return Ok((index, offset));
        }
    }
    Ok((0, 0))
}

/// Counts newlines backwards from `len`; the offset just after the one that makes `remaining`
/// lines, or `None` (with `remaining` reduced) when the file has fewer.
fn tail_in_file(file: &mut File, len: u64, remaining: &mut usize) -> std::io::Result<Option<u64>> {
    const BLOCK: u64 = 64 * 1024;
    let mut end = len;
    let mut buf = vec![0u8; BLOCK as usize];
    // The file's last byte is the newline ending its last line, not a line boundary to count.
    let mut skip_last = true;
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        for i in (0..chunk.len()).rev() {
            if chunk[i] != b'\n' {
                skip_last = false;
                continue;
            }
            if std::mem::take(&mut skip_last) {
                continue;
            }
            *remaining -= 1;
            if *remaining == 0 {
                return Ok(Some(start + i as u64 + 1));
            }
        }
        end = start;
    }
    // The file's first line has no newline before it.
    if len > 0 {
        *remaining -= 1;
        if *remaining == 0 {
            return Ok(Some(0));
        }
    }
    Ok(None)
}

/// Reads the log in a blocking thread and sends framed chunks. `running` tells follow whether
/// the container may still write.
pub fn spawn_reader(
    log: PathBuf,
    opts: ReadOptions,
    running: Box<dyn Fn() -> bool + Send>,
) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(16);
    tokio::task::spawn_blocking(move || {
        let mut reader = Reader {
            opts,
            tx,
            out: BytesMut::new(),
        };
        let _ = reader.run(&log, running.as_ref());
    });
    rx
}

/// Why reading ended early: the client went away, or `until` was passed.
enum Stop {
    Closed,
    Until,
}

struct Reader {
    opts: ReadOptions,
    tx: mpsc::Sender<Bytes>,
    out: BytesMut,
}

/// Chunks are sent once they reach this size (and at every pause of the log).
const CHUNK: usize = 32 * 1024;

impl Reader {
    fn run(&mut self, log: &Path, running: &dyn Fn() -> bool) -> Result<(), Stop> {
        // Whether the container runs is asked before the files are read, so that an exit
        // during the read still leaves the drain to follow.
        let mut alive = self.opts.follow && running();
        let files = log_files(log);
        let (first, offset) = match self.opts.tail {
            Some(n) => tail_start(&files, n).unwrap_or((0, 0)),
            None => (0, 0),
        };
        let mut current: Option<(File, u64)> = None;
        for (index, path) in files.iter().enumerate().skip(first) {
            let Ok(mut file) = File::open(path) else {
                continue;
            };
            if index == first && offset > 0 && file.seek(SeekFrom::Start(offset)).is_err() {
                continue;
            }
            let pos = self.read_to_end(&mut file)?;
            if path == log {
                current = Some((file, pos));
            }
        }
        self.flush()?;
        if !self.opts.follow {
            return Ok(());
        }
        loop {
            if current.is_none() {
                current = File::open(log).ok().map(|f| (f, 0));
            }
            if let Some((file, pos)) = &mut current {
                *pos = self.read_to_end(file)?.max(*pos);
                if rotated_away(log, file, *pos) {
                    // Drain what the monitor wrote before renaming, then the files that
                    // came after ours (more than one rotation may have passed), then the
                    // new log.
                    self.read_to_end(file)?;
                    for path in newer_rotated(log, file) {
                        if let Ok(mut f) = File::open(&path) {
                            self.read_to_end(&mut f)?;
                        }
                    }
                    current = File::open(log).ok().map(|f| (f, 0));
                    self.flush()?;
                    continue;
                }
            }
            self.flush()?;
            if !alive {
                return Ok(());
            }
            std::thread::sleep(self.opts.poll_interval);
            if self.tx.is_closed() {
                return Err(Stop::Closed);
            }
            alive = running();
        }
    }

    /// Reads and emits every whole line from the current position; leaves a partial last
    /// line (the monitor is mid-write) to the next read. Returns the new position.
    fn read_to_end(&mut self, file: &mut File) -> Result<u64, Stop> {
        let start = file.stream_position().unwrap_or(0);
        let mut pos = start;
        let mut reader = BufReader::with_capacity(64 * 1024, &mut *file);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) if line.last() != Some(&b'\n') => break,
                Ok(n) => {
                    pos += n as u64;
                    self.emit(&line)?;
                }
            }
        }
        drop(reader);
        let _ = file.seek(SeekFrom::Start(pos));
        Ok(pos)
    }

    fn emit(&mut self, line: &[u8]) -> Result<(), Stop> {
        let Some(entry) = parse_line(line) else {
            return Ok(());
        };
        let o = &self.opts;
        if o.until_nanos > 0 && entry.time_nanos > o.until_nanos {
            self.flush()?;
            return Err(Stop::Until);
        }
        let wanted = match entry.stream {
            Stream::Stdout => o.stdout,
            Stream::Stderr => o.stderr,
        };
        if !wanted || (o.since_nanos > 0 && entry.time_nanos < o.since_nanos) {
            return Ok(());
        }
        let mut payload = Vec::with_capacity(entry.log.len() + 32);
        if o.timestamps {
            payload.extend_from_slice(format_timestamp(entry.time_nanos).as_bytes());
            payload.push(b' ');
        }
        payload.extend_from_slice(entry.log.as_bytes());
        if o.raw {
            self.out.put_slice(&payload);
        } else {
            frame(&mut self.out, entry.stream, &payload);
        }
        if self.out.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Stop> {
        if self.out.is_empty() {
            return Ok(());
        }
        let chunk = self.out.split().freeze();
        self.tx.blocking_send(chunk).map_err(|_| Stop::Closed)
    }
}

/// Whether the monitor has rotated the file we hold away: the path now names another file,
/// or (max-file 1) the same file was truncated below where we are.
fn rotated_away(log: &Path, file: &File, pos: u64) -> bool {
    let Ok(ours) = file.metadata() else {
        return false;
    };
    match std::fs::metadata(log) {
        Ok(now) => now.ino() != ours.ino() || now.dev() != ours.dev() || now.len() < pos,
        Err(_) => false,
    }
}

/// The rotated files newer than `ours` (which the monitor has renamed away), oldest first:
/// `<log>.(k-1)` … `<log>.1` when ours is now `<log>.k`; all of them when ours is gone; none
/// when ours is the log itself, truncated (max-file 1).
fn newer_rotated(log: &Path, ours: &File) -> Vec<PathBuf> {
    let Ok(ours) = ours.metadata() else {
        return Vec::new();
    };
    let same = |m: &std::fs::Metadata| m.ino() == ours.ino() && m.dev() == ours.dev();
    if std::fs::metadata(log).is_ok_and(|m| same(&m)) {
        return Vec::new();
    }
    let mut newer = Vec::new();
    for n in 1.. {
        let path = rotated_name(log, n);
        match std::fs::metadata(&path) {
            Ok(m) if same(&m) => break,
            Ok(_) => newer.push(path),
            Err(_) => break,
        }
    }
    newer.reverse();
    newer
}

/// Whether the monitor in `monitor_dir` is alive: its monitor.pid names a process with the
/// recorded start time (so a recycled pid does not count).
pub fn monitor_alive(monitor_dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(monitor_dir.join("monitor.pid")) else {
        return false;
    };
    let mut it = text.split_whitespace();
    let (Some(pid), Some(start)) = (it.next(), it.next()) else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<i32>(), start.parse::<u64>()) else {
        return false;
    };
    gorae_runtime::state::process_start_time(pid) == Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_parses_what_the_monitor_and_docker_write() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00.000000005Z"),
            Some(951_782_400_000_000_005)
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T01:00:00.5+01:00"),
            Some(951_782_400_500_000_000)
        );
        for bad in [
            "",
            "2000-02-29",
            "2000-13-01T00:00:00Z",
            "2000-02-29T00:00:00",
            "x",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps_round_trip() {
        let t = "2026-12-07T12:00:00.123456789Z";
        assert_eq!(format_timestamp(parse_rfc3339(t).unwrap()), t);
    }

    #[test]
    fn frames_carry_stream_and_big_endian_length() {
        let mut out = BytesMut::new();
        frame(&mut out, Stream::Stderr, b"hey");
        assert_eq!(&out[..], &[2, 0, 0, 0, 0, 0, 0, 3, b'h', b'e', b'y']);
    }

    #[test]
    fn seconds_become_nanos() {
        assert_eq!(seconds_to_nanos(0.0), 0);
        assert_eq!(seconds_to_nanos(1.5), 1_500_000_000);
        assert_eq!(seconds_to_nanos(f64::NAN), 0);
    }
}
