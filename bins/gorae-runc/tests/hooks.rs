//! OCI hooks run at the right moments with the state on stdin. Needs root.

mod support;

use serde_json::{json, Value};
use support::{can_run, stderr, Env};

/// A hook that appends "<phase> <state>" to a log file outside the container.
fn hook(env: &Env, phase: &str) -> Value {
    let log = env.dir.path().join("hooks.log");
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("printf '%s ' {phase} >> {}; cat >> {}; echo >> {}", log.display(), log.display(), log.display())]})
}

#[test]
fn every_hook_runs_in_order_with_the_state_on_stdin() {
    if !can_run() {
        return;
    }
    let env = Env::new("hooks");
    // The startContainer hook runs inside the container: its shell must exist there, and
    // its log must be reachable: bind the log's directory in.
    let log_dir = env.dir.path().to_path_buf();
    env.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(
            json!({"destination": log_dir, "type": "bind", "source": log_dir, "options": ["bind"]}),
        );
        c["hooks"] = json!({
            "prestart": [hook(&env, "prestart")],
            "createRuntime": [hook(&env, "createRuntime")],
            "createContainer": [hook(&env, "createContainer")],
            "startContainer": [hook(&env, "startContainer")],
            "poststart": [hook(&env, "poststart")],
            "poststop": [hook(&env, "poststop")],
        });
        c["annotations"] = json!({"org.example.key": "value"});
    });
    env.set_args(&["true"]);
    env.run_ok();
    let log = std::fs::read_to_string(env.dir.path().join("hooks.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let phases: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        phases,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "{log}"
    );
    let statuses = [
        "creating", "creating", "creating", "created", "running", "stopped",
    ];
    for (line, status) in lines.iter().zip(statuses) {
        let state: Value = serde_json::from_str(line.split_once(' ').unwrap().1).unwrap();
        assert_eq!(state["status"], status, "{line}");
        assert_eq!(state["id"], env.id.as_str());
        assert_eq!(state["annotations"]["org.example.key"], "value");
        assert!(state["pid"].as_i64().unwrap() > 1, "{line}");
        assert_eq!(
            state["bundle"],
            std::fs::canonicalize(env.bundle())
                .unwrap()
                .to_str()
                .unwrap()
        );
    }
    env.assert_clean();
}

#[test]
fn a_failing_create_runtime_hook_fails_create_and_leaves_nothing() {
    if !can_run() {
        return;
    }
    let env = Env::new("hook-fail");
    env.edit(|c| {
        c["hooks"] = json!({
            "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 3"]}],
            "poststop": [hook(&env, "poststop")],
        });
    });
    let out = env.create();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("exit status 3") && err.contains("nope"),
        "{err}"
    );
    env.assert_clean();
}

#[test]
fn a_hook_that_times_out_is_killed_and_fails_create() {
    if !can_run() {
        return;
    }
    let env = Env::new("hook-timeout");
    env.edit(|c| c["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]}));
    let out = env.create();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    env.assert_clean();
}

#[test]
fn a_failing_poststart_hook_only_warns() {
    if !can_run() {
        return;
    }
    let env = Env::new("poststart-fail");
    env.edit(|c| c["hooks"] = json!({"poststart": [{"path": "/bin/false"}]}));
    env.set_args(&["true"]);
    let (code, _, err) = env.run();
    assert_eq!(code, 0);
    assert!(err.contains("poststart"), "{err}");
    env.assert_clean();
}
