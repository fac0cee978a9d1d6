//! Installs compiled seccomp filters for real, in forked children (no root needed: the child
//! sets no_new_privs first). The test harness is multi-threaded, so a child only makes raw
//! system calls and leaves with `_exit`; the profile is compiled before the fork.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use gorae_runtime::seccomp::{compile, SeccompProgram};
use oci_spec::runtime::LinuxSeccomp;
use serde_json::json;
use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;

const INSTALL_FAILED: i32 = 100;
const NO_NEW_PRIVS_FAILED: i32 = 101;

fn program(v: serde_json::Value) -> SeccompProgram {
    let profile: LinuxSeccomp = serde_json::from_value(v).expect("profile parses");
    compile(&profile).expect("profile compiles")
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Forks; the child sets no_new_privs, installs `prog`, runs `body` with the listener fd (if
/// any) and exits with its result. Returns the child's wait status.
fn in_child(prog: &SeccompProgram, body: impl FnOnce(Option<RawFd>) -> i32) -> i32 {
    // SAFETY: the child only makes system calls (prctl, seccomp, the body's raw calls) and
    // leaves through _exit; it does not allocate or take locks another thread may hold.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: plain prctl; in the child.
        let code = if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            NO_NEW_PRIVS_FAILED
        } else {
            match prog.install() {
                Ok(fd) => body(fd.as_ref().map(|f| f.as_raw_fd())),
                Err(_) => INSTALL_FAILED,
            }
        };
        // SAFETY: ends the child without running the parent's destructors or atexit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid: {}", std::io::Error::last_os_error());
    status
}

fn exit_code(status: i32) -> i32 {
    assert!(
        libc::WIFEXITED(status),
        "child did not exit normally: status {status:#x}"
    );
    libc::WEXITSTATUS(status)
}

#[test]
fn seccomp_errno_rule_returns_the_configured_errno_and_other_syscalls_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("made-by-child");
    let path = CString::new(target.as_os_str().as_bytes()).expect("path");
    let prog = program(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 123},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}
        ]
    }));
    let status = in_child(&prog, |_| {
        // SAFETY: raw system calls with a valid NUL-terminated path.
        unsafe {
            if libc::syscall(libc::SYS_mkdir, path.as_ptr(), 0o755) != -1 || errno() != 123 {
                return 1;
            }
            if libc::mkdirat(libc::AT_FDCWD, path.as_ptr(), 0o755) != -1 || errno() != 123 {
                return 2;
            }
            if libc::rmdir(path.as_ptr()) != -1 || errno() != libc::EPERM {
                return 3;
            }
            let pid = libc::syscall(libc::SYS_getpid);
            if pid <= 0 || pid != libc::syscall(libc::SYS_gettid) {
                return 4;
            }
        }
        0
    });
    assert_eq!(exit_code(status), 0);
    assert!(!target.exists(), "mkdir was not filtered");
}

#[test]
fn seccomp_argument_conditions_apply_in_the_kernel() {
    // fcntl(F_GETFD) is refused, fcntl(F_GETFL) is not; a 64-bit value whose high half is set
    // must not match an EQ on the low half alone.
    let prog = program(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["fcntl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
             "args": [{"index": 1, "value": libc::F_GETFD, "op": "SCMP_CMP_EQ"}]},
            {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": 78,
             "args": [{"index": 1, "value": 5, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    let status = in_child(&prog, |_| {
        // SAFETY: raw system calls on fd 0 (or a bad fd, which only fails).
        unsafe {
            if libc::syscall(libc::SYS_fcntl, 0, libc::F_GETFD) != -1 || errno() != 77 {
                return 1;
            }
            let r = libc::syscall(libc::SYS_fcntl, 0, libc::F_GETFL);
            if r == -1 && errno() == 77 {
                return 2;
            }
            if libc::syscall(libc::SYS_lseek, -1, 5i64, 0) != -1 || errno() != 78 {
                return 3;
            }
            // High half set: not equal to 5, so the kernel's EBADF comes through.
            if libc::syscall(libc::SYS_lseek, -1, (1i64 << 32) | 5, 0) != -1
                || errno() != libc::EBADF
            {
                return 4;
            }
        }
        0
    });
    assert_eq!(exit_code(status), 0);
}

#[test]
fn seccomp_allow_list_with_errno_default_and_enosys_for_newer_syscalls() {
    let prog = program(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["exit", "exit_group", "getpid", "gettid", "openat"],
             "action": "SCMP_ACT_ALLOW"}
        ]
    }));
    let status = in_child(&prog, |_| {
        // SAFETY: raw system calls with harmless arguments.
        unsafe {
            if libc::syscall(libc::SYS_getpid) <= 0 {
                return 1;
            }
            // Not listed, below the highest listed number (openat, 257): the default, EPERM.
            if libc::syscall(libc::SYS_getppid) != -1 || errno() != libc::EPERM {
                return 2;
            }
            // Above it: ENOSYS, so programs can fall back (clone3 -> clone, ...).
            if libc::syscall(libc::SYS_clone3, 0, 0) != -1 || errno() != libc::ENOSYS {
                return 3;
            }
        }
        0
    });
    assert_eq!(exit_code(status), 0);
}

#[test]
fn seccomp_kill_process_rule_kills_with_sigsys() {
    let prog = program(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]
    }));
    let status = in_child(&prog, |_| {
        // SAFETY: a raw system call without arguments.
        unsafe { libc::syscall(libc::SYS_getppid) };
        1
    });
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS,
        "child was not killed by SIGSYS: status {status:#x}"
    );
}

#[test]
fn seccomp_notify_returns_a_listener_fd() {
    let prog = program(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]
    }));
    let status = in_child(&prog, |fd| {
        let Some(fd) = fd else { return 1 };
        // SAFETY: fcntl on an fd the child owns.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return 2;
        }
        0
    });
    assert_eq!(exit_code(status), 0);
}

#[test]
fn seccomp_kernel_accepts_long_programs_with_long_jumps() {
    // One distinct 6-argument rule per syscall: well over 255 instructions of leaves, so the
    // search tree needs `ja` trampolines, which the kernel's checker must accept.
    const NAMES: &[&str] = &[
        "read",
        "write",
        "open",
        "close",
        "stat",
        "fstat",
        "lstat",
        "poll",
        "lseek",
        "mmap",
        "mprotect",
        "munmap",
        "brk",
        "ioctl",
        "pread64",
        "pwrite64",
        "readv",
        "writev",
        "access",
        "pipe",
        "select",
        "sched_yield",
        "mremap",
        "msync",
        "mincore",
        "madvise",
        "shmget",
        "shmat",
        "shmctl",
        "dup",
        "dup2",
        "pause",
        "nanosleep",
        "getitimer",
        "alarm",
        "setitimer",
        "getpid",
        "sendfile",
        "socket",
        "connect",
        "accept",
        "sendto",
        "recvfrom",
        "sendmsg",
        "recvmsg",
        "shutdown",
        "bind",
        "listen",
        "getsockname",
        "getpeername",
        "socketpair",
        "setsockopt",
        "getsockopt",
        "clone",
        "fork",
        "vfork",
        "execve",
        "wait4",
        "kill",
        "uname",
        "semget",
        "semop",
        "semctl",
        "shmdt",
        "msgget",
        "msgsnd",
        "msgrcv",
        "msgctl",
        "fcntl",
        "flock",
        "fsync",
        "fdatasync",
        "truncate",
        "ftruncate",
        "getdents",
        "getcwd",
        "chdir",
        "fchdir",
        "rename",
        "mkdir",
        "rmdir",
        "creat",
        "link",
        "unlink",
    ];
    let rules: Vec<serde_json::Value> = NAMES
        .iter()
        .enumerate()
        .map(|(n, name)| {
            let args: Vec<serde_json::Value> = (0..6)
                .map(|i| json!({"index": i, "value": 1000 + n * 10 + i, "op": "SCMP_CMP_EQ"}))
                .collect();
            json!({"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": 90, "args": args})
        })
        .collect();
    let prog = program(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
    let n = NAMES
        .iter()
        .position(|s| *s == "rmdir")
        .expect("rmdir listed") as i64;
    let status = in_child(&prog, |_| {
        let a = |i: i64| 1000 + n * 10 + i;
        // SAFETY: raw system calls; rmdir with a bogus pointer only fails.
        unsafe {
            if libc::syscall(libc::SYS_rmdir, a(0), a(1), a(2), a(3), a(4), a(5)) != -1
                || errno() != 90
            {
                return 1;
            }
            if libc::syscall(libc::SYS_getpid) <= 0 {
                return 2;
            }
        }
        0
    });
    assert_eq!(exit_code(status), 0);
}
