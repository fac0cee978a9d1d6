//! Layer unpacking: content, whiteouts, compressions, diff IDs, and hostile tarballs.
//!
//! Needs root (ownership, device nodes, whiteouts, trusted.* xattrs, overlay mounts); CI
//! runs these as root.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Cursor, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use gorae_image::layer::snapshot::Snapshots;
use gorae_image::layer::LayerStore;
use gorae_image::{Compression, DataRoot, Digest, Error};
use tar::{Builder, EntryType, Header};

const MTIME: u64 = 1_600_000_000;

/// A data root and a sentinel directory next to it that no layer may touch.
struct Env {
    _tmp: tempfile::TempDir,
    root: DataRoot,
    sentinel: PathBuf,
    store: LayerStore,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = DataRoot::new(tmp.path().join("root"));
        let sentinel = tmp.path().join("sentinel");
        fs::create_dir_all(sentinel.join("etc")).unwrap();
        fs::write(sentinel.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        let store = LayerStore::open(&root).unwrap();
        Env {
            _tmp: tmp,
            root,
            sentinel,
            store,
        }
    }

    fn unpack(&self, tar: &[u8]) -> gorae_image::Result<PathBuf> {
        let unpacked = self
            .store
            .unpack(&mut Cursor::new(tar), Compression::None, None, "test")?;
        Ok(self.store.dir(&unpacked.diff_id))
    }

    /// Everything under the sentinel: path -> (mode, size, content).
    fn sentinel_state(&self) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
        let mut state = BTreeMap::new();
        walk(&self.sentinel, &mut state);
        state
    }

    /// Nothing in layers/ but (empty) bookkeeping directories.
    fn assert_no_layer_left(&self) {
        assert!(self.store.list().unwrap().is_empty());
        self.assert_layers_tmp_empty();
    }

    fn assert_layers_tmp_empty(&self) {
        let tmp = self.root.layers_tmp_dir();
        let left: Vec<_> = fs::read_dir(&tmp)
            .map(|d| d.flatten().collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "temp dirs left: {left:?}");
    }
}

fn walk(dir: &Path, state: &mut BTreeMap<PathBuf, (u32, Vec<u8>)>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).unwrap();
        let content = if meta.is_file() {
            fs::read(&path).unwrap()
        } else {
            Vec::new()
        };
        state.insert(path.clone(), (meta.mode(), content));
        if meta.is_dir() {
            walk(&path, state);
        }
    }
}

fn header(kind: EntryType, mode: u32, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn file(b: &mut Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]) {
    let mut h = header(EntryType::Regular, mode, data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

fn dir(b: &mut Builder<Vec<u8>>, path: &str, mode: u32) {
    let mut h = header(EntryType::Directory, mode, 0);
    b.append_data(&mut h, path, &[][..]).unwrap();
}

fn link(b: &mut Builder<Vec<u8>>, kind: EntryType, path: &str, target: &str) {
    let mut h = header(kind, 0o777, 0);
    b.append_link(&mut h, path, target).unwrap();
}

/// An entry with the name and link name bytes written as given: what a hostile tool makes.
fn raw(b: &mut Builder<Vec<u8>>, name: &[u8], kind: EntryType, linkname: &[u8], data: &[u8]) {
    let mut h = header(kind, 0o644, data.len() as u64);
    let old = h.as_old_mut();
    old.name = [0; 100];
    old.name[..name.len()].copy_from_slice(name);
    old.linkname[..linkname.len()].copy_from_slice(linkname);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

/// A GNU long-name record, then a file entry whose own name field is a dummy.
fn long_name(b: &mut Builder<Vec<u8>>, name: &[u8], data: &[u8]) {
    let mut long = name.to_vec();
    long.push(0);
    raw(b, b"././@LongLink", EntryType::GNULongName, b"", &long);
    raw(b, b"dummy", EntryType::Regular, b"", data);
}

fn finish(b: Builder<Vec<u8>>) -> Vec<u8> {
    b.into_inner().unwrap()
}

fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(path, name, &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// security.capability v2 granting cap_net_raw (13) permitted + effective, as `setcap
/// cap_net_raw+ep` writes it.
fn net_raw_capability() -> Vec<u8> {
    let mut cap = Vec::new();
    cap.extend_from_slice(&0x0200_0001u32.to_le_bytes());
    cap.extend_from_slice(&(1u32 << 13).to_le_bytes());
    cap.extend_from_slice(&[0; 12]);
    cap
}

fn normal_layer() -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    dir(&mut b, "./", 0o755);
    dir(&mut b, "bin", 0o755);
    file(&mut b, "bin/busybox", 0o755, b"#!busybox");
    link(&mut b, EntryType::Symlink, "bin/sh", "/bin/busybox");
    link(&mut b, EntryType::Link, "bin/ls", "bin/busybox");
    b.append_pax_extensions([
        (
            "SCHILY.xattr.security.capability",
            &net_raw_capability()[..],
        ),
        ("SCHILY.xattr.user.note", &b"hello"[..]),
    ])
    .unwrap();
    let mut h = header(EntryType::Regular, 0o4755, 4);
    h.set_uid(1000);
    h.set_gid(1001);
    b.append_data(&mut h, "bin/su", &b"su!!"[..]).unwrap();
    file(&mut b, "bin/ping", 0o755, b"ping");
    dir(&mut b, "tmp", 0o1777);
    dir(&mut b, "srv/setgid", 0o2775);
    let mut h = header(EntryType::Char, 0o666, 0);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    b.append_data(&mut h, "dev/null", &[][..]).unwrap();
    let mut h = header(EntryType::Fifo, 0o600, 0);
    b.append_data(&mut h, "run/fifo", &[][..]).unwrap();
    // Mostly zeros: unpacked with holes, read back identical.
    let mut big = vec![0u8; 8 << 20];
    big[..4].copy_from_slice(b"head");
    let end = big.len() - 4;
    big[end..].copy_from_slice(b"tail");
    file(&mut b, "var/big", 0o644, &big);
    // The directory's mtime must survive the file created in it afterwards.
    dir(&mut b, "etc", 0o755);
    file(&mut b, "etc/hostname", 0o644, b"gorae\n");
    finish(b)
}

#[test]
fn unpacks_content_with_metadata() {
    let env = Env::new();
    let tar = normal_layer();
    let mut blob = Cursor::new(&tar);
    let unpacked = env
        .store
        .unpack(&mut blob, Compression::None, None, "test")
        .unwrap();
    assert_eq!(unpacked.diff_id, Digest::sha256_of(&tar));
    assert_eq!(unpacked.tar_size, tar.len() as u64);
    assert_eq!(blob.position(), tar.len() as u64, "blob read to its end");
    assert_eq!(env.store.list().unwrap(), vec![unpacked.diff_id.clone()]);
    let root = env.store.dir(&unpacked.diff_id);

    assert_eq!(fs::read(root.join("bin/busybox")).unwrap(), b"#!busybox");
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    let busybox = fs::metadata(root.join("bin/busybox")).unwrap();
    let ls = fs::metadata(root.join("bin/ls")).unwrap();
    assert_eq!(busybox.ino(), ls.ino());
    assert_eq!(busybox.nlink(), 2);
    assert_eq!(busybox.mtime(), MTIME as i64);

    let su = fs::metadata(root.join("bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o4755);
    assert_eq!((su.uid(), su.gid()), (1000, 1001));
    assert_eq!(
        get_xattr(&root.join("bin/su"), "security.capability"),
        Some(net_raw_capability())
    );
    assert_eq!(
        get_xattr(&root.join("bin/su"), "user.note").as_deref(),
        Some(&b"hello"[..])
    );
    // PAX records belong to one entry only.
    assert_eq!(get_xattr(&root.join("bin/ping"), "user.note"), None);

    assert_eq!(
        fs::metadata(root.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    assert_eq!(
        fs::metadata(root.join("srv/setgid")).unwrap().mode() & 0o7777,
        0o2775
    );
    assert_eq!(
        fs::metadata(root.join("srv")).unwrap().mode() & 0o7777,
        0o755
    );
    let null = fs::metadata(root.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);
    assert!(fs::metadata(root.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());

    let big = fs::metadata(root.join("var/big")).unwrap();
    assert_eq!(big.len(), 8 << 20);
    assert!(big.blocks() * 512 < 1 << 20, "zeros became holes");
    let content = fs::read(root.join("var/big")).unwrap();
    assert!(content.starts_with(b"head") && content.ends_with(b"tail"));
    assert!(content[4..content.len() - 4].iter().all(|&b| b == 0));

    assert_eq!(
        fs::metadata(root.join("etc")).unwrap().mtime(),
        MTIME as i64
    );
    assert_eq!(fs::metadata(&root).unwrap().mode() & 0o7777, 0o755);
    env.assert_layers_tmp_empty();
}

#[test]
fn later_entries_replace_earlier_ones() {
    let env = Env::new();
    let mut b = Builder::new(Vec::new());
    file(&mut b, "a", 0o644, b"first");
    file(&mut b, "a", 0o600, b"second");
    dir(&mut b, "d", 0o755);
    file(&mut b, "d/kept", 0o644, b"kept");
    dir(&mut b, "d", 0o700);
    file(&mut b, "f", 0o644, b"file");
    dir(&mut b, "f", 0o755);
    dir(&mut b, "g/sub", 0o755);
    file(&mut b, "g", 0o644, b"now a file");
    link(&mut b, EntryType::Symlink, "s", "/nowhere");
    file(&mut b, "s", 0o644, b"not a link");
    let root = env.unpack(&finish(b)).unwrap();
    assert_eq!(fs::read(root.join("a")).unwrap(), b"second");
    assert_eq!(fs::metadata(root.join("a")).unwrap().mode() & 0o777, 0o600);
    assert_eq!(fs::read(root.join("d/kept")).unwrap(), b"kept");
    assert_eq!(fs::metadata(root.join("d")).unwrap().mode() & 0o777, 0o700);
    assert!(fs::metadata(root.join("f")).unwrap().is_dir());
    assert_eq!(fs::read(root.join("g")).unwrap(), b"now a file");
    assert_eq!(fs::read(root.join("s")).unwrap(), b"not a link");
}

#[test]
fn whiteouts_become_overlay_whiteouts_and_hide_lower_files() {
    let env = Env::new();
    let mut b = Builder::new(Vec::new());
    file(&mut b, "gone", 0o644, b"lower");
    file(&mut b, "keep", 0o644, b"lower");
    file(&mut b, "dir/old", 0o644, b"lower");
    file(&mut b, "dir/sub/deep", 0o644, b"lower");
    let lower_tar = finish(b);
    env.unpack(&lower_tar).unwrap();

    let mut b = Builder::new(Vec::new());
    file(&mut b, ".wh.gone", 0o644, b"");
    dir(&mut b, "dir", 0o755);
    file(&mut b, "dir/.wh..wh..opq", 0o644, b"");
    file(&mut b, "dir/new", 0o644, b"upper");
    file(&mut b, ".wh..wh.plnk", 0o644, b"");
    let upper_tar = finish(b);
    let upper = env.unpack(&upper_tar).unwrap();

    let whiteout = fs::symlink_metadata(upper.join("gone")).unwrap();
    assert!(whiteout.file_type().is_char_device());
    assert_eq!(whiteout.rdev(), 0);
    assert_eq!(
        get_xattr(&upper.join("dir"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!upper.join(".wh..wh.plnk").exists());

    // Overlay itself agrees: mounted over the lower layer, they hide its files.
    let target = tempfile::tempdir().unwrap();
    let snapshots = Snapshots::open(&env.root).unwrap();
    let layers = [Digest::sha256_of(&lower_tar), Digest::sha256_of(&upper_tar)];
    snapshots.mount_readonly(&layers, target.path()).unwrap();
    let mut seen: Vec<String> = Vec::new();
    for sub in ["", "dir"] {
        for entry in fs::read_dir(target.path().join(sub)).unwrap() {
            seen.push(format!(
                "{sub}/{}",
                entry.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    seen.sort();
    snapshots.unmount(target.path()).unwrap();
    assert_eq!(seen, ["/dir", "/keep", "dir/new"]);
}

#[test]
fn gzip_zstd_and_plain_give_the_same_layer() {
    let env = Env::new();
    let tar = normal_layer();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Two gzip members, as some tools write: one stream to the decoder.
    let (first, second) = tar.split_at(tar.len() / 2);
    gzip.write_all(first).unwrap();
    let mut gzip_blob = gzip.finish().unwrap();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(second).unwrap();
    gzip_blob.extend(gzip.finish().unwrap());
    let zstd_blob = zstd::encode_all(&tar[..], 3).unwrap();

    let expected = Digest::sha256_of(&tar);
    for (blob, compression) in [
        (&gzip_blob, Compression::Gzip),
        (&zstd_blob, Compression::Zstd),
        (&tar, Compression::None),
    ] {
        let mut reader = Cursor::new(blob);
        let unpacked = env
            .store
            .unpack(&mut reader, compression, Some(&expected), "test")
            .unwrap();
        assert_eq!(unpacked.diff_id, expected, "{compression:?}");
        assert_eq!(
            reader.position(),
            blob.len() as u64,
            "{compression:?} blob read to its end"
        );
        let root = env.store.dir(&expected);
        assert_eq!(fs::read(root.join("etc/hostname")).unwrap(), b"gorae\n");
        env.store.remove(&expected).unwrap();
        env.assert_no_layer_left();
    }
}

#[test]
fn bytes_after_the_end_of_archive_count_in_the_diff_id() {
    let env = Env::new();
    let mut tar = normal_layer();
    tar.extend_from_slice(&[0; 10240]);
    let unpacked = env
        .store
        .unpack(&mut Cursor::new(&tar), Compression::None, None, "t")
        .unwrap();
    assert_eq!(unpacked.diff_id, Digest::sha256_of(&tar));
    assert_eq!(unpacked.tar_size, tar.len() as u64);
}

#[test]
fn diff_id_mismatch_leaves_nothing() {
    let env = Env::new();
    let wrong = Digest::sha256_of(b"something else");
    let err = env
        .store
        .unpack(
            &mut Cursor::new(normal_layer()),
            Compression::None,
            Some(&wrong),
            "sha256:abc",
        )
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains("sha256:abc"), "{err}");
    env.assert_no_layer_left();
}

#[test]
fn corrupt_streams_leave_nothing() {
    let env = Env::new();
    let tar = normal_layer();
    let gzip = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&tar).unwrap();
        e.finish().unwrap()
    };
    let mut bad_gzip = gzip.clone();
    let middle = bad_gzip.len() / 2;
    bad_gzip[middle..middle + 64].fill(0xff);
    let truncated = &tar[..tar.len() / 3];
    for (blob, compression) in [
        (&bad_gzip[..], Compression::Gzip),
        (truncated, Compression::None),
        (&gzip[..gzip.len() - 100], Compression::Gzip),
        (
            b"not a tar at all, not a tar at all, not a tar at all".as_slice(),
            Compression::Zstd,
        ),
    ] {
        let result = env
            .store
            .unpack(&mut Cursor::new(blob), compression, None, "bad");
        assert!(result.is_err(), "{compression:?}");
        env.assert_no_layer_left();
    }
}

/// Unpacks a hostile tar: it must be refused naming `entry`, leave no layer and no temp dir,
/// and change nothing in the sentinel.
fn assert_refused(env: &Env, tar: &[u8], entry: &str) {
    let before = env.sentinel_state();
    let err = env.unpack(tar).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(
            err,
            Error::UnsafeLayerEntry { .. } | Error::LayerEntryIo { .. }
        ),
        "{message}"
    );
    assert!(
        message.contains(&format!("{entry:?}")),
        "{message} should name {entry:?}"
    );
    env.assert_no_layer_left();
    assert_eq!(
        env.sentinel_state(),
        before,
        "sentinel changed by {entry:?}"
    );
    assert!(!env.root.path().parent().unwrap().join("x").exists());
    assert!(!Path::new("/x").exists() && !Path::new("/abs").exists());
}

#[test]
fn refuses_paths_out_of_the_layer() {
    let env = Env::new();
    for name in ["../x", "/abs", "a/../../x", "./../x", "..", "a/.."] {
        let mut b = Builder::new(Vec::new());
        file(&mut b, "ok", 0o644, b"fine");
        raw(&mut b, name.as_bytes(), EntryType::Regular, b"", b"pwned");
        assert_refused(&env, &finish(b), name);
    }
}

#[test]
fn refuses_writing_through_symlinks() {
    let env = Env::new();
    let sentinel = env.sentinel.to_str().unwrap().to_string();
    let cases: Vec<(&str, String, &str)> = vec![
        ("evil", sentinel.clone(), "evil/pwned"),
        ("evil", "../../../../../../../..".into(), "evil/x"),
        ("rootlink", "/".into(), "rootlink/tmp/pwned"),
        ("dir/up", "..".into(), "dir/up/x"),
        ("etc", format!("{sentinel}/etc"), "etc/passwd"),
    ];
    for (name, target, write) in cases {
        let mut b = Builder::new(Vec::new());
        dir(&mut b, "dir", 0o755);
        link(&mut b, EntryType::Symlink, name, &target);
        raw(&mut b, write.as_bytes(), EntryType::Regular, b"", b"pwned");
        assert_refused(&env, &finish(b), write);
    }
    // Through a symlink to a directory inside the layer is refused too: never followed.
    let mut b = Builder::new(Vec::new());
    dir(&mut b, "real", 0o755);
    link(&mut b, EntryType::Symlink, "alias", "real");
    file(&mut b, "alias/file", 0o644, b"x");
    assert_refused(&env, &finish(b), "alias/file");
}

#[test]
fn refuses_hardlinks_out_of_the_layer() {
    let env = Env::new();
    let passwd = format!("{}/etc/passwd", env.sentinel.display());
    let cases: Vec<(&str, String)> = vec![
        ("l1", "../../etc/passwd".into()),
        ("l2", "/etc/passwd".into()),
        ("l3", passwd),
        ("l4", "missing/file".into()),
        ("l5", "etc/passwd".into()),
    ];
    for (name, target) in cases {
        let mut b = Builder::new(Vec::new());
        file(&mut b, "ok", 0o644, b"fine");
        raw(
            &mut b,
            name.as_bytes(),
            EntryType::Link,
            target.as_bytes(),
            b"",
        );
        assert_refused(&env, &finish(b), name);
    }
    // A hardlink whose target path goes through a symlink is refused (not followed).
    let mut b = Builder::new(Vec::new());
    link(
        &mut b,
        EntryType::Symlink,
        "etc",
        &format!("{}/etc", env.sentinel.display()),
    );
    raw(&mut b, b"l6", EntryType::Link, b"etc/passwd", b"");
    assert_refused(&env, &finish(b), "l6");
}

#[test]
fn refuses_long_and_bad_names() {
    let env = Env::new();
    // Long names are carried in GNU long-name records: checked like any other.
    let escape = format!("{}../../../x", "a/".repeat(80));
    let mut b = Builder::new(Vec::new());
    long_name(&mut b, escape.as_bytes(), b"pwned");
    assert_refused(&env, &finish(b), &escape);

    let too_long_component = "c".repeat(300);
    let mut b = Builder::new(Vec::new());
    long_name(&mut b, too_long_component.as_bytes(), b"x");
    assert_refused(&env, &finish(b), &too_long_component);

    for name in [".wh..", "a/.wh."] {
        let mut b = Builder::new(Vec::new());
        raw(&mut b, name.as_bytes(), EntryType::Regular, b"", b"");
        assert_refused(&env, &finish(b), name);
    }

    // Long but legitimate names work.
    let deep = format!("{}file", "d123456789/".repeat(40));
    let mut b = Builder::new(Vec::new());
    file(&mut b, &deep, 0o644, b"deep");
    let root = env.unpack(&finish(b)).unwrap();
    assert_eq!(fs::read(root.join(&deep)).unwrap(), b"deep");
}

#[test]
fn refuses_oversized_metadata() {
    let env = Env::new();
    let mut b = Builder::new(Vec::new());
    let huge = vec![b'v'; 5 << 20];
    b.append_pax_extensions([("SCHILY.xattr.user.huge", &huge[..])])
        .unwrap();
    file(&mut b, "f", 0o644, b"x");
    let err = env.unpack(&finish(b)).unwrap_err();
    assert!(err.to_string().contains("MiB"), "{err}");
    env.assert_no_layer_left();
}

#[test]
fn symlinks_may_point_anywhere() {
    let env = Env::new();
    let mut b = Builder::new(Vec::new());
    link(&mut b, EntryType::Symlink, "abs", "/etc/passwd");
    link(&mut b, EntryType::Symlink, "up", "../../../../etc");
    link(&mut b, EntryType::Symlink, "dangling", "nowhere/at/all");
    let root = env.unpack(&finish(b)).unwrap();
    assert_eq!(
        fs::read_link(root.join("up")).unwrap(),
        Path::new("../../../../etc")
    );
    assert_eq!(
        fs::read_link(root.join("abs")).unwrap(),
        Path::new("/etc/passwd")
    );
}

#[test]
fn empty_layer_and_remove() {
    let env = Env::new();
    let mut tar = Vec::new();
    Builder::new(&mut tar).finish().unwrap();
    let mut blob = Cursor::new(&tar);
    let unpacked = env
        .store
        .unpack(&mut blob, Compression::None, None, "empty")
        .unwrap();
    assert!(env.store.has(&unpacked.diff_id));
    // The same layer again: the one already there stays.
    env.store
        .unpack(&mut Cursor::new(&tar), Compression::None, None, "empty")
        .unwrap();
    assert_eq!(env.store.list().unwrap().len(), 1);
    // Read-only directories and whiteouts do not stop removal.
    let mut b = Builder::new(Vec::new());
    dir(&mut b, "ro", 0o555);
    file(&mut b, "ro/f", 0o444, b"x");
    file(&mut b, "ro/.wh.w", 0o644, b"");
    let data = finish(b);
    let other = env
        .store
        .unpack(&mut Cursor::new(&data), Compression::None, None, "ro")
        .unwrap();
    assert!(env.store.dir(&other.diff_id).join("ro/w").exists());
    env.store.remove(&other.diff_id).unwrap();
    env.store.remove(&unpacked.diff_id).unwrap();
    env.store.remove(&unpacked.diff_id).unwrap();
    env.assert_no_layer_left();
}

/// umoci writes layers whose stream stops right after the last file's data (no padding, no
/// end-of-archive blocks); Go's archive/tar accepts them, so gorae must. Data cut short
/// inside an entry is still an error.
#[test]
fn a_tar_cut_after_the_last_entrys_data_is_complete() {
    let mut b = Builder::new(Vec::new());
    let mut h = Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(8);
    b.append_data(&mut h, "opt/top-one", &b"top-one\n"[..])
        .unwrap();
    let full = b.into_inner().unwrap();
    let cut = &full[..512 + 8];
    let env = Env::new();
    let dir = env.unpack(cut).unwrap();
    assert_eq!(fs::read(dir.join("opt/top-one")).unwrap(), b"top-one\n");

    let env = Env::new();
    let err = env.unpack(&full[..512 + 5]).unwrap_err().to_string();
    assert!(err.contains("opt/top-one") || err.contains("tar"), "{err}");
    env.assert_no_layer_left();
}

#[test]
fn forged_overlay_xattrs_are_dropped() {
    let env = Env::new();
    let mut b = Builder::new(Vec::new());
    b.append_pax_extensions([
        ("SCHILY.xattr.trusted.overlay.opaque", &b"y"[..]),
        ("SCHILY.xattr.trusted.overlay.redirect", &b"/etc"[..]),
        ("SCHILY.xattr.trusted.kept", &b"1"[..]),
    ])
    .unwrap();
    dir(&mut b, "d", 0o755);
    let root = env.unpack(&finish(b)).unwrap();
    assert_eq!(get_xattr(&root.join("d"), "trusted.overlay.opaque"), None);
    assert_eq!(get_xattr(&root.join("d"), "trusted.overlay.redirect"), None);
    assert_eq!(
        get_xattr(&root.join("d"), "trusted.kept").as_deref(),
        Some(&b"1"[..])
    );
}
