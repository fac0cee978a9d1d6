//! The content store's crash and resume semantics, image records as `docker images/tag/rmi`
//! see them, and garbage collection keeping exactly what images and snapshots need.
//! Runs as any user except the gc tests, which unpack layers (need root for ownership).

use std::io::Write;

use gorae_image::digest::Digest;
use gorae_image::error::Error;
use gorae_image::gc;
use gorae_image::manifest::Descriptor;
use gorae_image::media::{self, Compression};
use gorae_image::store::{ContentStore, ImageRecord, ImageStore};
use gorae_image::{DataRoot, Reference, Store};

fn content() -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(&DataRoot::new(dir.path())).unwrap();
    (dir, store)
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn an_interrupted_ingest_resumes_at_its_offset() {
    let (dir, store) = content();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let digest = Digest::sha256_of(&data);
    let size = Some(data.len() as u64);

    let mut first = store.writer(&digest, size).unwrap();
    assert_eq!(first.offset(), 0);
    first.write_all(&data[..300_000]).unwrap();
    drop(first); // a crash: the partial stays in ingest/

    let mut second = store.writer(&digest, size).unwrap();
    assert_eq!(second.offset(), 300_000);
    second.write_all(&data[300_000..]).unwrap();
    second.commit().unwrap();

    assert_eq!(std::fs::read(store.path(&digest)).unwrap(), data);
    assert!(files_in(&dir.path().join("ingest")).is_empty());
    assert!(store.verify_all().unwrap().is_empty());
}

#[test]
fn a_wrong_digest_leaves_nothing_in_blobs() {
    let (dir, store) = content();
    let digest = Digest::sha256_of(b"the real content");
    let mut w = store.writer(&digest, None).unwrap();
    w.write_all(b"something else").unwrap();
    match w.commit() {
        Err(Error::DigestMismatch { expected, .. }) => assert_eq!(expected, digest),
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert!(!store.has(&digest));
    assert!(files_in(&dir.path().join("blobs/sha256")).is_empty());
    assert!(files_in(&dir.path().join("ingest")).is_empty());
}

#[test]
fn a_wrong_size_is_refused() {
    let (_dir, store) = content();
    let digest = Digest::sha256_of(b"abc");
    let mut w = store.writer(&digest, Some(4)).unwrap();
    w.write_all(b"abc").unwrap();
    assert!(matches!(w.commit(), Err(Error::SizeMismatch { .. })));
    assert!(!store.has(&digest));
}

#[test]
fn a_second_writer_on_the_same_ingest_is_refused() {
    let (_dir, store) = content();
    let digest = Digest::sha256_of(b"abc");
    let first = store.writer(&digest, None).unwrap();
    let message = match store.writer(&digest, None) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("two writers on one ingest"),
    };
    assert!(message.contains(&digest.to_string()), "{message}");
    drop(first);
    let mut again = store.writer(&digest, None).unwrap();
    again.write_all(b"abc").unwrap();
    again.commit().unwrap();
    // Writing a blob that is already there just drops the ingest.
    let mut dup = store.writer(&digest, Some(3)).unwrap();
    dup.write_all(b"abc").unwrap();
    dup.commit().unwrap();
    assert!(store.has(&digest));
}

/// The ingest lock is the kernel's: another process holding it is refused, and once that
/// process is killed with SIGKILL its partial is resumed. Needs util-linux's flock(1).
#[test]
fn an_ingest_held_by_a_killed_process_is_resumed() {
    use std::os::unix::process::CommandExt;
    let (dir, store) = content();
    let digest = Digest::sha256_of(b"abc");
    let ingest = dir.path().join(format!("ingest/sha256-{}", digest.hex()));
    std::fs::write(&ingest, b"ab").unwrap();
    let mut holder = std::process::Command::new("flock")
        .arg("-x")
        .arg(&ingest)
        .args(["sleep", "600"])
        .process_group(0)
        .spawn()
        .unwrap();
    // Poll until the other process has the lock (no timing assumption: just retry).
    let refused = loop {
        match store.writer(&digest, Some(3)) {
            Ok(w) => drop(w),
            Err(e) => break e.to_string(),
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(refused.contains(&digest.to_string()), "{refused}");
    let group = rustix::process::Pid::from_raw(holder.id() as i32).unwrap();
    rustix::process::kill_process_group(group, rustix::process::Signal::KILL).unwrap();
    holder.wait().unwrap();
    let mut w = store.writer(&digest, Some(3)).unwrap();
    assert_eq!(w.offset(), 2);
    w.write_all(b"c").unwrap();
    w.commit().unwrap();
    assert_eq!(std::fs::read(store.path(&digest)).unwrap(), b"abc");
}

#[test]
fn verify_all_reports_a_corrupted_blob() {
    let (_dir, store) = content();
    let good = store.put(b"good").unwrap();
    let bad = store.put(b"bad").unwrap();
    std::fs::write(store.path(&bad), b"flipped").unwrap();
    let corrupt = store.verify_all().unwrap();
    assert_eq!(corrupt.len(), 1);
    assert_eq!(corrupt[0].path, store.path(&bad));
    assert!(store.read_document(&good).is_ok());
}

// ---- image records

fn id(hex_prefix: &str) -> Digest {
    Digest::from_sha256_hex(&format!("{hex_prefix:0<64}")).unwrap()
}

fn record(name: Option<&str>, id: Digest) -> ImageRecord {
    let manifest = Descriptor::new(
        media::OCI_MANIFEST,
        Digest::sha256_of(id.to_string().as_bytes()),
        100,
    );
    let reference: Option<Reference> = name.map(|n| n.parse().unwrap());
    ImageRecord::new(reference.as_ref(), manifest, None, id)
}

fn images() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&DataRoot::new(dir.path())).unwrap();
    (dir, store)
}

#[test]
fn resolve_by_name_id_prefix_and_digest() {
    let (_dir, images) = images();
    images.put(record(Some("busybox"), id("abcd1"))).unwrap();
    images
        .put(record(Some("localhost:5000/x:v1"), id("abcd2")))
        .unwrap();
    let busybox = images.resolve("busybox").unwrap();
    assert_eq!(busybox.name, "docker.io/library/busybox:latest");
    assert_eq!(images.resolve("busybox:latest").unwrap().id, id("abcd1"));
    assert_eq!(
        images.resolve(&id("abcd1").to_string()).unwrap().id,
        id("abcd1")
    );
    assert_eq!(images.resolve("abcd2").unwrap().name, "localhost:5000/x:v1");
    let by_digest = format!("busybox@{}", busybox.manifest.digest);
    assert_eq!(images.resolve(&by_digest).unwrap().id, id("abcd1"));

    let ambiguous = images.resolve("abcd").unwrap_err();
    assert!(
        matches!(ambiguous, Error::ImageConflict { .. }),
        "{ambiguous}"
    );
    assert!(matches!(
        images.resolve("abc"),
        Err(Error::ImageNotFound(_))
    ));
    assert!(matches!(
        images.resolve("busybox:2"),
        Err(Error::ImageNotFound(_))
    ));
}

#[test]
fn rmi_by_name_untags_and_by_id_needs_force_for_several_names() {
    let (_dir, images) = images();
    images.put(record(Some("a"), id("1"))).unwrap();
    images.tag("a", &"b:v2".parse().unwrap()).unwrap();
    images
        .tag(&id("1").hex()[..8], &"c".parse().unwrap())
        .unwrap();
    assert_eq!(images.list().unwrap().len(), 3);

    let removed = images.remove("b:v2", false).unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].name, "docker.io/library/b:v2");

    let conflict = images.remove(&id("1").to_string(), false).unwrap_err();
    assert!(conflict.to_string().contains("force"), "{conflict}");
    assert_eq!(images.list().unwrap().len(), 2);
    assert_eq!(images.remove(&id("1").to_string(), true).unwrap().len(), 2);
    assert!(images.list().unwrap().is_empty());

    images.put(record(Some("only"), id("2"))).unwrap();
    assert_eq!(images.remove("2000", false).unwrap().len(), 1);
    assert!(images.remove("only", false).is_err());
}

#[test]
fn rmi_by_digest_removes_the_digest_pull_only() {
    let (_dir, images) = images();
    let tagged = record(Some("localhost:5000/x:1"), id("5"));
    let pinned_ref: Reference = format!("localhost:5000/x@{}", tagged.manifest.digest)
        .parse()
        .unwrap();
    let mut pinned = tagged.clone();
    pinned.name = pinned_ref.to_string();
    images.put_all(vec![tagged, pinned]).unwrap();
    let removed = images.remove(&pinned_ref.to_string(), false).unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].name, pinned_ref.to_string());
    // With no digest record left, the digest still finds the tagged image.
    assert_eq!(images.resolve(&pinned_ref.to_string()).unwrap().id, id("5"));
}

#[test]
fn a_moved_tag_leaves_the_old_image_dangling() {
    let (_dir, images) = images();
    images.put(record(Some("app"), id("1"))).unwrap();
    images.put(record(Some("app"), id("2"))).unwrap();
    let all = images.list().unwrap();
    assert_eq!(all.len(), 2);
    let dangling: Vec<_> = all.iter().filter(|r| r.is_dangling()).collect();
    assert_eq!(dangling.len(), 1);
    assert_eq!(dangling[0].id, id("1"));
    assert!(dangling[0].reference().is_none());
    // Still reachable by ID; a new name makes it non-dangling again.
    images
        .tag(&id("1").to_string(), &"old".parse().unwrap())
        .unwrap();
    assert!(images.list().unwrap().iter().all(|r| !r.is_dangling()));
    images.put(record(Some("old"), id("3"))).unwrap();
    assert_eq!(images.remove_dangling().unwrap().len(), 1);
    assert_eq!(images.list().unwrap().len(), 2);
}

#[test]
fn tag_refuses_a_digest_target_and_unknown_sources() {
    let (_dir, images) = images();
    images.put(record(Some("a"), id("1"))).unwrap();
    let target: Reference = format!("b@{}", id("9")).parse().unwrap();
    assert!(images.tag("a", &target).is_err());
    assert!(matches!(
        images.tag("nope", &"b".parse().unwrap()),
        Err(Error::ImageNotFound(_))
    ));
}

#[test]
fn concurrent_writers_lose_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let root = DataRoot::new(dir.path());
            std::thread::spawn(move || {
                let images = ImageStore::open(&root).unwrap();
                for i in 0..10 {
                    let name = format!("img{t}:v{i}");
                    images
                        .put(record(Some(&name), id(&format!("{t}{i}"))))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let images = ImageStore::open(&DataRoot::new(dir.path())).unwrap();
    assert_eq!(images.list().unwrap().len(), 80);
}

// ---- garbage collection (needs root: layers keep ownership)

/// A one-layer image built in the store: a gzip layer blob, its unpacked layer, config and
/// manifest. Returns the record (not yet written) and the layer's diff ID.
fn make_image(store: &Store, name: Option<&str>, file: &str) -> (ImageRecord, Digest) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(file.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    tar.append_data(&mut header, file, file.as_bytes()).unwrap();
    let tar = tar.into_inner().unwrap();
    let diff_id = Digest::sha256_of(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let blob = gz.finish().unwrap();
    let layer = store.content.put(&blob).unwrap();
    let unpacked = store
        .layers
        .unpack(&mut &blob[..], Compression::Gzip, Some(&diff_id), file)
        .unwrap();
    assert_eq!(unpacked.diff_id, diff_id);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]}
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = store.content.put(&config).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": media::OCI_LAYER_GZIP, "digest": layer, "size": blob.len()}]
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = store.content.put(&manifest).unwrap();
    let descriptor = Descriptor::new(media::OCI_MANIFEST, manifest_digest, manifest.len() as u64);
    let reference: Option<Reference> = name.map(|n| n.parse().unwrap());
    let record = ImageRecord::new(reference.as_ref(), descriptor, None, config_digest);
    (record, diff_id)
}

#[test]
fn gc_keeps_what_images_and_snapshots_need_and_removes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (kept, kept_layer) = make_image(&store, Some("kept"), "kept.txt");
    store.images.put(kept.clone()).unwrap();
    let (removed, removed_layer) = make_image(&store, Some("removed"), "removed.txt");
    store.images.put(removed).unwrap();
    let (_, snapshot_layer) = make_image(&store, None, "snap.txt");
    store
        .snapshots
        .create("c1", std::slice::from_ref(&snapshot_layer))
        .unwrap();
    let stray = store.content.put(b"nobody needs this").unwrap();
    let mut partial = store
        .content
        .writer(&Digest::sha256_of(b"x"), None)
        .unwrap();
    partial.write_all(b"half").unwrap();
    drop(partial);

    store.images.remove("removed", false).unwrap();
    let report = gc::collect(&store).unwrap();

    assert!(store.content.has(&kept.manifest.digest));
    assert!(store.content.has(&kept.id));
    assert!(store.layers.has(&kept_layer));
    assert!(store.layers.has(&snapshot_layer));
    assert!(!store.layers.has(&removed_layer));
    assert!(!store.content.has(&stray));
    // removed image: manifest, config, layer blob; snapshot image: same three; the stray.
    assert_eq!(report.blobs_removed, 7);
    assert_eq!(report.layers_removed, 1);
    assert!(report.bytes_freed > 0);
    // A fresh partial download stays resumable; a day-old one is collected.
    let partials = files_in(&store.root.ingest_dir());
    assert_eq!(partials.len(), 1);
    assert_eq!(report.temporaries_removed, 0);
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86400);
    std::fs::File::options()
        .write(true)
        .open(store.root.ingest_dir().join(&partials[0]))
        .unwrap()
        .set_modified(two_days_ago)
        .unwrap();
    let report = gc::collect(&store).unwrap();
    assert_eq!(report.temporaries_removed, 1);
    assert!(files_in(&store.root.ingest_dir()).is_empty());
    assert_eq!(store.content.verify_all().unwrap().len(), 0);
    store.snapshots.remove("c1").unwrap();
}

#[test]
fn prune_removes_dangling_images_and_their_content() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (first, first_layer) = make_image(&store, Some("app"), "v1");
    store.images.put(first.clone()).unwrap();
    let (second, second_layer) = make_image(&store, Some("app"), "v2");
    store.images.put(second).unwrap();

    let (pruned, report) = gc::prune(&store).unwrap();
    assert_eq!(pruned.len(), 1);
    assert_eq!(pruned[0].id, first.id);
    assert_eq!(report.layers_removed, 1);
    assert!(!store.layers.has(&first_layer));
    assert!(store.layers.has(&second_layer));
    assert!(!store.content.has(&first.manifest.digest));
    assert_eq!(store.images.list().unwrap().len(), 1);
}
