//! Container snapshots on overlayfs: create, mount, write, unmount, remove; deep images;
//! read-only image mounts.
//!
//! Needs root (overlay and bind mounts, whiteouts); CI runs these as root.

use std::fs;
use std::io::Cursor;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use gorae_image::layer::snapshot::Snapshots;
use gorae_image::layer::LayerStore;
use gorae_image::{Compression, DataRoot, Digest, Error};
use tar::{Builder, EntryType, Header};

struct Env {
    tmp: tempfile::TempDir,
    layers: LayerStore,
    snapshots: Snapshots,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = DataRoot::new(tmp.path().join("root"));
        Env {
            layers: LayerStore::open(&root).unwrap(),
            snapshots: Snapshots::open(&root).unwrap(),
            tmp,
        }
    }

    /// Unpacks a layer of regular files `(path, content)`.
    fn layer(&self, files: &[(&str, &str)]) -> Digest {
        let mut b = Builder::new(Vec::new());
        for (path, content) in files {
            let mut h = Header::new_gnu();
            h.set_entry_type(EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(content.len() as u64);
            b.append_data(&mut h, path, content.as_bytes()).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let unpacked = self
            .layers
            .unpack(&mut Cursor::new(tar), Compression::None, None, "test")
            .unwrap();
        unpacked.diff_id
    }

    fn mountpoint(&self, name: &str) -> Mount {
        let path = self.tmp.path().join(name);
        fs::create_dir(&path).unwrap();
        Mount(path)
    }
}

/// A mount point, unmounted when the test ends however it ends.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

#[test]
fn container_writes_land_in_upper() {
    let env = Env::new();
    let base = env.layer(&[("etc/os", "base"), ("bin/sh", "sh"), ("doomed", "x")]);
    let top = env.layer(&[("etc/os", "top")]);
    let snapshot = env
        .snapshots
        .create("c1", &[base.clone(), top.clone()])
        .unwrap();
    assert_eq!(
        snapshot.lowers,
        vec![env.layers.dir(&top), env.layers.dir(&base)]
    );
    assert_eq!(env.snapshots.get("c1").unwrap().upper, snapshot.upper);

    let target = env.mountpoint("rootfs");
    env.snapshots.mount("c1", &target.0).unwrap();
    assert_eq!(read(&target.0.join("etc/os")), "top");
    assert_eq!(read(&target.0.join("bin/sh")), "sh");
    fs::write(target.0.join("written"), "by the container").unwrap();
    fs::remove_file(target.0.join("doomed")).unwrap();
    let err = env.snapshots.remove("c1").unwrap_err();
    assert!(err.to_string().contains("mounted"), "{err}");
    env.snapshots.unmount(&target.0).unwrap();

    assert_eq!(read(&snapshot.upper.join("written")), "by the container");
    let whiteout = fs::symlink_metadata(snapshot.upper.join("doomed")).unwrap();
    assert!(whiteout.file_type().is_char_device() && whiteout.rdev() == 0);
    // The image layers did not change.
    assert!(!env.layers.dir(&base).join("written").exists());
    assert_eq!(read(&env.layers.dir(&base).join("doomed")), "x");

    let mut in_use = vec![base.clone(), top.clone()];
    in_use.sort();
    assert_eq!(env.snapshots.layers_in_use().unwrap(), in_use);
    env.snapshots.remove("c1").unwrap();
    env.snapshots.remove("c1").unwrap();
    assert!(env.snapshots.layers_in_use().unwrap().is_empty());
    assert!(env.snapshots.get("c1").is_err());
    assert!(!snapshot.upper.exists());
}

/// The mount options of the mount at `target`, from this process's mountinfo.
fn mount_options(target: &Path) -> Option<String> {
    let table = read(Path::new("/proc/self/mountinfo"));
    let target = target.to_str().unwrap();
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        (fields.get(4) == Some(&target)).then(|| fields.last().unwrap().to_string())
    })
}

#[test]
fn volatile_snapshots_mount_volatile_again_and_again() {
    let env = Env::new();
    let base = env.layer(&[("etc/os", "base")]);
    let snapshot = env
        .snapshots
        .create_with("v1", std::slice::from_ref(&base), true)
        .unwrap();
    assert!(snapshot.volatile && env.snapshots.get("v1").unwrap().volatile);
    assert!(!env.snapshots.create("plain", &[base]).unwrap().volatile);
    let target = env.mountpoint("rootfs");
    // Overlay refuses a second mount while the first one's mark is there: the snapshot
    // clears it, so a restarted container mounts its root again.
    for round in 0..2 {
        env.snapshots.mount("v1", &target.0).unwrap();
        let options = mount_options(&target.0).unwrap();
        assert!(options.contains("volatile"), "{options}");
        fs::write(target.0.join("written"), format!("round {round}")).unwrap();
        env.snapshots.unmount(&target.0).unwrap();
        assert_eq!(
            read(&snapshot.upper.join("written")),
            format!("round {round}")
        );
    }
    env.snapshots.remove("v1").unwrap();
    env.snapshots.remove("plain").unwrap();
    assert!(!snapshot.upper.exists());
}

#[test]
fn refuses_bad_ids_duplicates_and_missing_layers() {
    let env = Env::new();
    let base = env.layer(&[("a", "a")]);
    for bad in ["", "../x", "a/b", ".hidden", "x y"] {
        let err = env
            .snapshots
            .create(bad, std::slice::from_ref(&base))
            .unwrap_err();
        assert!(err.to_string().contains("invalid snapshot id"), "{err}");
    }
    env.snapshots
        .create("one", std::slice::from_ref(&base))
        .unwrap();
    let err = env
        .snapshots
        .create("one", std::slice::from_ref(&base))
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    let missing = Digest::sha256_of(b"no such layer");
    let err = env
        .snapshots
        .create("two", std::slice::from_ref(&missing))
        .unwrap_err();
    assert!(matches!(err, Error::Layer { .. }), "{err}");
    assert!(err.to_string().contains(&missing.to_string()), "{err}");
    assert!(env.snapshots.get("two").is_err());
}

/// 200 layers: the lowerdir list (~20 KB of paths) is far past mount(2)'s one page.
fn deep_layers(env: &Env) -> Vec<Digest> {
    (0..200)
        .map(|i| {
            let own = format!("layer/{i}");
            let content = i.to_string();
            env.layer(&[(&own, &content), ("top", &content)])
        })
        .collect()
}

#[test]
fn deep_images_mount() {
    let env = Env::new();
    let layers = deep_layers(&env);
    env.snapshots.create("deep", &layers).unwrap();
    let target = env.mountpoint("rootfs");
    let cwd = std::env::current_dir().unwrap();
    env.snapshots.mount("deep", &target.0).unwrap();
    assert_eq!(std::env::current_dir().unwrap(), cwd, "cwd untouched");
    assert_eq!(read(&target.0.join("top")), "199");
    assert_eq!(fs::read_dir(target.0.join("layer")).unwrap().count(), 200);
    assert_eq!(read(&target.0.join("layer/0")), "0");
    fs::write(target.0.join("layer/new"), "rw").unwrap();
    env.snapshots.unmount(&target.0).unwrap();
    // The short links used for the mount are gone.
    let snapshots = env.tmp.path().join("root/snapshots");
    let names: Vec<_> = fs::read_dir(&snapshots)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["deep"]);

    let readonly = env.mountpoint("image");
    env.snapshots.mount_readonly(&layers, &readonly.0).unwrap();
    assert_eq!(read(&readonly.0.join("top")), "199");
    assert!(!readonly.0.join("layer/new").exists());
    env.snapshots.unmount(&readonly.0).unwrap();
}

#[test]
fn read_only_image_mounts() {
    let env = Env::new();
    let base = env.layer(&[("etc/os", "base"), ("only-base", "b")]);
    let top = env.layer(&[("etc/os", "top")]);

    let target = env.mountpoint("two");
    env.snapshots
        .mount_readonly(&[base.clone(), top.clone()], &target.0)
        .unwrap();
    assert_eq!(read(&target.0.join("etc/os")), "top");
    assert_eq!(read(&target.0.join("only-base")), "b");
    let err = fs::write(target.0.join("x"), "x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    env.snapshots.unmount(&target.0).unwrap();

    let single = env.mountpoint("one");
    env.snapshots
        .mount_readonly(std::slice::from_ref(&base), &single.0)
        .unwrap();
    assert_eq!(read(&single.0.join("etc/os")), "base");
    let err = fs::write(single.0.join("x"), "x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    env.snapshots.unmount(&single.0).unwrap();
    assert!(!env.layers.dir(&base).join("x").exists());

    assert!(env.snapshots.mount_readonly(&[], &single.0).is_err());
}
