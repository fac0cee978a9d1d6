//! `update` and `events` on real busybox containers, on the host's layout (hybrid here) and
//! on pure cgroup v1. Needs root.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{can_run, stderr, stdout, Env, Layout};

/// A container started detached with `args`; fails the test when it does not start.
fn start(env: &Env, args: &[&str]) {
    env.run_detached(args);
}

/// The container's cgroup directory in the v1 hierarchy mounted at /sys/fs/cgroup/<name>.
fn cgroup_dir(env: &Env, hierarchy: &str) -> PathBuf {
    let prefix = PathBuf::from("/sys/fs/cgroup").join(hierarchy);
    support::cgroup_dirs_named(&format!("gorae-{}", env.id))
        .into_iter()
        .find(|d| d.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {hierarchy} cgroup for {}", env.id))
}

fn read(dir: &std::path::Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
        .trim()
        .to_string()
}

fn finish(env: &Env) {
    let out = env.runc(&["delete", "--force", &env.id]);
    assert!(out.status.success(), "delete failed: {}", stderr(&out));
    env.assert_clean();
}

fn update_raises_memory(layout: Layout) {
    let env = Env::with_layout("upd-mem", layout);
    env.edit(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 16 << 20, "swap": 16 << 20});
        c["linux"]["resources"]["pids"] = json!({"limit": 50});
    });
    start(&env, &["sleep", "1000"]);
    let mem = cgroup_dir(&env, "memory");
    let pids = cgroup_dir(&env, "pids");
    assert_eq!(read(&mem, "memory.limit_in_bytes"), (16 << 20).to_string());
    let out = env.runc(&["update", "--memory", "64m", &env.id]);
    assert!(out.status.success(), "update failed: {}", stderr(&out));
    assert_eq!(read(&mem, "memory.limit_in_bytes"), (64 << 20).to_string());
    // memsw equalled the limit (no swap): it moves with it
    assert_eq!(
        read(&mem, "memory.memsw.limit_in_bytes"),
        (64 << 20).to_string()
    );
    // a partial update leaves the other limits alone
    assert_eq!(read(&pids, "pids.max"), "50");
    // and lowering works too (the kernel wants the limit lowered before memsw)
    let out = env.runc(&["update", "--memory", "32m", "--memory-swap", "32m", &env.id]);
    assert!(out.status.success(), "update failed: {}", stderr(&out));
    assert_eq!(read(&mem, "memory.limit_in_bytes"), (32 << 20).to_string());
    assert_eq!(
        read(&mem, "memory.memsw.limit_in_bytes"),
        (32 << 20).to_string()
    );
    assert_eq!(env.status(), "running");
    finish(&env);
}

#[test]
fn update_raises_a_memory_limit() {
    if can_run() {
        update_raises_memory(Layout::Host);
    }
}

#[test]
fn update_raises_a_memory_limit_on_pure_v1() {
    if can_run() {
        update_raises_memory(Layout::PureV1);
    }
}

/// Polls `cond` every 100 ms for up to `limit`.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

fn lowered_pids_limit_stops_fork(layout: Layout) {
    let env = Env::with_layout("upd-pids", layout);
    let out_dir = env.dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    env.edit(|c| {
        c["linux"]["resources"]["pids"] = json!({"limit": 100});
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/out", "type": "bind", "source": out_dir, "options": ["rbind", "rw"]
        }));
    });
    start(
        &env,
        &[
            "sh",
            "-c",
            // busybox ash reports a failed fork on stderr and exits (it does not take the
            // `||` branch): both end up in the log.
            "exec 2>>/out/log; echo started >&2; while true; do (true) || echo FORKFAIL >&2; sleep 0.1; done",
        ],
    );
    let log = out_dir.join("log");
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(wait_for(Duration::from_secs(5), || text().contains("started")));
    std::thread::sleep(Duration::from_millis(500));
    let failed = |t: &str| t.contains("FORKFAIL") || t.contains("can't fork");
    assert!(
        !failed(&text()),
        "forks failed before the update: {}",
        text()
    );
    let out = env.runc(&["update", "--pids-limit", "1", &env.id]);
    assert!(out.status.success(), "update failed: {}", stderr(&out));
    assert_eq!(read(&cgroup_dir(&env, "pids"), "pids.max"), "1");
    assert!(
        wait_for(Duration::from_secs(5), || failed(&text())),
        "fork still works after lowering pids.max: {}",
        text()
    );
    finish(&env);
}

#[test]
fn update_lowers_the_pids_limit_of_a_running_container() {
    if can_run() {
        lowered_pids_limit_stops_fork(Layout::Host);
    }
}

#[test]
fn update_lowers_the_pids_limit_of_a_running_container_on_pure_v1() {
    if can_run() {
        lowered_pids_limit_stops_fork(Layout::PureV1);
    }
}

#[test]
fn update_reads_resources_json_from_stdin_and_flags_override_it() {
    if !can_run() {
        return;
    }
    let env = Env::new("upd-json");
    start(&env, &["sleep", "1000"]);
    let mut child = env
        .runc_cmd(&["update", "-r", "-", "--pids-limit", "43", &env.id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            br#"{"memory": {"limit": 33554432}, "pids": {"limit": 42}, "cpu": {"shares": 256}}"#,
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "update -r - failed: {}", stderr(&out));
    assert_eq!(
        read(&cgroup_dir(&env, "memory"), "memory.limit_in_bytes"),
        "33554432"
    );
    assert_eq!(read(&cgroup_dir(&env, "pids"), "pids.max"), "43");
    assert_eq!(read(&cgroup_dir(&env, "cpu"), "cpu.shares"), "256");
    finish(&env);
}

/// A failed command: non-zero exit, one line on stderr containing `want`.
fn assert_one_line_error(out: &std::process::Output, want: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "should fail: {}", stdout(out));
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(err.contains(want), "expected {want:?} in: {err}");
}

#[test]
fn update_refuses_bad_input_and_changes_nothing() {
    if !can_run() {
        return;
    }
    let env = Env::new("upd-bad");
    env.edit(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 16 << 20});
        c["linux"]["resources"]["pids"] = json!({"limit": 50});
    });
    assert_one_line_error(
        &env.runc(&["update", "--memory", "64m", &env.id]),
        "does not exist",
    );
    start(&env, &["sleep", "1000"]);
    let mem = cgroup_dir(&env, "memory");
    let pids = cgroup_dir(&env, "pids");
    for (flag, value) in [
        ("--memory", "-5"),
        ("--pids-limit", "-3"),
        ("--cpu-quota", "-2"),
        ("--cpu-shares", "-1"),
        ("--memory", "12parsecs"),
    ] {
        let out = env.runc(&["update", "--memory-reservation", "1m", flag, value, &env.id]);
        assert_one_line_error(&out, flag);
        assert_eq!(read(&mem, "memory.limit_in_bytes"), (16 << 20).to_string());
        assert_eq!(read(&pids, "pids.max"), "50", "{flag} {value}");
    }
    // a limit the kernel would refuse (above a memsw that differs from the limit) is refused
    // before anything is written
    std::fs::write(
        mem.join("memory.memsw.limit_in_bytes"),
        (24 << 20).to_string(),
    )
    .unwrap();
    let out = env.runc(&["update", "--pids-limit", "7", "--memory", "1g", &env.id]);
    assert_one_line_error(&out, "memory");
    assert_eq!(read(&pids, "pids.max"), "50");
    // a stopped container
    let out = env.runc(&["kill", &env.id, "KILL"]);
    assert!(out.status.success(), "kill failed: {}", stderr(&out));
    assert!(wait_for(Duration::from_secs(5), || env.status() == "stopped"));
    assert_one_line_error(
        &env.runc(&["update", "--memory", "64m", &env.id]),
        "stopped",
    );
    assert_eq!(read(&mem, "memory.limit_in_bytes"), (16 << 20).to_string());
    assert_one_line_error(&env.runc(&["events", "--stats", &env.id]), "stopped");
    finish(&env);
}

#[test]
fn events_stats_shows_memory_and_pids_of_a_running_container() {
    if !can_run() {
        return;
    }
    let env = Env::new("ev-stats");
    env.edit(|c| c["linux"]["resources"]["pids"] = json!({"limit": 30}));
    start(&env, &["sh", "-c", "sleep 1000 & wait"]);
    let out = env.runc(&["events", "--stats", &env.id]);
    assert!(
        out.status.success(),
        "events --stats failed: {}",
        stderr(&out)
    );
    let text = stdout(&out);
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    let v: Value = serde_json::from_str(text.trim()).expect("one JSON object");
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], env.id.as_str());
    let d = &v["data"];
    assert!(
        d["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{d}"
    );
    assert!(d["pids"]["current"].as_u64().unwrap_or(0) >= 1, "{d}");
    assert_eq!(d["pids"]["limit"], 30, "{d}");
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0, "{d}");
    assert!(d["memory"]["raw"].is_object(), "{d}");
    finish(&env);
}

fn events_stream_reports_oom(layout: Layout) {
    let env = Env::with_layout("ev-oom", layout);
    env.edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": 16 << 20, "swap": 16 << 20}));
    start(
        &env,
        &[
            "sh",
            "-c",
            "while true; do dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; sleep 0.2; done",
        ],
    );
    let mut child = env
        .runc_cmd(&["events", "--interval", "1s", &env.id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut oom, mut stats) = (false, false);
    while !(oom && stats) && Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(v["id"], env.id.as_str(), "{line}");
        match v["type"].as_str() {
            Some("oom") => oom = true,
            Some("stats") => stats = true,
            _ => panic!("unexpected event {line}"),
        }
    }
    let kill = env.runc(&["kill", &env.id, "KILL"]);
    let exited = wait_for(Duration::from_secs(5), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    assert!(oom, "no oom event within 15 s");
    assert!(stats, "no stats event within 15 s");
    assert!(kill.status.success(), "kill failed: {}", stderr(&kill));
    assert!(exited, "events did not exit when the container stopped");
    assert!(status.success(), "events exited with {status}");
    finish(&env);
}

#[test]
fn events_stream_reports_an_oom_and_ends_with_the_container() {
    if can_run() {
        events_stream_reports_oom(Layout::Host);
    }
}

#[test]
fn events_stream_reports_an_oom_and_ends_with_the_container_on_pure_v1() {
    if can_run() {
        events_stream_reports_oom(Layout::PureV1);
    }
}
