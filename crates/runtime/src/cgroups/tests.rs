//! Unit tests on fake cgroup trees in a tempdir (no root needed) and on sample /proc texts.

use super::devices::{self, TEST_ACC_R, TEST_ACC_RW, TEST_ACC_W, TEST_DEV_BLOCK, TEST_DEV_CHAR};
use super::resources::{blkio_to_io_weight, plan, shares_to_weight};
use super::*;
use std::fs;

const HOST_MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

const HOST_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/ee30
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn rd(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn layout_hybrid_like_this_host() {
    let l = Layout::from_mountinfo(HOST_MOUNTINFO, HOST_CGROUP);
    assert_eq!(l.kind(), Some(LayoutKind::Hybrid));
    assert_eq!(l.mounts.len(), 10);
    let mem = l.mounts.iter().find(|m| m.name == "memory").unwrap();
    assert_eq!(mem.own_path, Path::new("/process_api/ee30"));
    assert_eq!(mem.mount_point, Path::new("/sys/fs/cgroup/memory"));
    let sd = l.mounts.iter().find(|m| m.name == "name=systemd").unwrap();
    assert_eq!(sd.controllers, vec!["name=systemd".to_string()]);
    let u = l.mounts.iter().find(|m| m.unified).unwrap();
    assert_eq!(u.own_path, Path::new("/"));
    assert_eq!(u.mount_point, Path::new("/sys/fs/cgroup/unified"));

    // default: relative gorae-<id> under the caller's cgroup in each hierarchy
    let cg = Cgroup::resolve_in(&l, None, "abc").unwrap();
    assert_eq!(cg.kind(), LayoutKind::Hybrid);
    let dir = |name: &str| {
        cg.hierarchies
            .iter()
            .find(|h| h.controllers == name && !h.unified)
            .unwrap()
            .dir
            .clone()
    };
    assert_eq!(
        dir("memory"),
        Path::new("/sys/fs/cgroup/memory/process_api/ee30/gorae-abc")
    );
    assert_eq!(dir("cpu"), Path::new("/sys/fs/cgroup/cpu/gorae-abc"));
    let uh = cg.hierarchies.iter().find(|h| h.unified).unwrap();
    assert_eq!(uh.dir, Path::new("/sys/fs/cgroup/unified/gorae-abc"));
    assert_eq!(uh.path, Path::new("/gorae-abc"));

    // absolute: from the hierarchy root, whatever the caller's cgroup
    let cg = Cgroup::resolve_in(&l, Some(Path::new("/a/b")), "x").unwrap();
    let mem = cg
        .hierarchies
        .iter()
        .find(|h| h.controllers == "memory")
        .unwrap();
    assert_eq!(mem.dir, Path::new("/sys/fs/cgroup/memory/a/b"));
    assert_eq!(mem.path, Path::new("/a/b"));

    // relative explicit
    let cg = Cgroup::resolve_in(&l, Some(Path::new("k8s/pod1")), "x").unwrap();
    let mem = cg
        .hierarchies
        .iter()
        .find(|h| h.controllers == "memory")
        .unwrap();
    assert_eq!(mem.path, Path::new("/process_api/ee30/k8s/pod1"));

    for bad in ["/a/../b", "../x", "a/..", "/", ""] {
        let e = Cgroup::resolve_in(&l, Some(Path::new(bad)), "x").unwrap_err();
        assert!(matches!(e, CgroupError::BadPath { .. }), "{bad}: {e}");
    }
    assert!(Cgroup::resolve_in(&l, None, "a/../../b").is_err());
    // "gorae-.." is one harmless component
    assert!(Cgroup::resolve_in(&l, None, "..").is_ok());
}

#[test]
fn layout_pure_v1_with_comounted_controllers() {
    let mi = "\
25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpuacct,cpu
26 24 0:23 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio
27 24 0:24 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
28 24 0:24 / /mnt/again rw - cgroup cgroup rw,memory
29 24 0:25 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
";
    let cg = "4:memory:/user/1\n3:net_cls,net_prio:/\n2:cpu,cpuacct:/c\n1:name=systemd:/s\n";
    let l = Layout::from_mountinfo(mi, cg);
    assert_eq!(l.kind(), Some(LayoutKind::V1));
    assert_eq!(l.mounts.len(), 4, "{l:#?}");
    let cpu = &l.mounts[0];
    assert_eq!(cpu.name, "cpu,cpuacct");
    assert_eq!(cpu.own_path, Path::new("/c"));
    let c = Cgroup::resolve_in(&l, Some(Path::new("x")), "i").unwrap();
    assert_eq!(
        c.v1("cpuacct").unwrap().dir,
        Path::new("/sys/fs/cgroup/cpu,cpuacct/c/x")
    );
    assert_eq!(
        c.v1("net_prio").unwrap().dir,
        Path::new("/sys/fs/cgroup/net_cls,net_prio/x")
    );
    assert_eq!(
        c.v1("name=systemd").unwrap().dir,
        Path::new("/sys/fs/cgroup/systemd/s/x")
    );
    assert!(c.unified().is_none());
}

#[test]
fn layout_pure_v2_and_odd_input() {
    let mi = "30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
    let l = Layout::from_mountinfo(mi, "0::/user.slice/session-1.scope\n");
    assert_eq!(l.kind(), Some(LayoutKind::V2));
    let c = Cgroup::resolve_in(&l, None, "z").unwrap();
    assert_eq!(c.hierarchies.len(), 1);
    assert_eq!(
        c.hierarchies[0].dir,
        Path::new("/sys/fs/cgroup/user.slice/session-1.scope/gorae-z")
    );

    // A mount that shows a subtree: paths outside it are refused, paths inside map.
    let mi = "30 24 0:26 /kubepods /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    let l = Layout::from_mountinfo(mi, "0::/kubepods/pod\n");
    let c = Cgroup::resolve_in(&l, None, "z").unwrap();
    assert_eq!(
        c.hierarchies[0].dir,
        Path::new("/sys/fs/cgroup/pod/gorae-z")
    );
    assert!(Cgroup::resolve_in(&l, Some(Path::new("/elsewhere")), "z").is_err());

    // Escaped mount points, garbage lines and a missing separator: no panic.
    let mi = "garbage\n1 2 3\n30 24 0:26 / /sys/fs/cg\\040v2 rw - cgroup2 none rw\n31 1 0:1 / /x rw shared:1\n\\\n";
    let l = Layout::from_mountinfo(mi, "::\n0::\nnonsense\n0::relative\n");
    assert_eq!(l.mounts.len(), 1);
    assert_eq!(l.mounts[0].mount_point, Path::new("/sys/fs/cg v2"));
    assert_eq!(l.mounts[0].own_path, Path::new("/"));

    let empty = Layout::from_mountinfo("", "");
    assert_eq!(empty.kind(), None);
    assert!(matches!(
        Cgroup::resolve_in(&empty, None, "x"),
        Err(CgroupError::Layout(_))
    ));
}

/// A fake cgroupfs: every hierarchy a directory of a tempdir, described by mountinfo text.
struct Fake {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    layout: Layout,
}

fn fake(kind: LayoutKind) -> Fake {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let mut mi = String::new();
    let mut cg = String::new();
    let v1 = [
        "cpu,cpuacct",
        "cpuset",
        "memory",
        "devices",
        "freezer",
        "blkio",
        "pids",
        "hugetlb",
        "net_cls,net_prio",
        "name=systemd",
    ];
    if kind != LayoutKind::V2 {
        for (i, c) in v1.iter().enumerate() {
            if kind == LayoutKind::Hybrid && *c == "hugetlb" {
                continue;
            }
            let mp = root.join(c);
            fs::create_dir_all(&mp).unwrap();
            mi.push_str(&format!(
                "{} 1 0:{} / {} rw - cgroup cgroup rw,{c}\n",
                40 + i,
                40 + i,
                mp.display()
            ));
            cg.push_str(&format!("{}:{c}:/\n", i + 1));
        }
    }
    if kind != LayoutKind::V1 {
        let mp = root.join("unified");
        fs::create_dir_all(&mp).unwrap();
        let ctl = if kind == LayoutKind::Hybrid {
            "hugetlb"
        } else {
            "cpuset cpu io memory hugetlb pids rdma misc"
        };
        fs::write(mp.join("cgroup.controllers"), ctl).unwrap();
        fs::write(mp.join("cgroup.subtree_control"), "").unwrap();
        mi.push_str(&format!(
            "60 1 0:60 / {} rw - cgroup2 cgroup2 rw\n",
            mp.display()
        ));
        cg.push_str("0::/\n");
    }
    let layout = Layout::from_mountinfo(&mi, &cg);
    assert_eq!(layout.kind(), Some(kind));
    Fake {
        _tmp: tmp,
        root,
        layout,
    }
}

/// Creates (empty) the files the kernel would show in `dir`.
fn touch(dir: &Path, files: &[&str]) {
    for f in files {
        fs::write(dir.join(f), "").unwrap();
    }
}

const V2_FILES: &[&str] = &[
    "cgroup.procs",
    "cgroup.freeze",
    "cgroup.events",
    "cpu.weight",
    "cpu.max",
    "cpu.idle",
    "cpuset.cpus",
    "cpuset.mems",
    "memory.max",
    "memory.low",
    "memory.high",
    "memory.swap.max",
    "pids.max",
    "io.weight",
    "io.max",
    "hugetlb.2MB.max",
    "hugetlb.1GB.max",
];

#[test]
fn v2_create_enables_controllers_and_apply_converts() {
    let f = fake(LayoutKind::V2);
    let cg = Cgroup::resolve_in(&f.layout, Some(Path::new("/pod/ctr")), "x").unwrap();
    cg.create().unwrap();
    let dir = f.root.join("unified/pod/ctr");
    assert!(dir.is_dir());
    assert_eq!(
        rd(&f.root.join("unified/cgroup.subtree_control")),
        "+cpuset +cpu +io +memory +hugetlb +pids +rdma +misc"
    );
    touch(&dir, V2_FILES);
    let r = res(r#"{
        "memory": {"limit": 1073741824, "swap": 3221225472, "reservation": 536870912, "kernel": 1000},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0", "idle": 1},
        "pids": {"limit": -1},
        "blockIO": {"weight": 500,
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
            "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
            "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}, {"pageSize": "1GB", "limit": -1}],
        "unified": {"memory.high": "900000000"}
    }"#);
    let p = plan(&cg, &r).unwrap();
    let io_max: Vec<&str> = p
        .writes
        .iter()
        .filter(|w| w.path.ends_with("io.max"))
        .map(|w| w.value.as_str())
        .collect();
    assert_eq!(
        io_max,
        ["8:0 rbps=1048576 wbps=2097152 wiops=max", "8:16 riops=100"]
    );
    cg.apply(&r).unwrap();
    assert_eq!(rd(&dir.join("memory.max")), "1073741824");
    assert_eq!(rd(&dir.join("memory.swap.max")), "2147483648");
    assert_eq!(rd(&dir.join("memory.low")), "536870912");
    assert_eq!(rd(&dir.join("memory.high")), "900000000");
    assert_eq!(rd(&dir.join("cpu.weight")), "100");
    assert_eq!(rd(&dir.join("cpu.max")), "50000 100000");
    assert_eq!(rd(&dir.join("cpu.idle")), "1");
    assert_eq!(rd(&dir.join("cpuset.cpus")), "0-1");
    assert_eq!(rd(&dir.join("pids.max")), "max");
    assert_eq!(
        rd(&dir.join("io.weight")),
        blkio_to_io_weight(500).to_string()
    );
    assert_eq!(rd(&dir.join("io.max")), "8:16 riops=100");
    assert_eq!(rd(&dir.join("hugetlb.2MB.max")), "4194304");
    assert_eq!(rd(&dir.join("hugetlb.1GB.max")), "max");

    // quota unlimited with a period; swap unlimited
    cg.apply(&res(
        r#"{"cpu": {"quota": -1, "period": 20000}, "memory": {"limit": 100000000, "swap": -1}, "pids": {"limit": 0}}"#,
    ))
    .unwrap();
    assert_eq!(rd(&dir.join("cpu.max")), "max 20000");
    assert_eq!(rd(&dir.join("memory.swap.max")), "max");
    assert_eq!(rd(&dir.join("pids.max")), "max");
    cg.apply(&res(r#"{"pids": {"limit": 42}, "memory": {"limit": -1}}"#))
        .unwrap();
    assert_eq!(rd(&dir.join("pids.max")), "42");
    assert_eq!(rd(&dir.join("memory.max")), "max");
    assert_eq!(rd(&dir.join("memory.swap.max")), "max");

    // v1-only knobs are refused on v2, naming the field
    for (json, field) in [
        (r#"{"memory": {"swappiness": 10}}"#, "memory.swappiness"),
        (r#"{"memory": {"kernelTCP": 1000}}"#, "memory.kernelTCP"),
        (
            r#"{"memory": {"disableOOMKiller": true}}"#,
            "memory.disableOOMKiller",
        ),
        (r#"{"cpu": {"realtimeRuntime": 1000}}"#, "cpu.realtime"),
        (r#"{"blockIO": {"leafWeight": 100}}"#, "blockIO.leafWeight"),
    ] {
        let e = cg.apply(&res(json)).unwrap_err().to_string();
        assert!(e.contains(field) && e.contains("no cgroup v2"), "{e}");
    }
    // network is v1-only; rdma is skipped unless set, then needs rdma.max
    let e = cg
        .apply(&res(r#"{"network": {"classID": 1048577}}"#))
        .unwrap_err()
        .to_string();
    assert!(e.contains("net_cls"), "{e}");
    cg.apply(&res(r#"{"rdma": {}}"#)).unwrap();
    let e = cg
        .apply(&res(r#"{"rdma": {"mlx4_0": {"hcaHandles": 3}}}"#))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("rdma.max") && e.contains("does not exist"),
        "{e}"
    );
    touch(&dir, &["rdma.max"]);
    cg.apply(&res(
        r#"{"rdma": {"mlx4_0": {"hcaHandles": 3, "hcaObjects": 9}}}"#,
    ))
    .unwrap();
    assert_eq!(
        rd(&dir.join("rdma.max")),
        "mlx4_0 hca_handle=3 hca_object=9"
    );

    // v2 devices become a bpf program, not file writes
    let p = plan(
        &cg,
        &res(r#"{"devices": [{"allow": false, "access": "rwm"}]}"#),
    )
    .unwrap();
    assert!(p.writes.is_empty());
    assert_eq!(p.bpf_devices.unwrap().0, dir);

    // freeze state comes from cgroup.events
    fs::write(dir.join("cgroup.events"), "populated 0\nfrozen 1\n").unwrap();
    cg.freeze().unwrap();
    assert_eq!(rd(&dir.join("cgroup.freeze")), "1");
    assert!(cg.is_frozen().unwrap());
}

#[test]
fn v2_io_weight_uses_bfq_when_present() {
    let f = fake(LayoutKind::V2);
    let cg = Cgroup::resolve_in(&f.layout, None, "b").unwrap();
    cg.create().unwrap();
    let dir = &cg.hierarchies[0].dir;
    touch(dir, &["io.bfq.weight", "io.weight"]);
    cg.apply(&res(r#"{"blockIO": {"weight": 300}}"#)).unwrap();
    assert_eq!(rd(&dir.join("io.bfq.weight")), "300");
    assert_eq!(rd(&dir.join("io.weight")), "");
}

const V1_FILES: &[(&str, &[&str])] = &[
    (
        "memory",
        &[
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.kmem.limit_in_bytes",
            "memory.kmem.tcp.limit_in_bytes",
            "memory.swappiness",
            "memory.oom_control",
            "memory.use_hierarchy",
        ],
    ),
    (
        "cpu,cpuacct",
        &[
            "cpu.shares",
            "cpu.cfs_quota_us",
            "cpu.cfs_period_us",
            "cpu.rt_runtime_us",
            "cpu.rt_period_us",
        ],
    ),
    ("cpuset", &["cpuset.cpus", "cpuset.mems"]),
    ("pids", &["pids.max"]),
    (
        "blkio",
        &[
            "blkio.weight",
            "blkio.leaf_weight",
            "blkio.weight_device",
            "blkio.throttle.read_bps_device",
            "blkio.throttle.write_iops_device",
        ],
    ),
    ("hugetlb", &["hugetlb.2MB.limit_in_bytes"]),
    ("devices", &["devices.allow", "devices.deny"]),
    ("freezer", &["freezer.state"]),
    (
        "net_cls,net_prio",
        &["net_cls.classid", "net_prio.ifpriomap"],
    ),
];

fn fake_v1_container(f: &Fake) -> Cgroup {
    let cg = Cgroup::resolve_in(&f.layout, Some(Path::new("/gorae/c1")), "x").unwrap();
    // the parent's cpuset is copied into each created directory
    fs::write(f.root.join("cpuset/cpuset.cpus"), "0-3\n").unwrap();
    fs::write(f.root.join("cpuset/cpuset.mems"), "0\n").unwrap();
    fs::create_dir_all(f.root.join("cpuset/gorae")).unwrap();
    touch(
        &f.root.join("cpuset/gorae"),
        &["cpuset.cpus", "cpuset.mems"],
    );
    fs::create_dir_all(f.root.join("cpuset/gorae/c1")).unwrap();
    touch(
        &f.root.join("cpuset/gorae/c1"),
        &["cpuset.cpus", "cpuset.mems"],
    );
    cg.create().unwrap();
    for (h, files) in V1_FILES {
        let dir = f.root.join(h).join("gorae/c1");
        if dir.is_dir() {
            touch(&dir, files);
        }
    }
    cg
}

#[test]
fn v1_apply_writes_v1_files_in_kernel_order() {
    let f = fake(LayoutKind::V1);
    let cg = fake_v1_container(&f);
    assert_eq!(rd(&f.root.join("cpuset/gorae/cpuset.cpus")), "0-3");
    for h in ["memory", "pids", "name=systemd", "freezer"] {
        assert!(f.root.join(h).join("gorae/c1").is_dir(), "{h}");
    }
    let d = |h: &str, file: &str| f.root.join(h).join("gorae/c1").join(file);
    // the current limit is 1 GiB: growing memsw above it goes first, limit second
    fs::write(d("memory", "memory.limit_in_bytes"), "1073741824\n").unwrap();
    let r = res(r#"{
        "memory": {"limit": 2147483648, "swap": 4294967296, "reservation": 1000, "kernel": 5000,
                   "kernelTCP": 6000, "swappiness": 0, "disableOOMKiller": true, "useHierarchy": true},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "realtimeRuntime": 950, "realtimePeriod": 1000, "cpus": "1", "mems": "0"},
        "pids": {"limit": -1},
        "blockIO": {"weight": 100, "leafWeight": 50,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 200}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 50}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}],
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
        "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                    {"allow": true, "type": "c", "major": 136, "access": "rwm"}]
    }"#);
    let p = plan(&cg, &r).unwrap();
    let files: Vec<String> = p
        .writes
        .iter()
        .map(|w| {
            format!(
                "{}={}",
                w.path.file_name().unwrap().to_string_lossy(),
                w.value
            )
        })
        .collect();
    let pos = |s: &str| {
        files
            .iter()
            .position(|f| f == s)
            .unwrap_or_else(|| panic!("{s} in {files:?}"))
    };
    assert!(
        pos("memory.memsw.limit_in_bytes=4294967296") < pos("memory.limit_in_bytes=2147483648")
    );
    assert!(pos("cpu.cfs_period_us=100000") < pos("cpu.cfs_quota_us=20000"));
    let dev: Vec<&String> = files.iter().filter(|f| f.starts_with("devices.")).collect();
    assert_eq!(
        dev,
        [
            "devices.deny=a *:* rwm",
            "devices.allow=c 1:3 rw",
            "devices.allow=c 136:* rwm"
        ]
    );
    cg.apply(&r).unwrap();
    assert_eq!(rd(&d("memory", "memory.limit_in_bytes")), "2147483648");
    assert_eq!(
        rd(&d("memory", "memory.memsw.limit_in_bytes")),
        "4294967296"
    );
    assert_eq!(rd(&d("memory", "memory.soft_limit_in_bytes")), "1000");
    assert_eq!(rd(&d("memory", "memory.kmem.limit_in_bytes")), "5000");
    assert_eq!(rd(&d("memory", "memory.kmem.tcp.limit_in_bytes")), "6000");
    assert_eq!(rd(&d("memory", "memory.swappiness")), "0");
    assert_eq!(rd(&d("memory", "memory.oom_control")), "1");
    assert_eq!(rd(&d("memory", "memory.use_hierarchy")), "1");
    assert_eq!(rd(&d("cpu,cpuacct", "cpu.shares")), "512");
    assert_eq!(rd(&d("cpu,cpuacct", "cpu.rt_runtime_us")), "950");
    assert_eq!(rd(&d("cpuset", "cpuset.cpus")), "1");
    assert_eq!(rd(&d("pids", "pids.max")), "max");
    assert_eq!(rd(&d("blkio", "blkio.weight")), "100");
    assert_eq!(rd(&d("blkio", "blkio.weight_device")), "8:0 200");
    assert_eq!(
        rd(&d("blkio", "blkio.throttle.read_bps_device")),
        "8:0 1048576"
    );
    assert_eq!(
        rd(&d("blkio", "blkio.throttle.write_iops_device")),
        "8:16 50"
    );
    assert_eq!(rd(&d("hugetlb", "hugetlb.2MB.limit_in_bytes")), "2097152");
    assert_eq!(rd(&d("net_cls,net_prio", "net_cls.classid")), "1048577");
    assert_eq!(rd(&d("net_cls,net_prio", "net_prio.ifpriomap")), "eth0 5");

    // shrinking: the limit goes down before memsw
    let p = plan(
        &cg,
        &res(r#"{"memory": {"limit": 1000000, "swap": 2000000}}"#),
    )
    .unwrap();
    assert!(
        p.writes[0].path.ends_with("memory.limit_in_bytes"),
        "{:?}",
        p.writes
    );
    // unlimited memory also lifts memsw
    let p = plan(&cg, &res(r#"{"memory": {"limit": -1}}"#)).unwrap();
    let v: Vec<_> = p.writes.iter().map(|w| w.value.as_str()).collect();
    assert_eq!(v, ["-1", "-1"]);

    // unified needs v2
    let e = cg
        .apply(&res(r#"{"unified": {"memory.high": "1"}}"#))
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("unified resources need cgroup v2"),
        "{e}"
    );
    // a set value whose file the kernel lacks is named; an unset one is skipped
    fs::remove_file(d("blkio", "blkio.leaf_weight")).unwrap();
    let e = cg
        .apply(&res(r#"{"blockIO": {"leafWeight": 100}}"#))
        .unwrap_err();
    assert!(
        e.to_string().contains("blkio.leaf_weight does not exist"),
        "{e}"
    );
    cg.apply(&res(r#"{"blockIO": {"weight": 10}}"#)).unwrap();

    // freezer.state on a fake tree reads back what was written
    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());
}

#[test]
fn hybrid_routes_hugetlb_to_unified_and_joins_it() {
    let f = fake(LayoutKind::Hybrid);
    let cg = fake_v1_container(&f);
    let udir = f.root.join("unified/gorae/c1");
    assert!(udir.is_dir());
    assert_eq!(
        rd(&f.root.join("unified/cgroup.subtree_control")),
        "+hugetlb"
    );
    touch(
        &udir,
        &["hugetlb.2MB.max", "cgroup.procs", "hugetlb.2MB.max.wrong"],
    );
    cg.apply(&res(
        r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": -1}], "memory": {"limit": 1000000}, "unified": {"hugetlb.2MB.max": "4194304"}}"#,
    ))
    .unwrap();
    assert_eq!(rd(&udir.join("hugetlb.2MB.max")), "4194304");
    assert_eq!(
        rd(&f.root.join("memory/gorae/c1/memory.limit_in_bytes")),
        "1000000"
    );
    let e = cg
        .apply(&res(r#"{"unified": {"memory.high": "1"}}"#))
        .unwrap_err()
        .to_string();
    assert!(e.contains("need cgroup v2") && e.contains("memory"), "{e}");
    // processes join every hierarchy, the unified one included
    for (h, _) in V1_FILES.iter().filter(|(h, _)| *h != "hugetlb") {
        touch(&f.root.join(h).join("gorae/c1"), &["cgroup.procs"]);
    }
    touch(&f.root.join("name=systemd/gorae/c1"), &["cgroup.procs"]);
    cg.add_process(4242).unwrap();
    assert_eq!(rd(&udir.join("cgroup.procs")), "4242");
    assert_eq!(rd(&f.root.join("memory/gorae/c1/cgroup.procs")), "4242");
    assert_eq!(
        rd(&f.root.join("name=systemd/gorae/c1/cgroup.procs")),
        "4242"
    );
    // pids() walks descendants of one hierarchy
    fs::create_dir_all(f.root.join("pids/gorae/c1/sub")).unwrap();
    fs::write(f.root.join("pids/gorae/c1/cgroup.procs"), "7\n3\n").unwrap();
    fs::write(f.root.join("pids/gorae/c1/sub/cgroup.procs"), "5\n").unwrap();
    assert_eq!(cg.pids().unwrap(), [3, 5, 7]);
}

#[test]
fn validation_rejects_nonsense_before_writing_anything() {
    let f = fake(LayoutKind::V2);
    let cg = Cgroup::resolve_in(&f.layout, None, "v").unwrap();
    cg.create().unwrap();
    let dir = cg.hierarchies[0].dir.clone();
    touch(&dir, V2_FILES);
    for (json, field) in [
        (r#"{"memory": {"limit": -2}}"#, "memory.limit"),
        (r#"{"memory": {"swappiness": 101}}"#, "memory.swappiness"),
        (r#"{"memory": {"limit": 200, "swap": 100}}"#, "memory.swap"),
        (r#"{"memory": {"swap": 100}}"#, "memory.swap"),
        (r#"{"cpu": {"quota": 1000, "period": 0}}"#, "cpu.period"),
        (r#"{"cpu": {"quota": -5}}"#, "cpu.quota"),
        (r#"{"cpu": {"cpus": "0-a"}}"#, "cpu.cpus"),
        (r#"{"cpu": {"mems": "3-1"}}"#, "cpu.mems"),
        (r#"{"cpu": {"idle": 2}}"#, "cpu.idle"),
        (r#"{"pids": {"limit": -2}}"#, "pids.limit"),
        (r#"{"blockIO": {"weight": 5}}"#, "blockIO.weight"),
        (
            r#"{"blockIO": {"throttleReadBpsDevice": [{"major": -1, "minor": 0, "rate": 1}]}}"#,
            "blockIO.throttleReadBpsDevice",
        ),
        (
            r#"{"hugepageLimits": [{"pageSize": "2M", "limit": 1}]}"#,
            "hugepageLimits.pageSize",
        ),
        (
            r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": -3}]}"#,
            "hugepageLimits.limit",
        ),
        (
            r#"{"devices": [{"allow": true, "access": "rwx"}]}"#,
            "devices[0].access",
        ),
        (
            r#"{"devices": [{"allow": true, "type": "p"}]}"#,
            "devices[0].type",
        ),
        (
            r#"{"devices": [{"allow": true, "major": -7}]}"#,
            "devices[0].major",
        ),
        (r#"{"unified": {"../memory.max": "1"}}"#, "unified"),
        (r#"{"unified": {"a/b": "1"}}"#, "unified"),
    ] {
        // a valid memory limit is listed first: it must not be written either
        let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
        if v.get("memory").is_none() {
            v["memory"] = serde_json::json!({"limit": 12345});
        }
        let r: LinuxResources = serde_json::from_value(v).unwrap();
        let e = cg.apply(&r).unwrap_err().to_string();
        assert!(e.contains(field), "{json}: {e}");
        assert_eq!(rd(&dir.join("memory.max")), "", "{json} wrote memory.max");
    }
    // a set value with no file names the file; nothing else is written
    fs::remove_file(dir.join("pids.max")).unwrap();
    let e = cg
        .apply(&res(r#"{"memory": {"limit": 5}, "pids": {"limit": 5}}"#))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&dir.join("pids.max").display().to_string()),
        "{e}"
    );
    assert_eq!(rd(&dir.join("memory.max")), "");
}

#[test]
fn error_messages_name_file_and_value() {
    let e = CgroupError::Write {
        controller: "memory".into(),
        path: PathBuf::from("/sys/fs/cgroup/memory/x/memory.limit_in_bytes"),
        value: "abc".into(),
        source: io::Error::from_raw_os_error(libc::EINVAL),
    };
    assert_eq!(
        e.to_string(),
        "cgroup memory: writing 'abc' to /sys/fs/cgroup/memory/x/memory.limit_in_bytes: Invalid argument"
    );
    // a real failed write (a directory instead of a file) is reported the same way
    let tmp = tempfile::tempdir().unwrap();
    let e = write_file("pids", tmp.path(), "5").unwrap_err().to_string();
    assert!(e.starts_with("cgroup pids: writing '5' to "), "{e}");
}

#[test]
fn cpu_weight_and_io_weight_conversions() {
    assert_eq!(shares_to_weight(0), 0);
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 100);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(1_000_000), 10_000);
    // monotonic and in range
    let mut last = 0;
    for s in (2..262_144).step_by(997) {
        let w = shares_to_weight(s);
        assert!((1..=10_000).contains(&w) && w >= last, "{s} -> {w}");
        last = w;
    }
    assert_eq!(blkio_to_io_weight(10), 1);
    assert_eq!(blkio_to_io_weight(1000), 10_000);
    assert_eq!(blkio_to_io_weight(500), 1 + 490 * 9999 / 990);
}

fn rules(json: &str) -> Vec<devices::Rule> {
    let list: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
    devices::parse_rules(&list).unwrap()
}

#[test]
fn device_program_last_match_wins() {
    let c = TEST_DEV_CHAR;
    // allow-list: deny all, then allow /dev/zero and read-only /dev/null
    let r = rules(
        r#"[{"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"}]"#,
    );
    assert!(!devices::default_allow(&r));
    let p = devices::compile(&r);
    assert!(devices::simulate(&p, c, TEST_ACC_RW, 1, 5));
    assert!(devices::simulate(&p, c, TEST_ACC_R, 1, 3));
    assert!(!devices::simulate(&p, c, TEST_ACC_RW, 1, 3));
    assert!(!devices::simulate(&p, c, TEST_ACC_R, 1, 7));
    assert!(!devices::simulate(&p, TEST_DEV_BLOCK, TEST_ACC_R, 1, 5));

    // deny-list: no leading deny-all, so unmatched accesses are allowed
    let r = rules(r#"[{"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}]"#);
    let p = devices::compile(&r);
    assert!(!devices::simulate(&p, c, TEST_ACC_W, 1, 3));
    assert!(!devices::simulate(&p, c, TEST_ACC_RW, 1, 3));
    assert!(devices::simulate(&p, c, TEST_ACC_R, 1, 3));
    assert!(devices::simulate(&p, c, TEST_ACC_RW, 1, 5));

    // a later deny-all overrides earlier allows; a later allow-all overrides earlier denies
    let r = rules(r#"[{"allow": true, "type": "c", "major": 1, "minor": 5}, {"allow": false}]"#);
    assert!(!devices::simulate(
        &devices::compile(&r),
        c,
        TEST_ACC_R,
        1,
        5
    ));
    let r = rules(r#"[{"allow": false}, {"allow": true, "type": "a"}]"#);
    assert!(devices::simulate(
        &devices::compile(&r),
        TEST_DEV_BLOCK,
        TEST_ACC_RW,
        8,
        0
    ));
    // wildcard minor
    let r =
        rules(r#"[{"allow": false}, {"allow": true, "type": "c", "major": 136, "access": "rw"}]"#);
    let p = devices::compile(&r);
    assert!(devices::simulate(&p, c, TEST_ACC_RW, 136, 4));
    assert!(!devices::simulate(&p, c, TEST_ACC_RW, 137, 4));
    assert_eq!(r[1].v1_line(), "c 136:* rw");
    assert_eq!(r[0].v1_line(), "a *:* rwm");
}

// ---- update: partial writes, v1 memory order, rollback ----

fn write_all(dir: &Path, files: &[(&str, &str)]) {
    for (f, v) in files {
        fs::write(dir.join(f), format!("{v}\n")).unwrap();
    }
}

#[test]
fn update_writes_only_the_given_fields() {
    let f = fake(LayoutKind::V1);
    let cg = fake_v1_container(&f);
    let mem = f.root.join("memory/gorae/c1");
    let cpu = f.root.join("cpu,cpuacct/gorae/c1");
    let pids = f.root.join("pids/gorae/c1");
    write_all(
        &mem,
        &[
            ("memory.limit_in_bytes", "16777216"),
            ("memory.memsw.limit_in_bytes", "33554432"),
            ("memory.soft_limit_in_bytes", "1000"),
        ],
    );
    write_all(
        &cpu,
        &[("cpu.shares", "512"), ("cpu.cfs_quota_us", "20000")],
    );
    write_all(&pids, &[("pids.max", "100")]);
    cg.update(&res(r#"{"pids": {"limit": 7}}"#)).unwrap();
    assert_eq!(rd(&pids.join("pids.max")), "7");
    assert_eq!(rd(&mem.join("memory.limit_in_bytes")), "16777216\n");
    assert_eq!(rd(&mem.join("memory.soft_limit_in_bytes")), "1000\n");
    assert_eq!(rd(&cpu.join("cpu.shares")), "512\n");
    assert_eq!(rd(&cpu.join("cpu.cfs_quota_us")), "20000\n");
    // a limit below memsw: only the limit
    cg.update(&res(r#"{"memory": {"limit": 25165824}}"#))
        .unwrap();
    assert_eq!(rd(&mem.join("memory.limit_in_bytes")), "25165824");
    assert_eq!(rd(&mem.join("memory.memsw.limit_in_bytes")), "33554432\n");
    // above a different memsw: refused, nothing written
    let e = cg
        .update(&res(
            r#"{"memory": {"limit": 67108864}, "pids": {"limit": 9}}"#,
        ))
        .unwrap_err();
    assert!(e.to_string().contains("memory+swap"), "{e}");
    assert_eq!(rd(&mem.join("memory.limit_in_bytes")), "25165824");
    assert_eq!(rd(&pids.join("pids.max")), "7");
    // swap alone below the current limit: refused
    assert!(cg.update(&res(r#"{"memory": {"swap": 1048576}}"#)).is_err());
    // devices are not taken by update (the whole list is needed)
    fs::write(mem.join("../../devices/gorae/c1/devices.deny"), "").ok();
    cg.update(&res(
        r#"{"devices": [{"allow": false, "access": "rwm"}], "pids": {"limit": 8}}"#,
    ))
    .unwrap();
    assert_eq!(rd(&f.root.join("devices/gorae/c1/devices.deny")), "");
}

#[test]
fn v1_limit_alone_moves_an_equal_memsw_in_kernel_order() {
    let f = fake(LayoutKind::V1);
    let cg = fake_v1_container(&f);
    let mem = f.root.join("memory/gorae/c1");
    write_all(
        &mem,
        &[
            ("memory.limit_in_bytes", "16777216"),
            ("memory.memsw.limit_in_bytes", "16777216"),
        ],
    );
    let order = |json: &str| -> Vec<String> {
        plan(&cg, &res(json))
            .unwrap()
            .writes
            .iter()
            .map(|w| {
                format!(
                    "{}={}",
                    w.path.file_name().unwrap().to_string_lossy(),
                    w.value
                )
            })
            .collect()
    };
    // raising: memsw first
    assert_eq!(
        order(r#"{"memory": {"limit": 67108864}}"#),
        [
            "memory.memsw.limit_in_bytes=67108864",
            "memory.limit_in_bytes=67108864"
        ]
    );
    // lowering: limit first
    assert_eq!(
        order(r#"{"memory": {"limit": 8388608}}"#),
        [
            "memory.limit_in_bytes=8388608",
            "memory.memsw.limit_in_bytes=8388608"
        ]
    );
    // unlimited: memsw first, both -1
    assert_eq!(
        order(r#"{"memory": {"limit": -1}}"#),
        ["memory.memsw.limit_in_bytes=-1", "memory.limit_in_bytes=-1"]
    );
    // an unlimited memsw (a fresh cgroup) is left alone
    write_all(
        &mem,
        &[
            ("memory.limit_in_bytes", "9223372036854771712"),
            ("memory.memsw.limit_in_bytes", "9223372036854771712"),
        ],
    );
    assert_eq!(
        order(r#"{"memory": {"limit": 8388608}}"#),
        ["memory.limit_in_bytes=8388608"]
    );
}

#[test]
fn update_puts_old_values_back_when_the_kernel_refuses_a_write() {
    let f = fake(LayoutKind::V1);
    let cg = fake_v1_container(&f);
    let mem = f.root.join("memory/gorae/c1");
    let pids = f.root.join("pids/gorae/c1");
    write_all(&mem, &[("memory.soft_limit_in_bytes", "1000")]);
    write_all(&pids, &[("pids.max", "100")]);
    // memory is planned before pids: make the pids write fail (a directory cannot be
    // opened for writing) after the reservation was written.
    fs::remove_file(pids.join("pids.max")).unwrap();
    fs::create_dir(pids.join("pids.max")).unwrap();
    let e = cg
        .update(&res(
            r#"{"memory": {"reservation": 2000}, "pids": {"limit": 5}}"#,
        ))
        .unwrap_err();
    assert!(matches!(e, CgroupError::Write { .. }), "{e}");
    assert_eq!(rd(&mem.join("memory.soft_limit_in_bytes")), "1000");
}

// ---- stats ----

#[test]
fn stats_from_a_fake_v1_tree() {
    let f = fake(LayoutKind::V1);
    let cg = fake_v1_container(&f);
    let cpu = f.root.join("cpu,cpuacct/gorae/c1");
    write_all(
        &cpu,
        &[
            ("cpuacct.usage", "123456789"),
            ("cpuacct.usage_percpu", "100000000 23456789 "),
            ("cpuacct.stat", "user 5\nsystem 7"),
            (
                "cpu.stat",
                "nr_periods 10\nnr_throttled 3\nthrottled_time 999",
            ),
        ],
    );
    let mem = f.root.join("memory/gorae/c1");
    write_all(
        &mem,
        &[
            ("memory.stat", "cache 4096\nrss 8192\ntotal_rss 8192\nbogus"),
            ("memory.usage_in_bytes", "12288"),
            ("memory.max_usage_in_bytes", "20000"),
            ("memory.limit_in_bytes", "16777216"),
            ("memory.failcnt", "2"),
            ("memory.memsw.usage_in_bytes", "13000"),
            ("memory.memsw.limit_in_bytes", "33554432"),
            ("memory.kmem.usage_in_bytes", "not a number"),
        ],
    );
    let pids = f.root.join("pids/gorae/c1");
    write_all(&pids, &[("pids.current", "3"), ("pids.max", "max")]);
    let blk = f.root.join("blkio/gorae/c1");
    write_all(
        &blk,
        &[
            ("blkio.io_service_bytes_recursive", ""),
            (
                "blkio.throttle.io_service_bytes_recursive",
                "8:0 Read 4096\n8:0 Write 512\nTotal 4608",
            ),
            (
                "blkio.throttle.io_serviced_recursive",
                "8:0 Read 1\n8:0 Write 1\nTotal 2",
            ),
        ],
    );
    let huge = f.root.join("hugetlb/gorae/c1");
    write_all(
        &huge,
        &[
            ("hugetlb.2MB.usage_in_bytes", "2097152"),
            ("hugetlb.2MB.max_usage_in_bytes", "4194304"),
            ("hugetlb.2MB.failcnt", "1"),
        ],
    );
    let s = cg.stats().unwrap();
    assert_eq!(s.cpu.usage.total, 123456789);
    assert_eq!(s.cpu.usage.percpu, [100000000, 23456789]);
    assert_eq!(s.cpu.usage.user, 50_000_000);
    assert_eq!(s.cpu.usage.kernel, 70_000_000);
    assert_eq!(s.cpu.throttling.throttled_periods, 3);
    assert_eq!(s.cpu.throttling.throttled_time, 999);
    assert_eq!(s.memory.cache, 4096);
    assert_eq!(s.memory.raw.get("rss"), Some(&8192));
    assert!(!s.memory.raw.contains_key("bogus"));
    assert_eq!(
        (
            s.memory.usage.usage,
            s.memory.usage.max,
            s.memory.usage.limit
        ),
        (12288, 20000, 16777216)
    );
    assert_eq!(s.memory.usage.failcnt, 2);
    assert_eq!(
        (s.memory.swap.usage, s.memory.swap.limit),
        (13000, 33554432)
    );
    assert_eq!(s.memory.kernel.usage, 0);
    assert_eq!((s.pids.current, s.pids.limit), (3, 0));
    assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
    assert_eq!(s.blkio.io_service_bytes_recursive[0].value, 4096);
    assert_eq!(s.blkio.io_serviced_recursive.len(), 2);
    let h = &s.hugetlb["2MB"];
    assert_eq!((h.usage, h.max, h.failcnt), (2097152, 4194304, 1));
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["memory"]["usage"]["usage"], 12288);
    assert_eq!(v["cpu"]["throttling"]["throttledPeriods"], 3);
    assert_eq!(v["blkio"]["ioServiceBytesRecursive"][1]["op"], "Write");
    // the cgroup is gone: an error, not zeros
    fs::remove_dir_all(&mem).unwrap();
    assert!(cg.stats().is_err());
}

#[test]
fn stats_from_a_fake_v2_tree() {
    let f = fake(LayoutKind::V2);
    let cg = Cgroup::resolve_in(&f.layout, Some(Path::new("/pod/ctr")), "x").unwrap();
    cg.create().unwrap();
    let d = f.root.join("unified/pod/ctr");
    write_all(
        &d,
        &[
            (
                "cpu.stat",
                "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 30",
            ),
            ("memory.current", "1048576"),
            ("memory.max", "16777216"),
            ("memory.peak", "2097152"),
            ("memory.stat", "anon 524288\nfile 262144"),
            (
                "memory.events",
                "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0",
            ),
            ("memory.swap.current", "4096"),
            ("memory.swap.max", "max"),
            ("pids.current", "2"),
            ("pids.max", "10"),
            ("io.stat", "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0"),
            ("hugetlb.2MB.current", "2097152"),
            ("hugetlb.2MB.max", "max"),
            ("hugetlb.2MB.events", "max 4"),
        ],
    );
    let s = cg.stats().unwrap();
    assert_eq!(s.cpu.usage.total, 2_000_000);
    assert_eq!((s.cpu.usage.user, s.cpu.usage.kernel), (1_500_000, 500_000));
    assert_eq!(s.cpu.throttling.periods, 4);
    assert_eq!(s.cpu.throttling.throttled_time, 30_000);
    assert_eq!(s.memory.cache, 262144);
    assert_eq!(
        (
            s.memory.usage.usage,
            s.memory.usage.limit,
            s.memory.usage.max
        ),
        (1048576, 16777216, 2097152)
    );
    assert_eq!(s.memory.usage.failcnt, 5);
    assert_eq!(s.memory.swap.usage, 1048576 + 4096);
    assert_eq!(s.memory.swap.limit, u64::MAX);
    assert_eq!((s.pids.current, s.pids.limit), (2, 10));
    assert_eq!(s.blkio.io_service_bytes_recursive.len(), 3);
    assert_eq!(s.blkio.io_service_bytes_recursive[0].op, "Read");
    assert_eq!(s.blkio.io_service_bytes_recursive[0].value, 100);
    assert_eq!(
        (s.hugetlb["2MB"].usage, s.hugetlb["2MB"].failcnt),
        (2097152, 4)
    );
}

#[test]
fn v2_oom_watcher_reports_a_rising_oom_kill_count() {
    let f = fake(LayoutKind::V2);
    let cg = Cgroup::resolve_in(&f.layout, Some(Path::new("/pod/ctr")), "x").unwrap();
    cg.create().unwrap();
    let events = f.root.join("unified/pod/ctr/memory.events");
    fs::write(&events, "max 0\noom 0\noom_kill 2\n").unwrap();
    let mut w = cg.oom_watcher().unwrap();
    let readable = |w: &OomWatcher| {
        let mut fds = [nix::poll::PollFd::new(w.fd(), nix::poll::PollFlags::POLLIN)];
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(1000u16)).unwrap() > 0
    };
    assert_eq!(w.check().unwrap(), OomCheck::Quiet);
    // a write that does not raise oom_kill wakes the poll but is no OOM
    fs::write(&events, "max 3\noom 0\noom_kill 2\n").unwrap();
    assert!(readable(&w));
    assert_eq!(w.check().unwrap(), OomCheck::Quiet);
    fs::write(&events, "max 4\noom 1\noom_kill 3\n").unwrap();
    assert!(readable(&w));
    assert_eq!(w.check().unwrap(), OomCheck::Oom);
    assert_eq!(w.check().unwrap(), OomCheck::Quiet);
    fs::remove_file(&events).unwrap();
    assert_eq!(w.check().unwrap(), OomCheck::Gone);
}
