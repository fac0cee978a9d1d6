//! cgroup limits seen from inside real containers, on the host's hybrid layout and on pure
//! cgroup v1 (a private mount namespace without the cgroup2 mount). Needs root.

mod support;

use serde_json::json;
use support::{can_run, Env, Layout};

fn memory_limit_kills(layout: Layout) {
    let env = Env::with_layout("memlimit", layout);
    env.edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": 16 << 20, "swap": 16 << 20}));
    // dd allocates its block size: 64 MiB does not fit in 16 MiB.
    env.set_args(&["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]);
    let (code, out, err) = env.run();
    assert_eq!(code, 137, "expected an OOM kill: out={out} err={err}");
    env.set_args(&["dd", "if=/dev/zero", "of=/dev/null", "bs=1M", "count=1"]);
    assert_eq!(env.run().0, 0);
    env.assert_clean();
}

#[test]
fn memory_limit_kills_a_process_that_allocates_past_it() {
    if can_run() {
        memory_limit_kills(Layout::Host);
    }
}

#[test]
fn memory_limit_kills_a_process_that_allocates_past_it_on_pure_v1() {
    if can_run() {
        memory_limit_kills(Layout::PureV1);
    }
}

fn check_pids_limit(layout: Layout) {
    let env = Env::with_layout("pidslimit", layout);
    env.edit(|c| c["linux"]["resources"]["pids"] = json!({"limit": 4}));
    env.set_args(&[
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6; do sleep 2 & done 2>&1; wait; echo done",
    ]);
    let (_, out, _) = env.run();
    assert!(
        out.contains("can't fork") || out.contains("Resource temporarily unavailable"),
        "fork was not limited: {out}"
    );
    env.assert_clean();
}

#[test]
fn pids_limit_stops_fork() {
    if can_run() {
        check_pids_limit(Layout::Host);
    }
}

#[test]
fn pids_limit_stops_fork_on_pure_v1() {
    if can_run() {
        check_pids_limit(Layout::PureV1);
    }
}

fn cpu_and_cpuset_are_written(layout: Layout) {
    let env = Env::with_layout("cpu", layout);
    // blkio.weight exists only where the kernel has a proportional I/O scheduler (CFQ, BFQ);
    // without one the runtime rightly refuses a weight with a clear error (cgroups unit tests).
    let has_blkio_weight = std::path::Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists();
    env.edit(|c| {
        c["linux"]["resources"]["cpu"] =
            json!({"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"});
        if has_blkio_weight {
            c["linux"]["resources"]["blockIO"] = json!({"weight": 300});
        }
    });
    env.set_args(&["sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpuset/cpuset.cpus; grep Cpus_allowed_list /proc/self/status"]);
    let out = env.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], &["512", "50000", "0"], "{out}");
    assert!(lines[3].ends_with("\t0"), "{out}");
    env.assert_clean();
}

#[test]
fn cpu_shares_quota_and_cpuset_apply() {
    if can_run() {
        cpu_and_cpuset_are_written(Layout::Host);
    }
}

#[test]
fn cpu_shares_quota_and_cpuset_apply_on_pure_v1() {
    if can_run() {
        cpu_and_cpuset_are_written(Layout::PureV1);
    }
}

#[test]
fn the_device_cgroup_denies_what_is_not_allowed() {
    if !can_run() {
        return;
    }
    let env = Env::new("devcgroup");
    env.edit(|c| {
        c["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_MKNOD"));
        c["process"]["capabilities"]["effective"]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_MKNOD"));
        c["process"]["capabilities"]["permitted"]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_MKNOD"));
    });
    // 1:4 (/dev/port) is not in the allowed list; mknod is ("c *:* m"), opening is not.
    env.set_args(&[
        "sh",
        "-c",
        "mknod /dev/port c 1 4 && head -c 1 /dev/port 2>&1; echo; head -c 1 /dev/zero | wc -c",
    ]);
    let out = env.run_ok();
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(out.trim_end().ends_with('1'), "{out}");
    env.assert_clean();
}

#[test]
fn hugetlb_limits_go_to_the_hierarchy_that_has_hugetlb() {
    if !can_run() {
        return;
    }
    let env = Env::new("hugetlb");
    env.edit(|c| {
        c["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 4194304}])
    });
    env.set_args(&["sh", "-c", "cat /sys/fs/cgroup/*/hugetlb.2MB.*max* /sys/fs/cgroup/*/hugetlb.2MB.limit_in_bytes 2>/dev/null | head -1"]);
    assert_eq!(env.run_ok().trim(), "4194304");
    env.assert_clean();
}

#[test]
fn an_explicit_cgroups_path_is_used_and_removed() {
    if !can_run() {
        return;
    }
    let env = Env::new("cgpath");
    let path = format!("/gorae-test-{}/{}", std::process::id(), env.id);
    env.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(path);
        // Without a cgroup namespace /proc/self/cgroup shows the host's path.
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "cgroup");
    });
    env.set_args(&["cat", "/proc/self/cgroup"]);
    let out = env.run_ok();
    assert!(
        out.lines()
            .any(|l| l.contains(":pids:") && l.ends_with(&path)),
        "{out}"
    );
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/pids{path}")).exists());
    let _ = std::fs::remove_dir(format!(
        "/sys/fs/cgroup/pids/gorae-test-{}",
        std::process::id()
    ));
    for ctrl in [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd",
        "unified",
    ] {
        let _ = std::fs::remove_dir(format!(
            "/sys/fs/cgroup/{ctrl}/gorae-test-{}",
            std::process::id()
        ));
    }
    env.assert_clean();
}
