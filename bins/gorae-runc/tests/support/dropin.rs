//! Helpers for the drop-in tests (podman and dockerd driving gorae-runc): commands bounded by a
//! timeout, cleanup of cgroups, mounts and processes a daemon leaves under a test's own
//! directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a bounded command did.
#[derive(Debug)]
pub struct Ran {
    /// Exit code; -1 when killed by a signal or by the timeout.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.code == 0 && !self.timed_out
    }
}

/// Runs `cmd` with stdin from /dev/null and stdout/stderr into files in `scratch` (a daemon
/// a command starts may keep a pipe open forever), in its own process group; after `limit`
/// the whole group is killed.
pub fn run_bounded(mut cmd: Command, scratch: &Path, limit: Duration) -> Ran {
    use std::os::unix::process::CommandExt;
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out_path = scratch.join(format!(".out-{seq}"));
    let err_path = scratch.join(format!(".err-{seq}"));
    let out = std::fs::File::create(&out_path).expect("stdout file");
    let err = std::fs::File::create(&err_path).expect("stderr file");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let deadline = Instant::now() + limit;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait().expect("try_wait") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                timed_out = true;
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                break child.wait().expect("wait");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let ran = Ran {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        timed_out,
    };
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    ran
}

/// Whether `name` is an executable in PATH.
pub fn in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Polls `f` every 50 ms until it is true or `limit` has passed.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pids of the processes whose command line contains `needle` (never this process).
pub fn pids_with_cmdline(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

/// SIGKILLs each pid and waits (bounded) until it is gone.
pub fn kill_pids(pids: &[i32]) {
    for pid in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    wait_until(Duration::from_secs(5), || {
        pids.iter()
            .all(|p| !Path::new(&format!("/proc/{p}")).exists() || is_zombie(*p))
    });
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Lazily unmounts every mount point at or under `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
    let prefix = dir.to_string_lossy().into_owned();
    for _ in 0..5 {
        let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
            return;
        };
        let mut points: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(|p| p.replace("\\040", " "))
            .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
            .collect();
        if points.is_empty() {
            return;
        }
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Removes the cgroup `rel` (e.g. "/gorae-test-podman-123") and everything below it in every
/// hierarchy under /sys/fs/cgroup, killing what is still in it. Returns what could not be
/// removed.
pub fn remove_cgroup_tree(rel: &str) -> Vec<PathBuf> {
    let rel = rel.trim_start_matches('/');
    let mut left = Vec::new();
    let Ok(mounts) = std::fs::read_dir("/sys/fs/cgroup") else {
        return left;
    };
    for mount in mounts.flatten() {
        let top = mount.path().join(rel);
        if !top.is_dir() {
            continue;
        }
        let mut dirs = Vec::new();
        collect_dirs(&top, &mut dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            let removed = wait_until(Duration::from_secs(3), || {
                if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                    let pids: Vec<i32> = procs.lines().filter_map(|l| l.parse().ok()).collect();
                    for p in pids {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(p),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
                std::fs::remove_dir(&d).is_ok() || !d.exists()
            });
            if !removed {
                left.push(d);
            }
        }
    }
    left
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

/// `script -qec CMD /dev/null`: runs `cmd` (a shell command line) on a new pseudo-terminal,
/// so that `-t` is accepted; the terminal's output comes back as stdout.
pub fn under_pty(cmd: &str) -> Command {
    let mut c = Command::new("script");
    c.args(["-qec", cmd, "/dev/null"]);
    c
}

/// The gorae-runc binary the tests drive.
pub fn gorae_runc() -> &'static str {
    env!("CARGO_BIN_EXE_gorae-runc")
}
