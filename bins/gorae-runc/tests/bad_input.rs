//! Bad input: one clear line naming the problem, a non-zero exit, nothing left behind.
//! Needs root.

mod support;

use serde_json::json;
use support::{can_run, stderr, Env};

fn refused(env: &Env, args: &[&str], needle: &str) {
    let out = env.runc(args);
    assert!(!out.status.success(), "{args:?} should fail");
    let err = stderr(&out);
    assert!(
        err.contains(needle),
        "{args:?}: expected {needle:?} in {err:?}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "error should be one line: {err:?}"
    );
    env.assert_clean();
}

fn create_refused(env: &Env, needle: &str) {
    let bundle = env.bundle();
    refused(
        env,
        &["create", "--bundle", bundle.to_str().unwrap(), &env.id],
        needle,
    );
}

#[test]
fn a_malformed_config_is_refused() {
    if !can_run() {
        return;
    }
    let env = Env::new("malformed");
    std::fs::write(env.bundle().join("config.json"), "{\"process\": [").unwrap();
    create_refused(&env, "config.json");
    std::fs::write(
        env.bundle().join("config.json"),
        "{\"process\": {\"args\": 5}}",
    )
    .unwrap();
    create_refused(&env, "config.json");
}

#[test]
fn a_missing_rootfs_is_refused() {
    if !can_run() {
        return;
    }
    let env = Env::new("norootfs");
    env.edit(|c| c["root"]["path"] = json!("nowhere"));
    create_refused(&env, "nowhere");
}

#[test]
fn an_unknown_namespace_type_is_refused() {
    if !can_run() {
        return;
    }
    let env = Env::new("badns");
    env.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "bogus"}))
    });
    create_refused(&env, "bogus");
}

#[test]
fn an_invalid_cgroup_value_is_refused() {
    if !can_run() {
        return;
    }
    let env = Env::new("badcg");
    env.edit(|c| c["linux"]["resources"]["cpu"] = json!({"cpus": "not-a-cpu-list"}));
    create_refused(&env, "cpus");
    env.edit(|c| c["linux"]["resources"]["cpu"] = json!({"quota": 1000, "period": 0}));
    create_refused(&env, "period");
}

#[test]
fn a_duplicate_id_is_refused_and_the_first_container_survives() {
    if !can_run() {
        return;
    }
    let env = Env::new("dup");
    env.set_args(&["sleep", "100"]);
    assert!(env.create().status.success());
    let out = env.create();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("exists"), "{}", stderr(&out));
    assert_eq!(env.status(), "created");
    assert!(env.runc(&["delete", "--force", &env.id]).status.success());
    env.assert_clean();
}

#[test]
fn ids_with_slashes_or_dots_are_refused() {
    if !can_run() {
        return;
    }
    let env = Env::new("badid");
    let bundle = env.bundle();
    for id in ["a/b", "..", "../escape", "."] {
        let out = env.runc(&["create", "--bundle", bundle.to_str().unwrap(), id]);
        assert!(!out.status.success(), "{id} accepted");
        assert!(
            stderr(&out).contains("invalid container id"),
            "{}",
            stderr(&out)
        );
    }
    assert!(!env.dir.path().join("escape").exists());
    assert!(!env.state_root().join("a").exists());
}

#[test]
fn a_missing_program_fails_create_with_its_name() {
    if !can_run() {
        return;
    }
    let env = Env::new("noprog");
    env.set_args(&["/no/such/program"]);
    create_refused(&env, "/no/such/program");
}

#[test]
fn commands_on_unknown_containers_fail_clearly() {
    if !can_run() {
        return;
    }
    let env = Env::new("unknown");
    for cmd in [
        vec!["start", "ghost"],
        vec!["state", "ghost"],
        vec!["kill", "ghost"],
        vec!["delete", "ghost"],
        vec!["pause", "ghost"],
    ] {
        refused(&env, &cmd, "does not exist");
    }
    assert!(env.runc(&["delete", "--force", "ghost"]).status.success());
}

#[test]
fn systemd_cgroup_is_refused_clearly() {
    if !can_run() {
        return;
    }
    let env = Env::new("systemd");
    refused(&env, &["--systemd-cgroup", "list"], "systemd");
}
