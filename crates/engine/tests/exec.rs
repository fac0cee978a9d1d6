//! Exec into a real container (root; gorae-runc runs it): multiplexed stdout/stderr and the
//! exit code, stdin, env/user/cwd, a tty with its size and resize, a program that does not
//! exist (127), detached runs.

mod io_support;

use std::sync::Arc;
use std::time::Duration;

use gorae_engine::exec::{self, ExecInstance, Execs, Launch, Target};
use gorae_engine::types::ExecConfig;
use io_support::{can_run, deframe, stream_text, Container};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config(cmd: &[&str]) -> ExecConfig {
    ExecConfig {
        attach_stdout: true,
        attach_stderr: true,
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    }
}

/// Prepares an exec the way the engine does; returns the instance and its launch.
fn prepare(execs: &Execs, c: &Container, cfg: ExecConfig) -> (Arc<ExecInstance>, Launch) {
    let inst = execs.insert(&c.id, cfg).unwrap();
    inst.claim_start().unwrap();
    let target = Target {
        container_id: c.id.clone(),
        bundle: c.bundle(),
        root: c.root(),
    };
    let size = inst.config.console_size.as_deref().map(|s| (s[0], s[1]));
    let process = exec::build_process(&target, &inst.config, size).unwrap();
    let launch = Launch {
        runtime: io_support::runc_bin(),
        runtime_root: c.state_root(),
        work_dir: c.dir.path().join("exec").join(&inst.id[..12]),
    };
    exec::prepare(&launch, &process).unwrap();
    (inst, launch)
}

/// Runs an attached exec with `input` on stdin; returns everything it wrote and its inspect.
async fn run(
    c: &Container,
    cfg: ExecConfig,
    input: &[u8],
) -> (Vec<u8>, gorae_engine::types::ExecInspect) {
    let execs = Execs::default();
    let (inst, launch) = prepare(&execs, c, cfg);
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let task = tokio::spawn(exec::run(inst.clone(), launch, Some(Box::new(server))));
    client.write_all(input).await.unwrap();
    if !input.is_empty() {
        client.shutdown().await.unwrap();
    }
    let mut out = Vec::new();
    client.read_to_end(&mut out).await.unwrap();
    // The exit is recorded before the stream ends: the docker CLI asks for it right then.
    let inspect = inst.inspect();
    task.await.unwrap();
    (out, inspect)
}

#[tokio::test]
async fn output_is_multiplexed_and_the_exit_code_recorded() {
    if !can_run() {
        return;
    }
    let c = Container::start("mux", &["sleep", "1000"]);
    let (out, inspect) = run(
        &c,
        config(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
        b"",
    )
    .await;
    let frames = deframe(&out);
    assert_eq!(stream_text(&frames, 1), "out\n");
    assert_eq!(stream_text(&frames, 2), "err\n");
    assert_eq!(inspect.exit_code, Some(3));
    assert!(!inspect.running);
}

#[tokio::test]
async fn stdin_reaches_the_process_and_eof_ends_it() {
    if !can_run() {
        return;
    }
    let c = Container::start("stdin", &["sleep", "1000"]);
    let mut cfg = config(&["sh", "-c", "tr a-z A-Z; echo done"]);
    cfg.attach_stdin = true;
    let (out, inspect) = run(&c, cfg, b"hello\n").await;
    assert_eq!(stream_text(&deframe(&out), 1), "HELLO\ndone\n");
    assert_eq!(inspect.exit_code, Some(0));
}

#[tokio::test]
async fn env_user_and_cwd_apply() {
    if !can_run() {
        return;
    }
    let c = Container::start("env", &["sleep", "1000"]);
    let mut cfg = config(&["sh", "-c", "echo $FROM_CONTAINER $EXTRA; id -u; id -G; pwd"]);
    cfg.env = Some(vec!["EXTRA=yes".into()]);
    cfg.user = "nobody".into();
    cfg.working_dir = "/tmp".into();
    let (out, _) = run(&c, cfg, b"").await;
    let text = stream_text(&deframe(&out), 1);
    assert_eq!(text, "1 yes\n65534\n65534 50\n/tmp\n", "{text}");
}

#[tokio::test]
async fn a_missing_program_is_127_with_the_error_on_stderr() {
    if !can_run() {
        return;
    }
    let c = Container::start("missing", &["sleep", "1000"]);
    let (out, inspect) = run(&c, config(&["no-such-program"]), b"").await;
    let frames = deframe(&out);
    let err = stream_text(&frames, 2);
    assert!(
        err.contains("no-such-program") && err.contains("not found"),
        "{err}"
    );
    assert_eq!(inspect.exit_code, Some(127));
}

#[tokio::test]
async fn a_tty_is_raw_with_the_requested_size_and_resizes() {
    if !can_run() {
        return;
    }
    let c = Container::start("tty", &["sleep", "1000"]);
    let mut cfg = config(&["sh", "-c", "stty size; read x; stty size"]);
    cfg.tty = true;
    cfg.attach_stdin = true;
    cfg.console_size = Some(vec![30, 100]);
    let execs = Execs::default();
    let (inst, launch) = prepare(&execs, &c, cfg);
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let task = tokio::spawn(exec::run(inst.clone(), launch, Some(Box::new(server))));
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("30 100") {
        let n = client.read(&mut buf).await.unwrap();
        assert!(n > 0, "ended early: {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    inst.resize(40, 120).unwrap();
    client.write_all(b"go\n").await.unwrap();
    client.read_to_end(&mut seen).await.unwrap();
    task.await.unwrap();
    let text = String::from_utf8_lossy(&seen);
    // Raw tty bytes: no frame headers, the terminal's CR LF.
    assert!(text.starts_with("30 100\r\n"), "{text:?}");
    assert!(text.contains("40 120\r\n"), "{text:?}");
    assert_eq!(inst.inspect().exit_code, Some(0));
}

#[tokio::test]
async fn detached_execs_run_to_their_end() {
    if !can_run() {
        return;
    }
    let c = Container::start("detach", &["sleep", "1000"]);
    let execs = Execs::default();
    let (inst, launch) = prepare(
        &execs,
        &c,
        config(&["sh", "-c", "echo bg > /tmp/bg; exit 5"]),
    );
    tokio::spawn(exec::run(inst.clone(), launch, None));
    for _ in 0..1000 {
        if inst.inspect().exit_code.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(inst.inspect().exit_code, Some(5));
    assert_eq!(
        std::fs::read_to_string(c.root().join("tmp/bg")).unwrap(),
        "bg\n"
    );
}

#[tokio::test]
async fn a_tty_exec_ends_with_its_process_even_if_a_child_keeps_the_tty() {
    if !can_run() {
        return;
    }
    let c = Container::start("ttybg", &["sleep", "1000"]);
    let mut cfg = config(&["sh", "-c", "sleep 1000 & echo started"]);
    cfg.tty = true;
    let (out, inspect) = run(&c, cfg, b"").await;
    assert!(String::from_utf8_lossy(&out).contains("started"));
    assert_eq!(inspect.exit_code, Some(0));
}

// ---- through the engine (root; gorae-runc and its monitor)

#[path = "core_support/mod.rs"]
mod core_support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_exec_checks_state_runs_and_reports() {
    use gorae_engine::types::ExecStartConfig;
    use gorae_engine::Error;
    if !can_run() {
        return;
    }
    let root = core_support::Root::new();
    let engine = root.open().await;
    let id = core_support::create(
        &engine,
        Some("ex"),
        core_support::request(&["sleep", "1000"]),
    )
    .await;
    let err = engine
        .exec_create("ex", config(&["true"]))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), format!("Container {id} is not running"));
    engine.start(&id).await.unwrap();
    assert!(matches!(
        engine.exec_create("ex", ExecConfig::default()).await,
        Err(Error::InvalidParameter(_))
    ));
    let mut events = engine.events(None, None, Default::default()).unwrap();
    let exec_id = engine
        .exec_create("ex", config(&["sh", "-c", "echo $HOSTNAME-ok; exit 7"]))
        .await
        .unwrap();
    assert_eq!(exec_id.len(), 64);
    let hijack = engine
        .exec_start(&exec_id, ExecStartConfig::default())
        .await
        .unwrap()
        .expect("an attached start hijacks");
    assert_eq!(hijack.kind, gorae_engine::engine::StreamKind::Multiplexed);
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    tokio::spawn((hijack.run)(Box::new(server)));
    let mut out = Vec::new();
    client.read_to_end(&mut out).await.unwrap();
    assert!(stream_text(&deframe(&out), 1).ends_with("-ok\n"));
    let inspect = engine.exec_inspect(&exec_id[..12]).await.unwrap();
    assert_eq!(inspect.exit_code, Some(7));
    assert_eq!(inspect.container_id, id);
    assert!(matches!(
        engine
            .exec_start(&exec_id, ExecStartConfig::default())
            .await,
        Err(Error::Conflict(_))
    ));
    let mut actions = Vec::new();
    while !actions.iter().any(|a: &String| a == "exec_die") {
        let e = events.recv().await.expect("events");
        actions.push(e.action.clone());
    }
    assert!(
        actions.iter().any(|a| a.starts_with("exec_create: sh -c")),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| a.starts_with("exec_start: sh -c")),
        "{actions:?}"
    );
    // An unknown user: the stream opens and says why; the exit code is 126, as docker's.
    let mut cfg = config(&["true"]);
    cfg.user = "ghost".into();
    let exec_id = engine.exec_create("ex", cfg).await.unwrap();
    let hijack = engine
        .exec_start(&exec_id, ExecStartConfig::default())
        .await
        .unwrap()
        .unwrap();
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    tokio::spawn((hijack.run)(Box::new(server)));
    let mut out = Vec::new();
    client.read_to_end(&mut out).await.unwrap();
    let err = stream_text(&deframe(&out), 2);
    assert!(err.contains("unable to find user ghost"), "{err}");
    assert_eq!(
        engine.exec_inspect(&exec_id).await.unwrap().exit_code,
        Some(126)
    );
    engine.pause(&id).await.unwrap();
    let err = engine
        .exec_create("ex", config(&["true"]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is paused"), "{err}");
    engine.unpause(&id).await.unwrap();
    assert!(matches!(
        engine.exec_inspect("nope").await,
        Err(Error::NotFound(_))
    ));
    root.teardown(engine).await;
}

#[tokio::test]
async fn a_privileged_exec_has_every_capability_the_daemon_holds() {
    if !can_run() {
        return;
    }
    let c = Container::start("priv", &["sleep", "1000"]);
    let (plain, _) = run(&c, config(&["grep", "CapEff", "/proc/self/status"]), b"").await;
    let mut cfg = config(&["grep", "CapEff", "/proc/self/status"]);
    cfg.privileged = true;
    let (privileged, inspect) = run(&c, cfg, b"").await;
    assert_eq!(inspect.exit_code, Some(0));
    let eff = |out: &[u8]| {
        let text = stream_text(&deframe(out), 1);
        let hex = text.trim().trim_start_matches("CapEff:").trim().to_string();
        u64::from_str_radix(&hex, 16).unwrap()
    };
    let held = gorae_engine::spec::held_capabilities().unwrap();
    assert_eq!(eff(&privileged), held);
    assert_ne!(
        eff(&plain),
        held,
        "the container's own set is the default, smaller one"
    );
}
