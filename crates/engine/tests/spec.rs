//! Spec generation without root: a Docker config and host config turned into the OCI spec,
//! checked field by field against Docker's behaviour.

use std::path::Path;

use gorae_engine::spec::{self, SpecInput};
use gorae_engine::types::{ContainerConfig, HostConfig, Mount, TmpfsOptions, Ulimit};
use gorae_engine::Error;
use serde_json::{json, Value};

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn host() -> HostConfig {
    HostConfig {
        network_mode: "none".into(),
        ..Default::default()
    }
}

fn rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("etc/group"),
        "root:x:0:\nwheel:x:10:root,app\napp:x:1001:\nstaff:x:50:app\n",
    )
    .unwrap();
    dir
}

/// Stands in for the engine's gorae-runc: any file will do to build a spec.
const RUNTIME: &str = "/bin/sh";

fn build_with(
    config: &ContainerConfig,
    host: &HostConfig,
    root: Option<&Path>,
) -> Result<Value, Error> {
    build_with_runtime(config, host, root, Path::new(RUNTIME))
}

fn build_with_runtime(
    config: &ContainerConfig,
    host: &HostConfig,
    root: Option<&Path>,
    runtime: &Path,
) -> Result<Value, Error> {
    let (path, args) = match config.cmd.as_deref() {
        Some([first, rest @ ..]) => (first.clone(), rest.to_vec()),
        _ => ("sh".to_string(), Vec::new()),
    };
    let spec = spec::build(&SpecInput {
        id: ID,
        config,
        host,
        path: &path,
        args: &args,
        rootfs: root,
        container_dir: Path::new("/var/lib/gorae/containers/x"),
        cgroup_parent: "gorae",
        runtime,
    })?;
    Ok(gorae_runtime::specgen::to_json(&spec).unwrap())
}

fn build(config: &ContainerConfig, host: &HostConfig) -> Value {
    build_with(config, host, None).unwrap()
}

fn mount<'a>(spec: &'a Value, dest: &str) -> Option<&'a Value> {
    spec["mounts"]
        .as_array()?
        .iter()
        .find(|m| m["destination"] == dest)
}

fn namespaces(spec: &Value) -> Vec<String> {
    spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_string())
        .collect()
}

fn caps(spec: &Value) -> Vec<String> {
    serde_json::from_value(spec["process"]["capabilities"]["bounding"].clone()).unwrap()
}

#[test]
fn process_env_cwd_and_hostname() {
    let config = ContainerConfig {
        cmd: Some(vec!["echo".into(), "hi".into()]),
        env: Some(vec!["A=1".into(), "HOSTNAME=mine".into()]),
        working_dir: "/work".into(),
        tty: true,
        ..Default::default()
    };
    let s = build(&config, &host());
    assert_eq!(s["process"]["args"], json!(["echo", "hi"]));
    assert_eq!(
        s["process"]["env"],
        json!([
            format!("PATH={}", spec::DEFAULT_PATH),
            "HOSTNAME=mine",
            "TERM=xterm",
            "A=1"
        ])
    );
    assert_eq!(s["process"]["cwd"], "/work");
    assert_eq!(s["process"]["terminal"], true);
    assert_eq!(s["process"]["noNewPrivileges"], false);
    assert_eq!(s["hostname"], &ID[..12]);
    assert_eq!(s["root"], json!({"path": "rootfs", "readonly": false}));
    assert_eq!(s["linux"]["cgroupsPath"], format!("/gorae/{ID}"));
    let nofile = s["process"]["rlimits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "RLIMIT_NOFILE")
        .cloned()
        .unwrap();
    let (soft, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    assert_eq!(
        nofile,
        json!({"type": "RLIMIT_NOFILE", "soft": soft, "hard": hard})
    );
    let config = ContainerConfig {
        working_dir: "relative".into(),
        ..Default::default()
    };
    assert!(build_with(&config, &host(), None).is_err());
}

#[test]
fn users_resolve_in_the_image() {
    let root = rootfs();
    let user = |u: &str| {
        let config = ContainerConfig {
            user: u.into(),
            ..Default::default()
        };
        build_with(&config, &host(), Some(root.path())).map(|s| s["process"]["user"].clone())
    };
    assert_eq!(
        user("").unwrap(),
        json!({"uid": 0, "gid": 0, "additionalGids": [10]})
    );
    assert_eq!(
        user("app").unwrap(),
        json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 50]})
    );
    assert_eq!(user("1000:staff").unwrap()["gid"], 50);
    assert_eq!(user("4242").unwrap(), json!({"uid": 4242, "gid": 0}));
    assert_eq!(
        user("4242:4343").unwrap(),
        json!({"uid": 4242, "gid": 4343})
    );
    let err = user("nobody").unwrap_err().to_string();
    assert_eq!(
        err,
        "unable to find user nobody: no matching entries in passwd file"
    );
    let err = user("app:nogroup").unwrap_err().to_string();
    assert_eq!(
        err,
        "unable to find group nogroup: no matching entries in group file"
    );
    let mut h = host();
    h.group_add = Some(vec!["staff".into(), "777".into()]);
    let s = build_with(&ContainerConfig::default(), &h, Some(root.path())).unwrap();
    assert_eq!(s["process"]["user"]["additionalGids"], json!([10, 50, 777]));
}

#[test]
fn mounts_binds_tmpfs_and_etc_files() {
    let src = tempfile::tempdir().unwrap();
    let src_path = src.path().to_string_lossy().into_owned();
    let mut h = host();
    h.binds = Some(vec![
        "/data:/data:ro".into(),
        "/logs:/var/log:rw,z,rshared".into(),
        "/shm-host:/dev/shm".into(),
    ]);
    h.mounts = Some(vec![
        Mount {
            kind: "bind".into(),
            source: src_path.clone(),
            target: "/m".into(),
            read_only: true,
            ..Default::default()
        },
        Mount {
            kind: "tmpfs".into(),
            target: "/scratch".into(),
            tmpfs_options: Some(TmpfsOptions {
                size_bytes: 1 << 20,
                mode: 0o1777,
            }),
            ..Default::default()
        },
    ]);
    h.tmpfs = Some([("/run".to_string(), "size=64m,exec".to_string())].into());
    let s = build(&ContainerConfig::default(), &h);
    assert_eq!(
        mount(&s, "/data").unwrap(),
        &json!({"destination": "/data", "type": "bind", "source": "/data",
                "options": ["rbind", "rprivate", "ro"]})
    );
    assert_eq!(
        mount(&s, "/var/log").unwrap()["options"],
        json!(["rbind", "rshared", "rw"])
    );
    // A bind over a default mount replaces it.
    assert_eq!(mount(&s, "/dev/shm").unwrap()["type"], "bind");
    assert_eq!(
        mount(&s, "/m").unwrap()["options"],
        json!(["rbind", "rprivate", "ro"])
    );
    assert_eq!(
        mount(&s, "/scratch").unwrap()["options"],
        json!(["nosuid", "nodev", "noexec", "size=1048576", "mode=1777"])
    );
    assert_eq!(
        mount(&s, "/run").unwrap()["options"],
        json!(["nosuid", "nodev", "size=64m", "exec"])
    );
    for file in ["hostname", "hosts", "resolv.conf"] {
        let m = mount(&s, &format!("/etc/{file}")).unwrap();
        assert_eq!(m["source"], format!("/var/lib/gorae/containers/x/{file}"));
    }
    // Parents before children.
    let dests: Vec<&str> = s["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    let pos = |d: &str| dests.iter().position(|x| *x == d).unwrap();
    assert!(pos("/dev") < pos("/dev/shm") && pos("/sys") < pos("/sys/fs/cgroup"));

    for (bad, kind) in [
        ("relative:/x", "Internal"),
        ("/x:relative", "InvalidParameter"),
        ("/a:/b:/c:/d", "InvalidParameter"),
        ("/a:/b:bogus", "InvalidParameter"),
    ] {
        let mut h = host();
        h.binds = Some(vec![bad.into()]);
        let err = build_with(&ContainerConfig::default(), &h, None).unwrap_err();
        assert!(format!("{err:?}").starts_with(kind), "{bad}: {err:?}");
    }
    let mut h = host();
    h.mounts = Some(vec![Mount {
        kind: "bind".into(),
        source: "/no/such/dir".into(),
        target: "/x".into(),
        ..Default::default()
    }]);
    let err = build_with(&ContainerConfig::default(), &h, None).unwrap_err();
    assert!(
        err.to_string().contains("bind source path does not exist"),
        "{err}"
    );
}

#[test]
fn capabilities_follow_docker_rules() {
    let with = |add: &[&str], drop: &[&str]| {
        let mut h = host();
        h.cap_add = Some(add.iter().map(|s| s.to_string()).collect());
        h.cap_drop = Some(drop.iter().map(|s| s.to_string()).collect());
        build_with(&ContainerConfig::default(), &h, None).map(|s| caps(&s))
    };
    let default = with(&[], &[]).unwrap();
    assert_eq!(default.len(), 14);
    assert!(default.contains(&"CAP_NET_RAW".to_string()));
    let c = with(&["sys_admin", "CAP_NET_ADMIN"], &["net_raw"]).unwrap();
    assert!(c.contains(&"CAP_SYS_ADMIN".into()) && c.contains(&"CAP_NET_ADMIN".into()));
    assert!(!c.contains(&"CAP_NET_RAW".into()));
    assert_eq!(with(&["chown"], &["ALL"]).unwrap(), ["CAP_CHOWN"]);
    let all = with(&["ALL"], &["mknod"]).unwrap();
    assert_eq!(all.len(), held() - 1);
    assert!(!all.contains(&"CAP_MKNOD".into()));
    let err = with(&["CAP_FLY"], &[]).unwrap_err();
    assert_eq!(err.to_string(), "unknown capability: \"CAP_FLY\"");
}

/// How many of the 41 known capabilities this process holds (privileged's "all").
fn held() -> usize {
    let mask = spec::held_capabilities().unwrap();
    (0..41).filter(|n| mask >> n & 1 == 1).count()
}

#[test]
fn privileged_gets_everything() {
    let mut h = host();
    h.privileged = true;
    let s = build(&ContainerConfig::default(), &h);
    assert_eq!(caps(&s).len(), held());
    assert!(s["linux"].get("seccomp").is_none());
    assert_eq!(s["linux"]["maskedPaths"], json!([]));
    assert_eq!(s["linux"]["readonlyPaths"], json!([]));
    assert_eq!(
        s["linux"]["resources"]["devices"],
        json!([{"allow": true, "access": "rwm"}])
    );
    assert!(s["linux"]["devices"]
        .as_array()
        .is_some_and(|d| d.iter().any(|d| d["path"] == "/dev/null")));
    let opts = mount(&s, "/sys").unwrap()["options"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!opts.contains(&json!("ro")));
    // The default keeps Docker's confinement.
    let s = build(&ContainerConfig::default(), &host());
    assert!(s["linux"]["seccomp"].is_object());
    assert_eq!(s["linux"]["maskedPaths"].as_array().map(Vec::len), Some(12));
}

#[test]
fn namespaces_follow_the_modes() {
    let s = build(&ContainerConfig::default(), &host());
    assert_eq!(
        namespaces(&s),
        ["pid", "network", "ipc", "uts", "mount", "cgroup"]
    );
    let mut h = host();
    h.network_mode = "host".into();
    h.pid_mode = "host".into();
    h.ipc_mode = "host".into();
    let s = build(&ContainerConfig::default(), &h);
    assert_eq!(namespaces(&s), ["uts", "mount", "cgroup"]);
    assert_eq!(mount(&s, "/dev/shm").unwrap()["source"], "/dev/shm");
    let host_name = nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(s["hostname"], host_name);
    let mut h = host();
    h.uts_mode = "host".into();
    let s = build(&ContainerConfig::default(), &h);
    assert!(s.get("hostname").is_none());
    assert!(!namespaces(&s).contains(&"uts".to_string()));
    // Bridge, user networks and container:X get a namespace of their own in the spec (the
    // engine gives it the path of its namespace file when it starts the container).
    for mode in ["", "default", "bridge", "mynet", "container:abc"] {
        let mut h = host();
        h.network_mode = mode.into();
        let s = build(&ContainerConfig::default(), &h);
        assert!(namespaces(&s).contains(&"network".to_string()), "{mode}");
    }
}

#[test]
fn init_is_the_runtime_mounted_as_docker_init() {
    let config = ContainerConfig {
        cmd: Some(vec!["sleep".into(), "1".into()]),
        ..Default::default()
    };
    let s = build(&config, &host());
    assert_eq!(s["process"]["args"], json!(["sleep", "1"]));
    assert!(mount(&s, "/sbin/docker-init").is_none());
    let mut h = host();
    h.init = Some(true);
    let real = std::fs::canonicalize(RUNTIME).unwrap();
    for runtime in [RUNTIME, "sh"] {
        let s = build_with_runtime(&config, &h, None, Path::new(runtime)).unwrap();
        assert_eq!(
            s["process"]["args"],
            json!(["/sbin/docker-init", "--", "sleep", "1"])
        );
        let m = mount(&s, "/sbin/docker-init").unwrap();
        assert_eq!(m["source"], json!(real), "{runtime}");
        assert_eq!(m["type"], "bind");
        assert!(m["options"].as_array().unwrap().contains(&json!("ro")));
    }
    h.init = Some(false);
    let s = build_with_runtime(&config, &h, None, Path::new("/nonexistent")).unwrap();
    assert_eq!(s["process"]["args"], json!(["sleep", "1"]));
    h.init = Some(true);
    for missing in ["/nonexistent/gorae-runc", "gorae-no-such-runtime"] {
        let err = build_with_runtime(&config, &h, None, Path::new(missing)).unwrap_err();
        assert!(matches!(err, Error::Internal(_)), "{err}");
        assert!(err.to_string().contains(missing), "{err}");
    }
}

#[test]
fn resources_ulimits_and_security_opts() {
    let mut h = host();
    h.resources.memory = 256 << 20;
    h.resources.nano_cpus = 1_500_000_000;
    h.resources.cpu_shares = 512;
    h.resources.cpuset_cpus = "0".into();
    h.resources.pids_limit = Some(100);
    h.resources.blkio_weight = 300;
    h.resources.ulimits = Some(vec![Ulimit {
        name: "nproc".into(),
        soft: 10,
        hard: 20,
    }]);
    h.security_opt = Some(vec![
        "no-new-privileges".into(),
        "seccomp=unconfined".into(),
    ]);
    h.readonly_rootfs = true;
    h.resources.cgroup_parent = "custom/parent".into();
    let s = build(&ContainerConfig::default(), &h);
    let r = &s["linux"]["resources"];
    assert_eq!(r["memory"], json!({"limit": 256 << 20, "swap": 512 << 20}));
    assert_eq!(r["cpu"]["quota"], 150_000);
    assert_eq!(r["cpu"]["period"], 100_000);
    assert_eq!(r["cpu"]["shares"], 512);
    assert_eq!(r["cpu"]["cpus"], "0");
    assert_eq!(r["pids"], json!({"limit": 100}));
    assert_eq!(r["blockIO"], json!({"weight": 300}));
    assert!(s["process"]["rlimits"]
        .as_array()
        .unwrap()
        .contains(&json!({"type": "RLIMIT_NPROC", "soft": 10, "hard": 20})));
    assert_eq!(s["process"]["noNewPrivileges"], true);
    assert!(s["linux"].get("seccomp").is_none());
    assert_eq!(s["root"]["readonly"], true);
    assert_eq!(s["linux"]["cgroupsPath"], format!("/custom/parent/{ID}"));
    let mut h = host();
    h.resources.memory = 1024;
    assert!(build_with(&ContainerConfig::default(), &h, None).is_err());
    let mut h = host();
    h.resources.ulimits = Some(vec![Ulimit {
        name: "bogus".into(),
        soft: 1,
        hard: 1,
    }]);
    assert!(build_with(&ContainerConfig::default(), &h, None).is_err());
}

#[test]
fn etc_files_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = host();
    h.extra_hosts = Some(vec!["db:10.0.0.2".into()]);
    h.dns = Some(vec!["1.1.1.1".into()]);
    h.dns_search = Some(vec!["example.org".into()]);
    spec::write_etc_files(dir.path(), "box1", &h).unwrap();
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    assert_eq!(read("hostname"), "box1\n");
    let hosts = read("hosts");
    assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"), "{hosts}");
    assert!(
        hosts.contains("127.0.0.1\tbox1\n") && hosts.contains("10.0.0.2\tdb\n"),
        "{hosts}"
    );
    let resolv = read("resolv.conf");
    assert!(resolv.contains("nameserver 1.1.1.1\n"), "{resolv}");
    assert!(resolv.contains("search example.org\n"), "{resolv}");
    assert_eq!(resolv.matches("nameserver").count(), 1, "{resolv}");
}
