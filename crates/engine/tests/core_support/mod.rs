//! For the engine's lifecycle and restore tests: a throwaway data root with a busybox image
//! imported, an [`Engine`] on it using this build's gorae-runc, request helpers, and a
//! teardown that removes every container and then checks that no mount, cgroup or monitor
//! of the root is left.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gorae_engine::types::{ContainerInspect, CreateRequest};
use gorae_engine::{Engine, EngineConfig};

pub const IMAGE: &str = "gorae-test/busybox:latest";

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
    if !Path::new("/bin/busybox").exists() || !runc_bin().exists() {
        eprintln!(
            "skipped: needs /bin/busybox and {} (cargo build -p gorae-runc)",
            runc_bin().display()
        );
        return false;
    }
    true
}

pub struct Root {
    pub dir: tempfile::TempDir,
    pub config: EngineConfig,
}

impl Root {
    /// A new data root with the busybox image.
    pub fn new() -> Root {
        let dir = tempfile::Builder::new()
            .prefix("gorae-ec-")
            .tempdir()
            .expect("tempdir");
        let mut config = EngineConfig::for_root(dir.path());
        config.runtime = runc_bin();
        let store = gorae_image::Store::open(dir.path()).expect("store");
        let tar = busybox_tar(dir.path());
        let mut file = std::fs::File::open(&tar).expect("tar");
        let options = gorae_image::archive::ImportOptions {
            reference: Some(IMAGE.parse().expect("reference")),
            changes: vec!["CMD [\"sh\"]".into()],
            message: None,
        };
        gorae_image::archive::import(&store, &mut file, &options).expect("import");
        std::fs::remove_file(&tar).expect("rm tar");
        Root { dir, config }
    }

    pub async fn open(&self) -> Arc<Engine> {
        Engine::open(self.config.clone())
            .await
            .expect("open engine")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Removes every container of `engine`, then checks nothing of the root is left running,
    /// mounted or in a cgroup, and removes the engine's cgroup parent.
    pub async fn teardown(&self, engine: Arc<Engine>) {
        let all = engine
            .list(gorae_engine::engine::ListOptions {
                all: true,
                ..Default::default()
            })
            .await
            .expect("list");
        for c in all {
            engine.remove(&c.id, true, false).await.expect("remove");
        }
        drop(engine);
        self.check_clean();
    }

    pub fn check_clean(&self) {
        let root = self.path().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let left: Vec<&str> = mounts.lines().filter(|l| l.contains(&root)).collect();
        assert!(left.is_empty(), "mounts left: {left:#?}");
        let monitors = self.config.run_dir.join("m");
        let count = std::fs::read_dir(&monitors).map_or(0, |d| d.count());
        assert_eq!(count, 0, "monitor dirs left in {}", monitors.display());
        let parent = &self.config.cgroup_parent;
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
            .expect("cgroupfs")
            .flatten()
        {
            let dir = hierarchy.path().join(parent);
            if !dir.is_dir() {
                continue;
            }
            let children: Vec<_> = std::fs::read_dir(&dir)
                .expect("cgroup dir")
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.path())
                .collect();
            assert!(children.is_empty(), "cgroups left: {children:?}");
            std::fs::remove_dir(&dir).expect("rmdir cgroup parent");
        }
    }
}

impl Drop for Root {
    /// After a failed test: kill what is left of the root's containers, unmount their roots
    /// and remove the cgroup parent, so one failure does not leak into the machine.
    fn drop(&mut self) {
        let containers = self.config.containers_dir();
        for entry in std::fs::read_dir(&containers)
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = entry.file_name().to_string_lossy().into_owned();
            let _ = std::process::Command::new(runc_bin())
                .arg("--root")
                .arg(self.config.runtime_root())
                .args(["delete", "--force", &id])
                .stderr(std::process::Stdio::null())
                .status();
            let rootfs = entry.path().join("bundle/rootfs");
            let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
        }
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(hierarchy.path().join(&self.config.cgroup_parent));
        }
    }
}

/// A create request for the busybox image running `args`, with no network.
pub fn request(args: &[&str]) -> CreateRequest {
    let mut req = CreateRequest::default();
    req.config.image = IMAGE.into();
    req.config.cmd = Some(args.iter().map(|s| s.to_string()).collect());
    req.host_config.network_mode = "none".into();
    req
}

pub async fn create(engine: &Engine, name: Option<&str>, req: CreateRequest) -> String {
    engine
        .create(name.map(str::to_string), req)
        .await
        .expect("create")
        .id
}

pub async fn inspect(engine: &Engine, id: &str) -> ContainerInspect {
    engine.inspect(id, false).await.expect("inspect")
}

/// Polls until `check` holds; panics after a minute (a hang guard, not a timing check).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting for {what}");
}

/// A busybox rootfs tarball (bin/busybox, its applets as symlinks, passwd and group).
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let path = dir.join("busybox.tar");
    let file = std::fs::File::create(&path).expect("create tar");
    let mut b = tar::Builder::new(file);
    for d in [
        "bin", "etc", "tmp", "proc", "sys", "dev", "root", "home/app",
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, d, std::io::empty()).expect("dir");
    }
    let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox");
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(busybox.len() as u64);
    b.append_data(&mut h, "bin/busybox", busybox.as_slice())
        .expect("busybox");
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet == "busybox" || applet.is_empty() {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .expect("symlink");
    }
    let files: [(&str, &[u8]); 2] = [
        (
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        ),
        (
            "etc/group",
            b"root:x:0:\nwheel:x:10:root\napp:x:1000:\nextra:x:2000:app\n",
        ),
    ];
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).expect("file");
    }
    b.into_inner().expect("finish tar");
    path
}
