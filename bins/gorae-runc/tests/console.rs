//! terminal: true — the pty master handed over --console-socket (SCM_RIGHTS), or proxied by
//! `run` in the foreground. Needs root.

mod support;

use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
use serde_json::json;
use support::{can_run, stderr, Env};

fn receive_fd(listener: &UnixListener) -> OwnedFd {
    let (stream, _) = listener.accept().unwrap();
    let mut buf = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<UnixAddr>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the descriptor was just received and is owned by nobody else.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no descriptor received");
}

#[test]
fn the_console_master_is_sent_over_the_console_socket() {
    if !can_run() {
        return;
    }
    let env = Env::new("console");
    env.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 33, "width": 111});
        c["process"]["args"] = json!(["sh", "-c", "tty; stty size; ls -l /dev/console | wc -l"]);
    });
    let socket = env.dir.path().join("console.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let receiver = std::thread::spawn(move || receive_fd(&listener));
    let out = env.runc(&[
        "create",
        "--bundle",
        env.bundle().to_str().unwrap(),
        "--console-socket",
        socket.to_str().unwrap(),
        &env.id,
    ]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    let master = receiver.join().unwrap();
    assert!(env.runc(&["start", &env.id]).status.success());
    let mut file = std::fs::File::from(master);
    let mut text = String::new();
    let mut buf = [0u8; 1024];
    // The slave closes when the program exits: reads then fail with EIO.
    while let Ok(n) = file.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(text.contains("/dev/pts/"), "{text:?}");
    assert!(text.contains("33 111"), "{text:?}");
    assert!(env.runc(&["delete", "--force", &env.id]).status.success());
    env.assert_clean();
}

#[test]
fn a_detached_terminal_needs_a_console_socket() {
    if !can_run() {
        return;
    }
    let env = Env::new("console-missing");
    env.edit(|c| c["process"]["terminal"] = json!(true));
    let out = env.create();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("console-socket"), "{}", stderr(&out));
    env.assert_clean();
}

#[test]
fn run_in_the_foreground_proxies_the_terminal() {
    if !can_run() {
        return;
    }
    let env = Env::new("console-fg");
    env.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["args"] = json!(["sh", "-c", "tty; exit 7"]);
    });
    let (code, out, err) = env.run();
    assert_eq!(code, 7, "{out} {err}");
    assert!(out.contains("/dev/pts/0"), "{out:?}");
    env.assert_clean();
}
