//! Volumes through `Engine`, with real containers (busybox, gorae-runc, as root): a named
//! volume outlives its container and is read by the next, copy-up from the image (and
//! nocopy), anonymous volumes from the image's VOLUME removed with `rm -v` and `--rm` and
//! kept without, read-only mounts, in-use refusals with docker's message, list filters,
//! prune, bad names and drivers. Each test removes its volumes and checks nothing is left.

mod core_support;

use std::collections::BTreeMap;

use core_support::*;
use gorae_engine::engine::{Filters, WaitCondition};
use gorae_engine::types::{CreateRequest, Mount};
use gorae_engine::volumes::CreateVolume;
use gorae_engine::{Engine, Error};

/// An image with /data/hello ("from the image") and /data/sub/deep, and `VOLUME /data`.
const DATA_IMAGE: &str = "gorae-test/data:latest";

fn import_data_image(root: &Root) {
    let busybox = busybox_tar(root.path());
    let path = root.path().join("data.tar");
    let mut out = tar::Builder::new(std::fs::File::create(&path).expect("tar"));
    let mut input = tar::Archive::new(std::fs::File::open(&busybox).expect("busybox tar"));
    for entry in input.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let header = entry.header().clone();
        let name = entry.path().expect("path").into_owned();
        if header.entry_type().is_symlink() {
            let target = entry
                .link_name()
                .expect("link")
                .expect("target")
                .into_owned();
            let mut h = header.clone();
            out.append_link(&mut h, &name, &target).expect("link");
        } else {
            out.append_data(&mut header.clone(), &name, &mut entry)
                .expect("append");
        }
    }
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    for d in ["data", "data/sub"] {
        out.append_data(&mut dir.clone(), d, std::io::empty())
            .expect("dir");
    }
    for (name, body) in [
        ("data/hello", "from the image\n"),
        ("data/sub/deep", "deep\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o640);
        h.set_size(body.len() as u64);
        out.append_data(&mut h, name, body.as_bytes())
            .expect("file");
    }
    out.into_inner().expect("finish");
    std::fs::remove_file(&busybox).expect("rm");
    let store = gorae_image::Store::open(root.path()).expect("store");
    let options = gorae_image::archive::ImportOptions {
        reference: Some(DATA_IMAGE.parse().expect("reference")),
        changes: vec!["CMD [\"sh\"]".into(), "VOLUME /data".into()],
        message: None,
    };
    let mut file = std::fs::File::open(&path).expect("tar");
    gorae_image::archive::import(&store, &mut file, &options).expect("import");
    std::fs::remove_file(&path).expect("rm tar");
}

fn with_binds(mut req: CreateRequest, binds: &[&str]) -> CreateRequest {
    req.host_config.binds = Some(binds.iter().map(|b| b.to_string()).collect());
    req
}

/// Creates, starts and waits for a container; its exit code and its output (the log).
async fn run(engine: &Engine, req: CreateRequest) -> (String, i64, String) {
    let id = create(engine, None, req).await;
    let wait = engine
        .wait(&id, WaitCondition::NextExit)
        .await
        .expect("wait");
    engine.start(&id).await.expect("start");
    let code = wait.await.status_code;
    let log_path = inspect(engine, &id).await.log_path;
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let text: String = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["log"].as_str().map(str::to_string))
        .collect();
    (id, code, text)
}

fn filters(pairs: &[(&str, &str)]) -> Filters {
    let mut f = Filters::new();
    for (k, v) in pairs {
        f.entry(k.to_string()).or_default().push(v.to_string());
    }
    f
}

async fn names(engine: &Engine, f: Filters) -> Vec<String> {
    let list = engine.volume_list(f).await.expect("list");
    let mut out: Vec<String> = list["Volumes"]
        .as_array()
        .expect("Volumes")
        .iter()
        .map(|v| v["Name"].as_str().expect("Name").to_string())
        .collect();
    out.sort();
    out
}

/// No volume left, and the volumes directory empty.
async fn assert_no_volumes(root: &Root, engine: &Engine) {
    assert_eq!(names(engine, Filters::new()).await, Vec::<String>::new());
    let dir = root.path().join("volumes");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_volume_outlives_its_container() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let req = with_binds(
        request(&["sh", "-c", "echo kept > /v/file"]),
        &["shared:/v"],
    );
    let (first, code, _) = run(&engine, req).await;
    assert_eq!(code, 0);
    let c = inspect(&engine, &first).await;
    let m = &c.mounts[0];
    let v = engine.volume_inspect("shared").await.expect("inspect");
    assert_eq!(
        (m.kind.as_str(), m.name.as_deref(), m.destination.as_str()),
        ("volume", Some("shared"), "/v")
    );
    assert_eq!(
        (
            m.driver.as_deref(),
            m.mode.as_str(),
            m.rw,
            m.propagation.as_str()
        ),
        (Some("local"), "z", true, "")
    );
    assert_eq!(m.source, v.mountpoint);
    assert_eq!(
        v.mountpoint,
        root.path().join("volumes/shared/_data").to_string_lossy()
    );
    assert_eq!((v.driver.as_str(), v.scope.as_str()), ("local", "local"));
    assert_eq!(v.labels, None);
    let err = engine.volume_remove("shared", false).await.unwrap_err();
    assert_eq!(err.status(), 409);
    assert_eq!(
        err.to_string(),
        format!("remove shared: volume is in use - [{first}]")
    );
    // rm -v leaves named volumes alone.
    engine.remove(&first, false, true).await.expect("rm");
    let req = with_binds(request(&["cat", "/v/file"]), &["shared:/v"]);
    let (second, code, out) = run(&engine, req).await;
    assert_eq!((code, out.as_str()), (0, "kept\n"));
    // Read-only: the same volume refuses writes.
    let req = with_binds(
        request(&["sh", "-c", "echo x > /v/other"]),
        &["shared:/v:ro"],
    );
    let (third, code, out) = run(&engine, req).await;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(!inspect(&engine, &third).await.mounts[0].rw);
    let err = engine.volume_remove("shared", true).await.unwrap_err();
    assert!(err.to_string().contains(&second) && err.to_string().contains(&third));
    for id in [&second, &third] {
        engine.remove(id, false, false).await.expect("rm");
    }
    let df = engine.system_df().await.expect("df");
    assert_eq!(df["Volumes"][0]["Name"], "shared");
    assert_eq!(df["Volumes"][0]["UsageData"]["RefCount"], 0);
    assert_eq!(df["Volumes"][0]["UsageData"]["Size"], 5);
    engine
        .volume_remove("shared", false)
        .await
        .expect("rm volume");
    let err = engine.volume_inspect("shared").await.unwrap_err();
    assert_eq!(
        (err.status(), err.to_string()),
        (404, "get shared: no such volume".into())
    );
    // force: a missing volume is no error.
    engine
        .volume_remove("shared", true)
        .await
        .expect("rm -f missing");
    assert_no_volumes(&root, &engine).await;
    root.teardown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_up_and_anonymous_volumes() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    import_data_image(&root);
    let engine = root.open().await;
    let data_req = |args: &[&str]| {
        let mut r = request(args);
        r.config.image = DATA_IMAGE.into();
        r
    };
    // The image's VOLUME /data: an anonymous volume, filled from the image.
    let (anon_c, code, out) =
        run(&engine, data_req(&["cat", "/data/hello", "/data/sub/deep"])).await;
    assert_eq!((code, out.as_str()), (0, "from the image\ndeep\n"));
    let c = inspect(&engine, &anon_c).await;
    let m = c
        .mounts
        .iter()
        .find(|m| m.destination == "/data")
        .expect("/data");
    let anon = m.name.clone().expect("name");
    assert_eq!(anon.len(), 64);
    assert!(anon.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(m.mode, "");
    let v = engine.volume_inspect(&anon).await.expect("inspect");
    assert_eq!(
        v.labels.as_ref().expect("labels")["com.docker.volume.anonymous"],
        ""
    );
    let data = std::path::Path::new(&v.mountpoint);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(data.join("hello"))
        .expect("hello")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    // A named volume over the image's path is filled once; nocopy leaves another empty.
    let req = with_binds(data_req(&["ls", "/data"]), &["filled:/data"]);
    let (named_c, _, out) = run(&engine, req).await;
    assert_eq!(out, "hello\nsub\n");
    let req = with_binds(data_req(&["ls", "-A", "/data"]), &["empty:/data:nocopy"]);
    let (nocopy_c, code, out) = run(&engine, req).await;
    assert_eq!((code, out.as_str()), (0, ""));
    let mut req = data_req(&["ls", "/m"]);
    req.host_config.mounts = Some(vec![Mount {
        kind: "volume".into(),
        source: "viamount".into(),
        target: "/m".into(),
        read_only: true,
        ..Default::default()
    }]);
    let (mount_c, _, _) = run(&engine, req).await;
    assert!(!inspect(&engine, &mount_c)
        .await
        .mounts
        .iter()
        .any(|m| m.destination == "/m" && m.rw));
    // rm without -v keeps the anonymous volume; with -v it goes.
    let names_now = names(&engine, Filters::new()).await;
    // anon_c's, filled, empty, viamount, and mount_c's own anonymous /data.
    assert_eq!(names_now.len(), 5, "{names_now:?}");
    engine.remove(&anon_c, false, false).await.expect("rm");
    assert!(engine.volume_inspect(&anon).await.is_ok());
    for id in [&named_c, &nocopy_c, &mount_c] {
        let anon_of = inspect(&engine, id)
            .await
            .mounts
            .into_iter()
            .filter(|m| m.name.as_deref().is_some_and(|n| n.len() == 64))
            .filter_map(|m| m.name)
            .collect::<Vec<_>>();
        engine.remove(id, false, true).await.expect("rm -v");
        for n in anon_of {
            assert!(
                engine.volume_inspect(&n).await.is_err(),
                "{n} kept after rm -v"
            );
        }
    }
    // AutoRemove takes its anonymous volumes too.
    let mut req = data_req(&["true"]);
    req.host_config.auto_remove = true;
    let id = create(&engine, None, req).await;
    let anon_rm = inspect(&engine, &id).await.mounts[0]
        .name
        .clone()
        .expect("name");
    let gone = engine
        .wait(&id, WaitCondition::Removed)
        .await
        .expect("wait");
    engine.start(&id).await.expect("start");
    gone.await;
    eventually("the --rm container's anonymous volume to go", || async {
        engine.volume_inspect(&anon_rm).await.is_err()
    })
    .await;
    // Prune: only anonymous volumes by default, every unused one with all=true.
    let pruned = engine.volume_prune(Filters::new()).await.expect("prune");
    assert_eq!(pruned["VolumesDeleted"], serde_json::json!([anon]));
    assert!(pruned["SpaceReclaimed"].as_i64().unwrap() >= 20);
    let left = names(&engine, Filters::new()).await;
    assert_eq!(left, ["empty", "filled", "viamount"]);
    let pruned = engine
        .volume_prune(filters(&[("all", "true")]))
        .await
        .expect("prune all");
    assert_eq!(pruned["VolumesDeleted"].as_array().unwrap().len(), 3);
    assert_no_volumes(&root, &engine).await;
    root.teardown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_list_filters_and_refusals() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let labels = BTreeMap::from([("team".to_string(), "a".to_string())]);
    let v = engine
        .volume_create(CreateVolume {
            name: "alpha".into(),
            driver: "local".into(),
            labels: Some(labels.clone()),
            ..Default::default()
        })
        .await
        .expect("create");
    assert_eq!(v.labels.as_ref(), Some(&labels));
    // The same name again: the existing volume, as docker.
    let again = engine
        .volume_create(CreateVolume {
            name: "alpha".into(),
            ..Default::default()
        })
        .await
        .expect("create again");
    assert_eq!(again, v);
    let unnamed = engine
        .volume_create(CreateVolume::default())
        .await
        .expect("unnamed");
    assert_eq!(unnamed.name.len(), 64);
    assert!(!unnamed.is_anonymous());
    engine
        .volume_create(CreateVolume {
            name: "beta".into(),
            ..Default::default()
        })
        .await
        .expect("beta");
    let id = create(&engine, None, with_binds(request(&["true"]), &["beta:/b"])).await;
    assert_eq!(
        names(&engine, filters(&[("label", "team=a")])).await,
        ["alpha"]
    );
    assert_eq!(
        names(&engine, filters(&[("label", "team")])).await,
        ["alpha"]
    );
    assert_eq!(
        names(&engine, filters(&[("label", "team=b")])).await.len(),
        0
    );
    assert_eq!(names(&engine, filters(&[("name", "lph")])).await, ["alpha"]);
    assert_eq!(
        names(&engine, filters(&[("driver", "local")])).await.len(),
        3
    );
    let dangling = names(&engine, filters(&[("dangling", "true")])).await;
    assert_eq!(dangling.len(), 2);
    assert!(!dangling.contains(&"beta".to_string()));
    assert_eq!(
        names(&engine, filters(&[("dangling", "false")])).await,
        ["beta"]
    );
    // ps --filter volume=: by volume name or mount destination.
    for (by, count) in [("beta", 1), ("/b", 1), ("alpha", 0)] {
        let opts = gorae_engine::engine::ListOptions {
            all: true,
            filters: filters(&[("volume", by)]),
            ..Default::default()
        };
        assert_eq!(engine.list(opts).await.expect("ps").len(), count, "{by}");
    }
    let status = |e: Error| e.status();
    assert_eq!(
        status(
            engine
                .volume_list(filters(&[("bogus", "1")]))
                .await
                .unwrap_err()
        ),
        400
    );
    assert_eq!(
        status(
            engine
                .volume_list(filters(&[("dangling", "maybe")]))
                .await
                .unwrap_err()
        ),
        400
    );
    for bad in ["a", "-x", "a/b", "has space", "x$"] {
        let err = engine
            .volume_create(CreateVolume {
                name: bad.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.status(), 400, "{bad}");
        assert!(
            err.to_string().contains("includes invalid characters"),
            "{err}"
        );
    }
    let err = engine
        .create(None, with_binds(request(&["true"]), &["b@d:/x"]))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 400);
    let err = engine
        .volume_create(CreateVolume {
            name: "gamma".into(),
            driver: "nfs".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.status(), 404, "{err}");
    let opts = |k: &str| Some(BTreeMap::from([(k.to_string(), "x".to_string())]));
    let with_opt = |k: &str| CreateVolume {
        name: "gamma".into(),
        driver_opts: opts(k),
        ..Default::default()
    };
    assert_eq!(
        status(engine.volume_create(with_opt("bogus")).await.unwrap_err()),
        400
    );
    assert_eq!(
        status(engine.volume_create(with_opt("type")).await.unwrap_err()),
        501
    );
    assert!(engine.volume_inspect("gamma").await.is_err());
    // A failed create (duplicate destination) creates no volume.
    let err = engine
        .create(
            None,
            with_binds(request(&["true"]), &["delta:/x", "epsilon:/x"]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "Duplicate mount point: /x");
    assert!(engine.volume_inspect("delta").await.is_err());
    engine.remove(&id, false, false).await.expect("rm");
    for n in ["alpha", "beta", unnamed.name.as_str()] {
        engine.volume_remove(n, false).await.expect("rm volume");
    }
    assert_no_volumes(&root, &engine).await;
    root.teardown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_volumes_use_their_device() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let device = root.path().join("hostdir");
    std::fs::create_dir(&device).expect("device dir");
    std::fs::write(device.join("there"), "on the host\n").expect("file");
    let opts = BTreeMap::from([
        ("type".to_string(), "none".to_string()),
        ("o".to_string(), "bind".to_string()),
        ("device".to_string(), device.to_string_lossy().into_owned()),
    ]);
    let v = engine
        .volume_create(CreateVolume {
            name: "hostvol".into(),
            driver_opts: Some(opts.clone()),
            ..Default::default()
        })
        .await
        .expect("create");
    assert_eq!(v.options.as_ref(), Some(&opts));
    let req = with_binds(
        request(&["sh", "-c", "cat /h/there; echo new > /h/made"]),
        &["hostvol:/h"],
    );
    let (id, code, out) = run(&engine, req).await;
    assert_eq!((code, out.as_str()), (0, "on the host\n"));
    assert_eq!(
        std::fs::read_to_string(device.join("made")).expect("made"),
        "new\n"
    );
    engine.remove(&id, false, true).await.expect("rm");
    engine
        .volume_remove("hostvol", false)
        .await
        .expect("rm volume");
    // The volume goes, the host directory and its files stay.
    assert!(device.join("made").exists() && device.join("there").exists());
    // A device that is gone fails the start with docker's words.
    let gone = root.path().join("gone");
    let mut opts = opts;
    opts.insert("device".into(), gone.to_string_lossy().into_owned());
    engine
        .volume_create(CreateVolume {
            name: "gonevol".into(),
            driver_opts: Some(opts),
            ..Default::default()
        })
        .await
        .expect("create");
    let id = create(
        &engine,
        None,
        with_binds(request(&["true"]), &["gonevol:/g"]),
    )
    .await;
    let err = engine.start(&id).await.unwrap_err().to_string();
    assert!(err.contains("failed to mount local volume"), "{err}");
    engine.remove(&id, false, false).await.expect("rm");
    engine
        .volume_remove("gonevol", false)
        .await
        .expect("rm volume");
    assert_no_volumes(&root, &engine).await;
    root.teardown(engine).await;
}
