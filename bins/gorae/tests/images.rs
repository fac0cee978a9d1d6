//! The image commands end to end on a throwaway data root, no registry: import, images,
//! inspect, tag, rmi, prune, save/load, image mount, and bad input. Needs root (overlay
//! mounts, chown while unpacking) and busybox-static.

mod support;

use std::path::Path;

use support::Gorae;

fn ids(g: &Gorae) -> Vec<String> {
    g.ok(&["images", "-q", "--no-trunc"])
        .lines()
        .map(String::from)
        .collect()
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn import_lists_and_inspects() {
    let g = Gorae::new();
    let id = g.import_busybox("busybox:1", &[]);
    assert!(id.starts_with("sha256:"), "{id}");
    let table = g.ok(&["images"]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("REPOSITORY"));
    let row = lines.next().expect("one image row");
    assert!(
        row.starts_with("busybox") && row.contains(" 1 ") && row.contains(&id[7..19]),
        "{row}"
    );
    assert_eq!(ids(&g), [id.as_str()]);

    let inspect: serde_json::Value =
        serde_json::from_str(&g.ok(&["image", "inspect", "busybox:1"])).unwrap();
    assert_eq!(inspect[0]["Id"], id.as_str());
    assert_eq!(inspect[0]["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(inspect[0]["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(inspect[0]["RepoTags"], serde_json::json!(["busybox:1"]));
    // By ID prefix too, as docker accepts.
    g.ok(&["image", "inspect", &id[7..15]]);
    let err = g.fails(&["image", "inspect", "nothere"]);
    assert!(err.contains("nothere"), "{err}");
}

#[test]
fn tag_rmi_and_gc() {
    let g = Gorae::new();
    let id = g.import_busybox("one:latest", &[]);
    g.ok(&["tag", "one", "localhost:5000/two:v2"]);
    let table = g.ok(&["images"]);
    assert!(
        table.contains("localhost:5000/two") && table.contains("v2"),
        "{table}"
    );
    // Two names: removing by ID needs -f, as docker.
    let err = g.fails(&["rmi", &id]);
    assert!(err.contains("-f") || err.contains("force"), "{err}");
    g.ok(&["rmi", "one"]);
    assert_eq!(ids(&g), [id.as_str()]);
    let layers = g.root().join("layers/sha256");
    assert_eq!(entries(&layers), 1);
    g.ok(&["rmi", "localhost:5000/two:v2"]);
    assert!(ids(&g).is_empty());
    assert_eq!(entries(&layers), 0, "the last rmi frees the layer");
    assert_eq!(entries(&g.root().join("blobs/sha256")), 0);
    g.fails(&["rmi", "one"]);
}

#[test]
fn retag_leaves_dangling_and_prune_removes_it() {
    let g = Gorae::new();
    let old = g.import_busybox("app:1", &[]);
    let new = g.import_busybox("app:1", &[("etc/version", b"2\n")]);
    assert_ne!(old, new);
    let table = g.ok(&["images"]);
    assert!(
        table.contains("<none>"),
        "the old image stays, untagged: {table}"
    );
    g.ok(&["image", "prune"]);
    assert_eq!(ids(&g), [new]);
    g.ok(&["image", "verify"]);
}

#[test]
fn same_content_is_stored_once() {
    let g = Gorae::new();
    g.import_busybox("a:1", &[]);
    let one = g.disk_use();
    g.import_busybox("b:1", &[]);
    assert_eq!(entries(&g.root().join("layers/sha256")), 1);
    let two = g.disk_use();
    // Only a few small JSON documents may be added.
    assert!(
        two - one < 16 * 1024,
        "second import added {} bytes",
        two - one
    );
}

fn mount_and_check(g: &Gorae, image: &str) {
    let target = tempfile::tempdir().unwrap();
    let t = target.path().to_str().unwrap();
    g.ok(&["image", "mount", image, t]);
    let inside = std::fs::read(target.path().join("bin/busybox"));
    let write = std::fs::write(target.path().join("tmp/x"), b"x");
    g.ok(&["image", "unmount", t]);
    assert_eq!(inside.unwrap(), std::fs::read("/bin/busybox").unwrap());
    assert!(write.is_err(), "an image mount is read-only");
    assert!(!target.path().join("bin").exists(), "unmounted");
}

#[test]
fn image_mount_shows_the_rootfs_read_only() {
    let g = Gorae::new();
    g.import_busybox("busybox", &[]);
    mount_and_check(&g, "busybox");
}

#[test]
fn save_and_load_roundtrip_in_both_formats() {
    for format in ["docker", "oci"] {
        let g = Gorae::new();
        let id = g.import_busybox("localhost:5000/bb:1", &[]);
        let out = g.root().join(format!("saved-{format}.tar"));
        g.ok(&[
            "save",
            "--format",
            format,
            "-o",
            out.to_str().unwrap(),
            "localhost:5000/bb:1",
        ]);
        let h = Gorae::new();
        let loaded = h.ok(&["load", "-i", out.to_str().unwrap()]);
        assert!(loaded.contains("localhost:5000/bb:1"), "{format}: {loaded}");
        assert_eq!(ids(&h), [id.as_str()], "{format}");
        mount_and_check(&h, "localhost:5000/bb:1");
    }
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let g = Gorae::new();
    let junk = g.root().join("junk.tar");
    std::fs::write(&junk, vec![0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5]).unwrap();
    let err = g.fails(&["import", junk.to_str().unwrap(), "x:1"]);
    assert!(
        !err.trim().is_empty() && err.lines().count() == 1,
        "one line: {err}"
    );
    let err = g.fails(&["load", "-i", junk.to_str().unwrap()]);
    assert!(!err.trim().is_empty(), "{err}");
    std::fs::remove_file(&junk).unwrap();
    assert!(ids(&g).is_empty());
    assert_eq!(entries(&g.root().join("blobs/sha256")), 0);
    assert_eq!(entries(&g.root().join("layers/sha256")), 0);
    assert_eq!(entries(&g.root().join("layers/tmp")), 0);
    assert_eq!(entries(&g.root().join("ingest")), 0);

    let err = g.fails(&["pull", "UPPER/case"]);
    assert!(err.contains("UPPER/case"), "{err}");
    let err = g.fails(&["tag", "nothere", "x:1"]);
    assert!(err.contains("nothere"), "{err}");
    let err = g.fails(&["images", "--format", "yaml"]);
    assert!(err.contains("yaml"), "{err}");
}
