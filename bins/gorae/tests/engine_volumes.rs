//! Volumes with the real docker CLI (/usr/local/bin/docker) against `gorae daemon`: named
//! volumes shared by successive containers, `--mount type=volume`, read-only mounts, the
//! 409 for a volume in use, labels and list filters, bad names; anonymous volumes from an
//! image's VOLUME and `-v /path`, removed by `rm -v` and `--rm` and kept without, copy-up
//! from the image (and `volume-nocopy`), prune with and without `--all`; `gorae volume` too.
//! Every test ends with no volume, no mount and no container of its root left.
//!
//! Needs root and the docker CLI (skipped with a message otherwise). Containers run with
//! `--network none`.

mod support;

use std::process::Command;

use support::engine::{busybox_tarball, gorae_bin, run_for, show, text, Daemon, BUSYBOX};

const DATA_IMAGE: &str = "gorae-test/data:latest";

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Stops the daemon, imports busybox plus /data/hello and /data/sub/deep with `VOLUME
/// /data` as [`DATA_IMAGE`] (`gorae import` owns the root while the daemon is down), and
/// starts the daemon again.
fn add_data_image(d: &mut Daemon) {
    let busybox = busybox_tarball(d.aux.path());
    let path = d.aux.path().join("data-image.tar");
    let mut out = tar::Builder::new(std::fs::File::create(&path).expect("tar"));
    let mut input = tar::Archive::new(std::fs::File::open(&busybox).expect("busybox tar"));
    for entry in input.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let mut header = entry.header().clone();
        let name = entry.path().expect("path").into_owned();
        if header.entry_type().is_symlink() {
            let target = entry
                .link_name()
                .expect("link")
                .expect("target")
                .into_owned();
            out.append_link(&mut header, &name, &target).expect("link");
        } else {
            out.append_data(&mut header, &name, &mut entry)
                .expect("entry");
        }
    }
    for d in ["data", "data/sub"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        out.append_data(&mut h, d, std::io::empty()).expect("dir");
    }
    for (name, body) in [
        ("data/hello", "from the image\n"),
        ("data/sub/deep", "deep\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(body.len() as u64);
        out.append_data(&mut h, name, body.as_bytes())
            .expect("file");
    }
    out.into_inner().expect("finish tar");
    let _ = std::fs::remove_file(&busybox);
    d.stop();
    let imported = run_for(
        Command::new(gorae_bin())
            .arg("--root")
            .arg(&d.root)
            .args(["import", "-c", "CMD [\"sh\"]", "-c", "VOLUME /data"])
            .arg(&path)
            .arg(DATA_IMAGE)
            .env_remove("GORAE_ROOT")
            .env_remove("GORAE_HOST"),
    );
    assert!(
        imported.status.success(),
        "gorae import: {}",
        show(&imported)
    );
    let _ = std::fs::remove_file(&path);
    d.start_again();
}

fn volume_names(d: &Daemon) -> Vec<String> {
    let mut names: Vec<String> = d
        .ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

/// Nothing of the test's left: no volume (listed or on disk), then the daemon's own check.
fn finish(d: Daemon) {
    assert_eq!(volume_names(&d), Vec::<String>::new());
    let dir = d.root.join("volumes");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|e| e.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", dir.display());
    d.shutdown_clean();
}

#[test]
fn named_volumes_with_the_docker_cli() {
    let Some(mut d) = Daemon::start() else { return };
    assert_eq!(
        d.ok(&["volume", "create", "--label", "team=a", "data1"])
            .trim(),
        "data1"
    );
    let ls = d.ok(&["volume", "ls"]);
    let lines: Vec<Vec<&str>> = ls.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        lines,
        [vec!["DRIVER", "VOLUME", "NAME"], vec!["local", "data1"]],
        "{ls}"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&d.ok(&["volume", "inspect", "data1"])).expect("inspect json");
    let v = &inspect[0];
    let data_dir = d.root.join("volumes/data1/_data");
    assert_eq!(v["Name"], "data1");
    assert_eq!(
        (v["Driver"].as_str(), v["Scope"].as_str()),
        (Some("local"), Some("local"))
    );
    assert_eq!(v["Mountpoint"], data_dir.to_string_lossy().as_ref());
    assert_eq!(v["Labels"]["team"], "a");
    assert!(
        v["CreatedAt"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{v}"
    );

    // Written by one container, read by its replacement.
    d.ok(&[
        "run",
        "--name",
        "w1",
        "--network",
        "none",
        "-v",
        "data1:/v",
        BUSYBOX,
        "sh",
        "-c",
        "echo hello > /v/f",
    ]);
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "data1:/v",
        BUSYBOX,
        "cat",
        "/v/f",
    ]);
    assert_eq!(out, "hello\n");
    assert_eq!(
        std::fs::read_to_string(data_dir.join("f")).expect("file in _data"),
        "hello\n"
    );
    let mounts: serde_json::Value =
        serde_json::from_str(&d.inspect("{{json .Mounts}}", "w1")).expect("mounts json");
    assert_eq!(
        mounts,
        serde_json::json!([{"Type": "volume", "Name": "data1",
            "Source": data_dir.to_string_lossy(), "Destination": "/v", "Driver": "local",
            "Mode": "z", "RW": true, "Propagation": ""}])
    );
    let w1 = d.inspect("{{.Id}}", "w1");
    let err = d.fails(&["volume", "rm", "data1"]);
    assert_eq!(
        err.trim(),
        format!("Error response from daemon: remove data1: volume is in use - [{w1}]")
    );

    // Read-only refuses writes.
    let ro = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "data1:/v:ro",
        BUSYBOX,
        "sh",
        "-c",
        "echo x > /v/g",
    ]);
    assert!(!ro.status.success(), "{}", show(&ro));
    assert!(
        text(&ro.stderr).contains("Read-only file system"),
        "{}",
        show(&ro)
    );
    assert!(!data_dir.join("g").exists());

    // --mount creates the volume on demand; readonly shows in Mounts.
    d.ok(&[
        "run",
        "--name",
        "m1",
        "--network",
        "none",
        "--mount",
        "type=volume,src=data2,dst=/m,readonly",
        BUSYBOX,
        "true",
    ]);
    assert_eq!(
        d.inspect("{{range .Mounts}}{{.Name}} {{.RW}}{{end}}", "m1"),
        "data2 false"
    );
    d.ok(&["rm", "m1"]);

    // Filters.
    assert_eq!(
        d.ok(&["volume", "ls", "-q", "-f", "label=team=a"]),
        "data1\n"
    );
    assert_eq!(
        d.ok(&["volume", "ls", "-q", "-f", "dangling=true"]),
        "data2\n"
    );
    assert_eq!(
        d.ok(&["volume", "ls", "-q", "-f", "name=data"]),
        "data1\ndata2\n"
    );
    assert_eq!(
        d.ok(&[
            "volume",
            "ls",
            "-q",
            "-f",
            "driver=local",
            "-f",
            "label=team=b"
        ]),
        ""
    );
    let df = d.ok(&["system", "df"]);
    let row: Vec<&str> = df
        .lines()
        .find(|l| l.starts_with("Local Volumes"))
        .expect("Local Volumes row")
        .split_whitespace()
        .collect();
    assert_eq!(&row[2..4], ["2", "1"], "{df}");

    // Bad names: docker's 400 text, from volume create and from run.
    let err = d.fails(&["volume", "create", "b@d"]);
    assert!(
        err.contains(
            "create b@d: \"b@d\" includes invalid characters for a local volume name, only \
             \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
        ),
        "{err}"
    );
    let bad = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "b@d:/x",
        BUSYBOX,
        "true",
    ]);
    assert_eq!(bad.status.code(), Some(125), "{}", show(&bad));
    assert!(
        text(&bad.stderr).contains("includes invalid characters"),
        "{}",
        show(&bad)
    );
    let err = d.fails(&["volume", "inspect", "nope"]);
    assert!(err.contains("get nope: no such volume"), "{err}");
    let err = d.fails(&["volume", "create", "-d", "nfs", "x1"]);
    assert!(err.contains("plugin \"nfs\" not found"), "{err}");

    // A daemon restart keeps the volumes, their labels and who uses them.
    d.stop();
    d.start_again();
    assert_eq!(volume_names(&d), ["data1", "data2"]);
    assert_eq!(
        d.ok(&["volume", "ls", "-q", "-f", "label=team=a"]),
        "data1\n"
    );
    let err = d.fails(&["volume", "rm", "data1"]);
    assert!(err.contains("volume is in use"), "{err}");

    // A bind volume through --mount's volume-opt: the container writes the host directory.
    let host_dir = d.aux.path().join("hostdir");
    std::fs::create_dir(&host_dir).expect("host dir");
    let spec = format!(
        "type=volume,src=hostvol,dst=/h,volume-opt=type=none,volume-opt=o=bind,\
         volume-opt=device={}",
        host_dir.display()
    );
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        &spec,
        BUSYBOX,
        "sh",
        "-c",
        "echo via-bind > /h/f",
    ]);
    assert_eq!(
        std::fs::read_to_string(host_dir.join("f")).expect("f"),
        "via-bind\n"
    );
    let opts = d.ok(&[
        "volume",
        "inspect",
        "-f",
        "{{.Options.o}} {{.Options.type}}",
        "hostvol",
    ]);
    assert_eq!(opts.trim(), "bind none");
    d.ok(&["volume", "rm", "hostvol"]);
    assert!(
        host_dir.join("f").exists(),
        "removing the volume kept the host's files"
    );

    // gorae's own CLI: create, inspect, ls with a filter, rm.
    assert_eq!(
        d.gorae_ok(&["volume", "create", "--label", "by=gorae", "gv"]),
        "gv\n"
    );
    let name = d.gorae_ok(&[
        "volume",
        "inspect",
        "-f",
        "{{.Name}} {{.Driver}} {{.Labels.by}}",
        "gv",
    ]);
    assert_eq!(name, "gv local gorae\n");
    assert_eq!(
        d.gorae_ok(&["volume", "ls", "-q", "-f", "label=by=gorae"]),
        "gv\n"
    );
    assert_eq!(
        d.gorae_ok(&["inspect", "-f", "{{.Mountpoint}}", "gv"])
            .trim(),
        d.root.join("volumes/gv/_data").to_string_lossy()
    );
    let out = d.gorae(&["volume", "rm", "gv", "nope-vol"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(text(&out.stdout), "gv\n");
    assert!(
        text(&out.stderr).contains("get nope-vol: no such volume"),
        "{}",
        show(&out)
    );
    let ls = d.gorae_ok(&["volume", "ls"]);
    assert!(
        ls.starts_with("DRIVER") && ls.contains("data1") && ls.contains("data2"),
        "{ls}"
    );

    d.ok(&["rm", "w1"]);
    assert_eq!(d.ok(&["volume", "rm", "data1", "data2"]), "data1\ndata2\n");
    // -f: a missing volume is no error.
    d.ok(&["volume", "rm", "-f", "data1"]);
    finish(d);
}

#[test]
fn anonymous_volumes_copy_up_and_prune() {
    let Some(mut d) = Daemon::start() else { return };
    add_data_image(&mut d);
    // The image's VOLUME /data: an anonymous volume, filled from the image.
    let out = d.ok(&[
        "run",
        "--name",
        "a1",
        "--network",
        "none",
        DATA_IMAGE,
        "cat",
        "/data/hello",
        "/data/sub/deep",
    ]);
    assert_eq!(out, "from the image\ndeep\n");
    let anon = d.inspect("{{range .Mounts}}{{.Name}}{{end}}", "a1");
    assert!(is_hex64(&anon), "{anon}");
    assert_eq!(
        d.inspect(
            "{{range .Mounts}}{{.Type}} {{.Destination}} [{{.Mode}}]{{end}}",
            "a1"
        ),
        "volume /data []"
    );
    let labels = d.ok(&["volume", "inspect", "-f", "{{json .Labels}}", &anon]);
    assert_eq!(labels.trim(), r#"{"com.docker.volume.anonymous":""}"#);
    // rm without -v keeps it.
    d.ok(&["rm", "a1"]);
    assert_eq!(volume_names(&d), std::slice::from_ref(&anon));

    // -v /path: removed by rm -v.
    d.ok(&[
        "run",
        "--name",
        "a2",
        "--network",
        "none",
        "-v",
        "/scratch",
        BUSYBOX,
        "sh",
        "-c",
        "echo s > /scratch/x",
    ]);
    let scratch = d.inspect("{{range .Mounts}}{{.Name}}{{end}}", "a2");
    assert!(is_hex64(&scratch) && scratch != anon);
    assert_eq!(volume_names(&d).len(), 2);
    d.ok(&["rm", "-v", "a2"]);
    assert_eq!(volume_names(&d), std::slice::from_ref(&anon));
    // --rm takes its anonymous volumes along.
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/tmpvol",
        BUSYBOX,
        "true",
    ]);
    assert_eq!(volume_names(&d), std::slice::from_ref(&anon));

    // A named volume over the image's path is filled on first use; nocopy stays empty.
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "filled:/data",
        DATA_IMAGE,
        "ls",
        "/data",
    ]);
    assert_eq!(out, "hello\nsub\n");
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "filled:/data",
        BUSYBOX,
        "cat",
        "/data/hello",
    ]);
    assert_eq!(out, "from the image\n");
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        "type=volume,src=bare,dst=/data,volume-nocopy",
        DATA_IMAGE,
        "ls",
        "-A",
        "/data",
    ]);
    assert_eq!(out, "");

    // Prune: anonymous only, then everything unused with --all.
    let out = d.ok(&["volume", "prune", "-f"]);
    assert_eq!(
        out,
        format!("Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 20B\n")
    );
    assert_eq!(volume_names(&d), ["bare", "filled"]);
    d.ok(&["volume", "create", "kept"]);
    d.ok(&[
        "create",
        "--name",
        "holder",
        "--network",
        "none",
        "-v",
        "kept:/k",
        BUSYBOX,
    ]);
    let out = d.ok(&["volume", "prune", "-a", "-f"]);
    assert!(out.starts_with("Deleted Volumes:\n"), "{out}");
    let mut deleted: Vec<&str> = out.lines().skip(1).take(2).collect();
    deleted.sort();
    assert_eq!(deleted, ["bare", "filled"], "{out}");
    assert_eq!(volume_names(&d), ["kept"]);
    d.ok(&["rm", "holder"]);
    d.gorae_ok(&["volume", "rm", "kept"]);

    // The API directly: statuses, shapes, and prune's default before API 1.42 (every
    // unused volume, named ones too).
    let (status, body) = d.api("POST", "/volumes/create", Some(br#"{"Name":"legacy"}"#));
    assert_eq!(status, 201, "{body}");
    let (status, body) = d.api("GET", "/volumes", None);
    let list: serde_json::Value = serde_json::from_str(&body).expect("list json");
    assert_eq!(
        (status, list["Volumes"][0]["Name"].as_str()),
        (200, Some("legacy"))
    );
    assert_eq!(list["Warnings"], serde_json::json!([]));
    let (status, body) = d.api("POST", "/volumes/create", Some(br#"{"Name":"b@d"}"#));
    assert_eq!(status, 400, "{body}");
    let (status, body) = d.api("GET", "/volumes/nope", None);
    assert_eq!(
        (status, body.trim()),
        (404, r#"{"message":"get nope: no such volume"}"#)
    );
    assert_eq!(d.api("DELETE", "/volumes/nope", None).0, 404);
    assert_eq!(d.api("DELETE", "/volumes/nope?force=1", None).0, 204);
    let (status, body) = d.api("POST", "/v1.50/volumes/prune", None);
    assert_eq!((status, body.contains("legacy")), (200, false), "{body}");
    let (status, body) = d.api("POST", "/v1.41/volumes/prune", None);
    let pruned: serde_json::Value = serde_json::from_str(&body).expect("prune json");
    assert_eq!(
        (status, &pruned["VolumesDeleted"]),
        (200, &serde_json::json!(["legacy"]))
    );
    finish(d);
}
