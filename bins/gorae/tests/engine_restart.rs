//! Containers outlive the daemon: 20 containers printing numbered ticks and one that exits
//! 42 after a second; `kill -9` of `gorae daemon`; while it is down the monitors keep
//! logging and the exit is recorded; a new daemon on the same root lists the 20 running
//! (same pids), their logs consecutive with nothing lost, the exit code 42 reported by ps,
//! inspect and wait; then they stop and are removed cleanly. And the exits of the gap are
//! handled as docker would have: restart policies apply, --rm removes, unless-stopped
//! containers stopped by hand stay stopped.
//!
//! Needs root and /usr/local/bin/docker; skipped without them.

mod support;

use std::time::{Duration, Instant};

use support::engine::{Daemon, BUSYBOX};

const N: usize = 20;
const TICKER: &str = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done";

fn ticks(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| l.trim().strip_prefix("tick "))
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

/// The ticks in a container's json-file log, read from disk (no daemon needed).
fn ticks_on_disk(d: &Daemon, id: &str) -> Vec<u64> {
    let path = d.root.join(format!("containers/{id}/{id}-json.log"));
    let raw = std::fs::read_to_string(&path).unwrap_or_default();
    let text: String = raw
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["log"].as_str().map(String::from))
        .collect();
    ticks(&text)
}

fn assert_consecutive_from_0(t: &[u64], what: &str) {
    assert_eq!(t.first(), Some(&0), "{what}: {t:?}");
    for w in t.windows(2) {
        assert_eq!(w[1], w[0] + 1, "{what}: a tick lost or repeated: {t:?}");
    }
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

fn vm_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn twenty_containers_and_an_exit_survive_kill_9_of_the_daemon() {
    let Some(mut d) = Daemon::start() else { return };
    let names: Vec<String> = (0..N).map(|i| format!("t{i:02}")).collect();
    let mut ids = Vec::new();
    for name in &names {
        let id = d.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            BUSYBOX,
            "sh",
            "-c",
            TICKER,
        ]);
        ids.push(id.trim().to_string());
    }
    let pids: Vec<String> = names
        .iter()
        .map(|n| d.inspect("{{.State.Pid}}", n))
        .collect();
    for name in &names {
        wait_for(&format!("a tick from {name}"), 30, || {
            (!ticks(&d.ok(&["logs", name])).is_empty()).then_some(())
        });
    }
    let exiter = d.ok(&[
        "run",
        "-d",
        "--name",
        "exiter",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        "sleep 1; exit 42",
    ]);
    let exiter = exiter.trim().to_string();
    let before: Vec<usize> = ids.iter().map(|id| ticks_on_disk(&d, id).len()).collect();

    d.kill9();
    std::thread::sleep(Duration::from_secs(2));

    // While the daemon is down: the monitors run, log, and record the exit.
    let monitors = d.live_monitors();
    let rss: Vec<u64> = monitors.iter().filter_map(|p| vm_rss_kb(*p)).collect();
    eprintln!(
        "live monitors while the daemon is down: {}, VmRSS kB: {rss:?}",
        monitors.len()
    );
    assert_eq!(monitors.len(), N, "one live monitor per running container");
    for (i, id) in ids.iter().enumerate() {
        let now = ticks_on_disk(&d, id);
        assert!(
            now.len() > before[i],
            "{}: no ticks logged while the daemon was down ({} then {})",
            names[i],
            before[i],
            now.len()
        );
        assert_consecutive_from_0(&now, &names[i]);
    }
    let exit_json = d.root.join(format!("run/m/{}/exit.json", &exiter[..12]));
    let recorded = wait_for("the exiter's exit.json", 30, || {
        let raw = std::fs::read_to_string(&exit_json).ok()?;
        serde_json::from_str::<serde_json::Value>(&raw).ok()
    });
    assert_eq!(recorded["exit_code"], 42, "{recorded}");

    d.start_again();

    let ps = d.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    for name in &names {
        assert!(
            ps.lines().any(|l| l.starts_with(&format!("{name} Up"))),
            "{name} not listed running after the restart:\n{ps}"
        );
    }
    assert!(!ps.contains("exiter"), "{ps}");
    for (i, name) in names.iter().enumerate() {
        assert_eq!(d.inspect("{{.State.Running}}", name), "true", "{name}");
        assert_eq!(
            d.inspect("{{.State.Pid}}", name),
            pids[i],
            "{name}: the same process"
        );
        let logged = ticks(&d.ok(&["logs", name]));
        assert_consecutive_from_0(&logged, name);
        assert!(logged.len() > before[i], "{name}: {logged:?}");
    }
    let all = d.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        all.lines().any(|l| l.starts_with("exiter Exited (42)")),
        "{all}"
    );
    assert_eq!(d.inspect("{{.State.Status}}", "exiter"), "exited");
    assert_eq!(d.inspect("{{.State.ExitCode}}", "exiter"), "42");
    assert_eq!(d.ok(&["wait", "exiter"]).trim(), "42");

    // The logs keep coming through the new daemon, and it runs new containers.
    let at_restart = ticks(&d.ok(&["logs", "t00"])).len();
    wait_for("new ticks from t00 after the restart", 30, || {
        (ticks(&d.ok(&["logs", "t00"])).len() > at_restart).then_some(())
    });
    assert_eq!(
        d.ok(&["run", "--rm", "--network", "none", BUSYBOX, "echo", "after"]),
        "after\n"
    );

    let mut stop = vec!["stop", "-t", "1"];
    stop.extend(names.iter().map(String::as_str));
    let stopped = d.ok(&stop);
    assert_eq!(stopped.lines().collect::<Vec<_>>(), names, "{stopped}");
    for name in &names {
        assert_eq!(d.inspect("{{.State.Status}}", name), "exited", "{name}");
    }
    let mut rm = vec!["rm"];
    rm.extend(names.iter().map(String::as_str));
    rm.push("exiter");
    d.ok(&rm);
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    d.shutdown_clean();
}

/// `docker run -d --name NAME --network none FLAGS... busybox sh -c SCRIPT`
fn run_d(d: &Daemon, name: &str, flags: &[&str], script: &str) -> String {
    let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[BUSYBOX, "sh", "-c", script]);
    d.ok(&args).trim().to_string()
}

#[test]
fn exits_while_the_daemon_is_down_follow_their_policies_when_it_is_back() {
    let Some(mut d) = Daemon::start() else { return };
    run_d(&d, "held", &["--restart", "unless-stopped"], "sleep 1000");
    d.ok(&["stop", "-t", "1", "held"]);
    run_d(&d, "retry", &["--restart", "on-failure"], "sleep 1; exit 3");
    run_d(&d, "again", &["--restart", "always"], "sleep 1; exit 0");
    run_d(&d, "once", &["--rm"], "sleep 1; exit 5");
    run_d(&d, "plain", &[], "sleep 1; exit 6");

    d.kill9();
    std::thread::sleep(Duration::from_secs(2));
    d.start_again();

    wait_for("retry restarted after its exit 3", 60, || {
        let n: u32 = d.inspect("{{.RestartCount}}", "retry").parse().ok()?;
        (n >= 1).then_some(())
    });
    wait_for("again restarted after its exit 0", 60, || {
        let n: u32 = d.inspect("{{.RestartCount}}", "again").parse().ok()?;
        (n >= 1).then_some(())
    });
    wait_for("the --rm container removed", 60, || {
        let out = d.docker(&["container", "inspect", "once"]);
        (!out.status.success()).then_some(())
    });
    let gone = d.fails(&["container", "inspect", "once"]);
    assert!(gone.contains("No such container: once"), "{gone}");
    assert_eq!(
        d.inspect("{{.State.Status}} {{.State.ExitCode}}", "plain"),
        "exited 6"
    );
    assert_eq!(d.ok(&["wait", "plain"]).trim(), "6");
    assert_eq!(
        d.inspect("{{.State.Status}}", "held"),
        "exited",
        "unless-stopped, stopped by hand: not started with the daemon"
    );
    d.shutdown_clean();
}
