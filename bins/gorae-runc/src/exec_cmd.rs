//! `exec`: runc's flags (or a whole OCI process from `--process`) turned into the process the
//! runtime starts in a running container.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use gorae_runtime::{ExecOptions, Runtime};
use oci_spec::runtime::{Capability, Process, User};

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Unix socket to send the pty master to (with -t).
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Working directory in the container.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Set an environment variable (NAME=value); repeatable.
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    tty: bool,
    /// UID[:GID] to run as.
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Additional group ids; repeatable.
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// An OCI process JSON file ("-" for stdin) instead of the flags.
    #[arg(short = 'p', long)]
    process: Option<PathBuf>,
    /// Do not wait for the process.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Write the process's pid here.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// SELinux label (not supported: refused when not empty).
    #[arg(long = "process-label")]
    process_label: Option<String>,
    /// AppArmor profile (not supported: refused when not empty).
    #[arg(long)]
    apparmor: Option<String>,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// Add a capability; repeatable.
    #[arg(short = 'c', long = "cap")]
    cap: Vec<String>,
    /// Pass this many extra descriptors (from 3 up) to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    container_id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn run(runtime: &Runtime, args: ExecArgs) -> Result<u8> {
    for (flag, value) in [
        ("--process-label", &args.process_label),
        ("--apparmor", &args.apparmor),
    ] {
        if value.as_deref().is_some_and(|v| !v.is_empty()) {
            bail!("{flag} is not supported: this runtime has no SELinux/AppArmor support");
        }
    }
    let process = match &args.process {
        Some(path) => read_process(path)?,
        None => process_from_flags(runtime, &args)?,
    };
    let opts = ExecOptions {
        id: args.container_id.clone(),
        process,
        console_socket: args.console_socket.clone(),
        detach: args.detach,
        pid_file: args.pid_file.clone(),
        preserve_fds: args.preserve_fds,
    };
    let code = runtime.exec(&opts)?;
    Ok(u8::try_from(code).unwrap_or(255))
}

fn read_process(path: &std::path::Path) -> Result<Process> {
    let body = if path == std::path::Path::new("-") {
        let mut body = Vec::new();
        use std::io::Read;
        std::io::stdin()
            .take(16 << 20)
            .read_to_end(&mut body)
            .context("reading the process from stdin")?;
        body
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
    };
    let process: Process = serde_json::from_slice(&body)
        .with_context(|| format!("{}: invalid process JSON", path.display()))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!(
            "{}: process.args must name the program to run",
            path.display()
        );
    }
    Ok(process)
}

fn process_from_flags(runtime: &Runtime, args: &ExecArgs) -> Result<Process> {
    if args.command.is_empty() {
        bail!("exec needs a command to run (or --process)");
    }
    let mut process = runtime.container_process(&args.container_id)?;
    process.set_args(Some(args.command.clone()));
    process.set_terminal(Some(args.tty));
    process.set_console_size(None);
    let mut env = process.env().clone().unwrap_or_default();
    for entry in &args.env {
        let Some((name, _)) = entry.split_once('=') else {
            bail!("--env {entry:?}: expected NAME=value")
        };
        env.retain(|e| e.split_once('=').map(|(n, _)| n) != Some(name));
        env.push(entry.clone());
    }
    process.set_env(Some(env));
    if let Some(cwd) = &args.cwd {
        process.set_cwd(cwd.clone());
    }
    if let Some(user) = &args.user {
        process.set_user(parse_user(user, process.user())?);
    }
    if !args.additional_gids.is_empty() {
        let mut user = process.user().clone();
        user.set_additional_gids(Some(args.additional_gids.clone()));
        process.set_user(user);
    }
    if args.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    if !args.cap.is_empty() {
        add_capabilities(&mut process, &args.cap)?;
    }
    Ok(process)
}

fn parse_user(text: &str, base: &User) -> Result<User> {
    let (uid, gid) = match text.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (text, None),
    };
    let mut user = base.clone();
    user.set_uid(
        uid.parse()
            .with_context(|| format!("--user {text:?}: uid must be a number"))?,
    );
    user.set_gid(match gid {
        Some(g) => g
            .parse()
            .with_context(|| format!("--user {text:?}: gid must be a number"))?,
        None => 0,
    });
    Ok(user)
}

/// `--cap` adds to every set, so that the capability survives a non-root user (ambient needs
/// it inheritable and permitted).
fn add_capabilities(process: &mut Process, names: &[String]) -> Result<()> {
    let mut caps = process.capabilities().clone().unwrap_or_default();
    for name in names {
        let upper = name.to_ascii_uppercase();
        let full = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        let cap: Capability = serde_json::from_value(serde_json::Value::String(full.clone()))
            .with_context(|| format!("--cap {name:?}: unknown capability"))?;
        let add = |set: &Option<std::collections::HashSet<Capability>>| {
            let mut set = set.clone().unwrap_or_default();
            set.insert(cap);
            Some(set)
        };
        let (b, e, p, a) = (
            add(caps.bounding()),
            add(caps.effective()),
            add(caps.permitted()),
            add(caps.ambient()),
        );
        caps.set_bounding(b);
        caps.set_effective(e);
        caps.set_permitted(p);
        caps.set_ambient(a);
        let inheritable = add(caps.inheritable());
        caps.set_inheritable(inheritable);
    }
    process.set_capabilities(Some(caps));
    Ok(())
}
