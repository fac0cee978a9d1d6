//! The monitor client: runs `gorae-runc monitor` for a container (see the monitor protocol in
//! the engine brief), talks to its control socket (start, state, resize, close_stdin, wait),
//! connects to its attach socket, tells a live monitor from a recycled pid (monitor.pid holds
//! pid and start time), reads exit.json of a monitor that has gone; and runs the other
//! `gorae-runc` commands (kill, pause, resume, update, delete) as subprocesses — the daemon
//! never forks a container itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::UnixStream;

use crate::config::EngineConfig;
use crate::error::{Error, Result};

pub const CONTROL_SOCK: &str = "control.sock";
pub const ATTACH_SOCK: &str = "attach.sock";
pub const PID_FILE: &str = "monitor.pid";
pub const EXIT_FILE: &str = "exit.json";

/// How long the monitor's front process may take to report ready.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a short control request (everything but wait) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The container's end, as the monitor reports it (wait reply and exit.json).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ExitInfo {
    pub exit_code: i64,
    #[serde(default)]
    pub finished_at: String,
    #[serde(default)]
    pub oom_killed: bool,
}

/// Attach flags: which streams an attach client wants.
pub const ATTACH_STDIN: u8 = 1;
pub const ATTACH_STDOUT: u8 = 2;
pub const ATTACH_STDERR: u8 = 4;

/// What `gorae-runc monitor` is told.
#[derive(Debug, Clone, Default)]
pub struct MonitorOptions {
    pub bundle: PathBuf,
    pub dir: PathBuf,
    pub log: Option<PathBuf>,
    pub log_max_size: Option<u64>,
    pub log_max_file: Option<u32>,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    pub start: bool,
}

/// Runs the monitor's front process and waits for it to report ready.
pub async fn spawn_monitor(config: &EngineConfig, id: &str, opts: &MonitorOptions) -> Result<()> {
    let mut args: Vec<String> = vec![
        "monitor".into(),
        "--bundle".into(),
        path_arg(&opts.bundle),
        "--dir".into(),
        path_arg(&opts.dir),
    ];
    if let Some(log) = &opts.log {
        args.extend(["--log".into(), path_arg(log)]);
        if let Some(size) = opts.log_max_size {
            args.extend(["--log-max-size".into(), size.to_string()]);
        }
        if let Some(n) = opts.log_max_file {
            args.extend(["--log-max-file".into(), n.to_string()]);
        }
    }
    for (on, flag) in [
        (opts.tty, "--tty"),
        (opts.stdin, "--stdin"),
        (opts.stdin_once, "--stdin-once"),
        (opts.start, "--start"),
    ] {
        if on {
            args.push(flag.into());
        }
    }
    args.push(id.to_string());
    runc_with_timeout(config, &args, SPAWN_TIMEOUT)
        .await
        .map(drop)
}

/// `gorae-runc --root <run>/runc <args>`; its stdout, or its stderr's last line as the error.
pub async fn runc(config: &EngineConfig, args: &[String]) -> Result<String> {
    runc_with_timeout(config, args, REQUEST_TIMEOUT).await
}

async fn runc_with_timeout(
    config: &EngineConfig,
    args: &[String],
    timeout: Duration,
) -> Result<String> {
    let mut cmd = tokio::process::Command::new(&config.runtime);
    cmd.arg("--root")
        .arg(config.runtime_root())
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let what = format!(
        "{} {}",
        config.runtime.display(),
        args.first().map_or("", |s| s)
    );
    let out = tokio::time::timeout(timeout, cmd.output())
        .await
        .map_err(|_| Error::Internal(format!("{what}: no answer in {} s", timeout.as_secs())))?
        .map_err(|e| Error::Internal(format!("cannot run {what}: {e}")))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("failed without a message")
        .trim();
    Err(Error::Internal(line.to_string()))
}

fn path_arg(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// One request on control.sock, one reply line; `{"ok":false,"error":..}` becomes an error.
pub async fn control(dir: &Path, request: &Value) -> Result<Value> {
    let sock = dir.join(CONTROL_SOCK);
    let fail = |e: std::io::Error| Error::Internal(format!("monitor {}: {e}", sock.display()));
    let mut stream = UnixStream::connect(&sock).await.map_err(fail)?;
    let mut line = serde_json::to_vec(request).map_err(|e| Error::Internal(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line).await.map_err(fail)?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .await
        .map_err(fail)?;
    if reply.trim().is_empty() {
        return Err(Error::Internal(format!(
            "monitor {}: closed without a reply",
            sock.display()
        )));
    }
    let value: Value = serde_json::from_str(reply.trim())
        .map_err(|e| Error::Internal(format!("monitor {}: bad reply: {e}", sock.display())))?;
    if value["ok"] == json!(true) {
        Ok(value)
    } else {
        let msg = value["error"].as_str().unwrap_or("request refused");
        Err(Error::Internal(msg.to_string()))
    }
}

async fn short(dir: &Path, request: Value) -> Result<Value> {
    tokio::time::timeout(REQUEST_TIMEOUT, control(dir, &request))
        .await
        .map_err(|_| Error::Internal(format!("monitor {}: no answer", dir.display())))?
}

/// Starts the created container; its pid.
pub async fn start(dir: &Path) -> Result<i32> {
    let reply = short(dir, json!({"op": "start"})).await?;
    Ok(reply["pid"].as_i64().unwrap_or(0) as i32)
}

/// (pid, started).
pub async fn state(dir: &Path) -> Result<(i32, bool)> {
    let reply = short(dir, json!({"op": "state"})).await?;
    let pid = reply["pid"].as_i64().unwrap_or(0) as i32;
    Ok((pid, reply["started"].as_bool().unwrap_or(false)))
}

pub async fn resize(dir: &Path, height: u16, width: u16) -> Result<()> {
    short(
        dir,
        json!({"op": "resize", "height": height, "width": width}),
    )
    .await
    .map(drop)
}

pub async fn close_stdin(dir: &Path) -> Result<()> {
    short(dir, json!({"op": "close_stdin"})).await.map(drop)
}

/// Waits for the container's init to exit. If the monitor goes away without answering (it
/// was killed), exit.json decides, else the exit is unknown (255).
pub async fn wait(dir: &Path) -> ExitInfo {
    match control(dir, &json!({"op": "wait"})).await {
        Ok(reply) => serde_json::from_value(reply.clone()).unwrap_or_else(|_| lost(&reply)),
        Err(_) => {
            // The monitor writes exit.json before it answers; give a dying one a moment.
            for _ in 0..50 {
                if let Some(info) = read_exit(dir) {
                    return info;
                }
                if alive(dir).is_none() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            read_exit(dir).unwrap_or_else(|| lost(&Value::Null))
        }
    }
}

fn lost(_reply: &Value) -> ExitInfo {
    ExitInfo {
        exit_code: 255,
        finished_at: crate::container::time::format_ns(crate::container::time::now_ns()),
        oom_killed: false,
    }
}

/// exit.json of a monitor that has finished.
pub fn read_exit(dir: &Path) -> Option<ExitInfo> {
    let data = std::fs::read(dir.join(EXIT_FILE)).ok()?;
    serde_json::from_slice(&data).ok()
}

/// The monitor's pid if monitor.pid names a live process with the recorded start time.
pub fn alive(dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(dir.join(PID_FILE)).ok()?;
    let mut parts = text.split_whitespace();
    let pid: i32 = parts.next()?.parse().ok()?;
    let start: u64 = parts.next()?.parse().ok()?;
    (pid > 0 && process_start_time(pid) == Some(start)).then_some(pid)
}

/// Field 22 of /proc/<pid>/stat (after the parenthesised command, which may hold spaces).
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    // Fields from 3 on; the start time is field 22.
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Connects to attach.sock asking for `flags`' streams.
pub async fn attach(dir: &Path, flags: u8) -> Result<UnixStream> {
    let sock = dir.join(ATTACH_SOCK);
    let fail = |e: std::io::Error| Error::Internal(format!("monitor {}: {e}", sock.display()));
    let mut stream = UnixStream::connect(&sock).await.map_err(fail)?;
    stream.write_all(&[flags]).await.map_err(fail)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_live_monitors_from_recycled_pids() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::process::id() as i32;
        let start = process_start_time(me).unwrap();
        std::fs::write(dir.path().join(PID_FILE), format!("{me} {start}\n")).unwrap();
        assert_eq!(alive(dir.path()), Some(me));
        std::fs::write(dir.path().join(PID_FILE), format!("{me} {}\n", start + 1)).unwrap();
        assert_eq!(alive(dir.path()), None);
        std::fs::write(dir.path().join(PID_FILE), "junk").unwrap();
        assert_eq!(alive(dir.path()), None);
    }

    #[test]
    fn reads_exit_json() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_exit(dir.path()).is_none());
        let text = r#"{"exit_code":137,"finished_at":"2026-12-07T12:00:00Z","oom_killed":true}"#;
        std::fs::write(dir.path().join(EXIT_FILE), text).unwrap();
        let info = read_exit(dir.path()).unwrap();
        assert_eq!((info.exit_code, info.oom_killed), (137, true));
    }

    #[tokio::test]
    async fn control_protocol_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::UnixListener::bind(dir.path().join(CONTROL_SOCK)).unwrap();
        let server = tokio::spawn(async move {
            for reply in [
                r#"{"ok":true,"pid":42,"started":true}"#,
                r#"{"ok":false,"error":"no"}"#,
            ] {
                let (s, _) = listener.accept().await.unwrap();
                let (r, mut w) = s.into_split();
                let mut line = String::new();
                BufReader::new(r).read_line(&mut line).await.unwrap();
                assert!(line.ends_with('\n'));
                w.write_all(format!("{reply}\n").as_bytes()).await.unwrap();
            }
        });
        assert_eq!(state(dir.path()).await.unwrap(), (42, true));
        let err = start(dir.path()).await.unwrap_err().to_string();
        assert_eq!(err, "no");
        server.await.unwrap();
    }
}
