//! gorae-runc as dockerd's runtime (`dockerd --add-runtime gorae=gorae-runc`, then
//! `docker run --runtime gorae`): run --rm, exit codes, run -d + exec, pause/unpause, stop, rm,
//! resource limits, non-root users and --cap-drop ALL (create/start through containerd's shim).
//!
//! Each test starts its own containerd (own config, root, state and socket) and its own dockerd
//! on that containerd (own socket, data root, exec root, pidfile, cgroup parent, no bridge, no
//! iptables), imports a busybox image made from the test's rootfs with `docker import`, and
//! stops everything in Drop: containers removed, daemons and shims killed, cgroups, mounts and
//! directories removed. The docker CLI is whatever `docker` is first in PATH (any CLI that
//! speaks API 1.41). Needs root, dockerd, containerd and docker (scripts/install-deps.sh);
//! otherwise each test prints why it is skipped. The tests take turns: one daemon at a time.
//!
//! The `direct_*` tests drive gorae-runc alone through the same create/start sequence with the
//! parts of dockerd's config.json that exposed bugs, so they need neither daemon.

#[path = "support/dropin.rs"]
mod dropin;
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dropin::{run_bounded, Ran};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(60);
const IMAGE: &str = "gorae-test/busybox:1";

/// One daemon at a time: each test starts its own pair.
static TURN: Mutex<()> = Mutex::new(());

fn can_run() -> bool {
    if !support::can_run() {
        return false;
    }
    for tool in [
        "dockerd",
        "containerd",
        "containerd-shim-runc-v2",
        "docker",
        "script",
    ] {
        if dropin::in_path(tool).is_none() {
            eprintln!(
                "skipped: docker tests need {tool} (scripts/install-deps.sh installs docker.io)"
            );
            return false;
        }
    }
    true
}

struct Docker {
    dir: tempfile::TempDir,
    cgroup_parent: String,
    containerd: Option<std::process::Child>,
    dockerd: Option<std::process::Child>,
}

impl Docker {
    /// Starts containerd and dockerd, waits until dockerd answers, imports the test image.
    fn start() -> Docker {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = tempfile::Builder::new()
            .prefix("gorae-test-docker-")
            .tempdir()
            .expect("tempdir");
        let cgroup_parent = format!(
            "/gorae-test-docker-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut d = Docker {
            dir,
            cgroup_parent,
            containerd: None,
            dockerd: None,
        };
        let p = d.dir.path().to_path_buf();
        let config = format!(
            r#"version = 2
root = "{p}/containerd/root"
state = "{p}/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{p}/containerd.sock"
[ttrpc]
  address = ""
[debug]
  address = ""
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = "{p}/containerd/opt"
"#,
            p = p.display()
        );
        std::fs::write(p.join("containerd.toml"), config).unwrap();
        std::fs::write(p.join("daemon.json"), "{}").unwrap();
        d.containerd = Some(
            d.spawn_logged(
                Command::new("containerd")
                    .args(["--config", &format!("{}/containerd.toml", p.display())]),
                "containerd.log",
            ),
        );
        let sock = p.join("containerd.sock");
        assert!(
            dropin::wait_until(Duration::from_secs(20), || sock.exists()),
            "containerd did not start: {}",
            d.log("containerd.log")
        );
        let pd = p.display();
        d.dockerd = Some(d.spawn_logged(
            Command::new("dockerd").args([
                format!("--config-file={pd}/daemon.json"),
                format!("--data-root={pd}/data"),
                format!("--exec-root={pd}/exec"),
                format!("--pidfile={pd}/dockerd.pid"),
                format!("--host=unix://{pd}/docker.sock"),
                format!("--containerd={pd}/containerd.sock"),
                format!("--cgroup-parent={}", d.cgroup_parent),
                format!("--add-runtime=gorae={}", dropin::gorae_runc()),
                "--iptables=false".into(),
                "--ip6tables=false".into(),
                "--ip-forward=false".into(),
                "--ip-masq=false".into(),
                "--bridge=none".into(),
                "--storage-driver=vfs".into(),
            ]),
            "dockerd.log",
        ));
        let up = dropin::wait_until(Duration::from_secs(30), || {
            let exited = d
                .dockerd
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            exited || d.docker(&["version"]).ok()
        });
        let exited = d
            .dockerd
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
        assert!(!exited, "dockerd exited: {}", d.log("dockerd.log"));
        assert!(up, "dockerd did not start: {}", d.log("dockerd.log"));
        d.import_image();
        d
    }

    fn spawn_logged(&self, cmd: &mut Command, log: &str) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        let file = std::fs::File::create(self.dir.path().join(log)).unwrap();
        cmd.stdin(std::process::Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"))
    }

    fn log(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    fn host(&self) -> String {
        format!("unix://{}/docker.sock", self.dir.path().display())
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker");
        cmd.arg("--host").arg(self.host()).args(args);
        // No credential helpers or contexts of the machine's user.
        cmd.env("DOCKER_CONFIG", self.dir.path().join("cli"));
        cmd
    }

    fn docker(&self, args: &[&str]) -> Ran {
        run_bounded(self.command(args), self.dir.path(), LIMIT)
    }

    fn ok(&self, args: &[&str]) -> String {
        let r = self.docker(args);
        assert!(
            r.ok(),
            "docker {args:?} failed: {r:?}\ndockerd log:\n{}",
            self.log("dockerd.log")
        );
        r.stdout
    }

    /// `tar -C rootfs -c . | docker import - IMAGE`
    fn import_image(&self) {
        let rootfs = self.dir.path().join("rootfs");
        support::make_rootfs(&rootfs);
        let tar = self.dir.path().join("rootfs.tar");
        let r = run_bounded(
            {
                let mut c = Command::new("tar");
                c.arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg(".");
                c
            },
            self.dir.path(),
            LIMIT,
        );
        assert!(r.ok(), "tar: {r:?}");
        let r = run_bounded(
            self.command(&["import", tar.to_str().unwrap(), IMAGE]),
            self.dir.path(),
            LIMIT,
        );
        assert!(r.ok(), "docker import: {r:?}");
    }

    /// `docker run --runtime gorae --network none extra... IMAGE cmd...`
    fn run(&self, extra: &[&str], cmd: &[&str]) -> Ran {
        let mut args = vec!["run", "--runtime", "gorae", "--network", "none"];
        args.extend_from_slice(extra);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        self.docker(&args)
    }

    fn shell_line(&self, args: &[&str]) -> String {
        let host = self.host();
        let mut words = vec!["docker", "--host", &host];
        words.extend_from_slice(args);
        words
            .iter()
            .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn on_pty(&self, args: &[&str]) -> Ran {
        let mut cmd = dropin::under_pty(&self.shell_line(args));
        cmd.env("DOCKER_CONFIG", self.dir.path().join("cli"));
        run_bounded(cmd, self.dir.path(), LIMIT)
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "--format", format, name])
            .trim()
            .to_string()
    }

    fn stop_daemon(child: &mut Option<std::process::Child>, grace: Duration) {
        let Some(mut child) = child.take() else {
            return;
        };
        let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        if self.dockerd.is_some() {
            let ids = self.docker(&["ps", "-aq"]).stdout;
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "--force"];
                args.extend(ids);
                let _ = self.docker(&args);
            }
        }
        Self::stop_daemon(&mut self.dockerd, Duration::from_secs(10));
        Self::stop_daemon(&mut self.containerd, Duration::from_secs(5));
        // containerd-shim-runc-v2 processes (they are in sessions of their own) carry our
        // containerd's socket path, under our dir, in their command lines.
        let needle = self.dir.path().display().to_string();
        dropin::kill_pids(&dropin::pids_with_cmdline(&needle));
        let left = dropin::remove_cgroup_tree(&self.cgroup_parent);
        dropin::unmount_under(self.dir.path());
        if !left.is_empty() && !std::thread::panicking() {
            panic!("cgroups left behind: {left:?}");
        }
    }
}

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn docker_run_rm_echo_exit_code_and_limits() {
    if !can_run() {
        return;
    }
    let _turn = turn();
    let d = Docker::start();
    let r = d.run(&["--rm"], &["echo", "hi"]);
    assert!(r.ok(), "{r:?}\n{}", d.log("dockerd.log"));
    assert_eq!(r.stdout, "hi\n");
    let r = d.run(&["--rm"], &["sh", "-c", "exit 3"]);
    assert_eq!(r.code, 3, "{r:?}");
    let r = d.run(
        &["--rm", "--memory=64m", "--pids-limit=20"],
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
             cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
        ],
    );
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.stdout, "67108864\n20\n");
    // -t through the shim's console socket.
    let r = d.on_pty(&[
        "run",
        "--runtime",
        "gorae",
        "--network",
        "none",
        "--rm",
        "-it",
        IMAGE,
        "sh",
        "-c",
        "tty; echo term-ok; sleep 0.5",
    ]);
    assert!(r.ok(), "{r:?}");
    assert!(
        r.stdout.contains("/dev/pts/0") && r.stdout.contains("term-ok"),
        "{r:?}"
    );
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "", "--rm left containers");
}

#[test]
fn docker_run_as_non_root_user_and_cap_drop_all() {
    if !can_run() {
        return;
    }
    let _turn = turn();
    let d = Docker::start();
    // dockerd gives a non-root user only a bounding set; the init opens exec.fifo after
    // becoming that user.
    let r = d.run(&["--rm", "--user=1000:1000"], &["id"]);
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.stdout, "uid=1000 gid=1000 groups=1000\n");
    // --cap-drop ALL sends "capabilities": {}: root must end up with nothing.
    let r = d.run(
        &["--rm", "--cap-drop=ALL"],
        &["grep", "-E", "^Cap(Prm|Eff|Bnd)", "/proc/self/status"],
    );
    assert!(r.ok(), "{r:?}");
    assert_eq!(
        r.stdout,
        "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\n"
    );
}

#[test]
fn docker_detached_exec_pause_stop_rm() {
    if !can_run() {
        return;
    }
    let _turn = turn();
    let d = Docker::start();
    let trap = "trap 'echo got-term; exit 0' TERM; while :; do sleep 0.1; done";
    let r = d.run(&["-d", "--name=c1"], &["sh", "-c", trap]);
    assert!(r.ok(), "{r:?}\n{}", d.log("dockerd.log"));
    assert_eq!(d.inspect("c1", "{{.State.Status}}"), "running");

    let out = d.ok(&["exec", "c1", "sh", "-c", "echo in-exec; ps -o pid,args"]);
    assert!(out.contains("in-exec") && out.contains("trap"), "{out}");
    let out = d.ok(&[
        "exec",
        "--user=1000:1000",
        "--workdir=/tmp",
        "c1",
        "sh",
        "-c",
        "id; pwd",
    ]);
    assert_eq!(out, "uid=1000 gid=1000 groups=1000\n/tmp\n");
    let r = d.on_pty(&[
        "exec",
        "-it",
        "c1",
        "sh",
        "-c",
        "tty; echo exec-term-ok; sleep 0.5",
    ]);
    assert!(r.ok(), "{r:?}");
    assert!(
        r.stdout.contains("/dev/pts/") && r.stdout.contains("exec-term-ok"),
        "{r:?}"
    );

    // docker update goes through `runc update --resources -`.
    d.ok(&[
        "update",
        "--memory=96m",
        "--memory-swap=-1",
        "--pids-limit=50",
        "c1",
    ]);
    let limits = d.ok(&[
        "exec",
        "c1",
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/pids/pids.max",
    ]);
    assert_eq!(limits, format!("{}\n50\n", 96 << 20), "{limits}");

    d.ok(&["pause", "c1"]);
    assert_eq!(d.inspect("c1", "{{.State.Status}}"), "paused");
    d.ok(&["unpause", "c1"]);
    assert_eq!(d.inspect("c1", "{{.State.Status}}"), "running");

    let started = Instant::now();
    d.ok(&["stop", "--time=20", "c1"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stop waited for the timeout: SIGTERM was not delivered"
    );
    assert_eq!(d.inspect("c1", "{{.State.Status}}"), "exited");
    assert_eq!(d.inspect("c1", "{{.State.ExitCode}}"), "0");
    assert!(d.ok(&["logs", "c1"]).contains("got-term"));

    let r = d.run(&["-d", "--name=c2"], &["sleep", "1000"]);
    assert!(r.ok(), "{r:?}");
    d.ok(&["stop", "--time=1", "c2"]);
    assert_eq!(d.inspect("c2", "{{.State.ExitCode}}"), "137");

    d.ok(&["rm", "c1", "c2"]);
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    // The runtime's state is gone with the containers.
    let state = d.dir.path().join("exec/runtime-gorae/moby");
    let left: Vec<PathBuf> = std::fs::read_dir(&state)
        .map(|e| e.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "runtime state left: {left:?}");
}

/// dockerd's create/start for `docker run -u 1000:1000`: only a bounding set, and a seccomp
/// profile without no_new_privs. The init must still open exec.fifo after setuid.
#[test]
fn direct_create_start_as_non_root_user_with_bounding_set_only() {
    if !support::can_run() {
        return;
    }
    let env = support::Env::new("dropin-user");
    env.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [1000]});
        c["process"]["capabilities"] = json!({"bounding": ["CAP_CHOWN", "CAP_KILL"]});
        c["process"]["noNewPrivileges"] = json!(false);
        c["process"]["args"] = json!(["sh", "-c", "id > /tmp/id; sleep 30"]);
        c["root"]["readonly"] = json!(false);
    });
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        env.rootfs().join("tmp"),
        std::fs::Permissions::from_mode(0o1777),
    )
    .unwrap();
    let out = env.create();
    assert!(out.status.success(), "create: {}", support::stderr(&out));
    let out = env.runc(&["start", &env.id]);
    assert!(out.status.success(), "start: {}", support::stderr(&out));
    let id_file = env.rootfs().join("tmp/id");
    assert!(
        dropin::wait_until(Duration::from_secs(10), || std::fs::read_to_string(
            &id_file
        )
        .is_ok_and(|s| !s.is_empty())),
        "the program never ran"
    );
    assert_eq!(
        std::fs::read_to_string(&id_file).unwrap(),
        "uid=1000 gid=1000 groups=1000\n"
    );
    let out = env.runc(&["delete", "--force", &env.id]);
    assert!(out.status.success(), "delete: {}", support::stderr(&out));
    env.assert_clean();
}

/// `docker run --cap-drop ALL`: "capabilities": {} leaves root with no capability at all,
/// the bounding set included (otherwise execve gives them all back).
#[test]
fn direct_empty_capabilities_object_drops_everything() {
    if !support::can_run() {
        return;
    }
    let env = support::Env::new("dropin-caps");
    env.edit(|c| {
        c["process"]["user"] = json!({"uid": 0, "gid": 0});
        c["process"]["capabilities"] = json!({});
        c["process"]["noNewPrivileges"] = json!(false);
        c["process"]["args"] = json!(["grep", "-E", "^Cap(Prm|Eff|Bnd)", "/proc/self/status"]);
    });
    let out = env.run_ok();
    assert_eq!(
        out,
        "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\n"
    );
    env.assert_clean();
}
