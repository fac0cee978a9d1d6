//! Regression tests for runc's CVEs: each fails if the fix is removed. Needs root.

mod support;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use serde_json::json;
use support::{can_run, stdout, Env};

/// CVE-2019-5736: the runtime's binary can never be opened for writing through
/// /proc/PID/exe of a runtime process, even by someone who holds it open until the runtime
/// exits. The test runs a copy of gorae-runc so that a regression damages only the copy.
#[test]
fn cve_2019_5736_runtime_binary_is_not_writable_through_proc_exe() {
    if !can_run() {
        return;
    }
    let env = Env::new("cve-5736");
    let copy = env.dir.path().join("gorae-runc-copy");
    std::fs::copy(env!("CARGO_BIN_EXE_gorae-runc"), &copy).unwrap();
    let original = std::fs::read(&copy).unwrap();
    env.set_args(&["sleep", "100"]);
    let out = std::process::Command::new(&copy)
        .args([
            "--root",
            env.state_root().to_str().unwrap(),
            "create",
            "--bundle",
            env.bundle().to_str().unwrap(),
            &env.id,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(out.success());
    let init = env.state()["pid"].as_i64().unwrap();
    // The attacker's move: hold the exe open, wait for the runtime process to go away,
    // then reopen it for writing through /proc/self/fd.
    let held = std::fs::File::open(format!("/proc/{init}/exe")).unwrap();
    assert!(env.runc(&["delete", "--force", &env.id]).status.success());
    let reopened = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&held)
        ));
    if let Ok(mut file) = reopened {
        let wrote = file.write_all(b"#!/bin/sh\necho pwned\n");
        assert!(
            wrote.is_err(),
            "the runtime's executable was writable through /proc/PID/exe"
        );
    }
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        original,
        "the runtime binary changed"
    );
    env.assert_clean();
}

/// CVE-2019-5736, the other half: a process in the container cannot even read the exe of a
/// runtime process in its pid namespace (the runtime is non-dumpable until it execs).
#[test]
fn cve_2019_5736_container_cannot_open_a_runtime_process_exe() {
    if !can_run() {
        return;
    }
    let owner = Env::new("cve-5736-owner");
    owner.set_args(&["sleep", "100"]);
    assert!(owner.create().status.success());
    let init = owner.state()["pid"].as_i64().unwrap();
    let peer = Env::new("cve-5736-peer");
    peer.edit(|c| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "pid" {
                ns["path"] = json!(format!("/proc/{init}/ns/pid"));
            }
        }
        c["process"]["args"] = json!([
            "sh",
            "-c",
            "head -c 4 /proc/1/exe > /dev/null 2>&1 && echo READABLE || echo denied"
        ]);
    });
    // The owner's init is pid 1 there, still running runtime code (waiting for start).
    let out = peer.run_ok();
    assert_eq!(
        out.trim(),
        "denied",
        "a container process could open the runtime's exe"
    );
    peer.assert_clean();
    assert!(owner
        .runc(&["delete", "--force", &owner.id])
        .status
        .success());
    owner.assert_clean();
}

/// CVE-2024-21626: no runtime descriptor reaches the container, for run and exec alike, and
/// a cwd that resolves outside the rootfs through a descriptor is refused.
#[test]
fn cve_2024_21626_no_leaked_descriptors_and_no_cwd_outside_the_root() {
    if !can_run() {
        return;
    }
    let env = Env::new("cve-21626");
    env.run_detached(&["sh", "-c", "ls /proc/self/fd; sleep 100"]);
    let fds = env.runc(&["exec", &env.id, "ls", "/proc/self/fd"]);
    let listed: Vec<String> = stdout(&fds).split_whitespace().map(String::from).collect();
    assert!(
        listed
            .iter()
            .all(|fd| ["0", "1", "2", "3"].contains(&fd.as_str())),
        "exec leaked {listed:?}"
    );
    for n in 3..12 {
        let cwd = format!("/proc/self/fd/{n}");
        let out = env.runc(&["exec", "--cwd", &cwd, &env.id, "sh", "-c", "pwd; ls .."]);
        assert!(
            !out.status.success(),
            "exec with cwd {cwd} ran: {}",
            stdout(&out)
        );
    }
    assert!(env.runc(&["delete", "--force", &env.id]).status.success());
    for n in 3..12 {
        env.edit(|c| c["process"]["cwd"] = json!(format!("/proc/self/fd/{n}")));
        env.set_args(&["sh", "-c", "pwd; ls .."]);
        let (code, out, _) = env.run();
        assert_ne!(code, 0, "run with cwd /proc/self/fd/{n} ran: {out}");
        env.assert_clean();
    }
}

/// CVE-2021-30465: a mount target swapped for a symlink pointing out of the rootfs, in a
/// tight rename loop while containers start, never gets a mount outside the rootfs.
#[test]
fn cve_2021_30465_mount_target_rename_race_stays_inside() {
    if !can_run() {
        return;
    }
    let env = Env::new("cve-30465");
    let outside = env.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let rootfs = env.rootfs();
    std::fs::create_dir(rootfs.join("target")).unwrap();
    std::os::unix::fs::symlink(&outside, rootfs.join("evil")).unwrap();
    env.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/target", "type": "tmpfs", "source": "tmpfs"}));
    });
    env.set_args(&["true"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let racer = {
        let stop = stop.clone();
        let rootfs = rootfs.clone();
        std::thread::spawn(move || {
            let (target, evil, tmp) = (
                rootfs.join("target"),
                rootfs.join("evil"),
                rootfs.join("swap"),
            );
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::rename(&target, &tmp);
                let _ = std::fs::rename(&evil, &target);
                let _ = std::fs::rename(&target, &evil);
                let _ = std::fs::rename(&tmp, &target);
            }
        })
    };
    for _ in 0..40 {
        let _ = env.run();
        env.assert_clean();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    racer.join().unwrap();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(outside.to_str().unwrap()),
        "a mount escaped to {outside:?}"
    );
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "something was created outside the rootfs"
    );
}

/// CVE-2025-31133: masking refuses a /dev/null that is not the null device.
#[test]
fn cve_2025_31133_masking_needs_the_real_dev_null() {
    if !can_run() {
        return;
    }
    let env = Env::new("cve-31133");
    let dev = env.dir.path().join("fake-dev");
    std::fs::create_dir(&dev).unwrap();
    std::fs::write(dev.join("null"), "not a device").unwrap();
    env.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| {
            m["destination"] != "/dev"
                && m["destination"] != "/dev/pts"
                && m["destination"] != "/dev/shm"
                && m["destination"] != "/dev/mqueue"
        });
        mounts.push(
            json!({"destination": "/dev", "type": "bind", "source": dev, "options": ["rbind"]}),
        );
        c["linux"]["maskedPaths"] = json!(["/proc/timer_list"]);
    });
    env.set_args(&["true"]);
    let (code, _, err) = env.run();
    assert_ne!(code, 0);
    assert!(err.contains("/dev/null"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dev.join("null")).unwrap(),
        "not a device"
    );
    env.assert_clean();
}

/// CVE-2025-52565: the console is never bind-mounted through a /dev/console symlink.
#[test]
fn cve_2025_52565_dev_console_symlink_is_refused() {
    if !can_run() {
        return;
    }
    let env = Env::new("cve-52565");
    let dev = env.dir.path().join("fake-dev");
    std::fs::create_dir(&dev).unwrap();
    let victim = env.dir.path().join("victim");
    std::fs::write(&victim, "host file").unwrap();
    for (name, minor) in [("null", 3), ("zero", 5)] {
        let path = std::ffi::CString::new(dev.join(name).to_str().unwrap()).unwrap();
        // SAFETY: mknod with a valid C string path and no other memory.
        assert_eq!(
            unsafe {
                libc::mknod(
                    path.as_ptr(),
                    libc::S_IFCHR | 0o666,
                    libc::makedev(1, minor),
                )
            },
            0
        );
    }
    std::os::unix::fs::symlink("pts/ptmx", dev.join("ptmx")).unwrap();
    std::os::unix::fs::symlink(&victim, dev.join("console")).unwrap();
    env.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        let i = mounts
            .iter()
            .position(|m| m["destination"] == "/dev")
            .unwrap();
        mounts[i] =
            json!({"destination": "/dev", "type": "bind", "source": dev, "options": ["rbind"]});
        c["process"]["terminal"] = json!(true);
    });
    env.set_args(&["true"]);
    let (code, _, err) = env.run();
    assert_ne!(code, 0, "a /dev/console symlink was followed");
    assert!(err.contains("/dev/console"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "host file");
    env.assert_clean();
}

/// CVE-2025-52881 / CVE-2019-16884: a sysctl write cannot be redirected by a mount over
/// /proc/sys.
#[test]
fn cve_2025_52881_sysctl_writes_only_into_procfs() {
    if !can_run() {
        return;
    }
    let env = Env::new("cve-52881");
    env.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        let i = mounts
            .iter()
            .position(|m| m["destination"] == "/proc")
            .unwrap();
        mounts.insert(
            i + 1,
            json!({"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"}),
        );
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    });
    env.set_args(&["true"]);
    let (code, _, err) = env.run();
    assert_ne!(
        code, 0,
        "a sysctl was written through a tmpfs over /proc/sys"
    );
    assert!(err.contains("mounted over procfs"), "{err}");
    env.assert_clean();
}
