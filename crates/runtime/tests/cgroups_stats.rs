//! Root integration tests of `Cgroup::stats` and the OOM watcher on the real host: its own
//! layout (hybrid here) and a pure-v1 view of it (the layout without its cgroup2 mount).
//! Skipped with a message when not root.
//!
//! Forked children only make raw libc calls (the test harness is multi-threaded).

use gorae_runtime::cgroups::{Cgroup, Layout, OomCheck};
use oci_spec::runtime::LinuxResources;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
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

/// Kills the children and removes the cgroup however the test ends.
struct Guard {
    cg: Cgroup,
    children: Vec<i32>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for pid in &self.children {
            // SAFETY: pid is a child this test forked.
            unsafe {
                libc::kill(*pid, libc::SIGKILL);
                libc::waitpid(*pid, std::ptr::null_mut(), 0);
            }
        }
        if let Err(e) = self.cg.destroy() {
            eprintln!("cleanup: {e}");
        }
    }
}

/// Forks a child that waits for a byte on a pipe, then touches `bytes` of fresh memory and
/// sleeps until killed. Returns (pid, write end of the pipe).
fn spawn_allocator(g: &mut Guard, bytes: usize) -> (i32, i32) {
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child makes raw syscalls only and never returns.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: raw syscalls on our own descriptors and our own fresh mapping.
        unsafe {
            let mut b = 0u8;
            libc::read(fds[0], (&mut b as *mut u8).cast(), 1);
            if bytes > 0 {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    bytes,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                if p != libc::MAP_FAILED {
                    let p = p.cast::<u8>();
                    let mut i = 0;
                    while i < bytes {
                        std::ptr::write_volatile(p.add(i), 1);
                        i += 4096;
                    }
                }
            }
            loop {
                libc::pause();
            }
        }
    }
    // SAFETY: closing our copy of the read end.
    unsafe { libc::close(fds[0]) };
    g.children.push(pid);
    (pid, fds[1])
}

fn release(fd: i32) {
    // SAFETY: fd is the pipe's write end, owned by this test.
    unsafe {
        libc::write(fd, b"x".as_ptr().cast(), 1);
        libc::close(fd);
    }
}

fn stats_of_a_busy_cgroup(layout: &Layout, tag: &str) {
    let cg = Cgroup::resolve_in(layout, None, &unique(tag)).unwrap();
    let mut g = Guard {
        cg: cg.clone(),
        children: Vec::new(),
    };
    cg.create().unwrap();
    cg.apply(&res(
        r#"{"pids": {"limit": 20}, "memory": {"limit": 268435456}}"#,
    ))
    .unwrap();
    let (pid, fd) = spawn_allocator(&mut g, 8 << 20);
    cg.add_process(pid).unwrap();
    release(fd);
    // wait until the child has touched its memory
    let start = Instant::now();
    let s = loop {
        let s = cg.stats().unwrap();
        if s.memory.usage.usage >= 8 << 20 || start.elapsed() > Duration::from_secs(5) {
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(s.pids.current, 1, "{s:?}");
    assert_eq!(s.pids.limit, 20, "{s:?}");
    assert!(s.memory.usage.usage >= 8 << 20, "{s:?}");
    assert_eq!(s.memory.usage.limit, 268435456, "{s:?}");
    assert!(!s.memory.raw.is_empty(), "{s:?}");
    assert!(s.cpu.usage.total > 0, "{s:?}");
    let v = serde_json::to_value(&s).unwrap();
    assert!(v["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
}

#[test]
fn cgroups_stats_of_a_busy_cgroup_on_the_host() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    stats_of_a_busy_cgroup(&Layout::detect().unwrap(), "stats");
}

#[test]
fn cgroups_stats_of_a_busy_cgroup_on_pure_v1() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let l = Layout::detect().unwrap().only_v1();
    if l.mounts.is_empty() {
        eprintln!("skipped: no cgroup v1 on this host");
        return;
    }
    stats_of_a_busy_cgroup(&l, "stats-v1");
}

fn oom_is_reported(layout: &Layout, tag: &str) {
    let cg = Cgroup::resolve_in(layout, None, &unique(tag)).unwrap();
    let mut g = Guard {
        cg: cg.clone(),
        children: Vec::new(),
    };
    cg.create().unwrap();
    cg.apply(&res(r#"{"memory": {"limit": 16777216, "swap": 16777216}}"#))
        .unwrap();
    let mut w = cg.oom_watcher().unwrap();
    assert_eq!(w.check().unwrap(), OomCheck::Quiet);
    let (pid, fd) = spawn_allocator(&mut g, 64 << 20);
    cg.add_process(pid).unwrap();
    release(fd);
    let mut fds = [nix::poll::PollFd::new(w.fd(), nix::poll::PollFlags::POLLIN)];
    let n = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16)).unwrap();
    assert_eq!(n, 1, "no OOM notification within 10 s");
    assert_eq!(w.check().unwrap(), OomCheck::Oom);
    let mut status = 0;
    // SAFETY: pid is our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    g.children.clear();
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL,
        "the allocator was not OOM-killed: status {status:#x}"
    );
    // the peak reached the limit (failcnt stays 0 on recent kernels' v1)
    let m = cg.stats().unwrap().memory;
    assert!(m.usage.max >= 16 << 20 || m.usage.failcnt > 0, "{m:?}");
    drop(w);
}

#[test]
fn cgroups_oom_watcher_reports_an_oom_kill_on_the_host() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    oom_is_reported(&Layout::detect().unwrap(), "oom");
}

#[test]
fn cgroups_oom_watcher_reports_an_oom_kill_on_pure_v2() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let Some(l) = Layout::detect().unwrap().only_unified() else {
        eprintln!("skipped: no cgroup2 mount");
        return;
    };
    let controllers = std::fs::read_to_string(l.mounts[0].mount_point.join("cgroup.controllers"))
        .unwrap_or_default();
    if !controllers.split_whitespace().any(|c| c == "memory") {
        eprintln!("skipped: the cgroup2 mount has no memory controller here");
        return;
    }
    oom_is_reported(&l, "oom-v2");
}
