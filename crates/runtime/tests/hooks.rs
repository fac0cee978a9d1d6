//! Integration tests for `gorae_runtime::hooks` (no root needed): real hook processes started
//! from `/bin/sh` scripts that record what they saw into files in a temporary directory.

use std::path::Path;
use std::time::{Duration, Instant};

use gorae_runtime::hooks::{run_hook, run_hooks, run_phase_hooks, HookError, HookPhase};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use oci_spec::runtime::Hook;
use serde_json::json;

const STATE: &[u8] =
    br#"{"ociVersion":"1.2.0","id":"c1","status":"creating","pid":42,"bundle":"/b"}"#;

fn hook(value: serde_json::Value) -> Hook {
    serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("bad hook {value}: {e}"))
}

/// A `/bin/sh -c script` hook with `env` as its whole environment.
fn sh(script: &str, env: &[String]) -> Hook {
    hook(json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": env}))
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn out_env(dir: &Path, name: &str) -> String {
    format!("OUT={}", dir.join(name).display())
}

#[test]
fn state_arrives_exactly_on_stdin() {
    let dir = tmp();
    let h = sh(r#"cat > "$OUT""#, &[out_env(dir.path(), "state")]);
    run_hook(&h, STATE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read(&dir.path().join("state")), STATE);
}

#[test]
fn large_state_and_output_do_not_deadlock() {
    let dir = tmp();
    let state = vec![b'x'; 1 << 20];
    // Reads all of stdin while flooding stdout and stderr.
    let h = sh(
        r#"head -c 2000000 /dev/zero; head -c 2000000 /dev/zero >&2; cat > "$OUT""#,
        &[out_env(dir.path(), "state")],
    );
    run_hook(&h, &state).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read(&dir.path().join("state")).len(), state.len());
}

#[test]
fn a_hook_that_does_not_read_stdin_is_fine() {
    let state = vec![b'x'; 1 << 20];
    run_hook(&sh("exit 0", &[]), &state).unwrap_or_else(|e| panic!("{e}"));
    run_hook(&sh("exec 0<&-; sleep 0.2; exit 0", &[]), &state).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn argv0_and_args_are_passed_as_given() {
    let dir = tmp();
    let cmdline = dir.path().join("cmdline");
    let h = hook(json!({
        "path": "/bin/sh",
        "args": ["my-argv0", "-c", "cat /proc/$$/cmdline > \"$1\"", "ignored", cmdline],
    }));
    run_hook(&h, STATE).unwrap_or_else(|e| panic!("{e}"));
    let got = read(&cmdline);
    let argv: Vec<&[u8]> = got.split(|b| *b == 0).filter(|a| !a.is_empty()).collect();
    assert_eq!(argv[0], b"my-argv0");
    assert_eq!(argv[1], b"-c");
    assert_eq!(argv[3], b"ignored");
    assert_eq!(argv.len(), 5);
}

#[test]
fn without_args_argv_is_just_the_path() {
    let dir = tmp();
    let script = dir.path().join("hook.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$# $0\" > {}\n",
            dir.path().join("argv").display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut perms = std::fs::metadata(&script)
        .unwrap_or_else(|e| panic!("{e}"))
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap_or_else(|e| panic!("{e}"));
    run_hook(&hook(json!({"path": script})), STATE).unwrap_or_else(|e| panic!("{e}"));
    let argv = String::from_utf8_lossy(&read(&dir.path().join("argv"))).to_string();
    assert_eq!(argv.trim(), format!("0 {}", script.display()));
}

#[test]
fn environment_is_exactly_env_and_nothing_inherited() {
    assert!(
        std::env::var_os("PATH").is_some(),
        "test needs PATH set in its own environment"
    );
    let dir = tmp();
    let h = hook(json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", "/usr/bin/env -0 > \"$OUT\""],
        "env": ["HOOK_A=1", "HOOK_B=x=y", out_env(dir.path(), "env")],
    }));
    run_hook(&h, STATE).unwrap_or_else(|e| panic!("{e}"));
    let got = read(&dir.path().join("env"));
    let vars: Vec<String> = got
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).to_string())
        .collect();
    assert!(vars.contains(&"HOOK_A=1".to_string()), "{vars:?}");
    assert!(vars.contains(&"HOOK_B=x=y".to_string()), "{vars:?}");
    assert!(!vars.iter().any(|v| v.starts_with("PATH=")), "{vars:?}");
    assert!(!vars.iter().any(|v| v.starts_with("HOME=")), "{vars:?}");
    // The shell may add PWD; nothing else of ours may appear.
    for v in &vars {
        let name = v.split('=').next().unwrap_or_default();
        assert!(
            ["HOOK_A", "HOOK_B", "OUT", "PWD", "SHLVL", "_"].contains(&name),
            "unexpected inherited variable {v:?} in {vars:?}"
        );
    }
}

#[test]
fn non_zero_exit_names_the_hook_status_and_stderr() {
    let h = sh("echo 'something broke' >&2; exit 3", &[]);
    let err = run_hook(&h, STATE)
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    assert!(
        matches!(err, HookError::ExitStatus { code: 3, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.starts_with("hook /bin/sh"), "{text}");
    assert!(text.contains("exit status 3"), "{text}");
    assert!(text.contains("something broke"), "{text}");
}

#[test]
fn stderr_in_the_message_is_bounded() {
    let h = sh("head -c 100000 /dev/zero | tr '\\0' e >&2; exit 1", &[]);
    let text = run_hook(&h, STATE)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(text.contains("eeee"), "{text}");
    assert!(text.len() < 2048, "message is {} bytes", text.len());
}

#[test]
fn killed_by_a_signal_is_reported() {
    let h = sh("kill -SEGV $$", &[]);
    let err = run_hook(&h, STATE)
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    assert!(err.to_string().contains("SIGSEGV"), "{err}");
}

#[test]
fn timeout_kills_the_hook() {
    let dir = tmp();
    let pidfile = dir.path().join("pid");
    let h = hook(json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", "echo $$ > \"$OUT\"; exec sleep 100"],
        "env": [out_env(dir.path(), "pid")],
        "timeout": 1,
    }));
    let started = Instant::now();
    let err = run_hook(&h, STATE)
        .err()
        .unwrap_or_else(|| panic!("must time out"));
    assert!(
        matches!(err, HookError::TimedOut { seconds: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("timed out after 1s"), "{err}");
    // Loose bound: only proves we did not wait for `sleep 100`.
    assert!(started.elapsed() < Duration::from_secs(60));
    let pid: i32 = String::from_utf8_lossy(&read(&pidfile))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("pid file: {e}"));
    assert_eq!(
        kill(Pid::from_raw(pid), None),
        Err(Errno::ESRCH),
        "hook {pid} still exists"
    );
}

#[test]
fn zero_or_negative_timeout_is_rejected() {
    for t in [0, -5] {
        let h = hook(json!({"path": "/bin/true", "timeout": t}));
        let err = run_hook(&h, STATE)
            .err()
            .unwrap_or_else(|| panic!("timeout {t} accepted"));
        assert!(matches!(err, HookError::InvalidTimeout { .. }), "{err:?}");
        assert!(err.to_string().contains("/bin/true"), "{err}");
    }
}

#[test]
fn missing_executable_cannot_execute() {
    let h = hook(json!({"path": "/nonexistent/gorae-hook"}));
    let text = run_hook(&h, STATE)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        text,
        "hook /nonexistent/gorae-hook: cannot execute: No such file or directory"
    );
}

#[test]
fn relative_path_and_bad_env_are_rejected() {
    let err = run_hook(&hook(json!({"path": "bin/true"})), STATE).err();
    assert!(
        matches!(err, Some(HookError::RelativePath { .. })),
        "{err:?}"
    );
    let err = run_hook(
        &hook(json!({"path": "/bin/true", "env": ["NOEQUALS"]})),
        STATE,
    )
    .err();
    assert!(matches!(err, Some(HookError::InvalidEnv { .. })), "{err:?}");
}

#[test]
fn hooks_run_in_order_and_stop_at_the_first_failure() {
    let dir = tmp();
    let log = [out_env(dir.path(), "log")];
    let hooks = vec![
        sh(r#"echo one >> "$OUT""#, &log),
        sh(r#"echo two >> "$OUT""#, &log),
        sh(r#"echo three >> "$OUT"; exit 7"#, &log),
        sh(r#"echo four >> "$OUT""#, &log),
    ];
    let err = run_hooks(&hooks, STATE)
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    assert_eq!(
        String::from_utf8_lossy(&read(&dir.path().join("log"))),
        "one\ntwo\nthree\n"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("hook /bin/sh (#2): exit status 7"),
        "{text}"
    );

    let err = run_phase_hooks(HookPhase::CreateRuntime, &hooks[2..], STATE)
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    assert!(
        err.to_string()
            .starts_with("hook /bin/sh (createRuntime #0): exit status 7"),
        "{err}"
    );
    run_hooks(&[], STATE).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn sigpipe_with_default_disposition_does_not_kill_the_runtime() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};
    // Rust binaries ignore SIGPIPE; a C caller or a forked init may not. Check in a child
    // with SIGPIPE back at SIG_DFL that a hook closing its stdin early cannot kill us.
    let state = vec![b'x'; 1 << 20];
    // SAFETY: the child only resets one signal disposition, runs the hook (spawn, pipes, poll;
    // glibc keeps malloc usable after fork) and leaves with `_exit`.
    match unsafe { fork() }.unwrap_or_else(|e| panic!("fork: {e}")) {
        ForkResult::Child => {
            // SAFETY: SIG_DFL is not a Rust handler; restoring the default is always sound.
            let reset = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
            let ok = reset.is_ok() && run_hook(&sh("exec 0<&-; sleep 0.2", &[]), &state).is_ok();
            // SAFETY: ends the forked child without unwinding into the test harness.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => {
            let status = waitpid(child, None).unwrap_or_else(|e| panic!("waitpid: {e}"));
            assert_eq!(status, WaitStatus::Exited(child, 0));
        }
    }
}
