//! The json-file log reader on synthetic logs (no root, no container): stream selection,
//! since/until, timestamps, tail across rotated files, framing, and follow across rotation.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gorae_engine::logs::{self, ReadOptions};

const BASE: i128 = 1_796_644_800_000_000_000; // 2026-12-07T12:00:00Z

fn entry(stream: &str, log: &str, nanos: i128) -> String {
    let time = logs::format_timestamp(nanos);
    format!(
        "{}\n",
        serde_json::json!({"log": log, "stream": stream, "time": time})
    )
}

/// Writes `n` entries, alternating stdout/stderr, one second apart from `first`, as "line i\n".
fn write_log(path: &Path, first: usize, n: usize) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in first..first + n {
        let stream = if i % 2 == 0 { "stdout" } else { "stderr" };
        let text = entry(
            stream,
            &format!("line {i}\n"),
            BASE + i as i128 * 1_000_000_000,
        );
        f.write_all(text.as_bytes()).unwrap();
    }
}

fn opts() -> ReadOptions {
    ReadOptions {
        stdout: true,
        stderr: true,
        poll_interval: Duration::from_millis(10),
        ..Default::default()
    }
}

/// Decodes multiplexed frames into (stream, payload) pairs; panics on a torn frame.
fn deframe(mut data: &[u8]) -> Vec<(u8, String)> {
    let mut out = Vec::new();
    while !data.is_empty() {
        assert!(data.len() >= 8, "torn header");
        let len = u32::from_be_bytes([data[4], data[5], data[6], data[7]]) as usize;
        assert_eq!(&data[1..4], &[0, 0, 0]);
        out.push((
            data[0],
            String::from_utf8(data[8..8 + len].to_vec()).unwrap(),
        ));
        data = &data[8 + len..];
    }
    out
}

async fn read_all(log: PathBuf, o: ReadOptions, running: Box<dyn Fn() -> bool + Send>) -> Vec<u8> {
    let mut rx = logs::spawn_reader(log, o, running);
    let mut all = Vec::new();
    while let Some(chunk) = rx.recv().await {
        all.extend_from_slice(&chunk);
    }
    all
}

async fn lines(log: &Path, o: ReadOptions) -> Vec<(u8, String)> {
    deframe(&read_all(log.to_path_buf(), o, Box::new(|| false)).await)
}

#[tokio::test]
async fn reads_rotated_files_oldest_first_and_frames_by_stream() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("c-json.log");
    write_log(&log.with_extension("log.2"), 0, 3);
    write_log(&log.with_extension("log.1"), 3, 3);
    write_log(&log, 6, 3);
    let got = lines(&log, opts()).await;
    let texts: Vec<String> = got.iter().map(|(_, t)| t.clone()).collect();
    let want: Vec<String> = (0..9).map(|i| format!("line {i}\n")).collect();
    assert_eq!(texts, want);
    assert_eq!(got[0].0, 1);
    assert_eq!(got[1].0, 2);
}

#[tokio::test]
async fn selects_streams() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("c-json.log");
    write_log(&log, 0, 6);
    let o = ReadOptions {
        stdout: false,
        ..opts()
    };
    let got = lines(&log, o).await;
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|(s, _)| *s == 2));
}

#[tokio::test]
async fn tail_counts_lines_back_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("c-json.log");
    write_log(&log.with_extension("log.1"), 0, 5);
    write_log(&log, 5, 2);
    for (n, first) in [(0usize, 7usize), (1, 6), (2, 5), (4, 3), (7, 0), (100, 0)] {
        let o = ReadOptions {
            tail: Some(n),
            ..opts()
        };
        let got = lines(&log, o).await;
        assert_eq!(got.len(), 7 - first, "tail {n}");
        if let Some((_, t)) = got.first() {
            assert_eq!(t, &format!("line {first}\n"), "tail {n}");
        }
    }
}

#[tokio::test]
async fn tail_of_a_large_log_reads_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("c-json.log");
    write_log(&log, 0, 20_000);
    let o = ReadOptions {
        tail: Some(3),
        ..opts()
    };
    let got = lines(&log, o).await;
    let texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["line 19997\n", "line 19998\n", "line 19999\n"]);
}

#[tokio::test]
async fn since_and_until_bound_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("c-json.log");
    write_log(&log, 0, 10);
    let o = ReadOptions {
        since_nanos: BASE + 3_000_000_000,
        until_nanos: BASE + 6_500_000_000,
        ..opts()
    };
    let texts: Vec<String> = lines(&log, o).await.into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts, ["line 3\n", "line 4\n", "line 5\n", "line 6\n"]);
}

#[tokio::test]
async fn timestamps_prefix_rfc3339nano_and_tty_is_raw() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("c-json.log");
    write_log(&log, 0, 2);
    let o = ReadOptions {
        timestamps: true,
        raw: true,
        ..opts()
    };
    let raw = read_all(log, o, Box::new(|| false)).await;
    assert_eq!(
        String::from_utf8(raw).unwrap(),
        "2026-12-07T12:00:00.000000000Z line 0\n2026-12-07T12:00:01.000000000Z line 1\n"
    );
}

#[tokio::test]
async fn malformed_and_partial_lines_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("c-json.log");
    write_log(&log, 0, 1);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(
            b"not json\n{\"log\":\"x\",\"stream\":\"stdout\",\"time\":\"bad\"}\n{\"log\":\"half",
        )
        .unwrap();
    let got = lines(&log, opts()).await;
    assert_eq!(got, [(1, "line 0\n".to_string())]);
}

#[tokio::test]
async fn follow_reads_appends_survives_rotation_and_ends_after_the_exit() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("c-json.log");
    write_log(&log, 0, 2);
    let running = Arc::new(AtomicBool::new(true));
    let flag = running.clone();
    let o = ReadOptions {
        follow: true,
        ..opts()
    };
    let mut rx = logs::spawn_reader(
        log.clone(),
        o,
        Box::new(move || flag.load(Ordering::SeqCst)),
    );
    let mut got = Vec::new();
    while got.len() < 2 {
        let chunk = rx.recv().await.expect("stream ended early");
        got.extend(deframe(&chunk));
    }
    assert_eq!(got.len(), 2);
    // The monitor appends, then rotates (appending to the old file just before the rename).
    write_log(&log, 2, 1);
    write_log(&log, 3, 1);
    std::fs::rename(&log, log.with_extension("log.1")).unwrap();
    write_log(&log, 4, 2);
    running.store(false, Ordering::SeqCst);
    let mut rest = Vec::new();
    while let Some(chunk) = rx.recv().await {
        rest.extend(deframe(&chunk));
    }
    let texts: Vec<String> = rest.into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts, ["line 2\n", "line 3\n", "line 4\n", "line 5\n"]);
}

#[tokio::test]
async fn follow_catches_up_on_several_rotations_between_two_looks() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("c-json.log");
    write_log(&log, 0, 1);
    let running = Arc::new(AtomicBool::new(true));
    let flag = running.clone();
    let o = ReadOptions {
        follow: true,
        // Long enough that all the rotations below happen between two looks.
        poll_interval: Duration::from_millis(300),
        ..opts()
    };
    let mut rx = logs::spawn_reader(
        log.clone(),
        o,
        Box::new(move || flag.load(Ordering::SeqCst)),
    );
    assert_eq!(deframe(&rx.recv().await.unwrap()).len(), 1);
    // Three rotations with max-file 4: the file the reader holds ends as .3.
    for round in 0..3 {
        for n in (1..=round + 1).rev() {
            let from = if n == 1 {
                log.clone()
            } else {
                log.with_extension(format!("log.{}", n - 1))
            };
            if n == 1 {
                write_log(&log, 1 + round * 2, 2);
            }
            std::fs::rename(&from, log.with_extension(format!("log.{n}"))).unwrap();
        }
    }
    write_log(&log, 7, 1);
    running.store(false, Ordering::SeqCst);
    let mut rest = Vec::new();
    while let Some(chunk) = rx.recv().await {
        rest.extend(deframe(&chunk));
    }
    let texts: Vec<String> = rest.into_iter().map(|(_, t)| t).collect();
    let want: Vec<String> = (1..8).map(|i| format!("line {i}\n")).collect();
    assert_eq!(texts, want);
}

#[tokio::test]
async fn follow_stops_when_the_client_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("c-json.log");
    write_log(&log, 0, 1);
    let o = ReadOptions {
        follow: true,
        ..opts()
    };
    let done = Arc::new(AtomicBool::new(false));
    let seen = done.clone();
    let mut rx = logs::spawn_reader(
        log,
        o,
        Box::new(move || {
            seen.store(true, Ordering::SeqCst);
            true
        }),
    );
    assert!(rx.recv().await.is_some());
    drop(rx);
    // The reader thread notices the closed channel at its next poll; nothing to assert but
    // that dropping does not hang the runtime's shutdown.
    assert!(done.load(Ordering::SeqCst));
}

// ---- through the engine, on real containers (root; gorae-runc and its monitor)

#[path = "core_support/mod.rs"]
mod core_support;

async fn collect(mut rx: tokio::sync::mpsc::Receiver<bytes::Bytes>) -> Vec<u8> {
    let mut all = Vec::new();
    while let Some(chunk) = rx.recv().await {
        all.extend_from_slice(&chunk);
    }
    all
}

fn both() -> gorae_engine::engine::LogsOptions {
    gorae_engine::engine::LogsOptions {
        stdout: true,
        stderr: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_logs_of_an_exited_container_with_tail_and_streams() {
    use core_support::*;
    use gorae_engine::engine::{StreamKind, WaitCondition};
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let script = "for i in 1 2 3; do echo out$i; echo err$i >&2; done";
    let id = create(&engine, Some("logs"), request(&["sh", "-c", script])).await;
    let wait = engine.wait(&id, WaitCondition::NextExit).await.unwrap();
    engine.start(&id).await.unwrap();
    assert_eq!(wait.await.status_code, 0);
    let (kind, rx) = engine.logs("logs", both()).await.unwrap();
    assert_eq!(kind, StreamKind::Multiplexed);
    let frames = deframe(&collect(rx).await);
    let out: String = frames
        .iter()
        .filter(|(s, _)| *s == 1)
        .map(|(_, t)| t.as_str())
        .collect();
    let err: String = frames
        .iter()
        .filter(|(s, _)| *s == 2)
        .map(|(_, t)| t.as_str())
        .collect();
    assert_eq!(out, "out1\nout2\nout3\n");
    assert_eq!(err, "err1\nerr2\nerr3\n");
    // stdout and stderr are separate pipes: their lines interleave in any order in the log,
    // but the tail is the last two lines whatever their stream.
    let opts = gorae_engine::engine::LogsOptions {
        tail: Some(2),
        timestamps: true,
        ..both()
    };
    let frames = deframe(&collect(engine.logs(&id, opts).await.unwrap().1).await);
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert!(frames.iter().all(|(_, t)| t.contains("Z ")), "{frames:?}");
    let opts = gorae_engine::engine::LogsOptions {
        stderr: false,
        tail: Some(100),
        ..both()
    };
    let frames = deframe(&collect(engine.logs(&id, opts).await.unwrap().1).await);
    assert_eq!(frames.len(), 3, "{frames:?}");
    let none = gorae_engine::engine::LogsOptions::default();
    assert!(matches!(
        engine.logs(&id, none).await,
        Err(gorae_engine::Error::InvalidParameter(_))
    ));
    assert!(matches!(
        engine.logs("nope", both()).await,
        Err(gorae_engine::Error::NotFound(_))
    ));
    root.teardown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_logs_follow_ends_when_the_container_exits() {
    use core_support::*;
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let mut req = request(&["sh", "-c", "echo first; read x; echo second"]);
    req.config.tty = true;
    req.config.open_stdin = true;
    let id = create(&engine, None, req).await;
    engine.start(&id).await.unwrap();
    let opts = gorae_engine::engine::LogsOptions {
        follow: true,
        ..both()
    };
    let (kind, mut rx) = engine.logs(&id, opts).await.unwrap();
    assert_eq!(kind, gorae_engine::engine::StreamKind::Raw);
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("first") {
        seen.extend_from_slice(&rx.recv().await.expect("more log"));
    }
    // Once the container is gone the follow ends by itself.
    engine.kill(&id, Some("KILL".into())).await.unwrap();
    while let Some(chunk) = rx.recv().await {
        seen.extend_from_slice(&chunk);
    }
    assert!(String::from_utf8_lossy(&seen).starts_with("first"));
    root.teardown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_logs_follow_across_the_monitors_rotation() {
    use core_support::*;
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let script = "i=0; while [ $i -lt 100 ]; do echo line-$i; i=$((i+1)); sleep 0.05; done";
    let mut req = request(&["sh", "-c", script]);
    req.host_config.log_config.config = Some(
        [("max-size", "1k"), ("max-file", "5")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let id = create(&engine, None, req).await;
    engine.start(&id).await.unwrap();
    let opts = gorae_engine::engine::LogsOptions {
        follow: true,
        ..both()
    };
    let (_, rx) = engine.logs(&id, opts).await.unwrap();
    let text: String = deframe(&collect(rx).await)
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    let want: String = (0..100).map(|i| format!("line-{i}\n")).collect();
    assert_eq!(text, want);
    let log = inspect(&engine, &id).await.log_path;
    assert!(
        std::path::Path::new(&format!("{log}.1")).exists(),
        "the log never rotated"
    );
    root.teardown(engine).await;
}
