//! The process section of config.json, checked from inside real containers. Needs root.

mod support;

use serde_json::json;
use support::{can_run, Env};

#[test]
fn run_returns_the_exit_code_of_the_process() {
    if !can_run() {
        return;
    }
    let env = Env::new("exitcode");
    env.set_args(&["sh", "-c", "exit 42"]);
    assert_eq!(env.run().0, 42);
    env.assert_clean();
    // The init of a pid namespace cannot be killed from inside: kill it from the host.
    env.set_args(&["sleep", "100"]);
    let bundle = env.bundle();
    let mut child = env
        .runc_cmd(&["run", "--bundle", bundle.to_str().unwrap(), &env.id])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !env.runc(&["state", &env.id]).status.success() || env.status() != "running" {
        assert!(std::time::Instant::now() < deadline, "container never ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(env.runc(&["kill", &env.id, "KILL"]).status.success());
    assert_eq!(child.wait().unwrap().code(), Some(128 + 9));
    env.assert_clean();
}

#[test]
fn args_env_and_cwd_reach_the_program() {
    if !can_run() {
        return;
    }
    let env = Env::new("argsenv");
    env.edit(|c| {
        c["process"]["args"] = json!([
            "sh",
            "-c",
            "echo \"$1|$GREETING|$(pwd)\"",
            "sh",
            "first arg"
        ]);
        c["process"]["env"] = json!(["PATH=/bin", "GREETING=hello world"]);
        c["process"]["cwd"] = json!("/work/dir");
    });
    assert_eq!(env.run_ok().trim(), "first arg|hello world|/work/dir");
    env.assert_clean();
}

#[test]
fn user_groups_and_umask_are_applied() {
    if !can_run() {
        return;
    }
    let env = Env::new("user");
    env.edit(|c| {
        c["process"]["user"] =
            json!({"uid": 1000, "gid": 1001, "additionalGids": [2000, 2001], "umask": 63});
        c["process"]["args"] = json!([
            "sh",
            "-c",
            "id -u; id -g; cat /proc/self/status | grep ^Groups; umask"
        ]);
    });
    let out = env.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000");
    assert_eq!(lines[1], "1001");
    assert!(
        lines[2].contains("2000") && lines[2].contains("2001"),
        "{out}"
    );
    assert_eq!(lines[3], "0077");
    env.assert_clean();
}

#[test]
fn rlimits_are_set() {
    if !can_run() {
        return;
    }
    let env = Env::new("rlimits");
    env.edit(|c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}, {"type": "RLIMIT_NPROC", "soft": 77, "hard": 77}]);
        c["process"]["args"] = json!(["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -u"]);
    });
    assert_eq!(
        env.run_ok().split_whitespace().collect::<Vec<_>>(),
        ["123", "456", "77"]
    );
    env.assert_clean();
}

#[test]
fn an_rlimit_above_the_hard_limit_fails_with_a_clear_error() {
    if !can_run() {
        return;
    }
    let env = Env::new("rlimit-bad");
    env.edit(|c| {
        c["process"]["rlimits"] =
            json!([{"type": "RLIMIT_NOFILE", "soft": 4194304, "hard": 4194304}]);
    });
    let (code, _, err) = env.run();
    assert_ne!(code, 0);
    assert!(err.contains("setrlimit RLIMIT_NOFILE"), "{err}");
    env.assert_clean();
}

#[test]
fn capabilities_match_the_config() {
    if !can_run() {
        return;
    }
    let env = Env::new("caps");
    env.edit(|c| {
        let set = json!(["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"]);
        c["process"]["capabilities"] = json!({
            "bounding": set, "effective": set, "permitted": set,
            "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"],
        });
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["args"] = json!(["sh", "-c", "grep ^Cap /proc/self/status"]);
    });
    let out = env.run_ok();
    // CHOWN=0, KILL=5, NET_RAW=13. A non-root exec keeps only the ambient set (KILL) in
    // permitted and effective; the bounding set is as configured.
    let field = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        field("CapBnd"),
        format!("{:016x}", (1u64 << 0) | (1 << 5) | (1 << 13)),
        "{out}"
    );
    assert_eq!(field("CapAmb"), format!("{:016x}", 1u64 << 5), "{out}");
    assert_eq!(field("CapEff"), format!("{:016x}", 1u64 << 5), "{out}");
    assert_eq!(field("CapInh"), format!("{:016x}", 1u64 << 5), "{out}");
    env.assert_clean();
}

#[test]
fn root_keeps_exactly_the_configured_effective_set() {
    if !can_run() {
        return;
    }
    let env = Env::new("caps-root");
    env.edit(|c| {
        let set = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        c["process"]["capabilities"] = json!({"bounding": set, "effective": set, "permitted": set});
        c["process"]["args"] = json!(["sh", "-c", "grep ^CapEff /proc/self/status"]);
    });
    let want = format!("{:016x}", (1u64 << 29) | (1 << 5) | (1 << 10));
    assert!(env.run_ok().contains(&want));
    env.assert_clean();
}

#[test]
fn no_new_privileges_is_set() {
    if !can_run() {
        return;
    }
    let env = Env::new("nnp");
    env.edit(|c| {
        c["process"]["noNewPrivileges"] = json!(true);
        c["process"]["args"] = json!(["sh", "-c", "grep ^NoNewPrivs /proc/self/status"]);
    });
    assert!(env.run_ok().contains("NoNewPrivs:\t1"));
    env.edit(|c| c["process"]["noNewPrivileges"] = json!(false));
    assert!(env.run_ok().contains("NoNewPrivs:\t0"));
    env.assert_clean();
}

#[test]
fn oom_score_adj_is_set() {
    if !can_run() {
        return;
    }
    let env = Env::new("oomadj");
    env.edit(|c| {
        c["process"]["oomScoreAdj"] = json!(500);
        c["process"]["args"] = json!(["cat", "/proc/self/oom_score_adj"]);
    });
    assert_eq!(env.run_ok().trim(), "500");
    env.assert_clean();
}

#[test]
fn no_runtime_descriptor_leaks_into_the_container() {
    if !can_run() {
        return;
    }
    let env = Env::new("fds");
    env.set_args(&["ls", "/proc/self/fd"]);
    // ls itself opens one descriptor for the directory it lists.
    let fds: Vec<String> = env.run_ok().split_whitespace().map(String::from).collect();
    assert!(fds.len() <= 4, "unexpected descriptors: {fds:?}");
    env.assert_clean();
}

#[test]
fn preserve_fds_passes_extra_descriptors() {
    if !can_run() {
        return;
    }
    let env = Env::new("preserve");
    env.set_args(&["sh", "-c", "cat <&3"]);
    let secret = env.dir.path().join("secret");
    std::fs::write(&secret, "passed through fd 3").unwrap();
    let bin = env!("CARGO_BIN_EXE_gorae-runc");
    let script = format!(
        "exec 3<{} && exec {bin} --root {} run --preserve-fds 1 --bundle {} {}",
        secret.display(),
        env.state_root().display(),
        env.bundle().display(),
        env.id
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "passed through fd 3");
    // Without --preserve-fds the descriptor is closed in the container.
    let script = script.replace("--preserve-fds 1 ", "");
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(!out.status.success());
    env.assert_clean();
}

#[test]
fn errors_go_to_the_log_file_as_json_lines() {
    if !can_run() {
        return;
    }
    let env = Env::new("logjson");
    let log = env.dir.path().join("runc.log");
    let out = env.runc(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "ghost",
    ]);
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let entry: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(entry["level"], "error");
    assert!(entry["msg"].as_str().unwrap().contains("ghost"), "{text}");
    assert!(entry["time"].as_str().unwrap().ends_with('Z'), "{text}");
}

#[test]
fn a_config_without_capabilities_gets_none() {
    if !can_run() {
        return;
    }
    let env = Env::new("nocaps");
    env.edit(|c| {
        c["process"].as_object_mut().unwrap().remove("capabilities");
        c["process"]["args"] = json!(["sh", "-c", "grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status"]);
    });
    let out = env.run_ok();
    assert_eq!(out.matches("0000000000000000").count(), 3, "{out}");
    env.assert_clean();
}
