//! Root integration tests of the cgroups module on the real host: the host's own layout
//! (hybrid here), a forced pure-v2 view of its cgroup2 mount, and pure v1 in a private mount
//! namespace with the cgroup2 mount unmounted. Skipped with a message when not root.
//!
//! Forked children only make raw libc calls (the test harness is multi-threaded).

use gorae_runtime::cgroups::{Cgroup, Layout, LayoutKind};
use oci_spec::runtime::LinuxResources;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: cgroup integration tests need root");
            return;
        }
    };
}

fn unique(tag: &str) -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("it-{tag}-{}-{n}", std::process::id())
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn rd(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Kills the children and removes the cgroup however the test ends.
struct Guard {
    cg: Cgroup,
    children: Vec<i32>,
}

impl Guard {
    fn new(cg: &Cgroup) -> Self {
        Guard {
            cg: cg.clone(),
            children: Vec::new(),
        }
    }

    fn reap(&mut self, pid: i32) {
        // SAFETY: pid is a child this test forked and has not reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        self.children.retain(|p| *p != pid);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.cg.thaw();
        for pid in self.children.clone() {
            self.reap(pid);
        }
        if let Err(e) = self.cg.destroy() {
            eprintln!("cleanup: {e}");
        }
    }
}

/// Forks a child that spins on the CPU until killed.
fn spawn_spinner(g: &mut Guard) -> i32 {
    // SAFETY: the child only spins (no allocation, no locks) until it is killed.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        loop {
            std::hint::spin_loop();
        }
    }
    g.children.push(pid);
    pid
}

/// utime + stime of `pid` in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = rd(Path::new(&format!("/proc/{pid}/stat")));
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // fields 14 and 15 of stat, counted after "pid (comm)": state is index 0
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn runs(pid: i32) -> bool {
    let a = cpu_ticks(pid);
    std::thread::sleep(Duration::from_millis(300));
    cpu_ticks(pid) > a
}

fn proc_cgroup_line(pid: i32, controllers: &str) -> Option<String> {
    rd(Path::new(&format!("/proc/{pid}/cgroup")))
        .lines()
        .find_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, c, path) = (p.next()?, p.next()?, p.next()?);
            (c == controllers).then(|| path.to_string())
        })
}

/// create → limits → add a child → freeze/thaw → pids → destroy, on whatever layout `cg` has.
fn lifecycle(cg: &Cgroup) {
    let mut g = Guard::new(cg);
    cg.create().unwrap();
    for h in &cg.hierarchies {
        assert!(h.dir.is_dir(), "{} not created", h.dir.display());
    }
    let v1 = |c: &str| {
        cg.hierarchies
            .iter()
            .find(|h| !h.unified && h.controllers.split(',').any(|x| x == c))
    };
    let unified = cg.hierarchies.iter().find(|h| h.unified);

    cg.apply(&res(
        r#"{"memory": {"limit": 67108864}, "pids": {"limit": 32}}"#,
    ))
    .unwrap();
    match v1("memory") {
        Some(h) => assert_eq!(rd(&h.dir.join("memory.limit_in_bytes")), "67108864"),
        None => assert_eq!(rd(&unified.unwrap().dir.join("memory.max")), "67108864"),
    }
    let pids_dir = v1("pids").or(unified).unwrap().dir.clone();
    assert_eq!(rd(&pids_dir.join("pids.max")), "32");
    cg.apply(&res(r#"{"pids": {"limit": -1}}"#)).unwrap();
    assert_eq!(rd(&pids_dir.join("pids.max")), "max");

    // v1 memory+swap: growing and shrinking both need the right write order
    if let Some(h) = v1("memory") {
        if h.dir.join("memory.memsw.limit_in_bytes").exists() {
            cg.apply(&res(r#"{"memory": {"limit": 33554432, "swap": 67108864}}"#))
                .unwrap();
            // limit 256M > current memsw 64M: memsw has to be raised first
            cg.apply(&res(
                r#"{"memory": {"limit": 268435456, "swap": 536870912}}"#,
            ))
            .unwrap();
            assert_eq!(rd(&h.dir.join("memory.memsw.limit_in_bytes")), "536870912");
            cg.apply(&res(r#"{"memory": {"limit": 33554432, "swap": 67108864}}"#))
                .unwrap();
            assert_eq!(rd(&h.dir.join("memory.limit_in_bytes")), "33554432");
            assert_eq!(rd(&h.dir.join("memory.memsw.limit_in_bytes")), "67108864");
        }
        // the kernel's refusal is reported with file and value
        let e = cg
            .apply(&res(
                r#"{"memory": {"swappiness": 100, "useHierarchy": false}}"#,
            ))
            .map_err(|e| e.to_string());
        if let Err(e) = e {
            assert!(
                e.contains("memory.use_hierarchy") && e.contains("'0'"),
                "{e}"
            );
        }
    }

    let pid = spawn_spinner(&mut g);
    cg.add_process(pid).unwrap();
    for h in &cg.hierarchies {
        let name = if h.unified {
            ""
        } else {
            h.controllers.as_str()
        };
        assert_eq!(
            proc_cgroup_line(pid, name).as_deref(),
            Some(h.path.to_str().unwrap()),
            "/proc/{pid}/cgroup for {name:?}"
        );
    }
    assert_eq!(cg.pids().unwrap(), vec![pid]);

    assert!(runs(pid), "child does not run before freeze");
    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    match v1("freezer") {
        Some(h) => assert_eq!(rd(&h.dir.join("freezer.state")), "FROZEN"),
        None => {
            let d = &unified.unwrap().dir;
            assert_eq!(rd(&d.join("cgroup.freeze")), "1");
            assert!(rd(&d.join("cgroup.events")).contains("frozen 1"));
        }
    }
    assert!(!runs(pid), "frozen child still runs");
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());
    assert!(runs(pid), "thawed child does not run");

    g.reap(pid);
    // the kernel drops the pid from cgroup.procs shortly after the reap
    for _ in 0..100 {
        if cg.pids().unwrap().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::create_dir(pids_dir.join("nested")).unwrap();
    cg.destroy().unwrap();
    for h in &cg.hierarchies {
        assert!(!h.dir.exists(), "{} left behind", h.dir.display());
    }
    cg.destroy().unwrap();
}

#[test]
fn cgroups_host_layout_lifecycle() {
    require_root!();
    let cg = Cgroup::resolve(None, &unique("host")).unwrap();
    lifecycle(&cg);
}

#[test]
fn cgroups_hybrid_hugetlb_goes_to_unified() {
    require_root!();
    let layout = Layout::detect().unwrap();
    if layout.kind() != Some(LayoutKind::Hybrid)
        || !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists()
    {
        eprintln!("skipped: needs a hybrid host with 2MB hugepages");
        return;
    }
    let cg = Cgroup::resolve_in(&layout, None, &unique("huge")).unwrap();
    let _g = Guard::new(&cg);
    cg.create().unwrap();
    cg.apply(&res(
        r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}"#,
    ))
    .unwrap();
    let u = cg.hierarchies.iter().find(|h| h.unified).unwrap();
    assert_eq!(rd(&u.dir.join("hugetlb.2MB.max")), "4194304");
}

fn forced_v2() -> Option<Cgroup> {
    let layout = Layout::detect().unwrap().only_unified()?;
    let id = unique("v2");
    Some(Cgroup::resolve_in(&layout, Some(Path::new(&format!("/gorae-test/{id}"))), &id).unwrap())
}

#[test]
fn cgroups_forced_pure_v2_lifecycle() {
    require_root!();
    let Some(cg) = forced_v2() else {
        eprintln!("skipped: no cgroup2 mount");
        return;
    };
    assert_eq!(cg.kind(), LayoutKind::V2);
    // memory and pids are on v1 here, so this exercises directories, procs, freeze only;
    // the limits part of lifecycle() runs only where the controllers exist.
    let u = &cg.hierarchies[0];
    let parent = u.dir.parent().unwrap().to_path_buf();
    let mut g = Guard::new(&cg);
    cg.create().unwrap();
    let has = |c: &str| {
        rd(&u.dir.join("cgroup.controllers"))
            .split(' ')
            .any(|x| x == c)
    };
    if has("memory") && has("pids") {
        drop(g);
        lifecycle(&cg);
        let _ = std::fs::remove_dir(&parent);
        return;
    }
    let pid = spawn_spinner(&mut g);
    cg.add_process(pid).unwrap();
    assert_eq!(
        proc_cgroup_line(pid, "").as_deref(),
        Some(u.path.to_str().unwrap())
    );
    assert_eq!(cg.pids().unwrap(), vec![pid]);
    cg.freeze().unwrap();
    assert_eq!(rd(&u.dir.join("cgroup.freeze")), "1");
    assert!(cg.is_frozen().unwrap());
    assert!(!runs(pid), "frozen child still runs");
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());
    assert!(runs(pid), "thawed child does not run");
    // memory is not on the unified hierarchy of this host: the error names the file
    if !has("memory") {
        let e = cg
            .apply(&res(r#"{"memory": {"limit": 1048576}}"#))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("memory.max") && e.contains("does not exist"),
            "{e}"
        );
    }
    g.reap(pid);
    drop(g);
    assert!(!u.dir.exists());
    let _ = std::fs::remove_dir(&parent);
}

/// A child that, for each byte read from `cmd`, opens /dev/null and /dev/zero and writes
/// back their errnos (0 = opened).
fn spawn_opener(g: &mut Guard) -> (i32, i32, i32) {
    let mut to_child = [0i32; 2];
    let mut from_child = [0i32; 2];
    // SAFETY: both arrays have room for the two descriptors pipe() returns.
    unsafe {
        assert_eq!(libc::pipe(to_child.as_mut_ptr()), 0);
        assert_eq!(libc::pipe(from_child.as_mut_ptr()), 0);
    }
    // SAFETY: the child only makes raw syscalls on descriptors it owns, then _exit()s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: raw syscalls on the pipe ends inherited from the parent and on static paths.
        unsafe {
            let mut b = 0u8;
            while libc::read(to_child[0], (&mut b as *mut u8).cast(), 1) == 1 {
                let mut out = [0u8; 2];
                for (i, p) in [c"/dev/null", c"/dev/zero"].iter().enumerate() {
                    let fd = libc::open(p.as_ptr(), libc::O_RDONLY);
                    if fd < 0 {
                        out[i] = *libc::__errno_location() as u8;
                    } else {
                        libc::close(fd);
                    }
                }
                libc::write(from_child[1], out.as_ptr().cast(), 2);
            }
            libc::_exit(0);
        }
    }
    g.children.push(pid);
    // SAFETY: closing the child's ends in the parent.
    unsafe {
        libc::close(to_child[0]);
        libc::close(from_child[1]);
    }
    (pid, to_child[1], from_child[0])
}

fn ask(tx: i32, rx: i32) -> (i32, i32) {
    let mut out = [0u8; 2];
    // SAFETY: tx and rx are open pipe ends owned by this test; buffers are valid.
    unsafe {
        assert_eq!(libc::write(tx, [1u8].as_ptr().cast(), 1), 1);
        assert_eq!(libc::read(rx, out.as_mut_ptr().cast(), 2), 2);
    }
    (i32::from(out[0]), i32::from(out[1]))
}

#[test]
fn cgroups_forced_pure_v2_device_program() {
    require_root!();
    let Some(cg) = forced_v2() else {
        eprintln!("skipped: no cgroup2 mount");
        return;
    };
    let parent = cg.hierarchies[0].dir.parent().unwrap().to_path_buf();
    let mut g = Guard::new(&cg);
    cg.create().unwrap();
    let (pid, tx, rx) = spawn_opener(&mut g);
    assert_eq!(ask(tx, rx), (0, 0), "before any program");
    cg.add_process(pid).unwrap();

    // deny-list: only /dev/null is denied
    cg.apply(&res(
        r#"{"devices": [{"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}"#,
    ))
    .unwrap();
    assert_eq!(ask(tx, rx), (libc::EPERM, 0), "deny c 1:3");

    // allow-list replacing it: the old program must be detached, or /dev/null stays denied
    cg.apply(&res(r#"{"devices": [{"allow": false, "access": "rwm"},
                        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"},
                        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"}]}"#))
        .unwrap();
    assert_eq!(ask(tx, rx), (0, 0), "allow-list with null (r) and zero");

    // allow-list without /dev/null
    cg.apply(&res(r#"{"devices": [{"allow": false, "access": "rwm"},
                        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"}]}"#))
        .unwrap();
    assert_eq!(ask(tx, rx), (libc::EPERM, 0), "allow-list with zero only");

    // SAFETY: closing our pipe ends makes the child's read return 0 and exit.
    unsafe {
        libc::close(tx);
        libc::close(rx);
    }
    g.reap(pid);
    drop(g);
    assert!(!cg.hierarchies[0].dir.exists());
    let _ = std::fs::remove_dir(&parent);
}

const PURE_V1_ENV: &str = "GORAE_CGROUPS_PURE_V1_CHILD";

/// Runs `cgroups_pure_v1_inner` in a child process whose mount namespace is private and has no cgroup2
/// mount; the child reports by its exit status.
#[test]
fn cgroups_pure_v1_in_private_mount_namespace() {
    require_root!();
    if !Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
        eprintln!("skipped: needs the hybrid layout's /sys/fs/cgroup/unified to unmount");
        return;
    }
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "cgroups_pure_v1_inner",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(PURE_V1_ENV, "1");
    // SAFETY: the closure only makes raw syscalls with static strings between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                || libc::umount2(c"/sys/fs/cgroup/unified".as_ptr(), libc::MNT_DETACH) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("pure v1 checks passed"),
        "pure v1 child failed: {}\n{}\n{}",
        out.status,
        text,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cgroups_pure_v1_inner() {
    if std::env::var_os(PURE_V1_ENV).is_none() {
        eprintln!("skipped: runs only inside cgroups_pure_v1_in_private_mount_namespace");
        return;
    }
    let layout = Layout::detect().unwrap();
    assert_eq!(layout.kind(), Some(LayoutKind::V1), "{layout:#?}");
    let cg = Cgroup::resolve(None, &unique("v1")).unwrap();
    assert!(cg.hierarchies.iter().all(|h| !h.unified));
    // hugetlb is only on cgroup2 on this host, so asking for it is an error naming it
    let e = cg
        .apply(&res(
            r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}"#,
        ))
        .unwrap_err()
        .to_string();
    assert!(e.contains("hugetlb"), "{e}");
    lifecycle(&cg);
    println!("pure v1 checks passed");
}
