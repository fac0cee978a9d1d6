//! seccomp and namespaces (user namespace mappings, joining namespaces by path). Needs root.

mod support;

use serde_json::json;
use support::{can_run, stderr, Env};

#[test]
fn a_seccomp_rule_returns_its_errno() {
    if !can_run() {
        return;
    }
    let env = Env::new("seccomp");
    env.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
            ]
        });
        c["process"]["args"] = json!([
            "sh",
            "-c",
            "mkdir /tmp/x 2>&1; hostname foo 2>&1; echo; grep ^Seccomp: /proc/self/status"
        ]);
    });
    let out = env.run_ok();
    assert!(out.contains("Permission denied"), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    env.assert_clean();
}

#[test]
fn seccomp_is_in_place_without_no_new_privileges_too() {
    if !can_run() {
        return;
    }
    let env = Env::new("seccomp-nonnp");
    env.edit(|c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]});
        c["process"]["args"] = json!(["sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; mkdir /tmp/x 2>&1; true"]);
    });
    let out = env.run_ok();
    assert!(
        out.contains("Seccomp:\t2") && out.contains("NoNewPrivs:\t0"),
        "{out}"
    );
    assert!(out.contains("Operation not permitted"), "{out}");
    env.assert_clean();
}

#[test]
fn a_user_namespace_maps_ids() {
    if !can_run() {
        return;
    }
    let env = Env::new("userns");
    let rootfs = env.rootfs();
    std::process::Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(&rootfs)
        .status()
        .unwrap();
    env.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        // sysfs needs the network namespace's owner; the default spec has one.
        c["process"]["args"] = json!([
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u; ls -ld /dev/null"
        ]);
    });
    let out = env.run_ok();
    let maps: Vec<Vec<&str>> = out
        .lines()
        .take(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(maps[0], ["0", "100000", "65536"], "{out}");
    assert_eq!(maps[1], ["0", "100000", "65536"], "{out}");
    assert!(out.lines().nth(2) == Some("0"), "{out}");
    env.assert_clean();
}

#[test]
fn a_container_joins_another_containers_namespaces_by_path() {
    if !can_run() {
        return;
    }
    let first = Env::new("ns-owner");
    first.set_args(&["sleep", "100"]);
    let out = first.runc(&[
        "run",
        "-d",
        "--bundle",
        first.bundle().to_str().unwrap(),
        &first.id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = first.state()["pid"].as_i64().unwrap();
    let second = Env::new("ns-joiner");
    second.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        for n in ns.iter_mut() {
            if n["type"] == "network" || n["type"] == "uts" || n["type"] == "ipc" {
                n["path"] = json!(format!(
                    "/proc/{pid}/ns/{}",
                    match n["type"].as_str().unwrap() {
                        "network" => "net",
                        t => t,
                    }
                ));
            }
        }
        c["hostname"] = json!(null);
        c["process"]["args"] = json!([
            "sh",
            "-c",
            "for n in net uts ipc; do readlink /proc/self/ns/$n; done"
        ]);
    });
    second.edit(|c| {
        c.as_object_mut().unwrap().remove("hostname");
    });
    let out = second.run_ok();
    for ns in ["net", "uts", "ipc"] {
        let want = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert!(out.contains(want.to_str().unwrap()), "{ns}: {out}");
    }
    second.assert_clean();
    assert!(first.runc(&["delete", "-f", &first.id]).status.success());
    first.assert_clean();
}

#[test]
fn a_new_user_namespace_can_join_an_existing_network_namespace() {
    if !can_run() {
        return;
    }
    let env = Env::new("userns-join");
    std::process::Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(env.rootfs())
        .status()
        .unwrap();
    env.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        ns.push(json!({"type": "user"}));
        ns.push(json!({"type": "network", "path": format!("/proc/{}/ns/net", std::process::id())}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        // sysfs of a network namespace we do not own cannot be mounted: runc binds /sys.
        c["process"]["args"] = json!([
            "sh",
            "-c",
            "readlink /proc/self/ns/net; cat /proc/self/uid_map"
        ]);
    });
    let out = env.run_ok();
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert!(out.contains(host_net.to_str().unwrap()), "{out}");
    assert!(out.contains("100000"), "{out}");
    env.assert_clean();
}

#[test]
fn a_time_namespace_gets_its_clock_offsets() {
    if !can_run() {
        return;
    }
    let env = Env::new("timens");
    env.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000, "nanosecs": 0}});
        c["process"]["args"] = json!([
            "sh",
            "-c",
            "cut -d. -f1 /proc/uptime; readlink /proc/self/ns/time"
        ]);
    });
    let out = env.run_ok();
    let uptime: u64 = out.lines().next().unwrap().parse().unwrap();
    assert!(uptime >= 864000, "{out}");
    let host_ns = std::fs::read_link("/proc/self/ns/time").unwrap();
    assert!(!out.contains(host_ns.to_str().unwrap()), "{out}");
    env.assert_clean();
}

#[test]
fn a_user_namespace_container_binds_sources_behind_host_only_directories() {
    if !can_run() {
        return;
    }
    let env = Env::new("userns-bind");
    std::process::Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(env.rootfs())
        .status()
        .unwrap();
    let private = env.dir.path().join("private");
    let data = private.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("hello"), "behind a 0700 directory").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    env.edit(|c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "ro"]}));
        c["process"]["args"] = json!(["cat", "/data/hello"]);
    });
    assert_eq!(env.run_ok(), "behind a 0700 directory");
    env.assert_clean();
}
