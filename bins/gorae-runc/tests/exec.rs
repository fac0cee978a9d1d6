//! `exec` into running containers: namespaces, cgroup, credentials, tty, detach, bad input.
//! Needs root.

mod support;

use serde_json::json;
use support::{can_run, stderr, stdout, Env};

fn running(name: &str) -> Env {
    let env = Env::new(name);
    env.edit(|c| c["hostname"] = json!("exec-host"));
    env.run_detached(&["sleep", "1000"]);
    env
}

#[test]
fn exec_sees_the_containers_namespaces_mounts_and_cgroup() {
    if !can_run() {
        return;
    }
    let env = running("exec-ns");
    let init = env.state()["pid"].as_i64().unwrap();
    let out = env.runc(&["exec", &env.id, "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /; for n in pid net mnt uts ipc; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "exec-host");
    assert_eq!(
        lines[1].trim(),
        "sleep 1000",
        "pid 1 is the container's init: {text}"
    );
    assert!(
        text.contains("bin\n") && !text.contains("gorae-test"),
        "{text}"
    );
    for ns in ["pid", "net", "mnt", "uts", "ipc"] {
        let want = std::fs::read_link(format!("/proc/{init}/ns/{ns}")).unwrap();
        assert!(
            text.contains(want.to_str().unwrap()),
            "{ns} differs: {text}"
        );
    }
    let host_cgroup = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    let pids_line = host_cgroup.lines().find(|l| l.contains(":pids:")).unwrap();
    let ps = env.runc(&["exec", &env.id, "sleep", "0"]);
    assert!(ps.status.success());
    assert!(
        pids_line.contains(&format!("gorae-{}", env.id)),
        "{host_cgroup}"
    );
    assert!(env.runc(&["delete", "--force", &env.id]).status.success());
    env.assert_clean();
}

#[test]
fn exec_applies_env_cwd_user_and_returns_the_exit_code() {
    if !can_run() {
        return;
    }
    let env = running("exec-proc");
    let out = env.runc(&[
        "exec",
        "-e",
        "GREETING=hi",
        "--cwd",
        "/tmp",
        "-u",
        "1000:1001",
        &env.id,
        "sh",
        "-c",
        "echo $GREETING $(pwd) $(id -u) $(id -g); exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "hi /tmp 1000 1001");
    let caps = env.runc(&["exec", &env.id, "grep", "^CapEff", "/proc/self/status"]);
    let init_caps = env.runc(&["exec", &env.id, "grep", "^CapEff", "/proc/1/status"]);
    assert_eq!(
        stdout(&caps),
        stdout(&init_caps),
        "exec must get the container's capabilities"
    );
    let seccomp = env.runc(&["exec", &env.id, "grep", "^NoNewPrivs", "/proc/self/status"]);
    assert!(
        stdout(&seccomp).contains("NoNewPrivs:\t1"),
        "{}",
        stdout(&seccomp)
    );
    assert!(env.runc(&["delete", "--force", &env.id]).status.success());
    env.assert_clean();
}

#[test]
fn exec_with_a_process_file_and_detach_and_pid_file() {
    if !can_run() {
        return;
    }
    let env = running("exec-detach");
    let process = env.dir.path().join("process.json");
    let marker = "/dev/shm/exec-was-here";
    std::fs::write(&process, json!({"args": ["sh", "-c", format!("echo ok > {marker}; sleep 1000")], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]}).to_string()).unwrap();
    let pid_file = env.dir.path().join("exec.pid");
    let out = env.runc(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--process",
        process.to_str().unwrap(),
        &env.id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pid: i64 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let ps = env.runc(&["ps", "--format", "json", &env.id]);
    let pids: Vec<i64> = serde_json::from_slice(&ps.stdout).unwrap();
    assert!(pids.contains(&pid), "{pids:?} lacks {pid}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let check = env.runc(&["exec", &env.id, "cat", marker]);
        if check.status.success() {
            assert_eq!(stdout(&check).trim(), "ok");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the detached process never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(env.runc(&["delete", "--force", &env.id]).status.success());
    env.assert_clean();
}

#[test]
fn exec_t_gets_a_tty() {
    if !can_run() {
        return;
    }
    let env = running("exec-tty");
    let out = env.runc(&[
        "exec",
        "-t",
        &env.id,
        "sh",
        "-c",
        "tty; test -t 0 && echo stdin-is-tty",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("/dev/pts/") && text.contains("stdin-is-tty"),
        "{text:?}"
    );
    assert!(env.runc(&["delete", "--force", &env.id]).status.success());
    env.assert_clean();
}

#[test]
fn exec_refuses_bad_input() {
    if !can_run() {
        return;
    }
    let env = Env::new("exec-bad");
    let unknown = env.runc(&["exec", "ghost", "true"]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("does not exist"),
        "{}",
        stderr(&unknown)
    );

    env.run_detached(&["true"]);
    env.wait_for_status("stopped");
    let stopped = env.runc(&["exec", &env.id, "true"]);
    assert!(!stopped.status.success());
    assert!(stderr(&stopped).contains("stopped"), "{}", stderr(&stopped));
    assert_eq!(stderr(&stopped).trim_end().lines().count(), 1);

    let process = env.dir.path().join("noargs.json");
    std::fs::write(&process, r#"{"cwd": "/", "user": {"uid": 0, "gid": 0}}"#).unwrap();
    let noargs = env.runc(&["exec", "--process", process.to_str().unwrap(), &env.id]);
    assert!(!noargs.status.success());
    assert!(stderr(&noargs).contains("args"), "{}", stderr(&noargs));
    assert!(env.runc(&["delete", &env.id]).status.success());
    env.assert_clean();
}
