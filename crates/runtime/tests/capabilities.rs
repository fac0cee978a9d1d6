//! Root integration tests for `gorae_runtime::capabilities`: each test forks a child, applies a
//! capability config in it the way the container init does (bounding set, keepcaps, setuid to
//! 1000, process sets) and sends `/proc/self/status` back through a pipe; the parent checks the
//! capability masks. Skipped (with a note on stderr) when not run as root.

use std::fs::File;
use std::io::{Read, Write};

use gorae_runtime::capabilities::{
    apply_process_sets, drop_bounding_set, keep_capabilities_on_setuid, last_cap,
};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, getuid, pipe, setgid, setgroups, setuid, ForkResult, Gid, Uid};
use oci_spec::runtime::LinuxCapabilities;

const CHOWN_KILL_NETBIND: u64 = (1 << 0) | (1 << 5) | (1 << 10);
const KILL: u64 = 1 << 5;

fn is_root() -> bool {
    if getuid().is_root() {
        true
    } else {
        eprintln!("skipped: needs root");
        false
    }
}

fn caps(json: &str) -> LinuxCapabilities {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad test config {json}: {e}"))
}

/// Runs `f` in a forked child and returns what it produced (its `/proc/self/status`, or the
/// error text prefixed by `ERR `).
fn in_child(f: impl FnOnce() -> Result<String, String>) -> String {
    let (rd, wr) = pipe().unwrap_or_else(|e| panic!("pipe: {e}"));
    // SAFETY: the child only runs `f` (capability syscalls, set*id, reading a /proc file; glibc
    // keeps malloc usable after fork), writes to the pipe and leaves with `_exit`, never
    // returning into the test harness.
    match unsafe { fork() }.unwrap_or_else(|e| panic!("fork: {e}")) {
        ForkResult::Child => {
            drop(rd);
            let text = match f() {
                Ok(s) => s,
                Err(e) => format!("ERR {e}"),
            };
            let mut w = File::from(wr);
            let ok = w.write_all(text.as_bytes()).is_ok();
            // SAFETY: _exit ends the forked child without running the parent's atexit
            // handlers or unwinding into the test harness.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => {
            drop(wr);
            let mut out = String::new();
            File::from(rd)
                .read_to_string(&mut out)
                .unwrap_or_else(|e| panic!("read from child: {e}"));
            let status = waitpid(child, None).unwrap_or_else(|e| panic!("waitpid: {e}"));
            assert_eq!(status, WaitStatus::Exited(child, 0), "child output: {out}");
            out
        }
    }
}

fn status_mask(status: &str, key: &str) -> u64 {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in status:\n{status}"));
    u64::from_str_radix(line.trim(), 16).unwrap_or_else(|e| panic!("{key} {line:?}: {e}"))
}

fn read_status() -> Result<String, String> {
    std::fs::read_to_string("/proc/self/status").map_err(|e| format!("/proc/self/status: {e}"))
}

/// The container init's sequence, switching to uid/gid 1000 in the middle.
fn apply_as_user_1000(c: &LinuxCapabilities, keepcaps: bool) -> Result<String, String> {
    drop_bounding_set(c).map_err(|e| e.to_string())?;
    keep_capabilities_on_setuid(keepcaps).map_err(|e| e.to_string())?;
    setgroups(&[]).map_err(|e| format!("setgroups: {e}"))?;
    setgid(Gid::from_raw(1000)).map_err(|e| format!("setgid: {e}"))?;
    setuid(Uid::from_raw(1000)).map_err(|e| format!("setuid: {e}"))?;
    apply_process_sets(c).map_err(|e| e.to_string())?;
    read_status()
}

#[test]
fn sets_end_up_exactly_as_configured_after_setuid() {
    if !is_root() {
        return;
    }
    let c = caps(
        r#"{
            "bounding": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL"],
            "permitted": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL"],
            "effective": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL"],
            "inheritable": ["CAP_KILL"],
            "ambient": ["CAP_KILL"]
        }"#,
    );
    let status = in_child(|| apply_as_user_1000(&c, true));
    assert!(!status.starts_with("ERR "), "{status}");
    assert_eq!(
        status_mask(&status, "CapBnd"),
        CHOWN_KILL_NETBIND,
        "{status}"
    );
    assert_eq!(
        status_mask(&status, "CapPrm"),
        CHOWN_KILL_NETBIND,
        "{status}"
    );
    assert_eq!(
        status_mask(&status, "CapEff"),
        CHOWN_KILL_NETBIND,
        "{status}"
    );
    assert_eq!(status_mask(&status, "CapInh"), KILL, "{status}");
    assert_eq!(status_mask(&status, "CapAmb"), KILL, "{status}");
    let uid_line = status.lines().find(|l| l.starts_with("Uid:"));
    assert_eq!(
        uid_line.map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>()),
        Some(vec!["1000"; 4]),
        "{status}"
    );
}

#[test]
fn without_keepcaps_setuid_loses_the_permitted_set() {
    if !is_root() {
        return;
    }
    let c =
        caps(r#"{"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "effective": ["CAP_KILL"]}"#);
    let out = in_child(|| apply_as_user_1000(&c, false));
    assert!(
        out.starts_with("ERR "),
        "expected capset to fail, got {out}"
    );
    assert!(out.contains("capset"), "{out}");
}

#[test]
fn missing_sets_are_empty_and_missing_bounding_drops_nothing() {
    if !is_root() {
        return;
    }
    // The bounding set this test process runs with (not necessarily full in a container).
    let own = std::fs::read_to_string("/proc/thread-self/status")
        .unwrap_or_else(|e| panic!("/proc/thread-self/status: {e}"));
    let own_bounding = status_mask(&own, "CapBnd");
    let last = last_cap().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        own_bounding >> (last + 1),
        0,
        "bounding set beyond cap_last_cap"
    );
    let c = caps(r#"{"permitted": ["CAP_KILL"], "effective": ["CAP_KILL"]}"#);
    let status = in_child(|| {
        drop_bounding_set(&c).map_err(|e| e.to_string())?;
        apply_process_sets(&c).map_err(|e| e.to_string())?;
        read_status()
    });
    assert!(!status.starts_with("ERR "), "{status}");
    assert_eq!(status_mask(&status, "CapBnd"), own_bounding, "{status}");
    assert_eq!(status_mask(&status, "CapPrm"), KILL, "{status}");
    assert_eq!(status_mask(&status, "CapEff"), KILL, "{status}");
    assert_eq!(status_mask(&status, "CapInh"), 0, "{status}");
    assert_eq!(status_mask(&status, "CapAmb"), 0, "{status}");
}

#[test]
fn ambient_without_inheritable_is_an_error_naming_the_capability() {
    if !is_root() {
        return;
    }
    let c = caps(
        r#"{"permitted": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"], "ambient": ["CAP_CHOWN"]}"#,
    );
    let out = in_child(|| {
        apply_process_sets(&c).map_err(|e| e.to_string())?;
        read_status()
    });
    assert!(out.starts_with("ERR "), "expected failure, got {out}");
    assert!(out.contains("CAP_CHOWN"), "{out}");
}
