//! `gorae daemon` as a test fixture: a private data root under /var/tmp, the daemon on a unix
//! socket inside it, the real docker CLI (/usr/local/bin/docker) pointed at that socket with a
//! config dir of its own, and a busybox image (every applet of Debian's busybox-static)
//! imported before the daemon starts.
//!
//! Dropping a `Daemon` removes every container through the API, stops the daemon (SIGTERM,
//! then SIGKILL), kills whatever monitors and container processes of that root are left,
//! unmounts everything under the root, removes the root's cgroup parent (`gorae-<hash>`) in
//! every hierarchy and deletes the root: a failing test leaves nothing behind either.
//! `Daemon::shutdown_clean` does the same but asserts that the engine itself left nothing.
//!
//! Tests call `Daemon::start()`, which returns `None` (after saying why) when the machine
//! cannot run them: not root, or no docker CLI at /usr/local/bin/docker.

#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::registry_server::GoraeRegistry;

pub const DOCKER: &str = "/usr/local/bin/docker";
/// The image every fixture has, imported from a busybox rootfs tarball.
pub const BUSYBOX: &str = "busybox:latest";
/// Every command a test runs is bounded: a hang fails the test instead of blocking CI.
pub const LIMIT: Duration = Duration::from_secs(120);

pub struct Daemon {
    /// The data root (`/var/tmp/gorae-test-XXXXXX`).
    pub root: PathBuf,
    /// The API socket, `<root>/run/d.sock`.
    pub sock: PathBuf,
    /// HOME and DOCKER_CONFIG of the clients, the daemon's logs, scratch files.
    pub aux: tempfile::TempDir,
    child: Option<Child>,
    starts: u32,
    /// The ID of `busybox:latest` as `gorae import` printed it.
    pub busybox_id: String,
}

/// Why this machine cannot run the engine tests, if it cannot.
pub fn unable() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(String::from))
        })
        .unwrap_or_default();
    if uid != "0" {
        return Some("not root".into());
    }
    if !Path::new(DOCKER).exists() {
        return Some(format!("no docker CLI at {DOCKER}"));
    }
    None
}

impl Daemon {
    /// A fresh root with busybox imported and a daemon serving it; `None` (printed) when this
    /// machine cannot run engine tests.
    pub fn start() -> Option<Daemon> {
        if let Some(why) = unable() {
            eprintln!("skipping: {why}");
            return None;
        }
        let runc = gorae_runc();
        assert!(
            runc.exists(),
            "{} is missing: build it first (cargo build -p gorae-runc)",
            runc.display()
        );
        let root = tempfile::Builder::new()
            .prefix("gorae-test-")
            .tempdir_in("/var/tmp")
            .expect("temp data root")
            .keep();
        let aux = tempfile::Builder::new()
            .prefix("gorae-test-aux-")
            .tempdir_in("/var/tmp")
            .expect("temp client dir");
        std::fs::create_dir_all(aux.path().join("home/.docker")).expect("client config dir");
        let sock = root.join("run/d.sock");
        let mut d = Daemon {
            root,
            sock,
            aux,
            child: None,
            starts: 0,
            busybox_id: String::new(),
        };
        d.busybox_id = d.import_busybox(BUSYBOX);
        d.spawn();
        Some(d)
    }

    /// `gorae --root R import` of a full busybox rootfs as `name` (the daemon must not be
    /// running: it owns the root then). Returns the image ID.
    pub fn import_busybox(&self, name: &str) -> String {
        let tar = busybox_tarball(self.aux.path());
        let out = run_for(
            Command::new(gorae_bin())
                .arg("--root")
                .arg(&self.root)
                .args(["import", "-c", "CMD [\"sh\"]"])
                .arg(&tar)
                .arg(name),
        );
        let _ = std::fs::remove_file(&tar);
        assert!(out.status.success(), "gorae import: {}", show(&out));
        text(&out.stdout).trim().to_string()
    }

    /// `unix:///var/tmp/gorae-test-XXXXXX/run/d.sock`
    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log_path = self.log_path(self.starts);
        let log = std::fs::File::create(&log_path).expect("daemon log");
        let child = Command::new(gorae_bin())
            .arg("daemon")
            .arg("--root")
            .arg(&self.root)
            .arg("-H")
            .arg(self.host())
            .env_remove("GORAE_ROOT")
            .env_remove("GORAE_HOST")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn gorae daemon");
        self.child = Some(child);
        self.wait_ready();
    }

    fn log_path(&self, start: u32) -> PathBuf {
        self.aux.path().join(format!("daemon-{start}.log"))
    }

    /// Waits for "gorae daemon: API listening on unix://…" in this start's log.
    fn wait_ready(&mut self) {
        let want = format!("API listening on {}", self.host());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = std::fs::read_to_string(self.log_path(self.starts)).unwrap_or_default();
            if log.contains(&want) {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                panic!("gorae daemon exited with {status} before it was ready:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "gorae daemon did not print {want:?} within 30 s:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the daemon wrote on stdout/stderr, over all its starts.
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                let body = std::fs::read_to_string(self.log_path(n)).unwrap_or_default();
                format!("--- daemon start {n} ---\n{body}")
            })
            .collect()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL to the daemon alone (its containers' monitors must survive it).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A new daemon on the same root and socket.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the daemon is still running");
        self.spawn();
    }

    /// SIGTERM, then SIGKILL after 20 s; the exit status if it was running.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        signal("TERM", &child.id().to_string());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    // ---- clients ----

    /// The docker CLI on this daemon, with HOME and DOCKER_CONFIG of its own.
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DOCKER);
        c.args(args);
        c.env("DOCKER_HOST", self.host());
        c.env("HOME", self.aux.path().join("home"));
        c.env("DOCKER_CONFIG", self.aux.path().join("home/.docker"));
        for var in ["DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"] {
            c.env_remove(var);
        }
        c.stdin(Stdio::null());
        c
    }

    /// Runs docker with `args` to its end (stdin /dev/null); whatever the exit status.
    pub fn docker(&self, args: &[&str]) -> Output {
        run_for(&mut self.docker_cmd(args))
    }

    /// docker `args`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}\ndaemon log:\n{}",
            show(&out),
            self.log_tail()
        );
        text(&out.stdout)
    }

    /// docker `args`, which must fail; its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            !out.status.success(),
            "docker {args:?} should have failed: {}",
            show(&out)
        );
        text(&out.stderr)
    }

    /// The gorae CLI against this daemon (`gorae -H unix://…`).
    pub fn gorae_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(gorae_bin());
        c.arg("-H").arg(self.host()).args(args);
        c.env_remove("GORAE_ROOT").env_remove("GORAE_HOST");
        c.env("HOME", self.aux.path().join("home"));
        c.stdin(Stdio::null());
        c
    }

    pub fn gorae(&self, args: &[&str]) -> Output {
        run_for(&mut self.gorae_cmd(args))
    }

    /// gorae `args` against the daemon, which must succeed; its stdout.
    pub fn gorae_ok(&self, args: &[&str]) -> String {
        let out = self.gorae(args);
        assert!(
            out.status.success(),
            "gorae {args:?}: {}\ndaemon log:\n{}",
            show(&out),
            self.log_tail()
        );
        text(&out.stdout)
    }

    /// A raw API request with curl over the socket: (status, body). `body` is sent as
    /// application/json when given.
    pub fn api(&self, method: &str, path: &str, body: Option<&[u8]>) -> (u16, String) {
        let mut c = Command::new("curl");
        c.args(["-sS", "--max-time", "60", "--unix-socket"])
            .arg(&self.sock)
            .args(["-o", "-", "-w", "\n%{http_code}"]);
        // -X HEAD would wait for a body that never comes: --head asks properly.
        if method == "HEAD" {
            c.arg("--head");
        } else {
            c.args(["-X", method]);
        }
        if body.is_some() {
            c.args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "@-",
            ]);
        }
        c.arg(format!("http://localhost{path}"));
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("curl");
        let mut stdin = child.stdin.take().expect("curl stdin");
        let data = body.unwrap_or_default().to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = wait_bounded(child, LIMIT, "curl");
        let _ = writer.join();
        let all = text(&out.stdout);
        let (body, code) = all.rsplit_once('\n').unwrap_or(("", all.as_str()));
        let status = code.trim().parse().unwrap_or(0);
        (status, body.to_string())
    }

    /// The last 4 KiB of the daemon's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let start = log.len().saturating_sub(4096);
        let start = (start..log.len())
            .find(|&i| log.is_char_boundary(i))
            .unwrap_or(log.len());
        log[start..].to_string()
    }

    /// `docker inspect -f FORMAT target`, trimmed.
    pub fn inspect(&self, format: &str, target: &str) -> String {
        self.ok(&["container", "inspect", "-f", format, target])
            .trim()
            .to_string()
    }

    // ---- cleanup ----

    /// The cgroup parent of this root's containers: `gorae-<root_hash>`.
    pub fn cgroup_parent(&self) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(self.root.as_os_str().as_encoded_bytes());
        format!("gorae-{}", hex::encode(&digest[..4]))
    }

    /// Live monitors of this root: pids from run/m/*/monitor.pid whose start time matches.
    pub fn live_monitors(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        let Ok(dirs) = std::fs::read_dir(self.root.join("run/m")) else {
            return pids;
        };
        for dir in dirs.flatten() {
            let Ok(line) = std::fs::read_to_string(dir.path().join("monitor.pid")) else {
                continue;
            };
            let mut it = line.split_whitespace();
            let (Some(pid), Some(start)) = (it.next(), it.next()) else {
                continue;
            };
            if let Ok(pid) = pid.parse::<u32>() {
                if start_time(pid).as_deref() == Some(start) {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    /// The directories of this root's cgroup parent, one per hierarchy.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let parent = self.cgroup_parent();
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for h in hierarchies() {
            let dir = h.join(&parent);
            let real = dir.canonicalize().unwrap_or(dir.clone());
            if dir.is_dir() && !seen.contains(&real) {
                seen.push(real);
                out.push(dir);
            }
        }
        out
    }

    /// Container cgroups still under the parent, in any hierarchy.
    pub fn container_cgroups(&self) -> Vec<PathBuf> {
        self.cgroup_dirs().iter().flat_map(|d| subdirs(d)).collect()
    }

    /// Mount points at or under the root, deepest first.
    pub fn mounts(&self) -> Vec<String> {
        mounts_under(&self.root)
    }

    /// Removes every container through the API (rm -f), stops the daemon with SIGTERM, and
    /// asserts the engine left nothing: no live monitor, no mount under the root, no
    /// container cgroup, no process naming the root. Then cleans up as Drop does.
    pub fn shutdown_clean(mut self) {
        self.remove_all_containers();
        let ids = self.api("GET", "/containers/json?all=1", None);
        assert_eq!(ids.0, 200, "list after rm -f: {}", ids.1);
        assert_eq!(ids.1.trim(), "[]", "containers left after rm -f");
        let status = self.stop();
        let mut left = Vec::new();
        left.extend(
            self.live_monitors()
                .iter()
                .map(|p| format!("monitor pid {p}")),
        );
        left.extend(self.mounts().into_iter().map(|m| format!("mount {m}")));
        left.extend(
            self.container_cgroups()
                .iter()
                .map(|c| format!("cgroup {}", c.display())),
        );
        left.extend(
            processes_naming(&self.root)
                .iter()
                .map(|p| format!("process {p}")),
        );
        assert!(
            left.is_empty(),
            "the engine left these behind after rm -f and SIGTERM (daemon exit {status:?}): \
             {left:#?}\ndaemon log:\n{}",
            self.log_tail()
        );
        assert!(
            status.is_some_and(|s| s.success()),
            "the daemon did not exit 0 on SIGTERM: {status:?}\n{}",
            self.log_tail()
        );
    }

    fn remove_all_containers(&self) {
        if self.child.is_none() {
            return;
        }
        let (status, body) = self.api("GET", "/containers/json?all=1", None);
        if status != 200 {
            return;
        }
        let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        for c in list.as_array().into_iter().flatten() {
            if let Some(id) = c["Id"].as_str() {
                let _ = self.api("DELETE", &format!("/containers/{id}?force=1"), None);
            }
        }
    }

    /// Whatever is left of this root, removed by force: monitors and container processes
    /// killed, cgroups thawed and removed, mounts detached, the root deleted.
    fn sweep(&mut self) {
        for pid in self.live_monitors() {
            signal("KILL", &pid.to_string());
        }
        for pid in processes_naming(&self.root) {
            signal("KILL", &pid);
        }
        for dir in self.cgroup_dirs() {
            remove_cgroup_tree(&dir);
        }
        for point in self.mounts() {
            let ok = Command::new("umount")
                .arg(&point)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                let _ = Command::new("umount").args(["-l", &point]).status();
            }
        }
        if self.mounts().is_empty() {
            let _ = std::fs::remove_dir_all(&self.root);
        } else {
            eprintln!(
                "warning: mounts left under {}, not deleting it",
                self.root.display()
            );
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.remove_all_containers();
        self.stop();
        self.sweep();
    }
}

/// A registry (gorae's own, `registry serve`) holding busybox as `test/busybox:latest`,
/// pushed by `gorae push` from a scratch root. Returns the registry and the image reference.
pub fn registry_with_busybox() -> (GoraeRegistry, String) {
    let reg = GoraeRegistry::start("");
    let image = format!("{}/test/busybox:latest", reg.host());
    let scratch = tempfile::Builder::new()
        .prefix("gorae-test-push-")
        .tempdir_in("/var/tmp")
        .expect("scratch root");
    let tar = busybox_tarball(scratch.path());
    let gorae = |args: &[&str]| {
        let out = run_for(
            Command::new(gorae_bin())
                .arg("--root")
                .arg(scratch.path().join("root"))
                .env_remove("GORAE_ROOT")
                .env_remove("GORAE_HOST")
                .args(args),
        );
        assert!(out.status.success(), "gorae {args:?}: {}", show(&out));
    };
    gorae(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        tar.to_str().expect("utf-8 path"),
        &image,
    ]);
    gorae(&["push", "-q", &image]);
    (reg, image)
}

// ---- processes ----

pub fn gorae_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gorae"))
}

/// gorae-runc, the sibling of the gorae binary (the daemon finds it there).
pub fn gorae_runc() -> PathBuf {
    gorae_bin().with_file_name("gorae-runc")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exit status, stdout and stderr of a command, for failure messages.
pub fn show(out: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Runs `cmd` to its end with piped output; kills it (and fails) after LIMIT.
pub fn run_for(cmd: &mut Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    wait_bounded(child, LIMIT, &format!("{cmd:?}"))
}

/// Collects a spawned child's output; SIGKILL and panic after `limit`.
pub fn wait_bounded(child: Child, limit: Duration, what: &str) -> Output {
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(limit) {
        Ok(output) => output.unwrap_or_else(|e| panic!("{what}: {e}")),
        Err(_) => {
            signal("KILL", &pid.to_string());
            panic!("{what} did not finish within {limit:?}");
        }
    }
}

/// `kill -SIG target`.
pub fn signal(sig: &str, target: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), "--", target])
        .stderr(Stdio::null())
        .status();
}

/// Field 22 of /proc/pid/stat (start time in clock ticks), as monitor.pid records it.
pub fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(String::from)
}

/// Processes (other than this one) whose command line names `dir`.
pub fn processes_naming(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().into_owned();
            pid.parse::<u32>().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (pid != me && cmdline.contains(&needle)).then_some(pid)
        })
        .collect()
}

// ---- mounts and cgroups ----

/// Mount points at or under `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| *p == prefix || p.starts_with(&format!("{prefix}/")))
        .map(String::from)
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points
}

/// Every cgroup hierarchy's root: /sys/fs/cgroup itself on pure v2, else its subdirectories
/// (v1 controllers, name=systemd, unified).
fn hierarchies() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    if base.join("cgroup.procs").exists() {
        return vec![base.to_path_buf()];
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("cgroup.procs").exists())
        .collect()
}

/// Every directory under `dir` (not `dir` itself), deepest first.
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                    out.push(e.path());
                }
            }
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}

/// Thaws, kills every process in, and removes a cgroup and its children.
fn remove_cgroup_tree(dir: &Path) {
    let mut all = subdirs(dir);
    all.push(dir.to_path_buf());
    for d in &all {
        let _ = std::fs::write(d.join("freezer.state"), "THAWED");
        let _ = std::fs::write(d.join("cgroup.freeze"), "0");
        if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
            for pid in procs.split_whitespace() {
                signal("KILL", pid);
            }
        }
    }
    for _ in 0..50 {
        for d in &all {
            let _ = std::fs::remove_dir(d);
        }
        if !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("warning: could not remove cgroup {}", dir.display());
}

// ---- the image ----

/// Writes a tarball of a busybox rootfs: /bin/busybox (busybox-static) with a symlink for
/// every applet it lists, /etc/passwd and /etc/group, the usual empty directories (/tmp
/// world-writable). Returns its path (inside `dir`).
pub fn busybox_tarball(dir: &Path) -> PathBuf {
    let path = dir.join(format!("busybox-rootfs-{}.tar", std::process::id()));
    let file = std::fs::File::create(&path).expect("create tar");
    let mut b = tar::Builder::new(file);
    for (d, mode) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("tmp", 0o1777),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("root", 0o700),
        ("var", 0o755),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, d, std::io::empty()).expect("dir");
    }
    let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(busybox.len() as u64);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "bin/busybox", busybox.as_slice())
        .expect("busybox");
    let list = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in text(&list.stdout).lines() {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .expect("symlink");
    }
    let files: [(&str, &[u8]); 2] = [
        (
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        ),
        ("etc/group", b"root:x:0:\nnogroup:x:65534:\n"),
    ];
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, name, data).expect("file");
    }
    b.into_inner().expect("finish tar");
    path
}
