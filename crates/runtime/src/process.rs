//! The last steps of every container process, the init's and `exec`'s alike: rlimits, the
//! program looked up in the container's PATH, user and capabilities, the cwd check, exec.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::Process;

use crate::capabilities;
use crate::error::{Error, Result, SysContext};
use crate::sys;

pub fn apply_rlimits(process: &Process) -> Result<()> {
    use nix::sys::resource::{setrlimit, Resource};
    use oci_spec::runtime::PosixRlimitType as T;
    for limit in process.rlimits().as_deref().unwrap_or_default() {
        let resource = match limit.typ() {
            T::RlimitCpu => Resource::RLIMIT_CPU,
            T::RlimitFsize => Resource::RLIMIT_FSIZE,
            T::RlimitData => Resource::RLIMIT_DATA,
            T::RlimitStack => Resource::RLIMIT_STACK,
            T::RlimitCore => Resource::RLIMIT_CORE,
            T::RlimitRss => Resource::RLIMIT_RSS,
            T::RlimitNproc => Resource::RLIMIT_NPROC,
            T::RlimitNofile => Resource::RLIMIT_NOFILE,
            T::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
            T::RlimitAs => Resource::RLIMIT_AS,
            T::RlimitLocks => Resource::RLIMIT_LOCKS,
            T::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
            T::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
            T::RlimitNice => Resource::RLIMIT_NICE,
            T::RlimitRtprio => Resource::RLIMIT_RTPRIO,
            T::RlimitRttime => Resource::RLIMIT_RTTIME,
        };
        setrlimit(resource, limit.soft(), limit.hard()).ctx(|| {
            format!(
                "setrlimit {} soft {} hard {}",
                limit.typ(),
                limit.soft(),
                limit.hard()
            )
        })?;
    }
    Ok(())
}

/// The program to exec: args[0] itself when it has a slash, else looked up in the
/// container's PATH (as runc and execvp do). The errors read as runc's, since the engine and
/// docker's CLI tell a missing command (127) from one that cannot run (126) by their text.
pub fn find_program(process: &Process) -> Result<CString> {
    let args = process.args().as_deref().unwrap_or_default();
    let name = args
        .first()
        .ok_or_else(|| Error::Init("process.args is empty".into()))?;
    let found = if name.contains('/') {
        check_program(Path::new(name))
            .map_err(|why| Error::Init(format!("exec: {name:?}: {why}")))?
    } else {
        search_path(process, name).ok_or_else(|| {
            Error::Init(format!(
                "exec: {name:?}: executable file not found in $PATH"
            ))
        })?
    };
    CString::new(found.into_os_string().into_encoded_bytes())
        .map_err(|_| Error::Init(format!("process.args[0] {name:?} contains a NUL byte")))
}

/// The first executable regular file named `name` in the process's PATH; the others are
/// skipped as execvp does.
fn search_path(process: &Process, name: &str) -> Option<PathBuf> {
    let path_var = process
        .env()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|candidate| check_program(candidate).is_ok())
}

/// Why `path` cannot be executed, in runc's words: "stat <path>: no such file or directory",
/// "is a directory", "permission denied".
fn check_program(path: &Path) -> std::result::Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| {
        let errno = e.raw_os_error().map(nix::errno::Errno::from_raw);
        let desc = match errno {
            Some(nix::errno::Errno::ENOENT) => "no such file or directory".to_string(),
            Some(n) => n.desc().to_ascii_lowercase(),
            None => e.to_string(),
        };
        format!("stat {}: {desc}", path.display())
    })?;
    if meta.is_dir() {
        Err("is a directory".into())
    } else if meta.permissions().mode() & 0o111 == 0 {
        Err("permission denied".into())
    } else {
        Ok(path.to_path_buf())
    }
}

pub fn set_credentials(process: &Process) -> Result<()> {
    let user = process.user();
    // As runc: a capability set the config leaves out is empty, the bounding set too, and so
    // is every set when the config has no capabilities at all. Keeping the whole bounding set
    // would let a root process regain every capability at execve (docker run --cap-drop ALL
    // sends "capabilities": {}).
    let mut caps = process.capabilities().clone().unwrap_or_else(|| {
        let mut none = oci_spec::runtime::LinuxCapabilities::default();
        none.set_bounding(Some(Default::default()));
        none.set_effective(Some(Default::default()));
        none.set_permitted(Some(Default::default()));
        none.set_inheritable(Some(Default::default()));
        none.set_ambient(Some(Default::default()));
        none
    });
    if caps.bounding().is_none() {
        caps.set_bounding(Some(Default::default()));
    }
    capabilities::drop_bounding_set(&caps)?;
    capabilities::keep_capabilities_on_setuid(true)?;
    let groups: Vec<Gid> = user
        .additional_gids()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    // setgroups is refused in a user namespace whose setgroups file says deny; an empty list
    // there is the only possibility anyway.
    match nix::unistd::setgroups(&groups) {
        Err(nix::errno::Errno::EPERM) if groups.is_empty() => {}
        other => other.ctx(|| format!("setgroups {groups:?}"))?,
    }
    let (uid, gid) = (Uid::from_raw(user.uid()), Gid::from_raw(user.gid()));
    nix::unistd::setresgid(gid, gid, gid).ctx(|| format!("setgid {gid}"))?;
    nix::unistd::setresuid(uid, uid, uid).ctx(|| format!("setuid {uid}"))?;
    capabilities::keep_capabilities_on_setuid(false)?;
    capabilities::apply_process_sets(&caps)?;
    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(Mode::from_bits_truncate(mask as libc::mode_t));
    }
    Ok(())
}

/// chdir to process.cwd as the container's user, and refuse a cwd that ends up outside the
/// root (a leaked descriptor path such as /proc/self/fd/N: CVE-2024-21626).
pub fn enter_cwd(process: &Process) -> Result<()> {
    let cwd = process.cwd();
    nix::unistd::chdir(cwd).ctx(|| format!("chdir to cwd {}", cwd.display()))?;
    let now = nix::unistd::getcwd().ctx(|| "getcwd".into())?;
    if !now.is_absolute()
        || now
            .as_os_str()
            .as_encoded_bytes()
            .starts_with(b"(unreachable)")
    {
        return Err(Error::Init(format!(
            "cwd {} is outside the container root",
            cwd.display()
        )));
    }
    Ok(())
}

/// First thing in every runtime process that will end up in a container (the init, an exec
/// process): die with the runtime while it sets up, and, until it execs, let nothing in the
/// container open its /proc/PID/exe or ptrace it (CVE-2019-5736; exec resets both).
pub fn guard_runtime_child() -> Result<()> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .ctx(|| "prctl(PDEATHSIG)".into())?;
    nix::sys::prctl::set_dumpable(false).ctx(|| "prctl(PR_SET_DUMPABLE)".into())
}

/// Inside a new user namespace: become its root (uid and gid 0, mapped by the runtime).
pub fn become_user_ns_root() -> Result<()> {
    let (uid, gid) = (Uid::from_raw(0), Gid::from_raw(0));
    nix::unistd::setresgid(gid, gid, gid).ctx(|| "setresgid(0)".into())?;
    nix::unistd::setresuid(uid, uid, uid).ctx(|| "setresuid(0)".into())
}

/// Resets signal dispositions and execs `program` with the process's args and env. Returns
/// only on failure.
pub fn exec(process: &Process, program: &CString) -> Error {
    let run = || -> Result<std::convert::Infallible> {
        sys::reset_signals().ctx(|| "resetting signals".into())?;
        let to_c = |s: &String| {
            CString::new(s.as_bytes())
                .map_err(|_| Error::Init(format!("{s:?} contains a NUL byte")))
        };
        let args: Vec<CString> = process
            .args()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(to_c)
            .collect::<Result<_>>()?;
        let env: Vec<CString> = process
            .env()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(to_c)
            .collect::<Result<_>>()?;
        // runc's words ("exec format error", "permission denied"): the engine derives the
        // exit code (126) from them.
        nix::unistd::execve(program, &args, &env).map_err(|e| {
            Error::Init(format!(
                "exec: {:?}: {}",
                program.to_string_lossy(),
                e.desc().to_ascii_lowercase()
            ))
        })
    };
    match run() {
        Err(e) => e,
        Ok(never) => match never {},
    }
}
