//! The container's filesystem: mounts, propagation, devices, masked and read-only paths,
//! read-only root, pivot_root and --no-pivot, symlinks that point out. Needs root.

mod support;

use serde_json::json;
use support::{can_run, Env};

#[test]
fn a_readonly_root_refuses_writes() {
    if !can_run() {
        return;
    }
    let env = Env::new("roroot");
    env.edit(|c| c["root"]["readonly"] = json!(true));
    env.set_args(&["sh", "-c", "touch /newfile 2>&1; echo rc=$?"]);
    let out = env.run_ok();
    assert!(
        out.contains("Read-only file system") && out.contains("rc=1"),
        "{out}"
    );
    env.edit(|c| c["root"]["readonly"] = json!(false));
    env.set_args(&["sh", "-c", "touch /newfile && echo ok"]);
    assert_eq!(env.run_ok().trim(), "ok");
    env.assert_clean();
}

#[test]
fn masked_paths_read_empty_and_readonly_paths_refuse_writes() {
    if !can_run() {
        return;
    }
    let env = Env::new("masked");
    env.edit(|c| {
        c["linux"]["maskedPaths"] =
            json!(["/proc/timer_list", "/proc/acpi", "/proc/does-not-exist"]);
        c["linux"]["readonlyPaths"] = json!(["/proc/sys", "/proc/sysrq-trigger"]);
    });
    env.set_args(&["sh", "-c", "wc -c < /proc/timer_list; ls /proc/acpi | wc -l; echo 1 > /proc/sys/kernel/domainname 2>&1; echo rc=$?; grep ' /proc/sys ' /proc/mounts"]);
    let out = env.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].trim(), "0", "{out}");
    assert_eq!(lines[1].trim(), "0", "{out}");
    assert!(out.contains("rc=1") || out.contains("Read-only"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains(" /proc/sys ") && l.contains(" ro,")),
        "{out}"
    );
    env.assert_clean();
}

#[test]
fn hostname_and_domainname_are_set() {
    if !can_run() {
        return;
    }
    let env = Env::new("uts");
    env.edit(|c| {
        c["hostname"] = json!("box-one");
        c["domainname"] = json!("example.test");
    });
    env.set_args(&["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"]);
    assert_eq!(env.run_ok(), "box-one\nexample.test\n");
    env.assert_clean();
}

#[test]
fn bind_tmpfs_and_propagation_mounts() {
    if !can_run() {
        return;
    }
    let env = Env::new("mounts");
    let host_dir = env.dir.path().join("shared");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host_dir.join("hello"), "from host").unwrap();
    env.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/data", "type": "bind", "source": host_dir, "options": ["rbind", "ro", "nosuid", "rprivate"]}));
        mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "size=1m", "mode=1777"]}));
        mounts.push(json!({"destination": "/rw", "type": "none", "source": host_dir, "options": ["bind", "rw"]}));
    });
    env.set_args(&["sh", "-c", "cat /data/hello; echo; touch /data/x 2>&1; grep -E ' /(data|scratch) ' /proc/mounts; touch /rw/written && echo wrote; stat -c %a /scratch"]);
    let out = env.run_ok();
    assert!(out.starts_with("from host\n"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains(" /data ") && l.contains("ro,nosuid")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains(" /scratch tmpfs ") && l.contains("size=1024k")),
        "{out}"
    );
    assert!(out.contains("wrote"), "{out}");
    assert!(out.trim_end().ends_with("1777"), "{out}");
    assert!(host_dir.join("written").exists());
    env.assert_clean();
}

#[test]
fn mounts_never_follow_symlinks_out_of_the_rootfs() {
    if !can_run() {
        return;
    }
    let env = Env::new("symlink-escape");
    let outside = env.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, env.rootfs().join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", env.rootfs().join("up")).unwrap();
    env.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/evil/sub", "type": "tmpfs", "source": "tmpfs"}));
        mounts.push(json!({"destination": "/up/tmp/escaped", "type": "tmpfs", "source": "tmpfs"}));
    });
    env.set_args(&[
        "sh",
        "-c",
        "grep -c -E ' /(outside|tmp/escaped)' /proc/mounts; ls -d /tmp/escaped",
    ]);
    let out = env.run_ok();
    assert!(
        !outside.join("sub").exists(),
        "a mount point was created outside the rootfs"
    );
    assert!(out.contains("/tmp/escaped"), "{out}");
    assert!(!std::path::Path::new("/tmp/escaped").exists());
    env.assert_clean();
}

#[test]
fn default_devices_and_symlinks_exist_and_config_devices_are_created() {
    if !can_run() {
        return;
    }
    let env = Env::new("devices");
    env.edit(|c| {
        c["linux"]["devices"] = json!([{"path": "/dev/fuse-like", "type": "c", "major": 1, "minor": 7, "fileMode": 0o640, "uid": 5, "gid": 6}]);
    });
    env.set_args(&["sh", "-c", "for d in null zero full random urandom tty; do stat -c '%n %t:%T %a' /dev/$d; done; for l in ptmx fd stdin; do readlink /dev/$l; done; stat -c '%t:%T %a %u %g' /dev/fuse-like; head -c 4 /dev/zero | wc -c"]);
    let out = env.run_ok();
    for line in [
        "/dev/null 1:3 666",
        "/dev/zero 1:5 666",
        "/dev/full 1:7 666",
        "/dev/urandom 1:9 666",
        "/dev/tty 5:0 666",
    ] {
        assert!(out.contains(line), "missing {line:?} in {out}");
    }
    assert!(
        out.contains("pts/ptmx\n/proc/self/fd\n/proc/self/fd/0"),
        "{out}"
    );
    assert!(out.contains("1:7 640 5 6"), "{out}");
    assert!(out.trim_end().ends_with('4'), "{out}");
    env.assert_clean();
}

#[test]
fn no_pivot_switches_root_with_move_and_chroot() {
    if !can_run() {
        return;
    }
    let env = Env::new("nopivot");
    env.set_args(&["sh", "-c", "ls /"]);
    let out = env.runc(&[
        "run",
        "--no-pivot",
        "--bundle",
        env.bundle().to_str().unwrap(),
        &env.id,
    ]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let text = support::stdout(&out);
    assert_eq!(
        text.split_whitespace().collect::<Vec<_>>(),
        ["bin", "dev", "etc", "proc", "root", "sys", "tmp"],
        "{text}"
    );
    env.assert_clean();
}

#[test]
fn sysctls_are_written_in_the_container_namespace() {
    if !can_run() {
        return;
    }
    let env = Env::new("sysctl");
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
    env.edit(|c| {
        c["linux"]["sysctl"] =
            json!({"net.ipv4.ip_unprivileged_port_start": "99", "kernel.shmmni": "1234"})
    });
    env.set_args(&[
        "sh",
        "-c",
        "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni",
    ]);
    assert_eq!(env.run_ok(), "99\n1234\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap(),
        host
    );
    env.assert_clean();
}

#[test]
fn cgroup_mount_shows_the_container_cgroup() {
    if !can_run() {
        return;
    }
    let env = Env::new("cgmount");
    env.set_args(&["sh", "-c", "ls /sys/fs/cgroup; cat /sys/fs/cgroup/pids/cgroup.procs | wc -l; touch /sys/fs/cgroup/pids/x 2>&1; true"]);
    let out = env.run_ok();
    assert!(out.contains("memory\n") && out.contains("pids\n"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    env.assert_clean();
}
