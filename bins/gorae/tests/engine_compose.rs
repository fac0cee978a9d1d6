//! docker-compose (Debian 12's 1.29.2, the Python v1 — the Go v2 plugin is not packaged
//! there) against `gorae daemon`: a project with a web service (busybox httpd serving a page
//! from a named volume, with a healthcheck), a client that depends on the web being healthy
//! and fetches the page by the service's name over a user network. `up -d` starts the web,
//! waits for it to be healthy, then starts the client; `ps`, `logs`, `exec -T`, `restart`
//! and `down -v` each do what they say, and after `down -v` the project's containers,
//! network and volume are gone and its networking left nothing on the machine.
//!
//! Needs root, /usr/local/bin/docker and docker-compose; skipped without them.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::engine::{run_for, show, text, Daemon};
use support::network::leftovers;

const COMPOSE: &str = "docker-compose";

/// Version 2.4: compose v1 honours `depends_on: condition: service_healthy` only in 2.x
/// files (3.x dropped it until the compose spec). Busybox's nc has no -z and its wget may
/// crash without NSS, so the healthcheck asks for the page with nc. The 2 s check interval
/// keeps the first passing check among the health log's last five while the test compares
/// it with the client's start. Stop grace periods are short because httpd and sleep as
/// pid 1 ignore SIGTERM.
const PROJECT_FILE: &str = r#"version: "2.4"
services:
  web:
    image: busybox:latest
    command:
      - sh
      - -c
      - "echo 'hello from compose web' > /www/index.html && exec httpd -f -p 80 -h /www"
    volumes:
      - site:/www
    networks:
      - front
    stop_grace_period: 2s
    healthcheck:
      test: ["CMD-SHELL", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w3 127.0.0.1 80 | grep -q hello"]
      interval: 2s
      timeout: 5s
      retries: 60
  client:
    image: busybox:latest
    depends_on:
      web:
        condition: service_healthy
    command:
      - sh
      - -c
      - "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w5 web 80 | tail -1 | sed 's/^/fetched: /'; exec sleep 3600"
    networks:
      - front
    stop_grace_period: 2s
volumes:
  site: {}
networks:
  front: {}
"#;

fn compose_installed() -> bool {
    Command::new(COMPOSE)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// docker-compose in `dir` with the project `name`, on the daemon's socket.
fn compose(d: &Daemon, dir: &Path, name: &str, args: &[&str]) -> Output {
    let mut c = Command::new(COMPOSE);
    c.current_dir(dir)
        .args(["--ansi", "never", "-p", name, "-f", "compose.yml"])
        .args(args)
        .env("DOCKER_HOST", d.host())
        .env("HOME", d.aux.path().join("home"))
        .env("DOCKER_CONFIG", d.aux.path().join("home/.docker"))
        .env("COMPOSE_HTTP_TIMEOUT", "120")
        .stdin(std::process::Stdio::null());
    for var in [
        "DOCKER_CONTEXT",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
        "COMPOSE_FILE",
    ] {
        c.env_remove(var);
    }
    run_for(&mut c)
}

/// docker-compose `args`, which must succeed; its stdout and stderr (compose reports its
/// progress on stderr).
fn compose_ok(d: &Daemon, dir: &Path, name: &str, args: &[&str]) -> String {
    let out = compose(d, dir, name, args);
    assert!(
        out.status.success(),
        "docker-compose {args:?}: {}\ndaemon log:\n{}",
        show(&out),
        d.log_tail()
    );
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// Polls `ps` (bounded, no timing assertion) until `pred` holds; the last output.
fn ps_until(d: &Daemon, dir: &Path, name: &str, pred: impl Fn(&str) -> bool) -> String {
    let mut ps = String::new();
    for _ in 0..300 {
        ps = compose_ok(d, dir, name, &["ps"]);
        if pred(&ps) {
            return ps;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("docker-compose ps never got there:\n{ps}\n{}", d.log_tail());
}

/// An RFC 3339 UTC time as (seconds part, nanoseconds padded to 9 digits): ordered as the
/// times are, whatever number of fraction digits each has.
fn time_key(t: &str) -> (String, String) {
    let t = t.trim().trim_end_matches('Z');
    let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
    (secs.to_string(), format!("{frac:0<9}"))
}

/// Whether compose's progress says `action` (Restarting, Stopping, Removing) of `container`
/// is done: compose v1 exits 0 even when a container's restart or stop fails, its line
/// then ends in "error".
fn done(progress: &str, action: &str, container: &str) -> bool {
    let start = format!("{action} {container} ");
    progress
        .lines()
        .any(|l| l.starts_with(&start) && l.trim_end().ends_with("done"))
}

fn line_of<'a>(ps: &'a str, container: &str) -> &'a str {
    ps.lines()
        .find(|l| l.starts_with(container))
        .unwrap_or_else(|| panic!("no {container} in ps:\n{ps}"))
}

/// Runs `down -v` when dropped, so a failing step leaves no project behind (the fixture's
/// drop then removes whatever is left and the root).
struct Project<'a> {
    d: &'a Daemon,
    dir: tempfile::TempDir,
    name: String,
    down: bool,
}

impl Drop for Project<'_> {
    fn drop(&mut self) {
        if !self.down {
            let _ = compose(
                self.d,
                self.dir.path(),
                &self.name,
                &["down", "-v", "-t", "1"],
            );
        }
    }
}

#[test]
fn compose_project_up_ps_logs_exec_restart_down() {
    if !compose_installed() {
        eprintln!("skipping: {COMPOSE} is not installed (apt-get install docker-compose)");
        return;
    }
    let Some(mut d) = Daemon::start() else { return };
    let dir = tempfile::Builder::new()
        .prefix("gorae-compose-")
        .tempdir_in(d.aux.path())
        .expect("project dir");
    std::fs::write(dir.path().join("compose.yml"), PROJECT_FILE).expect("compose.yml");
    let name = format!("gc{}", std::process::id());
    let mut p = Project {
        d: &d,
        dir,
        name: name.clone(),
        down: false,
    };
    let dir = p.dir.path().to_path_buf();
    let (web, client) = (format!("{name}_web_1"), format!("{name}_client_1"));

    // up: the web is created and healthy before the client is started.
    let up = compose_ok(&d, &dir, &name, &["up", "-d"]);
    let (web_at, client_at) = (
        up.find(&format!("Creating {web}")),
        up.find(&format!("Creating {client}")),
    );
    assert!(
        web_at.is_some() && client_at.is_some() && web_at < client_at,
        "{up}"
    );
    let checks = d.inspect(
        "{{range .State.Health.Log}}{{if eq .ExitCode 0}}{{.End.UTC.Format \"2006-01-02T15:04:05.000000000Z\"}}\n{{end}}{{end}}",
        &web,
    );
    let first_healthy = checks
        .lines()
        .next()
        .map(time_key)
        .unwrap_or_else(|| panic!("no passing health check of {web}: {checks:?}"));
    let client_started = time_key(&d.inspect("{{.State.StartedAt}}", &client));
    assert!(
        first_healthy <= client_started,
        "the client started ({client_started:?}) before the web was healthy ({first_healthy:?})"
    );

    // ps: both up, the web healthy.
    let ps = ps_until(&d, &dir, &name, |ps| ps.contains("(healthy)"));
    assert!(line_of(&ps, &web).contains("Up (healthy)"), "{ps}");
    assert!(line_of(&ps, &client).contains("Up"), "{ps}");

    // The client fetched the page from `web` by name over the project network.
    let logs = compose_ok(&d, &dir, &name, &["logs", "--no-color", "client"]);
    assert!(logs.contains("fetched: hello from compose web"), "{logs}");

    // exec without a tty; the page lives in the named volume.
    let page = compose_ok(
        &d,
        &dir,
        &name,
        &["exec", "-T", "web", "cat", "/www/index.html"],
    );
    assert!(page.contains("hello from compose web"), "{page}");
    let volume = format!("{name}_site");
    let mountpoint = d
        .ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", &volume])
        .trim()
        .to_string();
    let on_host = std::fs::read_to_string(Path::new(&mountpoint).join("index.html"))
        .unwrap_or_else(|e| panic!("{mountpoint}/index.html: {e}"));
    assert_eq!(on_host, "hello from compose web\n");

    let network = format!("{name}_front");
    let network_id = d
        .ok(&["network", "inspect", "-f", "{{.Id}}", &network])
        .trim()
        .to_string();
    let labels = d.ok(&["network", "inspect", "-f", "{{json .Labels}}", &network]);
    assert!(
        labels.contains(&format!("\"com.docker.compose.project\":\"{name}\"")),
        "{labels}"
    );
    let ids: Vec<String> = [&web, &client]
        .iter()
        .map(|c| d.inspect("{{.Id}}", c))
        .collect();
    let endpoints: Vec<(String, String)> = ids
        .iter()
        .map(|c| (c.clone(), network_id.clone()))
        .collect();

    // restart: both run again (new start times) and the web is healthy again.
    let started_before: Vec<String> = [&web, &client]
        .iter()
        .map(|c| d.inspect("{{.State.StartedAt}}", c))
        .collect();
    let restarted = compose_ok(&d, &dir, &name, &["restart", "-t", "1"]);
    for c in [&web, &client] {
        let ok = done(&restarted, "Restarting", c);
        assert!(ok, "{c} not restarted:\n{restarted}\n{}", d.log_tail());
    }
    for (c, before) in [&web, &client].iter().zip(&started_before) {
        assert_ne!(
            &d.inspect("{{.State.StartedAt}}", c),
            before,
            "{c} not restarted: {restarted}\n{}\n{}",
            d.inspect("{{json .State}}", c),
            d.log_tail()
        );
    }
    let ps = ps_until(&d, &dir, &name, |ps| {
        ps.contains("(healthy)")
            && ps
                .lines()
                .any(|l| l.starts_with(&client) && l.contains("Up"))
    });
    assert!(line_of(&ps, &web).contains("Up (healthy)"), "{ps}");
    let page = compose_ok(
        &d,
        &dir,
        &name,
        &["exec", "-T", "web", "cat", "/www/index.html"],
    );
    assert!(page.contains("hello from compose web"), "{page}");

    // down -v: containers, network and volume gone, nothing of the networking left.
    let down = compose_ok(&d, &dir, &name, &["down", "-v", "-t", "1"]);
    p.down = true;
    for c in [&web, &client] {
        assert!(done(&down, "Stopping", c), "{down}\n{}", d.log_tail());
        assert!(done(&down, "Removing", c), "{down}\n{}", d.log_tail());
    }
    for what in [
        format!("Removing network {network}"),
        format!("Removing volume {volume}"),
    ] {
        assert!(down.contains(&what), "no {what:?} in:\n{down}");
    }
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "", "containers left");
    let networks = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!networks.contains(&network), "{networks}");
    let volumes = d.ok(&["volume", "ls", "-q"]);
    assert!(!volumes.contains(&volume), "{volumes}");
    assert!(!Path::new(&mountpoint).exists(), "{mountpoint} left");
    let ps = compose_ok(&d, &dir, &name, &["ps", "-q"]);
    assert_eq!(ps.trim(), "", "compose still sees containers");
    drop(p);
    d.stop();
    let left = leftovers(&d, &[network_id], &endpoints);
    assert!(left.is_empty(), "left behind: {left:?}\n{}", d.log_tail());
}
