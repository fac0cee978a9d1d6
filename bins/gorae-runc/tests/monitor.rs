//! `gorae-runc monitor`: real busybox containers under a monitor, driven through its control
//! and attach sockets as the engine drives them (design/engine-brief.md, "monitor protocol").
//! Needs root.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{can_run, make_rootfs, stderr, Env, Layout};

/// Bound on every wait of these tests: a broken monitor fails a test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(30);

/// One container under a monitor: its env, monitor directory and json log.
struct Mon {
    env: Env,
    dir: PathBuf,
    log: PathBuf,
}

impl Mon {
    /// A busybox bundle with the library's default config (terminal off) running `args`.
    /// (Written without `gorae-runc spec`, which a debug build's clap refuses: the global
    /// `--rootless` and spec's own `--rootless` share a name.)
    fn new(name: &str, args: &[&str]) -> Mon {
        let dir = tempfile::Builder::new()
            .prefix("gorae-mon-")
            .tempdir()
            .expect("tempdir");
        let env = Env {
            id: format!("mon-{name}-{}", std::process::id()),
            dir,
            layout: Layout::Host,
        };
        make_rootfs(&env.rootfs());
        let spec = gorae_runtime::specgen::default_spec(false);
        let mut config = gorae_runtime::specgen::to_json(&spec).expect("spec to json");
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        std::fs::write(
            env.bundle().join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        let dir = env
            .dir
            .path()
            .join("m")
            .join(&env.id[..12.min(env.id.len())]);
        let log = env.dir.path().join(format!("{}-json.log", env.id));
        Mon { env, dir, log }
    }

    /// Runs `gorae-runc monitor` with `flags`; returns its output once the front exits.
    fn spawn(&self, flags: &[&str]) -> std::process::Output {
        let bundle = self.env.bundle();
        let mut args = vec![
            "monitor",
            "--bundle",
            bundle.to_str().unwrap(),
            "--dir",
            self.dir.to_str().unwrap(),
            "--log",
            self.log.to_str().unwrap(),
        ];
        args.extend_from_slice(flags);
        args.push(&self.env.id);
        self.env.runc(&args)
    }

    fn spawn_ok(&self, flags: &[&str]) {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let out = self.spawn(flags);
        assert!(out.status.success(), "monitor failed: {}", stderr(&out));
        if flags.contains(&"--start") {
            // A started container may be gone already, and its monitor with it.
            return;
        }
        assert!(self.dir.join("monitor.pid").exists());
        for name in ["attach.sock", "control.sock"] {
            let meta = std::fs::metadata(self.dir.join(name)).expect(name);
            assert!(meta.file_type().is_socket(), "{name}");
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
        }
    }

    fn monitor_pid(&self) -> i32 {
        let text = std::fs::read_to_string(self.dir.join("monitor.pid")).expect("monitor.pid");
        let fields: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(
            fields.len(),
            2,
            "monitor.pid is \"<pid> <start time>\": {text:?}"
        );
        fields[1].parse::<u64>().expect("start time is a number");
        fields[0].parse().expect("pid is a number")
    }

    fn connect(&self, socket: &str) -> UnixStream {
        let stream = UnixStream::connect(self.dir.join(socket)).expect("connect");
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        stream
    }

    /// One control request and its reply.
    fn control(&self, request: Value) -> Value {
        let mut stream = self.send_control(request);
        read_reply(&mut stream)
    }

    fn send_control(&self, request: Value) -> UnixStream {
        let mut stream = self.connect("control.sock");
        stream.write_all(format!("{request}\n").as_bytes()).unwrap();
        stream
    }

    /// An attach connection that asked for `flags`.
    fn attach(&self, flags: u8) -> UnixStream {
        let mut stream = self.connect("attach.sock");
        stream.write_all(&[flags]).unwrap();
        stream
    }

    /// The exit as the engine learns it: the `wait` reply, or exit.json when the monitor
    /// had already gone (a container that exits at once can beat the request).
    fn wait_exit(&self) -> Value {
        let reply = UnixStream::connect(self.dir.join("control.sock")).and_then(|mut s| {
            s.set_read_timeout(Some(LIMIT))?;
            s.write_all(b"{\"op\":\"wait\"}\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        });
        match reply {
            Ok(text) if !text.is_empty() => serde_json::from_str(text.trim()).unwrap(),
            _ => {
                let path = self.dir.join("exit.json");
                wait_until("exit.json", || path.exists());
                serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
            }
        }
    }

    fn log_entries(&self, path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }

    /// After the container's end: exit.json is there, the sockets, monitor.pid, the monitor
    /// process (0: its pid is not known) and the runtime container are gone.
    fn assert_gone(&self, monitor_pid: i32) -> Value {
        wait_until("the monitor to exit", || {
            if monitor_pid == 0 {
                return !self.dir.join("monitor.pid").exists();
            }
            !Path::new(&format!("/proc/{monitor_pid}")).exists()
                || proc_state(monitor_pid) == Some('Z')
        });
        for name in ["attach.sock", "control.sock", "monitor.pid", "console.sock"] {
            assert!(!self.dir.join(name).exists(), "{name} left behind");
        }
        self.env.assert_clean();
        let body = std::fs::read(self.dir.join("exit.json")).expect("exit.json");
        serde_json::from_slice(&body).expect("exit.json is JSON")
    }
}

impl Drop for Mon {
    fn drop(&mut self) {
        let _ = self.env.runc(&["kill", &self.env.id, "KILL"]);
        if let Ok(text) = std::fs::read_to_string(self.dir.join("monitor.pid")) {
            if let Some(pid) = text.split_whitespace().next().and_then(|p| p.parse().ok()) {
                let deadline = Instant::now() + Duration::from_secs(10);
                while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let pid = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_reply(stream: &mut UnixStream) -> Value {
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("a reply");
    assert_eq!(text.matches('\n').count(), 1, "one reply line: {text:?}");
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// Reads docker-multiplexed frames until `done` holds for what came or the stream ends.
fn read_frames(
    stream: &mut UnixStream,
    mut done: impl FnMut(&[(u8, Vec<u8>)]) -> bool,
) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while !done(&frames) {
        let mut header = [0u8; 8];
        if stream.read_exact(&mut header).is_err() {
            break;
        }
        assert!(matches!(header[0], 1 | 2), "stream byte: {header:?}");
        assert_eq!(&header[1..4], &[0, 0, 0], "header padding");
        let len = u32::from_be_bytes(header[4..8].try_into().unwrap()) as usize;
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).expect("a whole frame");
        frames.push((header[0], payload));
    }
    frames
}

fn stream_text(frames: &[(u8, Vec<u8>)], id: u8) -> String {
    frames
        .iter()
        .filter(|(s, _)| *s == id)
        .map(|(_, p)| String::from_utf8_lossy(p).into_owned())
        .collect()
}

/// Reads raw bytes until `want` shows up (or the end).
fn read_until(stream: &mut UnixStream, got: &mut String, want: &str) {
    let mut buf = [0u8; 4096];
    while !got.contains(want) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
}

fn is_rfc3339_nano_utc(time: &str) -> bool {
    let b = time.as_bytes();
    time.len() == 30
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && time.ends_with('Z')
        && b[20..29].iter().all(u8::is_ascii_digit)
}

#[test]
fn output_is_logged_as_json_file_with_both_streams() {
    if !can_run() {
        return;
    }
    let mon = Mon::new(
        "log",
        &["sh", "-c", "echo out; echo err >&2; printf partial"],
    );
    let waiter_before_start = {
        mon.spawn_ok(&[]);
        mon.send_control(json!({"op": "wait"}))
    };
    let pid = mon.monitor_pid();
    let started = mon.control(json!({"op": "start"}));
    assert_eq!(started["ok"], true, "{started}");
    assert!(started["pid"].as_i64().unwrap() > 0);
    let mut waiter = waiter_before_start;
    let exit = read_reply(&mut waiter);
    assert_eq!(exit["ok"], true, "{exit}");
    assert_eq!(exit["exit_code"], 0, "{exit}");
    let record = mon.assert_gone(pid);
    assert_eq!(record, exit, "exit.json is the wait reply");
    let entries = mon.log_entries(&mon.log);
    let mut by_stream: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            assert!(is_rfc3339_nano_utc(e["time"].as_str().unwrap()), "{e}");
            assert_eq!(e.as_object().unwrap().len(), 3, "log, stream, time: {e}");
            (
                e["stream"].as_str().unwrap().to_string(),
                e["log"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    by_stream.sort();
    assert_eq!(
        by_stream,
        [
            ("stderr".to_string(), "err\n".to_string()),
            ("stdout".to_string(), "out\n".to_string()),
            ("stdout".to_string(), "partial".to_string()),
        ]
    );
}

#[test]
fn the_log_rotates_at_max_size_keeping_max_file_files() {
    if !can_run() {
        return;
    }
    let mon = Mon::new(
        "rotate",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo line-$i; done",
        ],
    );
    mon.spawn_ok(&["--log-max-size", "2000", "--log-max-file", "3", "--start"]);
    let exit = mon.wait_exit();
    assert_eq!(exit["exit_code"], 0, "{exit}");
    mon.assert_gone(0);
    let rotated = |n: u32| PathBuf::from(format!("{}.{n}", mon.log.display()));
    for path in [mon.log.clone(), rotated(1), rotated(2)] {
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0 && len <= 2000, "{path:?}: {len} bytes");
    }
    assert!(!rotated(3).exists(), "max-file 3 keeps three files");
    let number = |e: &Value| -> u32 {
        e["log"].as_str().unwrap().trim()["line-".len()..]
            .parse()
            .unwrap()
    };
    let live = mon.log_entries(&mon.log);
    let older = mon.log_entries(&rotated(2));
    assert_eq!(number(live.last().unwrap()), 300);
    assert!(number(older.last().unwrap()) < number(&live[0]));
    assert!(number(&older[0]) > 1, "the oldest lines were rotated away");
}

#[test]
fn attach_gets_framed_output_and_its_stdin_reaches_cat() {
    if !can_run() {
        return;
    }
    let mon = Mon::new("attach", &["sh", "-c", "cat; echo bye >&2; exit 5"]);
    mon.spawn_ok(&["--stdin"]);
    let pid = mon.monitor_pid();
    let state = mon.control(json!({"op": "state"}));
    assert_eq!(state["started"], false, "{state}");
    let mut attach = mon.attach(1 | 2 | 4);
    assert_eq!(mon.control(json!({"op": "start"}))["ok"], true);
    attach.write_all(b"hello\n").unwrap();
    let frames = read_frames(&mut attach, |f| stream_text(f, 1).contains("hello\n"));
    assert_eq!(stream_text(&frames, 1), "hello\n");
    let reply = mon.control(json!({"op": "close_stdin"}));
    assert_eq!(reply, json!({"ok": true}));
    let rest = read_frames(&mut attach, |_| false);
    assert_eq!(stream_text(&rest, 2), "bye\n");
    let exit = mon.assert_gone(pid);
    assert_eq!(exit["exit_code"], 5, "{exit}");
    assert!(String::from_utf8_lossy(&std::fs::read(&mon.log).unwrap()).contains("hello\\n"));
}

#[test]
fn stdin_once_closes_stdin_when_the_client_closes_its_end() {
    if !can_run() {
        return;
    }
    let mon = Mon::new("once", &["sh", "-c", "cat; echo done"]);
    mon.spawn_ok(&["--stdin", "--stdin-once", "--start"]);
    let pid = mon.monitor_pid();
    let mut attach = mon.attach(1 | 2);
    attach.write_all(b"x\n").unwrap();
    attach.shutdown(std::net::Shutdown::Write).unwrap();
    let frames = read_frames(&mut attach, |_| false);
    assert_eq!(stream_text(&frames, 1), "x\ndone\n");
    assert_eq!(mon.assert_gone(pid)["exit_code"], 0);
}

#[test]
fn a_tty_container_streams_raw_bytes_and_resizes() {
    if !can_run() {
        return;
    }
    let mon = Mon::new(
        "tty",
        &[
            "sh",
            "-c",
            "stty size; read line; stty size; echo got-$line",
        ],
    );
    mon.env.edit(|c| c["process"]["terminal"] = json!(true));
    mon.spawn_ok(&["--tty", "--stdin"]);
    let pid = mon.monitor_pid();
    let mut attach = mon.attach(1 | 2);
    let resized = mon.control(json!({"op": "resize", "height": 30, "width": 100}));
    assert_eq!(resized, json!({"ok": true}));
    assert_eq!(mon.control(json!({"op": "start"}))["ok"], true);
    let mut got = String::new();
    read_until(&mut attach, &mut got, "30 100");
    assert!(
        got.starts_with("30 100"),
        "raw bytes, no frame header: {got:?}"
    );
    let resized = mon.control(json!({"op": "resize", "height": 40, "width": 120}));
    assert_eq!(resized["ok"], true);
    attach.write_all(b"abc\r").unwrap();
    read_until(&mut attach, &mut got, "got-abc");
    assert!(got.contains("40 120"), "{got:?}");
    assert_eq!(mon.assert_gone(pid)["exit_code"], 0);
    let entries = mon.log_entries(&mon.log);
    assert!(entries.iter().all(|e| e["stream"] == "stdout"));
    let text: String = entries.iter().map(|e| e["log"].as_str().unwrap()).collect();
    assert!(
        text.contains("30 100") && text.contains("got-abc"),
        "{text:?}"
    );
}

#[test]
fn wait_and_exit_json_report_an_exit_code() {
    if !can_run() {
        return;
    }
    let mon = Mon::new("code", &["sh", "-c", "exit 3"]);
    mon.spawn_ok(&[]);
    let pid = mon.monitor_pid();
    let mut waiters: Vec<UnixStream> = (0..2)
        .map(|_| mon.send_control(json!({"op": "wait"})))
        .collect();
    assert_eq!(mon.control(json!({"op": "start"}))["ok"], true);
    let replies: Vec<Value> = waiters.iter_mut().map(read_reply).collect();
    assert_eq!(replies[0], replies[1], "every waiter gets the same reply");
    assert_eq!(replies[0]["exit_code"], 3);
    assert_eq!(replies[0]["oom_killed"], false);
    assert!(is_rfc3339_nano_utc(
        replies[0]["finished_at"].as_str().unwrap()
    ));
    assert_eq!(mon.assert_gone(pid), replies[0]);
}

#[test]
fn a_killed_container_exits_137() {
    if !can_run() {
        return;
    }
    let mon = Mon::new("kill", &["sleep", "1000"]);
    mon.spawn_ok(&["--start"]);
    let pid = mon.monitor_pid();
    let mut waiter = mon.send_control(json!({"op": "wait"}));
    let state = mon.control(json!({"op": "state"}));
    assert_eq!(state["started"], true, "{state}");
    let killed = mon.env.runc(&["kill", &mon.env.id, "KILL"]);
    assert!(killed.status.success(), "kill: {}", stderr(&killed));
    let reply = read_reply(&mut waiter);
    assert_eq!(reply["exit_code"], 137, "{reply}");
    assert_eq!(mon.assert_gone(pid)["exit_code"], 137);
}

#[test]
fn the_monitor_outlives_the_process_that_ran_it() {
    if !can_run() {
        return;
    }
    let mon = Mon::new("orphan", &["sleep", "1000"]);
    let bin = env!("CARGO_BIN_EXE_gorae-runc");
    let root = mon.env.state_root();
    let bundle = mon.env.bundle();
    // The spawner runs the command and then lingers, as a daemon would; its whole process
    // group is killed.
    let script = "\"$0\" --root \"$1\" monitor --bundle \"$2\" --dir \"$3\" --start \"$4\" && exec sleep 1000";
    let mut spawner = std::process::Command::new("sh");
    spawner
        .args(["-c", script, bin])
        .arg(&root)
        .arg(&bundle)
        .arg(&mon.dir)
        .arg(&mon.env.id);
    std::os::unix::process::CommandExt::process_group(&mut spawner, 0);
    let mut child = spawner
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("monitor.pid", || mon.dir.join("monitor.pid").exists());
    let pid = mon.monitor_pid();
    let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
    nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    let state = mon.control(json!({"op": "state"}));
    assert_eq!(state["ok"], true, "{state}");
    assert_eq!(state["started"], true, "{state}");
    let mut waiter = mon.send_control(json!({"op": "wait"}));
    assert!(mon
        .env
        .runc(&["kill", &mon.env.id, "KILL"])
        .status
        .success());
    assert_eq!(read_reply(&mut waiter)["exit_code"], 137);
    mon.assert_gone(pid);
}

/// No process whose command line names `id` is left.
fn assert_no_process_naming(id: &str) {
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(!text.contains(id), "process {pid} left: {text}");
    }
}

#[test]
fn a_bad_bundle_fails_with_one_line_and_leaves_nothing() {
    if !can_run() {
        return;
    }
    let mon = Mon::new("bad", &["sh"]);
    std::fs::write(mon.env.bundle().join("config.json"), "{ not json").unwrap();
    let out = mon.spawn(&["--start"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let message = stderr(&out);
    assert_eq!(message.lines().count(), 1, "{message:?}");
    assert!(message.starts_with("gorae-runc: "), "{message:?}");
    assert!(!mon.dir.exists(), "the monitor dir it made is removed");
    assert!(!mon.log.exists(), "the log it made is removed");
    mon.env.assert_clean();
    assert_no_process_naming(&mon.dir.display().to_string());
}

#[test]
fn a_program_that_cannot_start_fails_with_nothing_left() {
    if !can_run() {
        return;
    }
    let mon = Mon::new("nostart", &["/no/such/program"]);
    std::fs::create_dir_all(&mon.dir).unwrap();
    let out = mon.spawn(&["--start"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    let left: Vec<_> = std::fs::read_dir(&mon.dir).unwrap().flatten().collect();
    assert!(left.is_empty(), "left in the monitor dir: {left:?}");
    mon.env.assert_clean();
    assert_no_process_naming(&mon.dir.display().to_string());
}

/// VmRSS/RssAnon/RssFile of a process, in kB.
fn rss(pid: i32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("RssAnon:"), field("RssFile:"))
}

#[test]
fn an_idle_monitor_stays_under_one_mib() {
    if !can_run() {
        return;
    }
    let mon = Mon::new("rss", &["sh", "-c", "echo ready; exec sleep 1000"]);
    mon.spawn_ok(&["--start"]);
    let pid = mon.monitor_pid();
    let attach = mon.attach(2);
    let _ = mon.control(json!({"op": "state"}));
    // The monitor gives memory back after a second without events; sample until it has.
    let mut samples = Vec::new();
    let deadline = Instant::now() + LIMIT;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let sample = rss(pid);
        samples.push(sample);
        if sample.0 < 1024 || Instant::now() > deadline {
            break;
        }
    }
    let (total, anon, file) = *samples.last().unwrap();
    println!(
        "idle monitor RSS: VmRSS {total} kB (RssAnon {anon} kB, RssFile {file} kB); samples {samples:?}"
    );
    assert!(total < 1024, "idle monitor RSS {total} kB: {samples:?}");
    let _ = attach.shutdown(std::net::Shutdown::Both);
    let _ = mon.env.runc(&["kill", &mon.env.id, "KILL"]);
    mon.assert_gone(pid);
}

#[test]
fn a_chatty_monitor_stays_under_one_mib() {
    if !can_run() {
        return;
    }
    // A line every 0.1 s: the log path runs between samples, and the monitor must give its
    // pages back before each wait, not only after a quiet second.
    let script = "while true; do echo a line of output; sleep 0.1; done";
    let mon = Mon::new("chatty", &["sh", "-c", script]);
    mon.spawn_ok(&["--start"]);
    let pid = mon.monitor_pid();
    std::thread::sleep(Duration::from_secs(1));
    let mut samples: Vec<(u64, u64, u64)> = (0..15)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(130));
            rss(pid)
        })
        .collect();
    samples.sort();
    let (total, anon, file) = samples[samples.len() / 2];
    println!(
        "chatty monitor RSS, median: VmRSS {total} kB (RssAnon {anon} kB, RssFile {file} kB); samples {samples:?}"
    );
    assert!(total < 1024, "chatty monitor RSS {total} kB: {samples:?}");
    let log = std::fs::read_to_string(&mon.log).unwrap_or_default();
    assert!(log.lines().count() >= 5, "the log grew: {log}");
    let _ = mon.env.runc(&["kill", &mon.env.id, "KILL"]);
    mon.assert_gone(pid);
}

#[test]
fn an_oom_kill_is_reported() {
    if !can_run() {
        return;
    }
    // busybox tail keeps the last line of /dev/zero, which never ends: it grows to the limit.
    let mon = Mon::new("oom", &["tail", "/dev/zero"]);
    mon.env.edit(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 16 << 20, "swap": 16 << 20});
    });
    mon.spawn_ok(&["--start"]);
    let exit = mon.wait_exit();
    assert_eq!(exit["exit_code"], 137, "{exit}");
    assert_eq!(exit["oom_killed"], true, "{exit}");
    assert_eq!(mon.assert_gone(0), exit);
}

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn waiters_that_hang_up_are_forgotten() {
    if !can_run() {
        return;
    }
    let mon = Mon::new("waiters", &["sleep", "1000"]);
    mon.spawn_ok(&["--start"]);
    let pid = mon.monitor_pid();
    let _ = mon.control(json!({"op": "state"}));
    let baseline = fd_count(pid);
    for _ in 0..20 {
        drop(mon.send_control(json!({"op": "wait"})));
    }
    let mut kept = mon.send_control(json!({"op": "wait"}));
    let _ = mon.control(json!({"op": "state"}));
    wait_until("the monitor to close the hung-up waiters", || {
        fd_count(pid) <= baseline + 1
    });
    let _ = mon.env.runc(&["kill", &mon.env.id, "KILL"]);
    assert_eq!(read_reply(&mut kept)["exit_code"], 137);
    mon.assert_gone(pid);
}
