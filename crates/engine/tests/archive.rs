//! The archive code on a directory standing in for a container's root (root needed for the
//! ownership it restores): tar out of a tree, stat, and extraction of good and evil tarballs
//! (`..` paths, symlinks and hard links aiming out of the root) that must not touch anything
//! outside it.

use std::os::fd::OwnedFd;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use gorae_engine::archive;
use nix::fcntl::OFlag;

fn root_fd(root: &Path) -> OwnedFd {
    nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap()
}

/// A ustar header and body with any name bytes (the tar crate refuses `..`, evil tars don't).
fn raw_entry(out: &mut Vec<u8>, name: &str, kind: u8, link: &str, data: &[u8]) {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn finish(mut tar: Vec<u8>) -> Vec<u8> {
    tar.extend_from_slice(&[0u8; 1024]);
    tar
}

/// A container root and, beside it, a host directory that must stay untouched.
struct Sandbox {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn sandbox() -> Sandbox {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "host").unwrap();
    Sandbox {
        _tmp: tmp,
        root,
        outside,
    }
}

fn extract(sb: &Sandbox, dest: &str, tar: &[u8]) -> gorae_engine::Result<()> {
    archive::extract(&root_fd(&sb.root), dest, false, tar)
}

fn outside_untouched(sb: &Sandbox) {
    let names: Vec<_> = std::fs::read_dir(&sb.outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["secret"], "the host directory changed");
    assert_eq!(
        std::fs::read_to_string(sb.outside.join("secret")).unwrap(),
        "host"
    );
    assert!(!sb.root.parent().unwrap().join("pwned").exists());
}

#[test]
fn a_good_tar_extracts_with_modes_and_owners() {
    let sb = sandbox();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o750);
    h.set_size(0);
    h.set_uid(1000);
    h.set_gid(1000);
    b.append_data(&mut h, "d/", std::io::empty()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o4755);
    h.set_size(5);
    h.set_uid(1000);
    h.set_gid(1001);
    b.append_data(&mut h, "d/run", &b"hello"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "d/abs", "/etc/passwd").unwrap();
    let tar = b.into_inner().unwrap();
    extract(&sb, "/tmp", &tar).unwrap();
    let run = sb.root.join("tmp/d/run");
    assert_eq!(std::fs::read_to_string(&run).unwrap(), "hello");
    let meta = std::fs::metadata(&run).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o4755);
    assert_eq!((meta.uid(), meta.gid()), (1000, 1001));
    let dir = std::fs::metadata(sb.root.join("tmp/d")).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o750);
    assert_eq!(
        std::fs::read_link(sb.root.join("tmp/d/abs")).unwrap(),
        Path::new("/etc/passwd")
    );
}

#[test]
fn the_padding_after_the_end_marker_is_read_too() {
    let sb = sandbox();
    let mut tar = Vec::new();
    raw_entry(&mut tar, "f", b'0', "", b"x");
    tar.resize(10240, 0);
    let mut body = std::io::Cursor::new(tar);
    archive::extract(&root_fd(&sb.root), "/tmp", false, &mut body).unwrap();
    // The docker CLI is still writing these blocks: leaving them unread cut its upload.
    assert_eq!(body.position(), 10240);
}

#[test]
fn dot_dot_paths_are_refused() {
    let sb = sandbox();
    for name in ["../pwned", "../../pwned", "a/../../pwned", "/../pwned/x"] {
        let mut tar = Vec::new();
        raw_entry(&mut tar, name, b'0', "", b"evil");
        let err = extract(&sb, "/", &finish(tar));
        let err = err.expect_err("extracted").to_string();
        assert!(
            err.contains("leaves the extraction directory"),
            "{name}: {err}"
        );
        outside_untouched(&sb);
    }
    // The same hand-made entry with a harmless name goes in.
    let mut tar = Vec::new();
    raw_entry(&mut tar, "a/../fine", b'0', "", b"ok");
    extract(&sb, "/", &finish(tar)).unwrap();
    assert_eq!(std::fs::read_to_string(sb.root.join("fine")).unwrap(), "ok");
}

#[test]
fn symlinks_made_by_the_tar_resolve_inside_the_root() {
    let sb = sandbox();
    let host = sb.outside.to_str().unwrap().to_string();
    let mut tar = Vec::new();
    raw_entry(&mut tar, "to-root", b'2', "/", b"");
    raw_entry(&mut tar, "to-root/pwned", b'0', "", b"x");
    raw_entry(&mut tar, "up", b'2', "../../../../..", b"");
    raw_entry(&mut tar, "up/pwned", b'0', "", b"x");
    raw_entry(&mut tar, "host", b'2', &host, b"");
    // Dangling inside the root: the write fails rather than landing on the host.
    raw_entry(&mut tar, "host/secret", b'0', "", b"overwritten");
    let result = extract(&sb, "/tmp", &finish(tar));
    assert!(result.is_err());
    outside_untouched(&sb);
    // The first two writes landed in the container's own root.
    assert_eq!(std::fs::read_to_string(sb.root.join("pwned")).unwrap(), "x");
}

#[test]
fn symlinks_already_in_the_container_are_not_followed_out() {
    let sb = sandbox();
    symlink(&sb.outside, sb.root.join("tmp/evil")).unwrap();
    symlink(sb.outside.join("secret"), sb.root.join("tmp/file")).unwrap();
    let mut tar = Vec::new();
    raw_entry(&mut tar, "file", b'0', "", b"replaced");
    raw_entry(&mut tar, "evil/secret", b'0', "", b"overwritten");
    let _ = extract(&sb, "/tmp", &finish(tar));
    outside_untouched(&sb);
    // The symlink itself was replaced by the file, not written through.
    assert_eq!(
        std::fs::read_to_string(sb.root.join("tmp/file")).unwrap(),
        "replaced"
    );
    // An extraction point that is a symlink out of the root resolves inside it.
    let mut tar = Vec::new();
    raw_entry(&mut tar, "secret", b'0', "", b"overwritten");
    assert!(extract(&sb, "/tmp/evil", &finish(tar)).is_err());
    outside_untouched(&sb);
}

#[test]
fn hard_links_cannot_reach_out() {
    let sb = sandbox();
    for link in ["../outside/secret", "../../outside/secret"] {
        let mut tar = Vec::new();
        raw_entry(&mut tar, "l", b'1', link, b"");
        assert!(extract(&sb, "/tmp", &finish(tar)).is_err(), "{link}");
    }
    // An absolute link name is archive-relative: it names a file under the extraction point.
    let host_secret = sb.outside.join("secret");
    let mut tar = Vec::new();
    raw_entry(&mut tar, "l", b'1', host_secret.to_str().unwrap(), b"");
    assert!(extract(&sb, "/tmp", &finish(tar)).is_err());
    assert_eq!(std::fs::metadata(&host_secret).unwrap().nlink(), 1);
    outside_untouched(&sb);
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let sb = sandbox();
    for junk in [&b"not a tar at all"[..], &[0xffu8; 700][..], &[0u8; 10][..]] {
        let _ = extract(&sb, "/tmp", junk);
    }
    let mut tar = Vec::new();
    raw_entry(&mut tar, "big", b'0', "", b"short");
    // Claims more data than there is.
    tar[124..136].copy_from_slice(b"00000077777\0");
    let sum: u32 = {
        tar[148..156].copy_from_slice(b"        ");
        tar[..512].iter().map(|b| u32::from(*b)).sum()
    };
    tar[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    assert!(extract(&sb, "/tmp", &tar).is_err());
    outside_untouched(&sb);
}

#[test]
fn tar_out_names_the_top_entry_and_keeps_symlinks() {
    let sb = sandbox();
    let data = sb.root.join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("a"), "A").unwrap();
    std::fs::write(data.join("sub/b"), "BB").unwrap();
    symlink(&sb.outside, data.join("out")).unwrap();
    let root = root_fd(&sb.root);
    let mut tar = Vec::new();
    archive::write_tar(archive::open_target(&root, "/data").unwrap(), &mut tar).unwrap();
    let mut names = Vec::new();
    for entry in tar::Archive::new(&tar[..]).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut body = String::new();
        std::io::Read::read_to_string(&mut entry, &mut body).unwrap();
        names.push((name, body));
    }
    let got: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        got,
        ["data/", "data/a", "data/out", "data/sub/", "data/sub/b"]
    );
    assert_eq!(names[4].1, "BB");
    // "dir/." names the contents; a symlink out of the root is not followed.
    let t = archive::open_target(&root, "/data/.").unwrap();
    assert_eq!(t.name, ".");
    assert!(archive::open_target(&root, "/data/out/.").is_err());
    assert!(archive::open_target(&root, "/data/out/secret").is_err());
}

#[test]
fn stat_is_docker_path_stat() {
    let sb = sandbox();
    std::fs::create_dir_all(sb.root.join("bin")).unwrap();
    std::fs::write(sb.root.join("bin/busybox"), "x").unwrap();
    symlink("busybox", sb.root.join("bin/sh")).unwrap();
    let root = root_fd(&sb.root);
    let st = archive::path_stat(&archive::open_target(&root, "/bin/sh").unwrap());
    assert_eq!(st.name, "sh");
    assert_eq!(st.link_target, "/bin/busybox");
    assert_eq!(st.mode & (1 << 27), 1 << 27);
    let st = archive::path_stat(&archive::open_target(&root, "/bin").unwrap());
    assert_eq!(st.mode & (1 << 31), 1 << 31);
    let json = serde_json::to_value(&st).unwrap();
    for key in ["name", "size", "mode", "mtime", "linkTarget"] {
        assert!(json.get(key).is_some(), "{key}");
    }
}

mod io_support;

#[test]
fn a_running_containers_files_through_its_proc_root() {
    if !io_support::can_run() {
        return;
    }
    let c = io_support::Container::start("cp", &["sleep", "1000"]);
    let root = root_fd(&c.root());
    // Put a file into the running container, read it back through tar.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o600);
    h.set_size(3);
    b.append_data(&mut h, "hello.txt", &b"hi\n"[..]).unwrap();
    archive::extract(&root, "/tmp", false, &b.into_inner().unwrap()[..]).unwrap();
    let out = c
        .runc()
        .args(["exec", &c.id, "cat", "/tmp/hello.txt"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    let mut tar = Vec::new();
    archive::write_tar(
        archive::open_target(&root, "/tmp/hello.txt").unwrap(),
        &mut tar,
    )
    .unwrap();
    let mut entries = tar::Archive::new(&tar[..]);
    let mut entry = entries.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(entry.path().unwrap().to_str(), Some("hello.txt"));
    let mut body = String::new();
    std::io::Read::read_to_string(&mut entry, &mut body).unwrap();
    assert_eq!(body, "hi\n");
    // The container's /bin/sh is its busybox, not the host's.
    let st = archive::path_stat(&archive::open_target(&root, "/bin/sh").unwrap());
    assert_eq!(st.link_target, "/bin/busybox");
}

// ---- through the engine (root; gorae-runc and its monitor)

#[path = "core_support/mod.rs"]
mod core_support;

async fn body_of(mut rx: tokio::sync::mpsc::Receiver<bytes::Bytes>) -> Vec<u8> {
    let mut all = Vec::new();
    while let Some(chunk) = rx.recv().await {
        all.extend_from_slice(&chunk);
    }
    all
}

fn tar_of(name: &str, data: &[u8]) -> tokio::sync::mpsc::Receiver<bytes::Bytes> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, name, data).unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    // Sent in two pieces: the extraction reads across chunk boundaries.
    let tar = b.into_inner().unwrap();
    let (a, rest) = tar.split_at(700);
    tx.try_send(bytes::Bytes::copy_from_slice(a)).unwrap();
    tx.try_send(bytes::Bytes::copy_from_slice(rest)).unwrap();
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_archive_on_stopped_and_running_containers() {
    if !io_support::can_run() {
        return;
    }
    let root = core_support::Root::new();
    let engine = root.open().await;
    let id = core_support::create(
        &engine,
        Some("cp"),
        core_support::request(&["sleep", "1003"]),
    )
    .await;
    // Created, never started: the root is mounted for the copy and unmounted after.
    engine
        .archive_put("cp", "/tmp", false, tar_of("in.txt", b"stopped\n"))
        .await
        .unwrap();
    let (header, rx) = engine.archive_get("cp", "/tmp/in.txt").await.unwrap();
    let tar = body_of(rx).await;
    let mut archive = tar::Archive::new(&tar[..]);
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
    assert_eq!(text, "stopped\n");
    assert!(!header.is_empty());
    let err = engine.archive_stat("cp", "/nope").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Could not find the file /nope in container cp"
    );
    // The target is checked before the upload is read: docker's 404 for `docker cp x
    // ctr:/nodir/`.
    let (_tx, unread) = tokio::sync::mpsc::channel(1);
    let err = engine
        .archive_put("cp", "/nodir", false, unread)
        .await
        .unwrap_err();
    assert!(matches!(err, gorae_engine::Error::NotFound(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "Could not find the file /nodir in container cp"
    );
    // A bad upload is a 400 naming the problem in printable text (the tar reader quotes the
    // header bytes it could not read).
    let (tx, junk) = tokio::sync::mpsc::channel(1);
    tx.try_send(bytes::Bytes::from(vec![0xf5u8; 2048])).unwrap();
    drop(tx);
    let err = engine
        .archive_put("cp", "/tmp", false, junk)
        .await
        .unwrap_err();
    assert!(
        matches!(err, gorae_engine::Error::InvalidParameter(_)),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.starts_with("reading the archive: "), "{text}");
    assert!(
        text.chars().all(|c| c.is_ascii_graphic() || c == ' '),
        "{text:?}"
    );
    let err = engine
        .archive_put("cp", "/bin/busybox", false, tar_of("x", b""))
        .await
        .unwrap_err();
    assert!(
        matches!(err, gorae_engine::Error::InvalidParameter(_)),
        "{err}"
    );
    // Running: through /proc/<pid>/root, and the file put before is there.
    engine.start(&id).await.unwrap();
    engine
        .archive_put("cp", "/tmp", false, tar_of("run.txt", b"running\n"))
        .await
        .unwrap();
    let (_, rx) = engine.archive_get("cp", "/tmp").await.unwrap();
    let tar = body_of(rx).await;
    let names: Vec<String> = tar::Archive::new(&tar[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["tmp/", "tmp/in.txt", "tmp/run.txt"]);
    let stat = engine.archive_stat("cp", "/bin/sh").await.unwrap();
    assert!(!stat.is_empty());
    root.teardown(engine).await;
}
