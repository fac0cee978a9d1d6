//! gorae's own CLI against `gorae daemon` (support/engine.rs): the issue's commands with
//! docker's flags and output — run -d with options, ps, inspect, logs -f, exec (and -it),
//! stats, top, cp, stop/start/kill/wait, run --rm and -it, events, system df, image
//! commands through the daemon — and clear errors when the daemon is not there.
//!
//! Needs root, /usr/local/bin/docker (the fixture checks the daemon with it too) and script
//! (util-linux); skipped without root or the docker CLI.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::engine::{gorae_bin, run_for, show, text, wait_bounded, Daemon, BUSYBOX, LIMIT};

const TICKER: &str = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done";

fn is_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn ticks(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| l.trim().strip_prefix("tick "))
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// gorae `args` against the daemon, which must fail; its stderr.
fn gorae_fails(d: &Daemon, args: &[&str]) -> String {
    let out = d.gorae(args);
    assert!(
        !out.status.success(),
        "gorae {args:?} should have failed: {}",
        show(&out)
    );
    text(&out.stderr)
}

/// `script -qec COMMAND /dev/null` with `input` on script's stdin: COMMAND gets a pty.
fn under_script(command: &str, input: &[u8]) -> Output {
    let mut c = Command::new("script");
    c.args(["-qec", command, "/dev/null"]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("script");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = wait_bounded(child, LIMIT, command);
    let _ = writer.join();
    out
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[test]
fn the_gorae_cli_runs_the_issues_session() {
    let Some(d) = Daemon::start() else { return };
    let gorae = gorae_bin().display().to_string();
    let host = d.host();

    let version = d.gorae_ok(&["version"]);
    let server = version
        .split_once("Server:")
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no Server section:\n{version}"));
    assert!(server.trim_start().starts_with("gorae"), "{version}");
    assert!(
        server
            .lines()
            .any(|l| l.contains("API version:") && l.contains("1.51")),
        "{version}"
    );
    let info = d.gorae_ok(&["info"]);
    assert!(
        info.contains("Containers: 0") && info.contains("Images: 1"),
        "{info}"
    );

    // run -d with the issue's flags
    let shared = d.aux.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("f"), "hostfile\n").unwrap();
    let bind = format!("{}:/ctr", shared.display());
    let id = d.gorae_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "none",
        "-e",
        "K=V",
        "-v",
        &bind,
        "--memory",
        "256m",
        "--cpus",
        "0.5",
        "--restart",
        "on-failure",
        BUSYBOX,
        "sh",
        "-c",
        TICKER,
    ]);
    let id = id.trim().to_string();
    assert!(is_id(&id), "run -d printed {id:?}");

    let ps = d.gorae_ok(&["ps"]);
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    assert!(
        ps.lines()
            .any(|l| l.starts_with(&id[..12]) && l.ends_with("web")),
        "{ps}"
    );
    let ps = d.gorae_ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("web Up"), "{ps}");
    let ps = d.gorae_ok(&["ps", "--format", "json"]);
    let row: serde_json::Value = serde_json::from_str(ps.trim()).expect("ps --format json");
    assert_eq!(row["Names"], "web", "{ps}");
    assert_eq!(row["ID"], &id[..12], "{ps}");
    assert_eq!(
        d.gorae_ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}}",
            "web",
        ])
        .trim(),
        "268435456 500000000 on-failure"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&d.gorae_ok(&["inspect", "web"])).expect("inspect JSON");
    assert_eq!(inspect[0]["Id"], id.as_str());
    assert!(
        inspect[0]["Config"]["Env"]
            .as_array()
            .is_some_and(|e| e.iter().any(|v| v == "K=V")),
        "{inspect}"
    );

    // exec, and exec -it under a pty
    assert_eq!(
        d.gorae_ok(&["exec", "web", "sh", "-c", "echo $K; cat /ctr/f"]),
        "V\nhostfile\n"
    );
    let out = d.gorae(&["exec", "web", "sh", "-c", "echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert_eq!(text(&out.stderr), "err\n");
    let out = under_script(&format!("{gorae} -H {host} exec -it web tty"), b"");
    assert!(text(&out.stdout).contains("/dev/pts/"), "{}", show(&out));

    // logs -f goes on
    wait_for("3 ticks", 30, || {
        (ticks(&d.gorae_ok(&["logs", "web"])).len() >= 3).then_some(())
    });
    let before = ticks(&d.gorae_ok(&["logs", "web"])).len();
    let mut follow = d.gorae_cmd(&["logs", "-f", "web"]);
    follow.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = follow.spawn().expect("gorae logs -f");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while seen.len() < before + 5 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen.extend(ticks(&l)),
            Err(e) => panic!("gorae logs -f: {e:?} after {seen:?}"),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    for w in seen.windows(2) {
        assert_eq!(w[1], w[0] + 1, "logs -f: {seen:?}");
    }

    // stats, top, cp
    let stats = d.gorae_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.MemUsage}}",
        "web",
    ]);
    assert!(
        stats.starts_with("web|") && stats.trim().ends_with("/ 256MiB"),
        "{stats}"
    );
    let top = d.gorae_ok(&["top", "web"]);
    let header = top.lines().next().unwrap_or_default();
    assert!(header.contains("PID") && header.contains("CMD"), "{top}");
    assert!(top.contains("while true"), "{top}");
    let to = d.aux.path().join("to.txt");
    std::fs::write(&to, "copied in\n").unwrap();
    d.gorae_ok(&["cp", to.to_str().unwrap(), "web:/tmp/to.txt"]);
    assert_eq!(
        d.gorae_ok(&["exec", "web", "cat", "/tmp/to.txt"]),
        "copied in\n"
    );
    let back = d.aux.path().join("back.txt");
    d.gorae_ok(&["cp", "web:/tmp/to.txt", back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(&back).unwrap_or_default(),
        "copied in\n"
    );

    // stop, start, kill, wait
    assert_eq!(d.gorae_ok(&["stop", "-t", "1", "web"]), "web\n");
    assert_eq!(d.inspect("{{.State.Status}}", "web"), "exited");
    assert_eq!(d.gorae_ok(&["start", "web"]), "web\n");
    assert_eq!(d.inspect("{{.State.Running}}", "web"), "true");
    assert_eq!(d.gorae_ok(&["kill", "web"]), "web\n");
    assert_eq!(d.gorae_ok(&["wait", "web"]), "137\n");
    assert_eq!(d.gorae_ok(&["rm", "-f", "web"]), "web\n");
    assert_eq!(d.gorae_ok(&["ps", "-aq"]), "");

    // run in the foreground, --rm, -it
    let since = now_secs().saturating_sub(1).to_string();
    let out = d.gorae(&[
        "run",
        "--name",
        "seven",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        "echo fg; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", show(&out));
    assert_eq!(text(&out.stdout), "fg\n");
    assert_eq!(d.gorae_ok(&["wait", "seven"]), "7\n");
    assert_eq!(
        d.gorae_ok(&["run", "--rm", "--network", "none", BUSYBOX, "echo", "bye"]),
        "bye\n"
    );
    let out = under_script(
        &format!("{gorae} -H {host} run -it --rm --network none {BUSYBOX} tty"),
        b"",
    );
    assert!(text(&out.stdout).contains("/dev/pts/0"), "{}", show(&out));
    let out = under_script(
        &format!("{gorae} -H {host} run -it --rm --network none {BUSYBOX} sh"),
        b"echo typed-$((6*7))\nexit 0\n",
    );
    assert!(text(&out.stdout).contains("typed-42"), "{}", show(&out));
    assert_eq!(
        d.gorae_ok(&["ps", "-a", "--format", "{{.Names}}"]),
        "seven\n"
    );
    d.gorae_ok(&["rm", "seven"]);
    let until = (now_secs() + 1).to_string();
    let events = d.gorae_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "container=seven",
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = events.lines().collect();
    let mut it = actions.iter();
    for want in ["create", "start", "die", "destroy"] {
        assert!(it.any(|a| *a == want), "{want} not in order in {actions:?}");
    }

    // system df and the image commands, through the daemon
    let df = d.gorae_ok(&["system", "df"]);
    for row in ["TYPE", "Images", "Containers"] {
        assert!(df.lines().any(|l| l.starts_with(row)), "{df}");
    }
    d.gorae_ok(&["tag", BUSYBOX, "cli/tagged:1"]);
    let listed = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        listed.contains("cli/tagged:1"),
        "the daemon has the tag: {listed}"
    );
    let images = d.gorae_ok(&["images"]);
    assert!(
        images.lines().any(|l| l.starts_with("cli/tagged ")),
        "{images}"
    );
    let untagged = d.gorae_ok(&["rmi", "cli/tagged:1"]);
    assert!(untagged.contains("Untagged: cli/tagged:1"), "{untagged}");
    d.shutdown_clean();
}

#[test]
fn the_gorae_cli_says_clearly_what_is_wrong() {
    let Some(d) = Daemon::start() else { return };
    for args in [
        &["start", "nosuch"][..],
        &["logs", "nosuch"],
        &["rm", "nosuch"],
        &["container", "inspect", "nosuch"],
    ] {
        let err = gorae_fails(&d, args);
        assert!(
            err.contains("No such container: nosuch"),
            "gorae {args:?}: {err}"
        );
    }
    // plain inspect looks for any object, as docker's does
    let err = gorae_fails(&d, &["inspect", "nosuch"]);
    assert!(err.contains("No such object: nosuch"), "{err}");
    let err = gorae_fails(
        &d,
        &["run", "--network", "none", "--pull", "never", "nosuch:1"],
    );
    assert!(err.contains("No such image: nosuch:1"), "{err}");
    d.gorae_ok(&[
        "create",
        "--name",
        "dup",
        "--network",
        "none",
        BUSYBOX,
        "true",
    ]);
    let err = gorae_fails(
        &d,
        &["create", "--name", "dup", "--network", "none", BUSYBOX],
    );
    assert!(err.contains("is already in use by container"), "{err}");

    // GORAE_HOST instead of -H
    let out = run_for(
        Command::new(gorae_bin())
            .args(["ps", "-a", "--format", "{{.Names}}"])
            .env("GORAE_HOST", d.host())
            .env_remove("GORAE_ROOT")
            .stdin(Stdio::null()),
    );
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(text(&out.stdout), "dup\n");

    // no daemon there
    let missing = d.aux.path().join("nobody-here.sock");
    let out = run_for(
        Command::new(gorae_bin())
            .arg("-H")
            .arg(format!("unix://{}", missing.display()))
            .arg("ps")
            .env_remove("GORAE_ROOT")
            .env_remove("GORAE_HOST")
            .stdin(Stdio::null()),
    );
    assert!(!out.status.success(), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains(&missing.display().to_string()) && err.contains("daemon"),
        "the error names the socket and the daemon: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    d.shutdown_clean();
}
