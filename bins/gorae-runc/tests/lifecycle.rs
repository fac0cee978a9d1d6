//! create, start, state, list, kill, delete, pause, resume, ps, pid files: the lifecycle as
//! runc's callers drive it. Needs root.

mod support;

use std::time::{Duration, Instant};

use support::{can_run, stderr, stdout, Env, Layout};

#[test]
fn create_start_kill_delete() {
    if !can_run() {
        return;
    }
    let env = Env::new("lifecycle");
    env.set_args(&["sleep", "100"]);
    let pid_file = env.dir.path().join("init.pid");
    let out = env.runc(&[
        "create",
        "--bundle",
        env.bundle().to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &env.id,
    ]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    let state = env.state();
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], env.id.as_str());
    assert_eq!(state["ociVersion"], "1.2.0");
    assert_eq!(
        state["bundle"],
        std::fs::canonicalize(env.bundle())
            .unwrap()
            .to_str()
            .unwrap()
    );
    let pid = state["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());

    let list = env.runc(&["list", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list[0]["id"], env.id.as_str());
    let table = stdout(&env.runc(&["list"]));
    assert!(
        table.starts_with("ID") && table.contains(&env.id) && table.contains("created"),
        "{table}"
    );

    let start = env.runc(&["start", &env.id]);
    assert!(start.status.success(), "start: {}", stderr(&start));
    assert_eq!(env.status(), "running");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with(b"sleep\x00100"), "{cmdline:?}");
    let again = env.runc(&["start", &env.id]);
    assert!(!again.status.success(), "a second start must fail");

    let ps = env.runc(&["ps", "--format", "json", &env.id]);
    let pids: Vec<i64> = serde_json::from_slice(&ps.stdout).unwrap();
    assert_eq!(pids, vec![pid]);

    let refused = env.runc(&["delete", &env.id]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("not stopped"),
        "{}",
        stderr(&refused)
    );

    assert!(env.runc(&["kill", &env.id, "KILL"]).status.success());
    env.wait_for_status("stopped");
    assert_eq!(env.state()["pid"], 0);
    let kill_stopped = env.runc(&["kill", &env.id]);
    assert!(!kill_stopped.status.success());
    assert!(env.runc(&["delete", &env.id]).status.success());
    env.assert_clean();
    let gone = env.runc(&["state", &env.id]);
    assert!(!gone.status.success());
    assert!(
        stderr(&gone).contains("does not exist"),
        "{}",
        stderr(&gone)
    );
}

#[test]
fn a_created_container_can_be_deleted_without_starting() {
    if !can_run() {
        return;
    }
    let env = Env::new("create-delete");
    let out = env.create();
    assert!(out.status.success(), "create: {}", stderr(&out));
    let pid = env.state()["pid"].as_i64().unwrap();
    assert!(env.runc(&["delete", &env.id]).status.success());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists() || is_zombie_or_gone(pid));
    env.assert_clean();
}

fn is_zombie_or_gone(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains(") Z"))
        .unwrap_or(true)
}

#[test]
fn run_detach_then_kill_all_and_force_delete() {
    if !can_run() {
        return;
    }
    let env = Env::new("detach");
    env.run_detached(&["sh", "-c", "sleep 100 & sleep 100 & wait"]);
    assert_eq!(env.status(), "running");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ps = env.runc(&["ps", "--format", "json", &env.id]);
        let pids: Vec<i64> = serde_json::from_slice(&ps.stdout).unwrap();
        if pids.len() == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "children never appeared: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let table = stdout(&env.runc(&["ps", &env.id]));
    assert_eq!(
        table.lines().filter(|l| l.ends_with(" sleep 100")).count(),
        2,
        "{table}"
    );
    assert!(env
        .runc(&["kill", "--all", &env.id, "TERM"])
        .status
        .success());
    env.wait_for_status("stopped");
    assert!(env.runc(&["delete", &env.id]).status.success());
    env.assert_clean();

    let out = env.runc(&[
        "run",
        "-d",
        "--bundle",
        env.bundle().to_str().unwrap(),
        &env.id,
    ]);
    assert!(out.status.success());
    assert!(env.runc(&["delete", "--force", &env.id]).status.success());
    env.assert_clean();
}

fn pause_and_resume(layout: Layout) {
    let env = Env::with_layout("pause", layout);
    env.run_detached(&["sh", "-c", "while true; do echo x > /dev/null; done"]);
    let pid = env.state()["pid"].as_i64().unwrap();
    // Nanoseconds the process has run (first field of schedstat).
    let cpu = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap();
        stat.split_whitespace()
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let paused = env.runc(&["pause", &env.id]);
    assert!(paused.status.success(), "pause: {}", stderr(&paused));
    assert_eq!(env.status(), "paused");
    let before = cpu();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cpu(), before, "a paused container kept running");
    assert!(env.runc(&["resume", &env.id]).status.success());
    assert_eq!(env.status(), "running");
    std::thread::sleep(Duration::from_millis(300));
    assert!(cpu() > before, "a resumed container did not run");
    assert!(
        !env.runc(&["resume", &env.id]).status.success(),
        "resume of a running container must fail"
    );
    assert!(env.runc(&["delete", "--force", &env.id]).status.success());
    env.assert_clean();
}

#[test]
fn pause_freezes_and_resume_thaws() {
    if can_run() {
        pause_and_resume(Layout::Host);
    }
}

#[test]
fn pause_freezes_and_resume_thaws_on_pure_v1() {
    if can_run() {
        pause_and_resume(Layout::PureV1);
    }
}

#[test]
fn features_and_spec() {
    if !can_run() {
        return;
    }
    let env = Env::new("features");
    let out = env.runc(&["features"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ociVersionMax"], "1.2.0");
    assert!(doc["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "time"));
    let again = env.runc(&["spec", "--bundle", env.bundle().to_str().unwrap()]);
    assert!(
        !again.status.success(),
        "spec must refuse to overwrite config.json"
    );
}
