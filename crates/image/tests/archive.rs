//! save, load and import for real: a busybox image imported from /bin/busybox
//! (busybox-static), saved and loaded back in both formats, archives exchanged with skopeo
//! (and an image built by umoci), and malicious archives refused with nothing left behind.
//!
//! Needs root (layers keep file ownership), busybox-static, skopeo and umoci.

use std::path::Path;
use std::process::Command;

use gorae_image::archive::{self, ImportOptions, SaveFormat};
use gorae_image::digest::Digest;
use gorae_image::manifest::{ImageConfig, ImageIndex, Manifest};
use gorae_image::{ImageRecord, Store};

const BUSYBOX: &str = "/bin/busybox";

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A rootfs tarball: bin/busybox and bin/sh -> busybox.
fn busybox_rootfs() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut dir = owned_by_root(tar::EntryType::Directory, 0o755);
    tar.append_data(&mut dir, "bin/", &[][..]).unwrap();
    tar.append_path_with_name(BUSYBOX, "bin/busybox").unwrap();
    let mut link = owned_by_root(tar::EntryType::Symlink, 0o777);
    tar.append_link(&mut link, "bin/sh", "busybox").unwrap();
    tar.into_inner().unwrap()
}

fn owned_by_root(kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    header
}

fn import_busybox(store: &Store, name: &str) -> ImageRecord {
    let options = ImportOptions {
        reference: Some(name.parse().unwrap()),
        changes: vec![r#"CMD ["sh"]"#.into(), "ENV PATH=/bin".into()],
        message: Some("test".into()),
    };
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&busybox_rootfs()).unwrap();
        e.finish().unwrap()
    };
    archive::import(store, &mut &gz[..], &options).unwrap()
}

fn config_of(store: &Store, record: &ImageRecord) -> ImageConfig {
    ImageConfig::parse(&store.content.read_document(&record.id).unwrap()).unwrap()
}

/// The image's single layer has a byte-identical busybox.
fn assert_busybox_layer(store: &Store, record: &ImageRecord) {
    let config = config_of(store, record);
    let top = config.rootfs.diff_ids.last().unwrap();
    let dir = store.layers.dir(top);
    assert_eq!(
        std::fs::read(dir.join("bin/busybox")).unwrap(),
        std::fs::read(BUSYBOX).unwrap()
    );
}

#[test]
fn import_makes_a_runnable_busybox_image() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let record = import_busybox(&store, "localhost/busybox");
    assert_eq!(record.name, "localhost/busybox:latest");
    let config = config_of(&store, &record);
    let run_config = config.config.clone().unwrap();
    assert_eq!(run_config.cmd.unwrap(), ["sh"]);
    assert_eq!(run_config.env.unwrap(), ["PATH=/bin"]);
    assert_eq!(config.os, "linux");
    assert_busybox_layer(&store, &record);
    let layer = store.layers.dir(&config.rootfs.diff_ids[0]);
    assert_eq!(
        std::fs::read_link(layer.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    // The stored blob is gzip of exactly the tar the diff ID names.
    let (Manifest::Image(m), _) = Manifest::parse(
        &store
            .content
            .read_document(&record.manifest.digest)
            .unwrap(),
        None,
    )
    .unwrap() else {
        panic!("not an image manifest")
    };
    let mut plain = Vec::new();
    let blob = store.content.open_blob(&m.layers[0].digest).unwrap();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(blob), &mut plain).unwrap();
    assert_eq!(Digest::sha256_of(&plain), config.rootfs.diff_ids[0]);
    assert!(store.content.verify_all().unwrap().is_empty());
}

#[test]
fn save_then_load_roundtrips_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let record = import_busybox(&store, "localhost:5000/busybox:1");
    store
        .images
        .tag("localhost:5000/busybox:1", &"busybox".parse().unwrap())
        .unwrap();
    for format in [SaveFormat::Docker, SaveFormat::Oci] {
        let mut tarball = Vec::new();
        let names = [
            "localhost:5000/busybox:1".to_string(),
            "busybox".to_string(),
        ];
        archive::save(&store, &names, format, &mut tarball).unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let other = Store::open(other_dir.path()).unwrap();
        let loaded = archive::load(&other, &mut &tarball[..]).unwrap();
        let mut names: Vec<_> = loaded.iter().map(|r| r.name.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "docker.io/library/busybox:latest",
                "localhost:5000/busybox:1"
            ],
            "{format:?}"
        );
        for r in &loaded {
            assert_eq!(r.id, record.id);
            assert_eq!(r.manifest.digest, record.manifest.digest);
        }
        assert_busybox_layer(&other, &loaded[0]);
        assert!(other.content.verify_all().unwrap().is_empty());
        let entries = tar_names(&tarball);
        assert_eq!(
            entries.contains(&"manifest.json".to_string()),
            format == SaveFormat::Docker
        );
        assert!(entries.contains(&"index.json".to_string()));
    }
}

#[test]
fn an_archive_saved_by_id_loads_as_a_dangling_image() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let record = import_busybox(&store, "app");
    let mut tarball = Vec::new();
    archive::save(
        &store,
        &[record.id.to_string()],
        SaveFormat::Oci,
        &mut tarball,
    )
    .unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let other = Store::open(other_dir.path()).unwrap();
    let loaded = archive::load(&other, &mut &tarball[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    assert!(loaded[0].is_dangling());
    assert_eq!(
        other.images.resolve(&record.id.hex()[..12]).unwrap().id,
        record.id
    );
}

fn tar_names(tarball: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(tarball);
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

/// The config of the one image in the OCI layout skopeo wrote at `layout`.
fn skopeo_config(layout: &Path) -> (Digest, ImageConfig) {
    let index: ImageIndex =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest = &index.manifests[0].digest;
    let path = layout.join("blobs/sha256").join(manifest.hex());
    let (Manifest::Image(m), _) = Manifest::parse(&std::fs::read(path).unwrap(), None).unwrap()
    else {
        panic!("not an image manifest")
    };
    let config = std::fs::read(layout.join("blobs/sha256").join(m.config.digest.hex())).unwrap();
    (m.config.digest, ImageConfig::parse(&config).unwrap())
}

#[test]
fn skopeo_reads_what_gorae_saves() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let record = import_busybox(&store, "localhost/busybox:1");
    let work = tempfile::tempdir().unwrap();
    for (format, transport) in [
        (SaveFormat::Docker, "docker-archive"),
        (SaveFormat::Oci, "oci-archive"),
    ] {
        let file = work.path().join(format!("{transport}.tar"));
        let mut out = std::fs::File::create(&file).unwrap();
        archive::save(&store, &["localhost/busybox:1".into()], format, &mut out).unwrap();
        let layout = work.path().join(transport);
        let source = format!("{transport}:{}", file.display());
        let dest = format!("oci:{}:copied", layout.display());
        run("skopeo", &["copy", "--quiet", &source, &dest]);
        let (digest, config) = skopeo_config(&layout);
        // skopeo rewrites a docker config as an OCI one; from an OCI archive it copies it.
        if format == SaveFormat::Oci {
            assert_eq!(digest, record.id);
        }
        let ours = config_of(&store, &record);
        assert_eq!(config.rootfs.diff_ids, ours.rootfs.diff_ids, "{transport}");
        assert_eq!(
            config.config.unwrap().cmd,
            ours.config.unwrap().cmd,
            "{transport}"
        );
    }
}

/// An image built with umoci (busybox in its rootfs), written by skopeo as `docker save`
/// and OCI archives.
fn umoci_image(work: &Path) -> (String, String) {
    let layout = work.join("layout");
    let bundle = work.join("bundle");
    let image = format!("{}:t", layout.display());
    run("umoci", &["init", "--layout", layout.to_str().unwrap()]);
    run("umoci", &["new", "--image", &image]);
    run(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &image,
            bundle.to_str().unwrap(),
        ],
    );
    std::fs::create_dir_all(bundle.join("rootfs/bin")).unwrap();
    std::fs::copy(BUSYBOX, bundle.join("rootfs/bin/busybox")).unwrap();
    run(
        "umoci",
        &["repack", "--image", &image, bundle.to_str().unwrap()],
    );
    run(
        "umoci",
        &["config", "--image", &image, "--config.cmd", "sh"],
    );
    let docker = work.join("docker.tar");
    let oci = work.join("oci.tar");
    let source = format!("oci:{image}");
    run(
        "skopeo",
        &[
            "copy",
            "--quiet",
            &source,
            &format!("docker-archive:{}:localhost/umoci:t", docker.display()),
        ],
    );
    run(
        "skopeo",
        &[
            "copy",
            "--quiet",
            &source,
            &format!("oci-archive:{}:localhost/umoci:t", oci.display()),
        ],
    );
    (docker.display().to_string(), oci.display().to_string())
}

#[test]
fn gorae_loads_what_skopeo_writes_from_an_umoci_image() {
    let work = tempfile::tempdir().unwrap();
    let (docker, oci) = umoci_image(work.path());
    for file in [docker, oci] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let loaded = archive::load(&store, &mut std::fs::File::open(&file).unwrap()).unwrap();
        assert_eq!(loaded.len(), 1, "{file}");
        assert_eq!(loaded[0].name, "localhost/umoci:t", "{file}");
        let config = config_of(&store, &loaded[0]);
        assert_eq!(config.config.clone().unwrap().cmd.unwrap(), ["sh"]);
        assert_busybox_layer(&store, &loaded[0]);
        assert!(store.content.verify_all().unwrap().is_empty());
    }
}

// ---- old docker archives and malicious ones, built by hand

fn raw_entry(
    tar: &mut tar::Builder<Vec<u8>>,
    name: &[u8],
    kind: tar::EntryType,
    link: &[u8],
    data: &[u8],
) {
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    header.set_cksum();
    tar.append(&header, data).unwrap();
}

fn file(tar: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    raw_entry(tar, name.as_bytes(), tar::EntryType::Regular, b"", data);
}

/// An old `docker save`: `<id>/layer.tar` files, the second a symlink to the first (docker
/// links duplicate layers so), `<id>.json` config, manifest.json.
fn legacy_archive() -> (Vec<u8>, Digest) {
    let layer = busybox_rootfs();
    let diff_id = Digest::sha256_of(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id, diff_id]}
    }))
    .unwrap();
    let id = Digest::sha256_of(&config);
    let manifest = serde_json::json!([{
        "Config": format!("{}.json", id.hex()),
        "RepoTags": ["old:v1"],
        "Layers": ["aaaa/layer.tar", "bbbb/layer.tar"]
    }]);
    let mut tar = tar::Builder::new(Vec::new());
    file(&mut tar, "aaaa/layer.tar", &layer);
    file(&mut tar, "aaaa/VERSION", b"1.0");
    raw_entry(
        &mut tar,
        b"bbbb/layer.tar",
        tar::EntryType::Symlink,
        b"../aaaa/layer.tar",
        b"",
    );
    file(&mut tar, &format!("{}.json", id.hex()), &config);
    file(
        &mut tar,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    (tar.into_inner().unwrap(), id)
}

#[test]
fn old_docker_archives_load() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (tarball, id) = legacy_archive();
    let loaded = archive::load(&store, &mut &tarball[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].name, "docker.io/library/old:v1");
    assert_eq!(loaded[0].id, id);
    assert_busybox_layer(&store, &loaded[0]);
    // Saved again, it is a valid OCI archive skopeo reads.
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("resaved.tar");
    archive::save(
        &store,
        &["old:v1".into()],
        SaveFormat::Oci,
        &mut std::fs::File::create(&out).unwrap(),
    )
    .unwrap();
    let dest = format!("oci:{}:x", work.path().join("layout").display());
    run(
        "skopeo",
        &[
            "copy",
            "--quiet",
            &format!("oci-archive:{}", out.display()),
            &dest,
        ],
    );
}

fn assert_nothing_left(store: &Store, root: &Path) {
    assert!(store.content.list().unwrap().is_empty(), "blobs left");
    assert!(store.images.list().unwrap().is_empty(), "records left");
    assert!(store.layers.list().unwrap().is_empty(), "layers left");
    assert_eq!(
        std::fs::read_dir(root.join("ingest")).unwrap().count(),
        0,
        "ingests left"
    );
}

#[test]
fn malicious_archives_are_refused_and_leave_nothing() {
    let data = b"some content";
    let digest = Digest::sha256_of(data);
    let lie = format!("blobs/sha256/{}", Digest::sha256_of(b"other").hex());
    type Case = (&'static str, Box<dyn Fn(&mut tar::Builder<Vec<u8>>)>);
    let cases: Vec<Case> = vec![
        ("\"..\"", Box::new(|t| file(t, "../escape", b"x"))),
        ("\"..\"", Box::new(|t| file(t, "blobs/../../escape", b"x"))),
        ("absolute", Box::new(|t| file(t, "/tmp/escape", b"x"))),
        ("does not match", Box::new(move |t| file(t, &lie, data))),
        (
            "not a blob name",
            Box::new(|t| file(t, "blobs/sha256/zzz", b"x")),
        ),
        (
            "not an earlier file",
            Box::new(|t| {
                raw_entry(
                    t,
                    b"blobs/sha256/x",
                    tar::EntryType::Symlink,
                    b"/etc/passwd",
                    b"",
                )
            }),
        ),
        (
            "not an earlier file",
            Box::new(|t| raw_entry(t, b"a", tar::EntryType::Link, b"../../etc/passwd", b"")),
        ),
        (
            "not allowed",
            Box::new(|t| raw_entry(t, b"dev", tar::EntryType::Char, b"", b"")),
        ),
        (
            "neither in the archive",
            Box::new(move |t| {
                let blob = format!("blobs/sha256/{}", digest.hex());
                file(t, &blob, data);
                let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": Digest::sha256_of(b"missing"), "size": 7}]});
                file(t, "index.json", &serde_json::to_vec(&index).unwrap());
            }),
        ),
        (
            "neither index.json nor manifest.json",
            Box::new(|t| file(t, "junk", b"x")),
        ),
        (
            "lists no image",
            Box::new(|t| file(t, "index.json", br#"{"schemaVersion":2,"manifests":[]}"#)),
        ),
    ];
    for (expected, build) in cases {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let store = Store::open(&root).unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        build(&mut tar);
        let tarball = tar.into_inner().unwrap();
        let err = archive::load(&store, &mut &tarball[..])
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "expected {expected:?} in: {err}");
        assert_nothing_left(&store, &root);
        assert!(!dir.path().join("escape").exists());
    }
}

#[test]
fn import_refuses_bad_changes_before_touching_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let options = ImportOptions {
        changes: vec!["RUN rm -rf /".into()],
        ..ImportOptions::default()
    };
    let tar = busybox_rootfs();
    let err = archive::import(&store, &mut &tar[..], &options).unwrap_err();
    assert!(err.to_string().contains("RUN"), "{err}");
    assert_nothing_left(&store, dir.path());
}

#[test]
fn import_takes_plain_gzip_and_zstd_rootfs_alike() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let plain = busybox_rootfs();
    let zstd = zstd::encode_all(&plain[..], 3).unwrap();
    let gzip = import_busybox(&store, "gz");
    let mut diff_ids = vec![config_of(&store, &gzip).rootfs.diff_ids];
    for (name, input) in [("plain", &plain), ("zstd", &zstd)] {
        let options = ImportOptions {
            reference: Some(name.parse().unwrap()),
            ..ImportOptions::default()
        };
        let record = archive::import(&store, &mut &input[..], &options).unwrap();
        diff_ids.push(config_of(&store, &record).rootfs.diff_ids);
    }
    assert!(diff_ids.iter().all(|d| *d == diff_ids[0]), "{diff_ids:?}");
    assert_eq!(store.layers.list().unwrap().len(), 1);
    let pinned = ImportOptions {
        reference: Some(format!("x@{}", diff_ids[0][0]).parse().unwrap()),
        ..ImportOptions::default()
    };
    assert!(archive::import(&store, &mut &plain[..], &pinned).is_err());
}
