//! The init's exit: its record (the `wait` reply and `exit.json`), written atomically, and the
//! files the monitor removes when it goes.

use std::io::Write;
use std::path::Path;

use nix::sys::wait::WaitStatus;
use serde_json::{json, Value};

pub const EXIT_FILE: &str = "exit.json";
pub const PID_FILE: &str = "monitor.pid";
pub const ATTACH_SOCKET: &str = "attach.sock";
pub const CONTROL_SOCKET: &str = "control.sock";
pub const CONSOLE_SOCKET: &str = "console.sock";

/// How the container's init ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    /// The program's status, or 128 + the signal that killed it.
    pub exit_code: i32,
    pub finished_at: String,
    pub oom_killed: bool,
}

impl ExitInfo {
    pub fn reply(&self) -> Value {
        json!({
            "ok": true,
            "exit_code": self.exit_code,
            "finished_at": self.finished_at,
            "oom_killed": self.oom_killed,
        })
    }
}

/// The exit code of a reaped process; None for statuses that are not an end.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, signal, _) => Some(128 + signal as i32),
        _ => None,
    }
}

/// Writes `exit.json` as a temporary file renamed into place, so a reader sees the whole
/// record or none. Not synced: the file tells a restarted daemon how the container ended,
/// and a host crash, which a sync would guard against, ends the container with the
/// host (and /run, the default run dir, is a tmpfs on most hosts). Waiters do not wait
/// for the disk.
pub fn write_exit_file(dir: &Path, info: &ExitInfo) -> std::io::Result<()> {
    let tmp = dir.join(".exit.json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    let mut body = info.reply().to_string();
    body.push('\n');
    file.write_all(body.as_bytes())?;
    std::fs::rename(&tmp, dir.join(EXIT_FILE))
}

/// Removes the sockets and the pid file (not exit.json: the engine reads it, then removes the
/// directory).
pub fn remove_runtime_files(dir: &Path) {
    for name in [ATTACH_SOCKET, CONTROL_SOCKET, CONSOLE_SOCKET, PID_FILE] {
        let _ = std::fs::remove_file(dir.join(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    #[test]
    fn signals_are_128_plus_n() {
        let pid = Pid::from_raw(1);
        assert_eq!(exit_code(WaitStatus::Exited(pid, 3)), Some(3));
        assert_eq!(
            exit_code(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            Some(137)
        );
        assert_eq!(exit_code(WaitStatus::StillAlive), None);
    }

    #[test]
    fn the_exit_file_is_the_wait_reply() {
        let dir = tempfile::tempdir().unwrap();
        let info = ExitInfo {
            exit_code: 3,
            finished_at: "2026-12-07T12:00:00.000000000Z".into(),
            oom_killed: false,
        };
        write_exit_file(dir.path(), &info).unwrap();
        let body = std::fs::read(dir.path().join(EXIT_FILE)).unwrap();
        let doc: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc, info.reply());
        assert!(!dir.path().join(".exit.json.tmp").exists());
    }
}
