//! Shared helpers for the gorae CLI tests: a throwaway data root, a busybox rootfs tarball,
//! and running the real binary. Tests that use these need root (overlay mounts, chown).

#![allow(dead_code)]

pub mod engine;
pub mod network;
pub mod registry_server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Gorae {
    pub root: tempfile::TempDir,
}

impl Gorae {
    pub fn new() -> Gorae {
        let root = tempfile::Builder::new()
            .prefix("gorae-test-root-")
            .tempdir_in("/var/tmp")
            .expect("temp data root");
        Gorae { root }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gorae"));
        c.arg("--root").arg(self.root.path());
        c.env_remove("GORAE_ROOT");
        c
    }

    /// Runs gorae with `args`; returns the output whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running gorae")
    }

    /// Runs gorae and panics with its stderr unless it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "gorae {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs gorae expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "gorae {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Imports a busybox rootfs as `name`.
    pub fn import_busybox(&self, name: &str, extra: &[(&str, &[u8])]) -> String {
        let tar = busybox_rootfs_tar(self.root.path(), extra);
        let out = self.ok(&[
            "import",
            "-c",
            "CMD [\"sh\"]",
            tar.to_str().expect("utf-8 path"),
            name,
        ]);
        std::fs::remove_file(&tar).ok();
        out.trim().to_string()
    }

    /// Total bytes of regular files under the data root (du --apparent-size -b).
    pub fn disk_use(&self) -> u64 {
        let out = Command::new("du")
            .args(["-sb", "--apparent-size"])
            .arg(self.root.path())
            .output()
            .expect("du");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .expect("du output")
    }
}

/// Writes a tarball of a minimal busybox rootfs (bin/busybox from busybox-static, applet
/// symlinks, etc/passwd) plus `extra` files, into `dir`; returns its path.
pub fn busybox_rootfs_tar(dir: &Path, extra: &[(&str, &[u8])]) -> PathBuf {
    let path = dir.join(format!("busybox-{}.tar", std::process::id()));
    let file = std::fs::File::create(&path).expect("create tar");
    let mut b = tar::Builder::new(file);
    let dir_header = |name: &str, b: &mut tar::Builder<std::fs::File>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, name, std::io::empty()).expect("dir");
    };
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        dir_header(d, &mut b);
    }
    let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(busybox.len() as u64);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "bin/busybox", busybox.as_slice())
        .expect("busybox");
    for applet in ["sh", "ls", "cat", "echo", "true", "sleep"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .expect("symlink");
    }
    let passwd = b"root:x:0:0:root:/root:/bin/sh\n";
    let mut files: Vec<(&str, &[u8])> = vec![("etc/passwd", passwd)];
    files.extend_from_slice(extra);
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
