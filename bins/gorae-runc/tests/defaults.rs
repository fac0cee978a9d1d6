//! The safe defaults of `gorae-runc spec` in a real container: Docker's capabilities, seccomp
//! profile, masked and read-only paths, and that ordinary programs still work under them.
//! Needs root.

mod support;

use serde_json::json;
use support::{can_run, Env};

/// A container with the default spec running `script`; returns its stdout (exit code 0).
fn run_script(name: &str, script: &str) -> String {
    let env = Env::new(name);
    env.set_args(&["sh", "-c", script]);
    let out = env.run_ok();
    env.assert_clean();
    out
}

/// The value of `key` in `out`'s `key=value` lines.
fn value<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn the_default_spec_has_dockers_protections() {
    if !can_run() {
        return;
    }
    let env = Env::new("defaults-spec");
    let config = env.config();
    assert_eq!(
        config["process"]["capabilities"]["effective"]
            .as_array()
            .map(Vec::len),
        Some(14)
    );
    assert_eq!(
        config["linux"]["seccomp"]["defaultAction"],
        json!("SCMP_ACT_ERRNO")
    );
    assert_eq!(
        config["linux"]["maskedPaths"].as_array().map(Vec::len),
        Some(12)
    );
}

#[test]
fn seccomp_and_capabilities_are_in_place() {
    if !can_run() {
        return;
    }
    let out = run_script(
        "defaults-status",
        "grep -E '^(Seccomp|NoNewPrivs|CapInh|CapPrm|CapEff|CapBnd|CapAmb):' /proc/self/status",
    );
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in {out}"))
            .to_string()
    };
    assert_eq!(field("Seccomp"), "2", "{out}");
    assert_eq!(field("NoNewPrivs"), "1", "{out}");
    // Docker's default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    // NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(field(set), "00000000a80425fb", "{set}: {out}");
    }
    assert_eq!(field("CapInh"), "0000000000000000", "{out}");
    assert_eq!(field("CapAmb"), "0000000000000000", "{out}");
}

#[test]
fn namespaces_and_mounts_are_refused() {
    if !can_run() {
        return;
    }
    let out = run_script(
        "defaults-refused",
        "unshare -n true 2>&1; echo unshare=$?; \
         unshare -U true 2>/dev/null; echo unshare_user=$?; \
         mount -t tmpfs none /tmp 2>/dev/null; echo mount=$?; \
         hostname other 2>/dev/null; echo sethostname=$?; \
         hostname",
    );
    for key in ["unshare", "unshare_user", "mount", "sethostname"] {
        let code = value(&out, key).unwrap_or_else(|| panic!("no {key} in {out}"));
        assert_ne!(code, "0", "{key} succeeded: {out}");
    }
    // Refused by seccomp (EPERM), not merely missing.
    assert!(out.contains("Operation not permitted"), "{out}");
    assert_eq!(out.lines().last(), Some("gorae"), "{out}");
}

#[test]
fn masked_paths_are_empty_and_readonly_paths_read_only() {
    if !can_run() {
        return;
    }
    // Only the paths this host has can be checked (e.g. no /proc/kcore on some kernels).
    let files: Vec<&str> = [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/interrupts",
        "/proc/sched_debug",
        "/proc/latency_stats",
    ]
    .into_iter()
    .filter(|p| std::path::Path::new(p).exists())
    .collect();
    let dirs: Vec<&str> = ["/proc/acpi", "/proc/asound", "/proc/scsi", "/sys/firmware"]
        .into_iter()
        .filter(|p| std::path::Path::new(p).is_dir())
        .collect();
    assert!(
        !files.is_empty(),
        "none of the masked files exist on this host"
    );
    let mut script = String::new();
    for f in &files {
        script += &format!("echo {f}=$(wc -c < {f}); ");
    }
    for d in &dirs {
        script += &format!("echo {d}=$(ls -A {d} | wc -l); ");
    }
    for p in [
        "/proc/sys",
        "/proc/sysrq-trigger",
        "/proc/irq",
        "/proc/bus",
        "/proc/fs",
    ] {
        script += &format!(
            "echo {p}=$(awk '$5 == \"{p}\" {{ print $6 }}' /proc/self/mountinfo | tail -n1); "
        );
    }
    let out = run_script("defaults-masked", &script);
    for p in files.iter().chain(&dirs) {
        assert_eq!(value(&out, p), Some("0"), "{p} is not masked: {out}");
    }
    for p in [
        "/proc/sys",
        "/proc/sysrq-trigger",
        "/proc/irq",
        "/proc/bus",
        "/proc/fs",
    ] {
        if std::path::Path::new(p).exists() {
            let opts = value(&out, p).unwrap_or_default();
            assert!(
                opts.split(',').any(|o| o == "ro"),
                "{p} not read-only ({opts}): {out}"
            );
        }
    }
}

#[test]
fn ordinary_programs_still_work() {
    if !can_run() {
        return;
    }
    let out = run_script(
        "defaults-ordinary",
        "ls / >/dev/null || exit 1; \
         cat /etc/passwd >/dev/null || exit 2; \
         sleep 0.1 || exit 3; \
         date >/dev/null || exit 4; \
         echo hostname=$(hostname); \
         i=0; pids=; \
         while [ $i -lt 50 ]; do pids=\"$pids $(sh -c 'echo $$')\" || exit 5; i=$((i+1)); done; \
         echo forks=$(echo $pids | tr ' ' '\\n' | sort -u | wc -l); \
         sleep 1 & wait $! || exit 6; \
         echo x > /tmp/file 2>/dev/null; \
         echo done",
    );
    assert_eq!(value(&out, "hostname"), Some("gorae"), "{out}");
    // Fifty external commands, each in its own process.
    assert_eq!(value(&out, "forks"), Some("50"), "{out}");
    assert_eq!(out.lines().last(), Some("done"), "{out}");
}
