//! gorae-runc as podman's OCI runtime (`podman --runtime gorae-runc`): run (with and without a
//! terminal), exit codes, exec, stop, pause/unpause, --memory, --pids-limit, --user.
//!
//! Each test gives podman its own storage, run root and tmp dir under a temporary directory, a
//! cgroup parent of its own (/gorae-test-podman-PID-N), the cgroupfs manager and the file
//! events backend, so nothing lands in /var/lib/containers and whatever podman or conmon
//! leave behind can be removed. Needs root and podman (scripts/install-deps.sh installs it);
//! otherwise each test prints why it is skipped.

#[path = "support/dropin.rs"]
mod dropin;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use dropin::{run_bounded, Ran};

const LIMIT: Duration = Duration::from_secs(60);

fn can_run() -> bool {
    if !support::can_run() {
        return false;
    }
    for tool in ["podman", "conmon", "script"] {
        if dropin::in_path(tool).is_none() && !Path::new("/usr/libexec/podman/conmon").exists() {
            eprintln!("skipped: podman tests need {tool} (scripts/install-deps.sh installs it)");
            return false;
        }
    }
    true
}

/// One test's podman: private storage and a private cgroup parent; Drop removes every
/// container, kills what conmon left, removes the cgroups, mounts and the directory.
struct Podman {
    dir: tempfile::TempDir,
    cgroup_parent: String,
}

impl Podman {
    fn new() -> Podman {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = tempfile::Builder::new()
            .prefix("gorae-test-podman-")
            .tempdir()
            .expect("tempdir");
        support::make_rootfs(&dir.path().join("rootfs"));
        let cgroup_parent = format!(
            "/gorae-test-podman-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Podman { dir, cgroup_parent }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// podman's global options: our runtime, our storage.
    fn global_args(&self) -> Vec<String> {
        let d = self.dir.path().display();
        vec![
            format!("--runtime={}", dropin::gorae_runc()),
            format!("--root={d}/storage"),
            format!("--runroot={d}/runroot"),
            format!("--tmpdir={d}/tmp"),
            "--cgroup-manager=cgroupfs".into(),
            "--events-backend=file".into(),
            "--storage-driver=vfs".into(),
        ]
    }

    /// `podman run` options every container here needs (see shared/PEERS.md).
    fn run_args(&self) -> Vec<String> {
        vec![
            "--ulimit=nofile=20000:20000".into(),
            "--ulimit=nproc=32768:32768".into(),
            "--network=none".into(),
            format!("--cgroup-parent={}", self.cgroup_parent),
        ]
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("podman");
        cmd.args(self.global_args()).args(args);
        cmd
    }

    fn podman(&self, args: &[&str]) -> Ran {
        run_bounded(self.command(args), self.dir.path(), LIMIT)
    }

    fn ok(&self, args: &[&str]) -> String {
        let r = self.podman(args);
        assert!(r.ok(), "podman {args:?} failed: {r:?}");
        r.stdout
    }

    /// `podman run --rm ... --rootfs ROOTFS extra... cmd...`
    fn run_rm(&self, extra: &[&str], cmd: &[&str]) -> Ran {
        let rootfs = self.rootfs().display().to_string();
        let mut args: Vec<String> = vec!["run".into(), "--rm".into()];
        args.extend(self.run_args());
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push("--rootfs".into());
        args.push(rootfs);
        args.extend(cmd.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.podman(&args)
    }

    /// Starts a detached container `name` running `cmd`.
    fn run_detached(&self, name: &str, cmd: &[&str]) {
        let rootfs = self.rootfs().display().to_string();
        let mut args: Vec<String> = vec!["run".into(), "-d".into(), format!("--name={name}")];
        args.extend(self.run_args());
        args.push("--rootfs".into());
        args.push(rootfs);
        args.extend(cmd.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ok(&args);
    }

    /// A shell command line of podman with our global options (for `script -c`).
    fn shell_line(&self, args: &[&str]) -> String {
        let mut words = vec!["podman".to_string()];
        words.extend(self.global_args());
        words.extend(args.iter().map(|s| s.to_string()));
        words
            .iter()
            .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// podman under a pseudo-terminal (for -t).
    fn on_pty(&self, args: &[&str]) -> Ran {
        run_bounded(
            dropin::under_pty(&self.shell_line(args)),
            self.dir.path(),
            LIMIT,
        )
    }

    fn status(&self, name: &str) -> String {
        self.ok(&["inspect", "--format", "{{.State.Status}}", name])
            .trim()
            .to_string()
    }

    fn exit_code(&self, name: &str) -> String {
        self.ok(&["inspect", "--format", "{{.State.ExitCode}}", name])
            .trim()
            .to_string()
    }

    /// The container's cgroup directory in the v1 hierarchy `controller`.
    fn cgroup_dir(&self, controller: &str, name: &str) -> PathBuf {
        let id = self.ok(&["inspect", "--format", "{{.Id}}", name]);
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(self.cgroup_parent.trim_start_matches('/'))
            .join(format!("libpod-{}", id.trim()))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = run_bounded(
            self.command(&["rm", "--all", "--force", "--time=0"]),
            self.dir.path(),
            Duration::from_secs(30),
        );
        // conmon and container processes started for this podman carry our dir in their
        // command lines; nothing else does.
        let needle = self.dir.path().display().to_string();
        dropin::kill_pids(&dropin::pids_with_cmdline(&needle));
        let left = dropin::remove_cgroup_tree(&self.cgroup_parent);
        dropin::unmount_under(self.dir.path());
        if !left.is_empty() && !std::thread::panicking() {
            panic!("cgroups left behind: {left:?}");
        }
    }
}

#[test]
fn podman_run_rm_echo_and_exit_code() {
    if !can_run() {
        return;
    }
    let p = Podman::new();
    let r = p.run_rm(&[], &["echo", "hello from gorae"]);
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.stdout, "hello from gorae\n", "{r:?}");
    let r = p.run_rm(&[], &["sh", "-c", "exit 7"]);
    assert_eq!(r.code, 7, "exit code passes through: {r:?}");
    // --rm removed them.
    assert_eq!(p.ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn podman_run_it_gets_a_terminal() {
    if !can_run() {
        return;
    }
    let p = Podman::new();
    let rootfs = p.rootfs().display().to_string();
    let mut args: Vec<String> = vec!["run".into(), "--rm".into(), "-it".into()];
    args.extend(p.run_args());
    args.extend(["--rootfs".into(), rootfs]);
    // The trailing sleep: podman (conmon) drops a -t container's last output when it exits at
    // once (runc too: 5 runs in 30 printed nothing here).
    args.extend([
        "sh".into(),
        "-c".into(),
        "tty; echo term-ok; sleep 0.5".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = p.on_pty(&args);
    assert!(r.ok(), "{r:?}");
    assert!(r.stdout.contains("/dev/pts/0"), "no tty: {r:?}");
    assert!(r.stdout.contains("term-ok"), "{r:?}");
}

#[test]
fn podman_exec_pause_unpause_stop() {
    if !can_run() {
        return;
    }
    let p = Podman::new();
    let trap = "trap 'echo got-term; exit 0' TERM; while :; do sleep 0.1; done";
    p.run_detached("c1", &["sh", "-c", trap]);
    assert_eq!(p.status("c1"), "running");

    let out = p.ok(&["exec", "c1", "sh", "-c", "echo in-exec; ps -o pid,args"]);
    assert!(out.contains("in-exec"), "{out}");
    assert!(
        out.contains("trap"),
        "exec sees the container's processes: {out}"
    );
    let out = p.ok(&["exec", "--user", "1000:1000", "c1", "id"]);
    assert!(out.contains("uid=1000 gid=1000"), "{out}");
    // Trailing sleep: see podman_run_it_gets_a_terminal.
    let r = p.on_pty(&[
        "exec",
        "-it",
        "c1",
        "sh",
        "-c",
        "tty; echo exec-term-ok; sleep 0.5",
    ]);
    assert!(r.ok(), "{r:?}");
    assert!(
        r.stdout.contains("/dev/pts/") && r.stdout.contains("exec-term-ok"),
        "{r:?}"
    );

    p.ok(&["pause", "c1"]);
    assert_eq!(p.status("c1"), "paused");
    // On the hybrid host the freezer is v1: the container's cgroup must really be frozen.
    let freezer = p.cgroup_dir("freezer", "c1").join("freezer.state");
    let v1 = Path::new("/sys/fs/cgroup/freezer").is_dir();
    if v1 {
        let state =
            std::fs::read_to_string(&freezer).unwrap_or_else(|e| panic!("{freezer:?}: {e}"));
        assert_eq!(state.trim(), "FROZEN");
    }
    p.ok(&["unpause", "c1"]);
    assert_eq!(p.status("c1"), "running");
    if v1 {
        let state = std::fs::read_to_string(&freezer).unwrap();
        assert_eq!(state.trim(), "THAWED");
    }
    let out = p.ok(&["exec", "c1", "echo", "alive-after-unpause"]);
    assert!(out.contains("alive-after-unpause"), "{out}");

    // SIGTERM reaches the container's init, which exits 0 long before the 20 s timeout.
    let started = Instant::now();
    p.ok(&["stop", "--time=20", "c1"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stop waited for the timeout: SIGTERM was not delivered"
    );
    assert_eq!(p.status("c1"), "exited");
    assert_eq!(p.exit_code("c1"), "0");
    let logs = p.ok(&["logs", "c1"]);
    assert!(logs.contains("got-term"), "{logs}");

    // A process that ignores SIGTERM (pid 1 without a handler) is killed after the timeout.
    p.run_detached("c2", &["sleep", "1000"]);
    p.ok(&["stop", "--time=1", "c2"]);
    assert_eq!(p.status("c2"), "exited");
    assert_eq!(p.exit_code("c2"), "137");

    p.ok(&["rm", "c1", "c2"]);
    assert_eq!(p.ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn podman_memory_and_pids_limits() {
    if !can_run() {
        return;
    }
    let p = Podman::new();
    let r = p.run_rm(
        &["--memory=64m", "--pids-limit=10"],
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
             cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
        ],
    );
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.stdout, "67108864\n10\n", "{r:?}");
    // The pids limit holds: 20 background sleeps cannot all be forked.
    let r = p.run_rm(
        &["--pids-limit=10"],
        &[
            "sh",
            "-c",
            "for i in $(seq 20); do sleep 30 & done; echo all-forked",
        ],
    );
    assert!(
        r.stderr.contains("can't fork") && !r.stdout.contains("all-forked"),
        "20 forks under --pids-limit=10 succeeded: {r:?}"
    );
}

#[test]
fn podman_run_as_non_root_user() {
    if !can_run() {
        return;
    }
    let p = Podman::new();
    let r = p.run_rm(&["--user=1000:1000"], &["id"]);
    assert!(r.ok(), "{r:?}");
    assert!(
        r.stdout.contains("uid=1000") && r.stdout.contains("gid=1000"),
        "{r:?}"
    );
}

/// Known gap: with a user namespace, gorae-runc now opens podman's bind-mount sources from the
/// host side (open_tree, attached inside with move_mount), but still fails creating the mount
/// point (/etc/hosts) in a `--rootfs` owned by host root, from inside the user namespace:
/// "creating mount point /etc/hosts: EACCES". runc passes.
#[test]
#[ignore = "gorae-runc creates mount points from inside the user namespace"]
fn podman_run_with_uidmap() {
    if !can_run() {
        return;
    }
    let p = Podman::new();
    let r = p.run_rm(
        &["--uidmap=0:100000:65536", "--gidmap=0:100000:65536"],
        &["cat", "/proc/self/uid_map"],
    );
    assert!(r.ok(), "{r:?}");
    assert!(
        r.stdout.split_whitespace().eq(["0", "100000", "65536"]),
        "{r:?}"
    );
}
