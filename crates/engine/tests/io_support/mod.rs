//! For the I/O tests that need a real container without the engine's lifecycle: a busybox
//! bundle run detached by gorae-runc under a private state root, deleted (with its cgroup) on
//! drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const BUSYBOX: &str = "/bin/busybox";

/// gorae-runc of this build: beside the test binary's deps directory.
pub fn runc_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    dir.join("gorae-runc")
}

/// Whether real containers can run here; says why not.
pub fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return false;
    }
    if !Path::new(BUSYBOX).exists() || !runc_bin().exists() {
        eprintln!(
            "skipped: needs {BUSYBOX} and {} (cargo build -p gorae-runc)",
            runc_bin().display()
        );
        return false;
    }
    true
}

pub struct Container {
    pub dir: tempfile::TempDir,
    pub id: String,
    pub pid: i32,
    pub cgroups_path: String,
}

impl Container {
    pub fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    pub fn rootfs(&self) -> PathBuf {
        self.bundle().join("rootfs")
    }

    pub fn state_root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid))
    }

    /// Runs `args` as the init of a new container named after `name`.
    pub fn start(name: &str, args: &[&str]) -> Container {
        let dir = tempfile::Builder::new()
            .prefix("gorae-eio-")
            .tempdir()
            .unwrap();
        let id = format!("eio-{name}-{}", std::process::id());
        let cgroups_path = format!("/gorae-eio-test-{id}");
        let mut c = Container {
            dir,
            id,
            pid: 0,
            cgroups_path,
        };
        make_rootfs(&c.rootfs());
        let mut spec =
            gorae_runtime::specgen::to_json(&gorae_runtime::specgen::default_spec(false)).unwrap();
        spec["process"]["terminal"] = false.into();
        spec["process"]["args"] = serde_json::json!(args);
        spec["process"]["env"] = serde_json::json!(["PATH=/bin", "FROM_CONTAINER=1"]);
        spec["linux"]["cgroupsPath"] = c.cgroups_path.clone().into();
        spec["root"]["readonly"] = false.into();
        std::fs::write(
            c.bundle().join("config.json"),
            serde_json::to_vec(&spec).unwrap(),
        )
        .unwrap();
        let status = c
            .runc()
            .args(["run", "--detach", "--bundle"])
            .arg(c.bundle())
            .arg(&c.id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "gorae-runc run --detach failed");
        let out = c.runc().args(["state", &c.id]).output().unwrap();
        let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        c.pid = state["pid"].as_i64().unwrap() as i32;
        c
    }

    pub fn runc(&self) -> Command {
        let mut cmd = Command::new(runc_bin());
        cmd.arg("--root").arg(self.state_root());
        cmd
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self
            .runc()
            .args(["delete", "--force", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// busybox with its applets, /etc/passwd and /etc/group.
pub fn make_rootfs(rootfs: &Path) {
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
    let applets = Command::new(BUSYBOX).arg("--list").output().unwrap();
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
    std::fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\nnogroup:x:65534:\nstaff:x:50:nobody\n",
    )
    .unwrap();
}

/// Multiplexed frames to (stream, bytes) pairs.
pub fn deframe(mut data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while data.len() >= 8 {
        let len = u32::from_be_bytes([data[4], data[5], data[6], data[7]]) as usize;
        out.push((data[0], data[8..8 + len].to_vec()));
        data = &data[8 + len..];
    }
    assert!(data.is_empty(), "torn frame");
    out
}

/// The text of one stream of a multiplexed capture.
pub fn stream_text(frames: &[(u8, Vec<u8>)], stream: u8) -> String {
    let bytes: Vec<u8> = frames
        .iter()
        .filter(|(s, _)| *s == stream)
        .flat_map(|(_, b)| b.clone())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}
