//! gorae-runc started as `docker-init` (what the engine runs as pid 1 for `--init`), here
//! outside a container and without root: it then asks to be the subreaper, so orphans still
//! come to it. Exit codes, exec failures, signal forwarding, reaping, the child's own process
//! group and an untouched environment.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// A `docker-init` symlink to this build's gorae-runc, in a directory removed on drop.
struct Init {
    dir: tempfile::TempDir,
}

impl Init {
    fn new() -> Init {
        let dir = tempfile::Builder::new()
            .prefix("gorae-docker-init-")
            .tempdir()
            .expect("tempdir");
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_gorae-runc"),
            dir.path().join("docker-init"),
        )
        .expect("symlink");
        Init { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("docker-init")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.path());
        cmd.args(args).current_dir(self.dir.path());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run docker-init")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn exit_codes_pass_through() {
    let init = Init::new();
    let out = init.run(&["--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    // `--` is optional, as with tini.
    let out = init.run(&["sh", "-c", "echo hi"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "hi\n".into())
    );
    let out = init.run(&["--", "sh", "-c", "kill -KILL $$"]);
    assert_eq!(out.status.code(), Some(128 + 9));
}

#[test]
fn exec_failures_are_127_and_126() {
    let init = Init::new();
    let out = init.run(&["--", "gorae-no-such-command"]);
    assert_eq!(out.status.code(), Some(127));
    let err = text(&out.stderr);
    assert!(err.contains("gorae-no-such-command"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    std::fs::write(init.dir.path().join("plain"), "not a program\n").expect("write");
    let out = init.run(&["--", "./plain"]);
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
    let out = init.run(&["--"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("usage"));
}

#[test]
fn orphans_are_reaped_and_the_child_has_its_own_group() {
    let init = Init::new();
    let script = r#"
        [ "$(cut -d' ' -f5 /proc/$$/stat)" = "$$" ] && echo own-group
        mkfifo go
        (cat go > /dev/null & echo $! > orphan)
        p=$(cat orphan)
        [ "$(cut -d' ' -f4 /proc/$p/stat)" = "$PPID" ] && echo adopted
        echo go > go
        i=0
        while [ -e /proc/$p ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
        [ -e /proc/$p ] && echo "left: $(cut -d' ' -f3 /proc/$p/stat)" || echo reaped
        echo "RUST_LIB_BACKTRACE=${RUST_LIB_BACKTRACE-unset}"
    "#;
    let out = init.run(&["--", "sh", "-c", script]);
    assert_eq!(
        text(&out.stdout),
        "own-group\nadopted\nreaped\nRUST_LIB_BACKTRACE=unset\n",
        "{}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn signals_are_forwarded_to_the_child() {
    let init = Init::new();
    // Bounded: a broken forwarder fails the test instead of hanging it.
    let script = "trap 'echo got HUP' HUP; trap 'echo got TERM; exit 3' TERM; echo ready; \
                  i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; exit 99";
    let mut child = init
        .command(&["--", "sh", "-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = || lines.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(next(), "ready");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("HUP");
    assert_eq!(next(), "got HUP");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("TERM");
    assert_eq!(next(), "got TERM");
    assert_eq!(child.wait().expect("wait").code(), Some(3));
}
