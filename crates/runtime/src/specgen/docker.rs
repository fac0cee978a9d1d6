//! Docker's defaults for what a container may do: its capability set, its masked and read-only
//! `/proc` and `/sys` paths, and a seccomp profile equivalent to its default one.
//!
//! What it is: the values `gorae-runc spec` puts in `config.json` (and that engine code can use
//! directly), written here in Rust from what Docker documents as its defaults. The seccomp
//! profile is an explicit allow-list — a syscall that is in neither [`ALLOWED`] nor the
//! conditional rules is denied with `EPERM` — and [`DENIED`] names every syscall of the
//! x86_64, i386 and x32 tables that is left out on purpose; a unit test checks that the two
//! lists cover the tables exactly, so regenerating the tables forces a decision for each new
//! syscall instead of allowing it silently.
//!
//! What it owns: nothing; pure data and pure functions.
//!
//! What it must not do: grant more than Docker does by default, or depend on the host.

use oci_spec::runtime::{Capability, LinuxCapabilities, LinuxSeccomp};
use serde_json::{json, Value};

/// Docker's default capabilities, in kernel-number order.
pub const DOCKER_DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::NetRaw,
    Capability::SysChroot,
    Capability::Mknod,
    Capability::AuditWrite,
    Capability::Setfcap,
];

/// Docker's masked paths: hidden from the container (a read-only empty tmpfs over directories,
/// `/dev/null` over files).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths: remounted read-only inside the container.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// `errno` the profile returns for everything it does not allow (EPERM, as Docker).
const EPERM: u32 = 1;
/// `errno` for `clone3`, so that libc falls back to `clone`, whose flags the filter can check.
const ENOSYS: u32 = 38;
/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
/// CLONE_NEWNET`: `clone` is allowed only with none of these.
const CLONE_NAMESPACE_FLAGS: u64 = 0x0002_0000 // CLONE_NEWNS
    | 0x0200_0000 // CLONE_NEWCGROUP
    | 0x0400_0000 // CLONE_NEWUTS
    | 0x0800_0000 // CLONE_NEWIPC
    | 0x1000_0000 // CLONE_NEWUSER
    | 0x2000_0000 // CLONE_NEWPID
    | 0x4000_0000; // CLONE_NEWNET
/// `AF_VSOCK`: `socket` is allowed for every other address family.
const AF_VSOCK: u64 = 40;
/// The `personality(2)` values a container may set: `PER_LINUX`, `PER_LINUX | UNAME26`
/// (0x20000 = `UNAME26`), `PER_LINUX32` (8), `PER_LINUX32 | UNAME26`, and `0xffffffff`, which
/// only queries the current persona.
const SAFE_PERSONAS: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// Syscalls allowed whatever their arguments (byte order). Names of every ABI the profile lists
/// (x86_64, i386, x32); a name unknown to an ABI is skipped for it.
pub const ALLOWED: &[&str] = &[
    "_llseek",
    "_newselect",
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "chroot",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_time64",
    "futex_waitv",
    "futimesat",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "io_setup",
    "io_submit",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "modify_ldt",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "setsid",
    "setsockopt",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Syscalls allowed only with some arguments (see [`docker_default_seccomp`]).
pub const CONDITIONAL: &[&str] = &["clone", "clone3", "personality", "socket"];

/// Syscalls of the x86_64, i386 and x32 tables the profile leaves out, so they fail with EPERM
/// (byte order). Not used to build the profile (it is an allow-list); it records the decision.
///
/// Docker's documented default blocks: accounting, kernel keyring, eBPF, clock setting,
/// kernel modules, NUMA policy, raw I/O ports, kcmp, kexec, the mount API old and new, handle
/// based opens, nfsservctl, perf events, pivot_root, cross-process memory access and ptrace,
/// quotas, reboot, setns/unshare, swap, sysfs/_sysctl/ustat/uselib, userfaultfd, vm86 and the
/// kernel log. Beyond that list, left out here as Docker does (most need a capability Docker
/// does not grant by default):
/// - `io_uring_setup`, `io_uring_enter`, `io_uring_register`: a large and often exploited
///   kernel surface whose queued operations seccomp cannot see (Docker blocks them too since
///   v25);
/// - `migrate_pages`, `set_mempolicy_home_node`: the rest of the NUMA policy family (with
///   `mbind`, `move_pages`, `set_mempolicy`; `CAP_SYS_NICE`);
/// - `pidfd_getfd`, `process_madvise`: acting on another process (`CAP_SYS_PTRACE`, like
///   `ptrace` and `process_vm_*`);
/// - `fanotify_init`, `sethostname`, `setdomainname`: `CAP_SYS_ADMIN`;
/// - `vhangup`: `CAP_SYS_TTY_CONFIG`;
/// - `clock_adjtime64`, `clock_settime64`: the i386 clock setters (`CAP_SYS_TIME`);
/// - unimplemented or obsolete entries no current libc uses: `afs_syscall`, `bdflush`, `break`,
///   `ftime`, `getpmsg`, `gtty`, `idle`, `lock`, `mpx`, `nice`, `old*stat`, `old*uname`,
///   `prof`, `profil`, `putpmsg`, `readdir`, `security`, `sgetmask`, `sigaction`, `signal`,
///   `sigpending`, `sigsuspend`, `ssetmask`, `stty`, `tuxcall`, `ulimit`, `vserver`.
pub const DENIED: &[&str] = &[
    "_sysctl",
    "acct",
    "add_key",
    "afs_syscall",
    "bdflush",
    "bpf",
    "break",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_settime",
    "clock_settime64",
    "create_module",
    "delete_module",
    "fanotify_init",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "ftime",
    "get_kernel_syms",
    "get_mempolicy",
    "getpmsg",
    "gtty",
    "idle",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lock",
    "lookup_dcookie",
    "mbind",
    "migrate_pages",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "mpx",
    "name_to_handle_at",
    "nfsservctl",
    "nice",
    "oldfstat",
    "oldlstat",
    "oldolduname",
    "oldstat",
    "olduname",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pidfd_getfd",
    "pivot_root",
    "process_madvise",
    "process_vm_readv",
    "process_vm_writev",
    "prof",
    "profil",
    "ptrace",
    "putpmsg",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "readdir",
    "reboot",
    "request_key",
    "security",
    "set_mempolicy",
    "set_mempolicy_home_node",
    "setdomainname",
    "sethostname",
    "setns",
    "settimeofday",
    "sgetmask",
    "sigaction",
    "signal",
    "sigpending",
    "sigsuspend",
    "ssetmask",
    "stime",
    "stty",
    "swapoff",
    "swapon",
    "sysfs",
    "syslog",
    "tuxcall",
    "ulimit",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vhangup",
    "vm86",
    "vm86old",
    "vserver",
];

/// Docker's default capabilities as `process.capabilities`: the set in bounding, effective and
/// permitted; inheritable and ambient empty (left out).
pub fn docker_default_capabilities() -> LinuxCapabilities {
    // Built from JSON: oci-spec's `Default` would fill the sets left out with its own defaults.
    serde_json::from_value(capabilities_json())
        .expect("the built-in capability set is valid OCI JSON")
}

/// A seccomp profile equivalent to Docker's default one, for x86_64 with its i386 and x32 ABIs:
/// everything not allowed fails with EPERM; [`ALLOWED`] unconditionally; `clone` without
/// namespace flags; `clone3` fails with ENOSYS (its flags live in memory the filter cannot
/// read, so libc must fall back to `clone`); `personality` with the safe personas only;
/// `socket` for every address family but `AF_VSOCK`.
pub fn docker_default_seccomp() -> LinuxSeccomp {
    serde_json::from_value(seccomp_json()).expect("the built-in seccomp profile is valid OCI JSON")
}

/// [`docker_default_capabilities`] as `config.json` JSON, each list sorted by name.
pub(super) fn capabilities_json() -> Value {
    let mut names: Vec<String> = DOCKER_DEFAULT_CAPABILITIES
        .iter()
        .map(|c| crate::capabilities::name(*c))
        .collect();
    names.sort();
    json!({ "bounding": names, "effective": names, "permitted": names })
}

/// [`docker_default_seccomp`] as `config.json` JSON.
pub(super) fn seccomp_json() -> Value {
    let mut syscalls = vec![
        json!({ "names": ALLOWED, "action": "SCMP_ACT_ALLOW" }),
        json!({
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            // (args[0] & value) == valueTwo: none of the namespace flags set.
            "args": [{
                "index": 0,
                "value": CLONE_NAMESPACE_FLAGS,
                "valueTwo": 0,
                "op": "SCMP_CMP_MASKED_EQ"
            }]
        }),
        json!({ "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS }),
    ];
    syscalls.extend(SAFE_PERSONAS.iter().map(|persona| {
        json!({
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{ "index": 0, "value": persona, "op": "SCMP_CMP_EQ" }]
        })
    }));
    syscalls.push(json!({
        "names": ["socket"],
        "action": "SCMP_ACT_ALLOW",
        "args": [{ "index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE" }]
    }));
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::{self, SeccompProgram};
    use oci_spec::runtime::{Arch, LinuxSeccompAction, LinuxSeccompOperator};
    use std::collections::BTreeSet;

    const ARCHES: [Arch; 3] = [Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32];

    fn compiled() -> SeccompProgram {
        seccomp::compile(&docker_default_seccomp()).unwrap_or_else(|e| panic!("compile: {e}"))
    }

    /// The length of a compiled program (from its Debug form: `SeccompProgram` keeps its
    /// instructions private).
    fn instruction_count(program: &SeccompProgram) -> usize {
        format!("{program:?}").matches("Insn {").count()
    }

    fn names_with(action: LinuxSeccompAction) -> BTreeSet<String> {
        docker_default_seccomp()
            .syscalls()
            .iter()
            .flatten()
            .filter(|s| s.action() == action)
            .flat_map(|s| s.names().iter().cloned())
            .collect()
    }

    #[test]
    fn capabilities_are_dockers_set() {
        let caps = docker_default_capabilities();
        let names: Vec<String> = DOCKER_DEFAULT_CAPABILITIES
            .iter()
            .map(|c| crate::capabilities::name(*c))
            .collect();
        assert_eq!(
            names,
            [
                "CAP_CHOWN",
                "CAP_DAC_OVERRIDE",
                "CAP_FOWNER",
                "CAP_FSETID",
                "CAP_KILL",
                "CAP_SETGID",
                "CAP_SETUID",
                "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE",
                "CAP_NET_RAW",
                "CAP_SYS_CHROOT",
                "CAP_MKNOD",
                "CAP_AUDIT_WRITE",
                "CAP_SETFCAP"
            ]
        );
        for set in [caps.bounding(), caps.effective(), caps.permitted()] {
            // The mask the kernel shows as CapEff for `docker run`.
            assert_eq!(crate::capabilities::mask(set.as_ref(), 40), 0xa804_25fb);
        }
        assert!(caps.inheritable().is_none());
        assert!(caps.ambient().is_none());
        let v = capabilities_json();
        assert_eq!(v.as_object().map(|o| o.len()), Some(3));
        let bounding: Vec<&str> = v["bounding"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert!(bounding.windows(2).all(|w| w[0] < w[1]), "sorted");
        assert_eq!(bounding.len(), 14);
    }

    #[test]
    fn masked_and_readonly_paths_are_dockers() {
        assert_eq!(MASKED_PATHS.len(), 12);
        for p in [
            "/proc/acpi",
            "/proc/asound",
            "/proc/interrupts",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/sched_debug",
            "/proc/scsi",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/sys/devices/virtual/powercap",
            "/sys/firmware",
        ] {
            assert!(MASKED_PATHS.contains(&p), "{p}");
        }
        assert_eq!(
            READONLY_PATHS,
            [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ]
        );
    }

    #[test]
    fn lists_are_sorted_and_disjoint() {
        for list in [ALLOWED, DENIED, CONDITIONAL] {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{:?}", list.first());
        }
        for name in ALLOWED {
            assert!(!DENIED.contains(name), "{name} is allowed and denied");
            assert!(!CONDITIONAL.contains(name), "{name}");
        }
        for name in CONDITIONAL {
            assert!(!DENIED.contains(name), "{name}");
        }
    }

    #[test]
    fn every_known_syscall_is_decided_and_every_listed_one_is_known() {
        // A syscall added to the tables (regenerated from newer headers) fails here until it
        // is put in ALLOWED, CONDITIONAL or DENIED: it is never allowed by accident.
        let decided: BTreeSet<&str> = ALLOWED
            .iter()
            .chain(DENIED)
            .chain(CONDITIONAL)
            .copied()
            .collect();
        let mut known = BTreeSet::new();
        for arch in ARCHES {
            for name in seccomp::syscall_names(arch) {
                assert!(decided.contains(name), "{arch:?} {name} is not decided");
                known.insert(name);
            }
        }
        let unknown: Vec<_> = decided.difference(&known).collect();
        assert!(unknown.is_empty(), "names no table knows: {unknown:?}");
    }

    #[test]
    fn profile_shape() {
        let profile = docker_default_seccomp();
        assert_eq!(profile.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(profile.default_errno_ret(), Some(1));
        assert_eq!(profile.architectures().as_deref(), Some(&ARCHES[..]));
        let allowed = names_with(LinuxSeccompAction::ScmpActAllow);
        for name in [
            "read",
            "write",
            "execve",
            "clone",
            "futex",
            "mmap",
            "openat",
            "exit_group",
            "rt_sigreturn",
            "wait4",
            "socket",
            "personality",
        ] {
            assert!(allowed.contains(name), "{name} missing");
        }
        for name in DENIED {
            assert!(!allowed.contains(*name), "{name} allowed");
        }
        for name in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "ptrace",
            "bpf",
            "keyctl",
            "add_key",
            "kexec_load",
            "reboot",
            "swapon",
            "pivot_root",
            "syslog",
            "userfaultfd",
            "io_uring_setup",
            "perf_event_open",
            "open_by_handle_at",
            "init_module",
        ] {
            assert!(DENIED.contains(&name), "{name}");
        }
        let syscalls = profile.syscalls().as_deref().unwrap_or_default();
        // clone: allowed only if (flags & namespace flags) == 0.
        let clone = syscalls
            .iter()
            .find(|s| *s.names() == ["clone"])
            .unwrap_or_else(|| panic!("no clone rule"));
        let args = clone.args().as_deref().unwrap_or_default();
        assert_eq!(args.len(), 1);
        assert_eq!(args[0].index(), 0);
        assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!(args[0].value(), 0x7E02_0000);
        assert_eq!(args[0].value_two(), Some(0));
        // clone3: ENOSYS.
        let clone3 = syscalls
            .iter()
            .find(|s| *s.names() == ["clone3"])
            .unwrap_or_else(|| panic!("no clone3 rule"));
        assert_eq!(clone3.action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3.errno_ret(), Some(38));
        // personality: one EQ rule per safe persona.
        let personas: Vec<u64> = syscalls
            .iter()
            .filter(|s| *s.names() == ["personality"])
            .flat_map(|s| s.args().iter().flatten())
            .inspect(|a| assert_eq!(a.op(), LinuxSeccompOperator::ScmpCmpEq))
            .map(|a| a.value())
            .collect();
        assert_eq!(personas, [0, 8, 0x20000, 0x20008, 0xffff_ffff]);
        // socket: anything but AF_VSOCK.
        let socket = syscalls
            .iter()
            .find(|s| *s.names() == ["socket"])
            .unwrap_or_else(|| panic!("no socket rule"));
        let args = socket.args().as_deref().unwrap_or_default();
        assert_eq!(args.len(), 1);
        assert_eq!(
            (args[0].index(), args[0].op(), args[0].value()),
            (0, LinuxSeccompOperator::ScmpCmpNe, 40)
        );
    }

    #[test]
    fn profile_is_deterministic() {
        assert_eq!(seccomp_json(), seccomp_json());
        assert_eq!(
            serde_json::to_value(docker_default_seccomp()).unwrap_or_else(|e| panic!("{e}")),
            seccomp_json()
        );
    }

    #[test]
    fn profile_compiles_within_the_bpf_limit() {
        let program = compiled();
        let len = instruction_count(&program);
        eprintln!("default seccomp profile: {len} BPF instructions");
        assert!(len > 0 && len < 4096, "{len}");
        // The interval tree keeps it far below the limit; a big jump means a regression.
        assert!(len < 1024, "{len}");
    }

    /// Runs `check` in a forked child under the compiled default profile; `check` returns 0
    /// when all is as expected, or the number of the failed check.
    fn in_filtered_child(check: fn() -> i32) -> i32 {
        let program = compiled();
        // SAFETY: the child only makes raw syscalls (no allocation, no locks) and leaves with
        // _exit, so forking a multi-threaded test process is sound.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            // SAFETY: plain prctl; _exit never returns.
            unsafe {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    libc::_exit(100);
                }
                if program.install().is_err() {
                    libc::_exit(101);
                }
                libc::_exit(check());
            }
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        assert!(libc::WIFEXITED(status), "child died: {status:#x}");
        libc::WEXITSTATUS(status)
    }

    /// `syscall(nr, args)`: the result, or `-errno`.
    fn raw(nr: libc::c_long, a: [libc::c_long; 5]) -> i64 {
        // SAFETY: every call made below passes no pointers, or null ones the kernel checks.
        let ret = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4]) };
        if ret < 0 {
            // SAFETY: errno is thread-local and always valid.
            -i64::from(unsafe { *libc::__errno_location() })
        } else {
            ret
        }
    }

    #[test]
    fn profile_filters_as_intended_in_a_real_process() {
        const CLONE_THREAD: libc::c_long = 0x0001_0000;
        const CLONE_NEWNET: libc::c_long = 0x4000_0000;
        const CLONE_NEWUSER: libc::c_long = 0x1000_0000;
        const PER_READ_IMPLIES_EXEC: libc::c_long = 0x0040_0000;
        fn check() -> i32 {
            let eperm = -i64::from(libc::EPERM);
            let einval = -i64::from(libc::EINVAL);
            let enosys = -i64::from(libc::ENOSYS);
            let results = [
                raw(libc::SYS_getpid, [0; 5]) > 0,
                // Namespace flags: refused by the filter (the kernel would say EINVAL:
                // CLONE_THREAD without CLONE_SIGHAND, so nothing is ever created).
                raw(libc::SYS_clone, [CLONE_NEWNET | CLONE_THREAD, 0, 0, 0, 0]) == eperm,
                // Without them the filter lets clone through to that EINVAL.
                raw(libc::SYS_clone, [CLONE_THREAD, 0, 0, 0, 0]) == einval,
                raw(libc::SYS_clone3, [0; 5]) == enosys,
                raw(libc::SYS_unshare, [CLONE_NEWUSER, 0, 0, 0, 0]) == eperm,
                raw(libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0]) >= 0,
                raw(libc::SYS_personality, [PER_READ_IMPLIES_EXEC, 0, 0, 0, 0]) == eperm,
                raw(libc::SYS_socket, [40, libc::SOCK_STREAM.into(), 0, 0, 0]) == eperm,
                {
                    let fd = raw(
                        libc::SYS_socket,
                        [libc::AF_UNIX.into(), libc::SOCK_STREAM.into(), 0, 0, 0],
                    );
                    fd >= 0 && raw(libc::SYS_close, [fd, 0, 0, 0, 0]) == 0
                },
                raw(libc::SYS_mount, [0; 5]) == eperm,
                raw(libc::SYS_keyctl, [0, -3, 0, 0, 0]) == eperm,
                raw(libc::SYS_bpf, [-1, 0, 0, 0, 0]) == eperm,
                raw(libc::SYS_io_uring_setup, [0; 5]) == eperm,
                raw(libc::SYS_ptrace, [libc::PTRACE_TRACEME.into(), 0, 0, 0, 0]) == eperm,
                // Newer than every number the profile names: ENOSYS, so callers fall back.
                raw(1000, [0; 5]) == enosys,
            ];
            results
                .iter()
                .position(|ok| !ok)
                .map_or(0, |i| i as i32 + 1)
        }
        assert_eq!(in_filtered_child(check), 0, "check number that failed");
    }
}
