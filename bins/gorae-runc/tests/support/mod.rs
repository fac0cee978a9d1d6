//! Shared by the integration tests: busybox bundles, a private state root per test, the
//! gorae-runc binary, and the check that a test left nothing behind.
//!
//! These tests run real containers and need root and a static busybox (`busybox-static`);
//! without them they print why and pass vacuously, so `cargo test` works anywhere. CI runs
//! them as root.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

pub const BUSYBOX: &str = "/bin/busybox";

/// Whether this machine can run the container tests; prints why not.
pub fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: container tests need root");
        return false;
    }
    if !Path::new(BUSYBOX).exists() {
        eprintln!("skipped: container tests need a static busybox at {BUSYBOX} (apt-get install busybox-static)");
        return false;
    }
    true
}

/// Where cgroups are checked: the host as it is, or a private mount namespace with the
/// cgroup2 mount removed (pure cgroup v1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Host,
    PureV1,
}

/// One test's container environment: a bundle directory, a state root, a container id.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub id: String,
    pub layout: Layout,
}

impl Env {
    /// A busybox bundle with `gorae-runc spec`'s default config (terminal off).
    pub fn new(name: &str) -> Env {
        Self::with_layout(name, Layout::Host)
    }

    pub fn with_layout(name: &str, layout: Layout) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("gorae-test-")
            .tempdir()
            .expect("tempdir");
        let suffix = if layout == Layout::PureV1 { "-v1" } else { "" };
        let env = Env {
            id: format!("{name}{suffix}-{}", std::process::id()),
            dir,
            layout,
        };
        make_rootfs(&env.rootfs());
        let spec = env.runc(&["spec", "--bundle", env.bundle().to_str().unwrap()]);
        assert!(spec.status.success(), "spec failed: {}", stderr(&spec));
        env.edit(|c| {
            c["process"]["terminal"] = json!(false);
        });
        env
    }

    pub fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    pub fn rootfs(&self) -> PathBuf {
        self.bundle().join("rootfs")
    }

    pub fn state_root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn config(&self) -> Value {
        let body = std::fs::read(self.bundle().join("config.json")).expect("config.json");
        serde_json::from_slice(&body).expect("config.json parses")
    }

    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut config = self.config();
        f(&mut config);
        std::fs::write(
            self.bundle().join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
    }

    pub fn set_args(&self, args: &[&str]) {
        self.edit(|c| c["process"]["args"] = json!(args));
    }

    /// Runs gorae-runc with this env's state root (inside the pure-v1 namespace if asked).
    /// Output goes through files, not pipes: a created container's init inherits gorae-runc's
    /// stdio and keeps it open, as with runc, so reading a pipe to its end would never finish.
    pub fn runc(&self, args: &[&str]) -> Output {
        let out_path = self.dir.path().join(".stdout");
        let err_path = self.dir.path().join(".stderr");
        let out_file = std::fs::File::create(&out_path).expect("stdout file");
        let err_file = std::fs::File::create(&err_path).expect("stderr file");
        let status = self
            .runc_cmd(args)
            .stdin(Stdio::null())
            .stdout(out_file)
            .stderr(err_file)
            .status()
            .expect("gorae-runc runs");
        Output {
            status,
            stdout: std::fs::read(&out_path).unwrap_or_default(),
            stderr: std::fs::read(&err_path).unwrap_or_default(),
        }
    }

    pub fn runc_cmd(&self, args: &[&str]) -> Command {
        let bin = env!("CARGO_BIN_EXE_gorae-runc");
        let root = self.state_root();
        let mut full: Vec<String> = vec!["--root".into(), root.display().to_string()];
        full.extend(args.iter().map(|s| s.to_string()));
        match self.layout {
            Layout::Host => {
                let mut cmd = Command::new(bin);
                cmd.args(&full);
                cmd
            }
            Layout::PureV1 => {
                let mut cmd = Command::new("unshare");
                let script = "umount /sys/fs/cgroup/unified && exec \"$@\"";
                cmd.args([
                    "-m",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    script,
                    "sh",
                    bin,
                ])
                .args(&full);
                cmd
            }
        }
    }

    /// `run` of the container in the foreground: (exit code, stdout, stderr).
    pub fn run(&self) -> (i32, String, String) {
        let out = self.runc(&["run", "--bundle", self.bundle().to_str().unwrap(), &self.id]);
        (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
    }

    /// `run` that must succeed; returns stdout.
    pub fn run_ok(&self) -> String {
        let (code, out, err) = self.run();
        assert_eq!(code, 0, "run failed: stdout={out} stderr={err}");
        out
    }

    pub fn create(&self) -> Output {
        self.runc(&[
            "create",
            "--bundle",
            self.bundle().to_str().unwrap(),
            &self.id,
        ])
    }

    pub fn state(&self) -> Value {
        let out = self.runc(&["state", &self.id]);
        assert!(out.status.success(), "state failed: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("state is JSON")
    }

    pub fn status(&self) -> String {
        self.state()["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Asserts that nothing of the container is left: state directory, cgroups, processes.
    pub fn assert_clean(&self) {
        let state_dir = self.state_root().join(&self.id);
        assert!(
            !state_dir.exists(),
            "state directory {state_dir:?} left behind"
        );
        let leftovers = cgroup_dirs_named(&format!("gorae-{}", self.id));
        assert!(leftovers.is_empty(), "cgroups left behind: {leftovers:?}");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self.runc(&["delete", "--force", &self.id]);
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A rootfs of busybox and its applets, with the directories a config mounts onto.
pub fn make_rootfs(rootfs: &Path) {
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
    let applets = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&applets.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
        }
    }
    for dir in ["proc", "sys", "dev", "etc", "tmp", "root"] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

/// Every directory under the cgroup mounts whose name is `name` (searched two levels below
/// the caller's own cgroup in each hierarchy and at the hierarchy roots).
pub fn cgroup_dirs_named(name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(mounts) = std::fs::read_dir("/sys/fs/cgroup") else {
        return found;
    };
    for mount in mounts.flatten() {
        walk(&mount.path(), name, 4, &mut found);
    }
    found
}

fn walk(dir: &Path, name: &str, depth: u32, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        if entry.file_name().to_string_lossy().contains(name) {
            found.push(path.clone());
        }
        if depth > 0 {
            walk(&path, name, depth - 1, found);
        }
    }
}

impl Env {
    /// `run --detach` of `args`, which must succeed.
    pub fn run_detached(&self, args: &[&str]) {
        self.set_args(args);
        let bundle = self.bundle();
        let out = self.runc(&[
            "run",
            "--detach",
            "--bundle",
            bundle.to_str().unwrap(),
            &self.id,
        ]);
        assert!(
            out.status.success(),
            "run --detach failed: {}",
            stderr(&out)
        );
    }

    /// Polls `state` until the container's status is `want`; fails after 10 s.
    pub fn wait_for_status(&self, want: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.status() != want {
            assert!(
                std::time::Instant::now() < deadline,
                "container never became {want}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
