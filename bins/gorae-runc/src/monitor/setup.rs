//! The monitor's setup, in the forked process: detach from the caller, listen, create the
//! container with the monitor's pipes (or a console socket) as its stdio, optionally start it,
//! write monitor.pid, report ready. A failure undoes every step before it is reported.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use gorae_runtime::{CreateOptions, Runtime};
use nix::fcntl::{open, OFlag};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;

use super::attach::AttachServer;
use super::control::ControlServer;
use super::event_loop::Monitor;
use super::exit::{ATTACH_SOCKET, CONSOLE_SOCKET, CONTROL_SOCKET, PID_FILE};
use super::logfile::LogFile;
use super::stdio::Io;
use super::Options;

/// The signals the loop takes from a signalfd: children's exits, and the ones it forwards.
const SIGNALS: [Signal; 4] = [
    Signal::SIGCHLD,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
];

/// The monitor process's whole life. Never returns.
pub fn monitor_main(options: &Options, ready: OwnedFd) -> ! {
    match setup(options) {
        Ok(monitor) => {
            let _ = nix::unistd::write(&ready, b"ok\n");
            drop(ready);
            monitor.run()
        }
        Err(e) => {
            let line = format!("error {}\n", e.replace('\n', " "));
            let _ = nix::unistd::write(&ready, line.as_bytes());
            gorae_runtime::sys::exit_now(1)
        }
    }
}

fn ignore_warning(_: &str) {}

/// What a failed setup has to undo.
struct Undo<'a> {
    dir: &'a Path,
    made_dir: bool,
    made_log: Option<PathBuf>,
    container: Option<(&'a Runtime, &'a str)>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some((runtime, id)) = self.container {
            let _ = runtime.delete(id, true);
            reap_all();
        }
        super::exit::remove_runtime_files(self.dir);
        if let Some(log) = &self.made_log {
            let _ = std::fs::remove_file(log);
        }
        if self.made_dir {
            let _ = std::fs::remove_dir(self.dir);
        }
    }
}

fn reap_all() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

fn setup(options: &Options) -> Result<Monitor, String> {
    let args = &options.args;
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    stdio_to_null()?;
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| format!("prctl(PR_SET_CHILD_SUBREAPER): {e}"))?;
    let signals = block_signals()?;
    let dir = args.dir.as_path();
    // Declared before `undo`, which borrows it.
    let runtime = Runtime::new(&options.state_root, ignore_warning);
    let made_dir = make_dir(dir)?;
    let mut undo = Undo {
        dir,
        made_dir,
        made_log: None,
        container: None,
        armed: true,
    };
    refuse_live_monitor(dir)?;
    super::exit::remove_runtime_files(dir);
    let _ = std::fs::remove_file(dir.join(super::exit::EXIT_FILE));
    let control = ControlServer::new(listen(&dir.join(CONTROL_SOCKET))?);
    let attach = AttachServer::new(listen(&dir.join(ATTACH_SOCKET))?, args.tty);
    let log = match &options.log {
        Some(path) => {
            if !path.exists() {
                undo.made_log = Some(path.clone());
            }
            let log = LogFile::open(path, args.log_max_size, args.log_max_file)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Some(log)
        }
        None => None,
    };
    let id = args.container_id.as_str();
    let io = create_container(&runtime, options)?;
    // From here on a failure deletes the container.
    let init = finish_create(&runtime, id, &mut undo, args.start)?;
    write_pid_file(dir)?;
    let oom = runtime
        .state(id)
        .ok()
        .and_then(|(s, _)| s.cgroup)
        .and_then(|c| c.oom_watcher().ok());
    undo.armed = false;
    drop(undo);
    Ok(Monitor {
        id: args.container_id.clone(),
        dir: args.dir.clone(),
        stdin_once: args.stdin_once,
        started: args.start,
        runtime,
        init,
        io,
        log,
        attach,
        control,
        signals,
        oom,
        oom_seen: false,
        exit: None,
    })
}

/// After `create`: the init's pid, and the container started if asked.
fn finish_create<'a>(
    runtime: &'a Runtime,
    id: &'a str,
    undo: &mut Undo<'a>,
    start: bool,
) -> Result<i32, String> {
    undo.container = Some((runtime, id));
    let (state, _) = runtime.state(id).map_err(|e| e.to_string())?;
    if start {
        runtime
            .start(id)
            .map_err(|e| format!("starting container {id}: {e}"))?;
    }
    Ok(state.pid)
}

/// Detaches from the caller's stdio, which may be pipes the caller reads to their end.
fn stdio_to_null() -> Result<(), String> {
    let null = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| format!("/dev/null: {e}"))?;
    set_stdio(&null, &null, &null)
}

fn set_stdio(stdin: &OwnedFd, stdout: &OwnedFd, stderr: &OwnedFd) -> Result<(), String> {
    nix::unistd::dup2_stdin(stdin.as_fd()).map_err(|e| format!("dup2 stdin: {e}"))?;
    nix::unistd::dup2_stdout(stdout.as_fd()).map_err(|e| format!("dup2 stdout: {e}"))?;
    nix::unistd::dup2_stderr(stderr.as_fd()).map_err(|e| format!("dup2 stderr: {e}"))
}

fn block_signals() -> Result<SignalFd, String> {
    let mut set = SigSet::empty();
    for s in SIGNALS {
        set.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|e| format!("sigprocmask: {e}"))?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("signalfd: {e}"))
}

/// Creates the monitor directory (0700) if needed; true if this call made it.
fn make_dir(dir: &Path) -> Result<bool, String> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(false);
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(true)
}

/// Another monitor whose monitor.pid names a live process owns the directory.
fn refuse_live_monitor(dir: &Path) -> Result<(), String> {
    let path = dir.join(PID_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let mut fields = text.split_whitespace();
    let pid = fields.next().and_then(|p| p.parse::<i32>().ok());
    let start = fields.next().and_then(|s| s.parse::<u64>().ok());
    if let (Some(pid), Some(start)) = (pid, start) {
        if gorae_runtime::state::process_start_time(pid) == Some(start) {
            return Err(format!(
                "{}: a monitor (pid {pid}) is already running there",
                dir.display()
            ));
        }
    }
    Ok(())
}

/// A listening socket, mode 0600 (made under umask 077, so that no one else can connect
/// before the chmod), non-blocking.
fn listen(path: &Path) -> Result<UnixListener, String> {
    let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o077));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(|e| format!("{}: {e}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(listener)
}

/// Runs the runtime's create with the container's stdio in place: pipes on fds 0-2 for the
/// init to inherit (runc's pass-through), or a console socket for the pty master.
fn create_container(runtime: &Runtime, options: &Options) -> Result<Io, String> {
    let args = &options.args;
    let mut create = CreateOptions {
        id: args.container_id.clone(),
        bundle: args.bundle.clone(),
        ..Default::default()
    };
    if args.tty {
        let path = args.dir.join(CONSOLE_SOCKET);
        let listener = listen(&path)?;
        create.console_socket = Some(path.clone());
        let created = runtime.create(&create).map_err(|e| e.to_string());
        let _ = std::fs::remove_file(&path);
        created?;
        let master = receive_console(&listener)
            .inspect_err(|_| {
                let _ = runtime.delete(&args.container_id, true);
                reap_all();
            })
            .map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(Io::tty(master, args.stdin));
    }
    let null = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| format!("/dev/null: {e}"))?;
    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"));
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (in_r, in_w) = if args.stdin {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        (null.try_clone().map_err(|e| format!("dup: {e}"))?, None)
    };
    set_stdio(&in_r, &out_w, &err_w)?;
    let created = runtime.create(&create).map_err(|e| e.to_string());
    set_stdio(&null, &null, &null)?;
    created?;
    Ok(Io::pipes(out_r, err_r, in_w))
}

/// The pty master the init sent over the console socket. The runtime connected and the init
/// sent it before `create` returned, so it is already queued.
fn receive_console(listener: &UnixListener) -> Result<OwnedFd, String> {
    let (stream, _) = listener
        .accept()
        .map_err(|e| format!("no console connection: {e}"))?;
    let _ = stream.set_nonblocking(true);
    super::sys::recv_fd(stream.as_fd())
        .map_err(|e| format!("receiving the console: {e}"))?
        .ok_or_else(|| "the console message carried no descriptor".to_string())
}

/// monitor.pid: "<pid> <start time>\n", so the engine can tell this monitor from a process
/// that got its pid later.
fn write_pid_file(dir: &Path) -> Result<(), String> {
    let pid = std::process::id() as i32;
    let start = gorae_runtime::state::process_start_time(pid).unwrap_or(0);
    let tmp = dir.join(".monitor.pid.tmp");
    let path = dir.join(PID_FILE);
    std::fs::write(&tmp, format!("{pid} {start}\n"))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("{}: {e}", path.display()))
}
