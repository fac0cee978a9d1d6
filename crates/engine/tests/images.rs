//! The image service against a real store and a real registry (Debian's docker-registry on
//! a free port): list/inspect/history in Docker's shapes, tag and remove with Docker's
//! conflict rules, pull and push with Docker's progress messages, save → load, prune.
//!
//! Test images are busybox (busybox-static's /bin/busybox) imported as one-layer images.
//! Needs root (layers keep their owners) and docker-registry.

#[path = "../../image/tests/support/registry.rs"]
mod registry;

use std::sync::Arc;

use gorae_engine::images::{ImageService, ImageUse};
use gorae_image::archive::{self, ImportOptions};
use gorae_image::{ImageRecord, Store};
use serde_json::Value;

const BUSYBOX: &str = "/bin/busybox";

struct Fixture {
    _dir: tempfile::TempDir,
    service: ImageService,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        Fixture {
            service: ImageService::new(store),
            _dir: dir,
        }
    }

    fn store(&self) -> &Store {
        self.service.store()
    }

    /// Imports busybox as `name` (None: dangling), with `env` making the config distinct.
    fn import(&self, name: Option<&str>, env: &str) -> ImageRecord {
        let options = ImportOptions {
            reference: name.map(|n| n.parse().unwrap()),
            changes: vec![
                r#"CMD ["sh"]"#.into(),
                format!("ENV {env}"),
                "LABEL org.test=yes".into(),
            ],
            message: Some("test image".into()),
        };
        archive::import(self.store(), &mut &busybox_rootfs()[..], &options).unwrap()
    }

    /// Collects the image events the service emits from now on.
    fn record_events(&self) -> Arc<std::sync::Mutex<Vec<gorae_engine::types::Event>>> {
        let events = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = events.clone();
        self.service
            .set_event_sink(move |e| sink.lock().unwrap().push(e));
        events
    }

    async fn list(&self, filters: &[(&str, &str)]) -> Vec<Value> {
        let mut map = gorae_engine::engine::Filters::new();
        for (k, v) in filters {
            map.entry(k.to_string()).or_default().push(v.to_string());
        }
        self.service.list(false, false, map).await.unwrap()
    }
}

/// A rootfs tarball: bin/busybox and bin/sh -> busybox.
fn busybox_rootfs() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut dir = header(tar::EntryType::Directory, 0o755);
    tar.append_data(&mut dir, "bin/", &[][..]).unwrap();
    tar.append_path_with_name(BUSYBOX, "bin/busybox").unwrap();
    let mut link = header(tar::EntryType::Symlink, 0o777);
    tar.append_link(&mut link, "bin/sh", "busybox").unwrap();
    tar.into_inner().unwrap()
}

fn header(kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

fn stopped(record: &ImageRecord, container: &str) -> ImageUse {
    ImageUse {
        image_id: record.id.to_string(),
        container_id: container.into(),
        running: false,
    }
}

fn none() -> Vec<ImageUse> {
    Vec::new()
}

async fn drain(mut rx: tokio::sync::mpsc::Receiver<Value>) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(v) = rx.recv().await {
        out.push(v);
    }
    out
}

fn statuses(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| m["status"].as_str().map(String::from))
        .collect()
}

fn no_errors(messages: &[Value]) {
    assert!(
        messages.iter().all(|m| m.get("error").is_none()),
        "{messages:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn list_inspect_and_history_have_docker_shapes() {
    let f = Fixture::new();
    let record = f.import(Some("busybox"), "A=1");
    let list = f.list(&[]).await;
    assert_eq!(list.len(), 1, "{list:#?}");
    let s = &list[0];
    assert_eq!(s["Id"], record.id.to_string());
    assert_eq!(s["ParentId"], "");
    assert_eq!(s["RepoTags"], serde_json::json!(["busybox:latest"]));
    assert!(s["RepoDigests"][0]
        .as_str()
        .unwrap()
        .starts_with("busybox@sha256:"));
    assert!(s["Created"].as_i64().unwrap() > 1_700_000_000);
    assert!(s["Size"].as_u64().unwrap() > 100_000);
    assert_eq!(s["SharedSize"], -1);
    assert_eq!(s["Containers"], -1);
    assert_eq!(s["Labels"]["org.test"], "yes");
    assert!(s.get("VirtualSize").is_none());

    assert_eq!(f.list(&[("reference", "busy*")]).await.len(), 1);
    assert_eq!(f.list(&[("reference", "busybox:latest")]).await.len(), 1);
    assert!(f.list(&[("reference", "other")]).await.is_empty());
    assert!(f.list(&[("dangling", "true")]).await.is_empty());
    assert_eq!(f.list(&[("label", "org.test=yes")]).await.len(), 1);
    assert!(f.list(&[("label", "org.test=no")]).await.is_empty());
    let mut bad = gorae_engine::engine::Filters::new();
    bad.insert("colour".into(), vec!["red".into()]);
    assert_eq!(
        f.service
            .list(false, false, bad)
            .await
            .unwrap_err()
            .status(),
        400
    );

    let i = f.service.inspect("busybox").await.unwrap();
    assert_eq!(i["Id"], record.id.to_string());
    assert_eq!(i["RepoTags"], serde_json::json!(["busybox:latest"]));
    assert_eq!(i["Parent"], "");
    assert_eq!(i["Comment"], "test image");
    assert!(i["Created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(i["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(i["Config"]["Env"], serde_json::json!(["A=1"]));
    assert_eq!(i["Os"], "linux");
    assert_eq!(i["RootFS"]["Type"], "layers");
    assert_eq!(i["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(i["GraphDriver"]["Name"], "overlay2");
    assert!(i["Metadata"]["LastTagTime"].is_string());
    let by_prefix = f.service.inspect(&record.id.hex()[..12]).await.unwrap();
    assert_eq!(by_prefix["Id"], i["Id"]);
    let err = f.service.inspect("nope").await.unwrap_err();
    assert_eq!(
        (err.status(), err.to_string()),
        (404, "No such image: nope:latest".into())
    );

    let h = f.service.history("busybox").await.unwrap();
    let h = h.as_array().unwrap();
    assert_eq!(h.len(), 1, "{h:#?}");
    assert_eq!(h[0]["Id"], record.id.to_string());
    assert_eq!(h[0]["Tags"], serde_json::json!(["busybox:latest"]));
    assert_eq!(h[0]["CreatedBy"], "gorae import");
    assert_eq!(h[0]["Comment"], "test image");
    assert!(h[0]["Size"].as_u64().unwrap() > 0);

    let (resolved, config) = f.service.resolve("busybox").await.unwrap();
    assert_eq!(resolved.id, record.id);
    assert_eq!(config.rootfs.diff_ids.len(), 1);
    assert_eq!(f.service.resolve("nope").await.unwrap_err().status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_and_remove_follow_docker_s_conflict_rules() {
    let f = Fixture::new();
    let record = f.import(Some("busybox"), "A=1");
    let id = record.id.to_string();
    let short = &record.id.hex()[..12];
    let events = f.record_events();
    f.service.tag("busybox", "other", Some("1")).await.unwrap();
    f.service.tag(short, "third", None).await.unwrap();
    let tags = f.list(&[]).await[0]["RepoTags"].clone();
    assert_eq!(tags.as_array().unwrap().len(), 3, "{tags}");
    assert_eq!(
        f.service.tag("nope", "x", None).await.unwrap_err().status(),
        404
    );
    assert_eq!(
        f.service
            .tag("busybox", "Bad", None)
            .await
            .unwrap_err()
            .status(),
        400
    );

    let err = f
        .service
        .remove(&id, false, false, &none())
        .await
        .unwrap_err();
    assert_eq!(err.status(), 409);
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {short} (must be forced) - \
             image is referenced in multiple repositories"
        )
    );
    let out = f
        .service
        .remove("other:1", false, false, &none())
        .await
        .unwrap();
    assert_eq!(out, vec![serde_json::json!({"Untagged": "other:1"})]);
    let out = f
        .service
        .remove("third", false, false, &none())
        .await
        .unwrap();
    assert_eq!(out, vec![serde_json::json!({"Untagged": "third:latest"})]);

    // A container keeps the last name unless forced; a running one keeps the image even
    // then, as a dangling image.
    let users = vec![stopped(&record, &"c".repeat(64))];
    let running = vec![ImageUse {
        running: true,
        ..users[0].clone()
    }];
    let err = f
        .service
        .remove("busybox", false, false, &users)
        .await
        .unwrap_err();
    assert_eq!(err.status(), 409);
    assert!(
        err.to_string().starts_with(
            "conflict: unable to remove repository reference \"busybox\" (must force) - \
             container cccccccccccc is using its referenced image"
        ),
        "{err}"
    );
    let out = f
        .service
        .remove("busybox", true, false, &running)
        .await
        .unwrap();
    assert_eq!(out, vec![serde_json::json!({"Untagged": "busybox:latest"})]);
    let list = f.list(&[("dangling", "true")]).await;
    assert_eq!(list.len(), 1, "the used image stays, dangling: {list:#?}");
    assert_eq!(list[0]["RepoTags"], serde_json::json!([]));

    let err = f
        .service
        .remove(&id, false, false, &users)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {short} (must be forced) - \
             image is being used by stopped container cccccccccccc"
        )
    );
    let err = f
        .service
        .remove(&id, true, false, &running)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {short} (cannot be forced) - \
             image is being used by running container cccccccccccc"
        )
    );
    let bare_ids = vec![id.clone()];
    let err = f
        .service
        .remove(&id, false, false, &bare_ids)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("image is being used by a stopped container"),
        "{err}"
    );
    let out = f.service.remove(&id, true, false, &users).await.unwrap();
    assert_eq!(out, vec![serde_json::json!({"Deleted": id})]);
    assert!(f.list(&[]).await.is_empty());
    assert!(
        f.store().content.list().unwrap().is_empty(),
        "blobs are collected after the removal"
    );
    assert!(f.store().layers.list().unwrap().is_empty());
    let seen: Vec<(String, String, String)> = events
        .lock()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e.kind, "image");
            let name = e.actor.attributes.get("name").cloned().unwrap_or_default();
            (e.action.clone(), e.actor.id.clone(), name)
        })
        .collect();
    let tag = ("tag".to_string(), id.clone(), "other:1".to_string());
    let untag = (
        "untag".to_string(),
        id.clone(),
        "busybox:latest".to_string(),
    );
    let delete = ("delete".to_string(), id.clone(), id.clone());
    for wanted in [tag, untag, delete] {
        assert!(seen.contains(&wanted), "{wanted:?} in {seen:?}");
    }
    let err = f
        .service
        .remove("busybox", false, false, &none())
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.to_string()),
        (404, "No such image: busybox:latest".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_the_only_name_deletes_the_image() {
    let f = Fixture::new();
    let record = f.import(Some("busybox:1"), "A=1");
    let out = f
        .service
        .remove("busybox:1", false, false, &none())
        .await
        .unwrap();
    assert_eq!(
        out,
        vec![
            serde_json::json!({"Untagged": "busybox:1"}),
            serde_json::json!({"Deleted": record.id.to_string()}),
        ]
    );
    assert!(f.list(&[]).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn push_then_pull_back_with_docker_progress() {
    let registry = registry::TestRegistry::start();
    let f = Fixture::new();
    let name = format!("{}/test/busybox", registry.host());
    let record = f.import(Some(&format!("{name}:1")), "A=1");

    let messages = drain(f.service.push(&name, Some("1"), None).await.unwrap()).await;
    no_errors(&messages);
    let s = statuses(&messages);
    assert_eq!(s[0], format!("The push refers to repository [{name}]"));
    assert!(s.contains(&"Preparing".to_string()), "{s:?}");
    assert!(s.contains(&"Pushed".to_string()), "{s:?}");
    let layer_lines = messages.iter().filter(|m| m["status"] == "Pushed").count();
    assert_eq!(
        layer_lines, 1,
        "the config blob is not shown: {messages:#?}"
    );
    let digest_line = s.last().unwrap();
    assert!(
        digest_line.starts_with("1: digest: sha256:"),
        "{digest_line}"
    );
    assert!(digest_line.contains(" size: "), "{digest_line}");
    let aux = &messages.last().unwrap()["aux"];
    assert_eq!(aux["Tag"], "1");
    assert_eq!(aux["Digest"], record.manifest.digest.to_string());
    assert_eq!(aux["Size"], record.manifest.size);

    let again = drain(f.service.push(&name, Some("1"), None).await.unwrap()).await;
    assert!(statuses(&again).contains(&"Layer already exists".to_string()));
    let err = f
        .service
        .push(&format!("{name}:nope"), None, None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), 404);

    let g = Fixture::new();
    let events = g.record_events();
    let messages = drain(g.service.pull(&name, Some("1"), None, None).await.unwrap()).await;
    no_errors(&messages);
    assert_eq!(messages[0]["status"], "Pulling from test/busybox");
    assert_eq!(messages[0]["id"], "1");
    let s = statuses(&messages);
    for step in [
        "Pulling fs layer",
        "Downloading",
        "Download complete",
        "Pull complete",
    ] {
        assert!(s.contains(&step.to_string()), "{step}: {s:?}");
    }
    let downloading = messages
        .iter()
        .find(|m| m["status"] == "Downloading")
        .unwrap();
    assert!(downloading["progressDetail"]["total"].as_u64().unwrap() > 0);
    assert_eq!(downloading["id"].as_str().unwrap().len(), 12);
    assert_eq!(
        s[s.len() - 2],
        format!("Digest: {}", record.manifest.digest)
    );
    assert_eq!(
        s[s.len() - 1],
        format!("Status: Downloaded newer image for {name}:1")
    );
    let pulled = g.service.inspect(&format!("{name}:1")).await.unwrap();
    let pull_event = events.lock().unwrap()[0].clone();
    assert_eq!(
        (pull_event.action.as_str(), pull_event.actor.id),
        ("pull", format!("{name}:1"))
    );
    assert_eq!(pulled["Id"], record.id.to_string());

    let messages = drain(
        g.service
            .pull(&format!("{name}:1"), None, None, None)
            .await
            .unwrap(),
    )
    .await;
    let s = statuses(&messages);
    assert!(s.contains(&"Already exists".to_string()), "{s:?}");
    assert_eq!(
        s.last().unwrap(),
        &format!("Status: Image is up to date for {name}:1")
    );

    let err = g
        .service
        .pull(&name, Some("missing"), None, None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), 404, "{err}");
    let err = g
        .service
        .pull("Not A Name", None, None, None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), 400, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_pulls_of_one_image_both_succeed() {
    let registry = registry::TestRegistry::start();
    let f = Fixture::new();
    let name = format!("{}/test/busybox:1", registry.host());
    f.import(Some(&name), "A=1");
    no_errors(&drain(f.service.push(&name, None, None).await.unwrap()).await);

    let g = Arc::new(Fixture::new());
    let pulls: Vec<_> = (0..3)
        .map(|_| {
            let (g, name) = (g.clone(), name.clone());
            tokio::spawn(async move {
                drain(g.service.pull(&name, None, None, None).await.unwrap()).await
            })
        })
        .collect();
    let mut last_lines = Vec::new();
    for pull in pulls {
        let messages = pull.await.unwrap();
        no_errors(&messages);
        last_lines.push(statuses(&messages).pop().unwrap());
    }
    let downloaded = last_lines
        .iter()
        .filter(|l| l.starts_with("Status: Downloaded newer image"))
        .count();
    assert_eq!(downloaded, 1, "{last_lines:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_come_from_the_client() {
    let registry = registry::TestRegistry::with_basic_auth("alice", "secret");
    let f = Fixture::new();
    let name = format!("{}/private/busybox:1", registry.host());
    f.import(Some(&name), "A=1");
    let auth = gorae_engine::images::RegistryAuth {
        username: "alice".into(),
        password: "secret".into(),
        ..Default::default()
    };

    let refused = drain(f.service.push(&name, None, None).await.unwrap()).await;
    let error = refused.last().unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("authentication required"),
        "{refused:#?}"
    );
    assert_eq!(error["errorDetail"]["message"], error["error"]);
    let pushed = drain(
        f.service
            .push(&name, None, Some(auth.clone()))
            .await
            .unwrap(),
    )
    .await;
    no_errors(&pushed);

    let g = Fixture::new();
    assert!(g.service.pull(&name, None, None, None).await.is_err());
    let pulled = drain(g.service.pull(&name, None, None, Some(auth)).await.unwrap()).await;
    no_errors(&pulled);
    assert!(statuses(&pulled)
        .last()
        .unwrap()
        .starts_with("Status: Downloaded newer image"));
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_references_go_with_the_repository_s_last_tag() {
    let registry = registry::TestRegistry::start();
    let f = Fixture::new();
    let repo = format!("{}/test/busybox", registry.host());
    let record = f.import(Some(&format!("{repo}:1")), "A=1");
    no_errors(&drain(f.service.push(&repo, Some("1"), None).await.unwrap()).await);

    let g = Fixture::new();
    let digest = record.manifest.digest.to_string();
    let by_digest = drain(
        g.service
            .pull(&repo, Some(&digest), None, None)
            .await
            .unwrap(),
    )
    .await;
    no_errors(&by_digest);
    assert_eq!(by_digest[0]["id"], digest);
    let s = statuses(&by_digest);
    assert_eq!(
        s.last().unwrap(),
        &format!("Status: Downloaded newer image for {repo}@{digest}")
    );
    let listed = g.list(&[]).await;
    assert_eq!(listed[0]["RepoTags"], serde_json::json!([]));
    assert_eq!(
        listed[0]["RepoDigests"],
        serde_json::json!([format!("{repo}@{digest}")])
    );

    no_errors(&drain(g.service.pull(&repo, Some("1"), None, None).await.unwrap()).await);
    let out = g
        .service
        .remove(&format!("{repo}:1"), false, false, &none())
        .await
        .unwrap();
    assert_eq!(
        out,
        vec![
            serde_json::json!({"Untagged": format!("{repo}:1")}),
            serde_json::json!({"Untagged": format!("{repo}@{digest}")}),
            serde_json::json!({"Deleted": record.id.to_string()}),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_from_a_registry_that_is_gone_fails_the_request() {
    let f = Fixture::new();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = f
        .service
        .pull(&format!("127.0.0.1:{port}/x"), None, None, None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), 500, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn save_then_load_round_trips() {
    let f = Fixture::new();
    let record = f.import(Some("busybox:1"), "A=1");
    let dangling = f.import(None, "A=2");
    let mut rx = f
        .service
        .save(vec!["busybox:1".into(), dangling.id.to_string()])
        .await
        .unwrap();
    let mut tarball = Vec::new();
    while let Some(chunk) = rx.recv().await {
        tarball.extend_from_slice(&chunk);
    }
    assert!(tarball.len() > 100_000);
    let names: Vec<String> = tar::Archive::new(&tarball[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.contains(&"manifest.json".to_string()), "{names:?}");
    assert_eq!(
        f.service
            .save(vec!["nope".into()])
            .await
            .unwrap_err()
            .status(),
        404
    );

    let g = Fixture::new();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &tarball).unwrap();
    let out = g.service.load(file.path().to_path_buf()).await.unwrap();
    assert!(
        out.contains(&serde_json::json!({"stream": "Loaded image: busybox:1\n"})),
        "{out:?}"
    );
    let id_line = format!("Loaded image ID: {}\n", dangling.id);
    assert!(
        out.contains(&serde_json::json!({ "stream": id_line })),
        "{out:?}"
    );
    let loaded = g.service.inspect("busybox:1").await.unwrap();
    assert_eq!(loaded["Id"], record.id.to_string());
    std::fs::write(file.path(), b"not a tarball").unwrap();
    assert!(g.service.load(file.path().to_path_buf()).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn import_takes_a_rootfs_tarball_with_changes() {
    let f = Fixture::new();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), busybox_rootfs()).unwrap();
    let changes = vec![r#"CMD ["sh"]"#.to_string(), "ENV B=2".to_string()];
    let out = f
        .service
        .import(
            file.path().to_path_buf(),
            Some("imported"),
            Some("1"),
            changes,
            None,
        )
        .await
        .unwrap();
    let id = out[0]["status"].as_str().unwrap().to_string();
    assert!(id.starts_with("sha256:"), "{out:?}");
    let i = f.service.inspect("imported:1").await.unwrap();
    assert_eq!(i["Id"], id);
    assert_eq!(i["Config"]["Env"], serde_json::json!(["B=2"]));
    let out = f
        .service
        .import(file.path().to_path_buf(), None, None, vec![], None)
        .await
        .unwrap();
    assert_eq!(f.list(&[("dangling", "true")]).await.len(), 1, "{out:?}");
    let err = f
        .service
        .import(
            file.path().to_path_buf(),
            None,
            None,
            vec!["FROB x".into()],
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), 400, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_takes_dangling_images_unless_told_otherwise() {
    let f = Fixture::new();
    let kept = f.import(Some("busybox"), "A=1");
    let dangling = f.import(None, "A=2");
    let used = f.import(None, "A=3");
    let users = vec![stopped(&used, &"d".repeat(64))];
    let out = f.service.prune(Default::default(), &users).await.unwrap();
    assert_eq!(
        out["ImagesDeleted"],
        serde_json::json!([{"Deleted": dangling.id.to_string()}])
    );
    assert!(out["SpaceReclaimed"].as_u64().unwrap() > 0);
    let left: Vec<Value> = f.list(&[]).await.iter().map(|s| s["Id"].clone()).collect();
    assert_eq!(left.len(), 2);
    assert!(left.contains(&kept.id.to_string().into()));

    let mut all = gorae_engine::engine::Filters::new();
    all.insert("dangling".into(), vec!["false".into()]);
    let out = f.service.prune(all, &users).await.unwrap();
    assert_eq!(
        out["ImagesDeleted"],
        serde_json::json!([
            {"Untagged": "busybox:latest"},
            {"Deleted": kept.id.to_string()},
        ])
    );
    let left = f.list(&[]).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["Id"], used.id.to_string());

    let du = f.service.disk_usage(&users).await.unwrap();
    assert_eq!(du.images.len(), 1);
    assert_eq!(du.images[0]["Containers"], 1);
    assert!(du.layers_size > 0);
}
