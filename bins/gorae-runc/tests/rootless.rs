//! Rootless: an unprivileged user runs a container in a user namespace, without cgroups
//! (not delegated here). Needs root to create the test user; runs the container as that user.

mod support;

use std::process::Command;

use support::{can_run, make_rootfs};

const USER: &str = "gorae-rootless";

fn ensure_user() -> bool {
    if Command::new("id")
        .arg(USER)
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return true;
    }
    Command::new("useradd")
        .args(["--create-home", "--shell", "/bin/sh", USER])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn an_unprivileged_user_runs_a_container() {
    if !can_run() {
        return;
    }
    if !ensure_user() {
        eprintln!("skipped: cannot create the user {USER}");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("gorae-test-rootless-")
        .tempdir()
        .unwrap();
    let bundle = dir.path().join("bundle");
    make_rootfs(&bundle.join("rootfs"));
    let bin = dir.path().join("gorae-runc");
    std::fs::copy(env!("CARGO_BIN_EXE_gorae-runc"), &bin).unwrap();
    assert!(Command::new("chown")
        .args(["-R", &format!("{USER}:{USER}")])
        .arg(dir.path())
        .status()
        .unwrap()
        .success());
    let script = format!(
        "set -e; cd {bundle}; {bin} spec --rootless; \
         jq '.process.terminal=false | .process.args=[\"sh\",\"-c\",\"id -u; cat /proc/self/uid_map; grep ^CapEff /proc/self/status\"]' config.json > c.json; \
         mv c.json config.json; {bin} --root {state} run rootless-{pid}",
        bundle = bundle.display(),
        bin = bin.display(),
        state = dir.path().join("state").display(),
        pid = std::process::id(),
    );
    let out = Command::new("su")
        .args([USER, "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "rootless run failed: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uid = String::from_utf8_lossy(
        &Command::new("id")
            .args(["-u", USER])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0", "{text}");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["0", uid.as_str(), "1"],
        "{text}"
    );
    assert!(lines[2].starts_with("CapEff:\t00000000a80425fb"), "{text}");
    assert!(!dir
        .path()
        .join("state")
        .join(format!("rootless-{}", std::process::id()))
        .exists());
}
