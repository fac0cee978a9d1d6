//! runc's command line: global flags, subcommands and their flags, mapped onto the runtime.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use gorae_runtime::{specgen, CreateOptions, Runtime, Status};

#[derive(Parser, Debug)]
#[command(
    name = "gorae-runc",
    version,
    about = "A runc-compatible OCI runtime",
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct GlobalArgs {
    /// Directory for container state (default /run/gorae-runc; for non-root users
    /// $XDG_RUNTIME_DIR/gorae-runc).
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Also write errors and warnings to this file.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Format of --log: text or json.
    #[arg(long = "log-format", global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Print debug messages.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd to manage cgroups (not supported: gorae-runc writes cgroupfs itself).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// true|false|auto, accepted for runc compatibility; alone it means true. With `spec`
    /// (`spec --rootless`) it writes a config for a rootless container (user namespace, no
    /// network namespace).
    #[arg(long, global = true)]
    pub rootless: Option<String>,
    /// Accepted for runc compatibility; checkpointing is not supported.
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Bundle directory (holds config.json).
    #[arg(short = 'b', long, default_value = ".")]
    bundle: PathBuf,
    /// Write the container's init pid here.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Unix socket to send the console's master fd to.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Switch root with MS_MOVE + chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Do not create a session keyring for the container.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass this many extra descriptors (from 3 up) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    container_id: String,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write a default config.json.
    ///
    /// `spec --rootless` is the global `--rootless` (clap refuses a subcommand flag of the
    /// same name as a global one).
    Spec {
        #[arg(short = 'b', long, default_value = ".")]
        bundle: PathBuf,
    },
    /// Create a container (its program waits for `start`).
    Create(CreateArgs),
    /// Start a created container's program.
    Start { container_id: String },
    /// Create and start a container; wait for it unless --detach.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        #[arg(short = 'd', long)]
        detach: bool,
        #[arg(long, hide = true)]
        keep: bool,
    },
    /// Print a container's state as JSON.
    State { container_id: String },
    /// Send a signal to a container's init (or, with --all, to all its processes).
    Kill {
        container_id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// Delete a container.
    Delete {
        #[arg(short = 'f', long)]
        force: bool,
        container_id: String,
    },
    /// List containers.
    List {
        #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Freeze a container's processes.
    Pause { container_id: String },
    /// Thaw a paused container.
    Resume { container_id: String },
    /// Show a container's processes.
    Ps {
        #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        container_id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Print what this runtime supports (OCI features document).
    Features,
    /// Run a new process in a running container.
    Exec(crate::exec_cmd::ExecArgs),
    /// Change a running container's cgroup limits.
    Update(Box<crate::update_events::UpdateArgs>),
    /// Print a container's resource usage and OOM events.
    Events(crate::update_events::EventsArgs),
    /// Create a container under a monitor process that holds its stdio, logs its output
    /// (to the global --log, in docker's json-file format) and records its exit; exits once
    /// the monitor is ready.
    Monitor(crate::monitor::MonitorArgs),
}

/// runc (urfave/cli) takes long flags with one dash too (`-root`, `-bundle`); clap does not.
/// A `--rootless` without a value (`spec --rootless`, `--rootless spec`) becomes
/// `--rootless=true`, so that the flag does not swallow the word after it.
pub fn normalize_args(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut out = double_dash_long_flags(args);
    for i in 0..out.len() {
        let takes_next = out
            .get(i + 1)
            .and_then(|a| a.to_str())
            .is_some_and(is_rootless_value);
        if out[i] == "--rootless" && !takes_next {
            out[i] = OsString::from("--rootless=true");
        }
    }
    out
}

/// The values runc's `--rootless` takes: `auto` and Go's boolean spellings.
fn is_rootless_value(s: &str) -> bool {
    s == "auto" || rootless_bool(s).is_some()
}

/// Go's `strconv.ParseBool`, which runc applies to `--rootless`.
fn rootless_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn double_dash_long_flags(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    const LONG: [&str; 14] = [
        "root",
        "log",
        "log-format",
        "debug",
        "systemd-cgroup",
        "rootless",
        "criu",
        "bundle",
        "pid-file",
        "console-socket",
        "no-pivot",
        "no-new-keyring",
        "preserve-fds",
        "detach",
    ];
    args.map(|arg| {
        let Some(s) = arg.to_str() else { return arg };
        let name = s
            .strip_prefix('-')
            .filter(|r| !r.starts_with('-'))
            .map(|r| r.split('=').next().unwrap_or(r));
        match name {
            Some(n) if LONG.contains(&n) => OsString::from(format!("-{s}")),
            _ => arg,
        }
    })
    .collect()
}

pub fn dispatch(cli: Cli) -> Result<u8> {
    if cli.global.systemd_cgroup {
        bail!("--systemd-cgroup is not supported: gorae-runc manages cgroupfs directly (give a cgroupsPath instead)");
    }
    if matches!(
        cli.command,
        Command::Create(_) | Command::Run { .. } | Command::Exec(_) | Command::Monitor(_)
    ) {
        gorae_runtime::sealed_exe::protect_exe()?;
    }
    if let Command::Monitor(args) = cli.command {
        return Ok(crate::monitor::run(crate::monitor::Options {
            state_root: state_root(&cli.global),
            log: cli.global.log,
            args,
        }));
    }
    let runtime = Runtime::new(state_root(&cli.global), crate::log::warn);
    match cli.command {
        Command::Spec { bundle } => {
            let rootless = cli.global.rootless.as_deref().and_then(rootless_bool);
            write_spec(&bundle, rootless == Some(true))?
        }
        Command::Create(args) => runtime.create(&create_options(args))?,
        Command::Start { container_id } => runtime.start(&container_id)?,
        Command::Run {
            create,
            detach,
            keep: _,
        } => {
            let code = runtime.run(&create_options(create), detach)?;
            return Ok(u8::try_from(code).unwrap_or(255));
        }
        Command::State { container_id } => {
            let (state, status) = runtime.state(&container_id)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&state.runc_json(status))?
            );
        }
        Command::Kill {
            container_id,
            signal,
            all,
        } => runtime.kill(&container_id, parse_signal(&signal)?, all)?,
        Command::Delete {
            force,
            container_id,
        } => runtime.delete(&container_id, force)?,
        Command::List { format, quiet } => list(&runtime, &format, quiet)?,
        Command::Pause { container_id } => runtime.pause(&container_id)?,
        Command::Resume { container_id } => runtime.resume(&container_id)?,
        Command::Ps {
            format,
            container_id,
            ps_args,
        } => {
            let pids = runtime.pids(&container_id)?;
            if format == "json" {
                println!("{}", serde_json::to_string(&pids)?);
            } else {
                print!("{}", crate::ps::table(&pids, &ps_args)?);
            }
        }
        Command::Exec(args) => return crate::exec_cmd::run(&runtime, args),
        Command::Features => println!("{}", serde_json::to_string_pretty(&specgen::features())?),
        Command::Update(args) => crate::update_events::update(&runtime, args)?,
        Command::Events(args) => crate::update_events::events(&runtime, args)?,
        Command::Monitor(_) => {}
    }
    Ok(0)
}

/// runc's rule: root uses /run/gorae-runc, anyone else their runtime dir.
fn state_root(global: &GlobalArgs) -> PathBuf {
    if let Some(root) = &global.root {
        return root.clone();
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from(gorae_runtime::state::DEFAULT_ROOT);
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("gorae-runc"),
        _ => std::env::temp_dir().join(format!("gorae-runc-{}", nix::unistd::geteuid())),
    }
}

fn create_options(args: CreateArgs) -> CreateOptions {
    CreateOptions {
        id: args.container_id,
        bundle: args.bundle,
        pid_file: args.pid_file,
        console_socket: args.console_socket,
        no_pivot: args.no_pivot,
        no_new_keyring: args.no_new_keyring,
        preserve_fds: args.preserve_fds,
    }
}

fn write_spec(bundle: &std::path::Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("{}: file exists; remove it first", path.display());
    }
    let doc = specgen::to_json(&specgen::default_spec(rootless))?;
    let body = serde_json::to_string_pretty(&doc)?;
    std::fs::write(&path, body + "\n").with_context(|| format!("writing {}", path.display()))
}

/// `KILL`, `SIGKILL` or `9`.
pub fn parse_signal(text: &str) -> Result<nix::sys::signal::Signal> {
    use nix::sys::signal::Signal;
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n).with_context(|| format!("unknown signal {text:?}"));
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .with_context(|| format!("unknown signal {text:?}"))
}

fn list(runtime: &Runtime, format: &str, quiet: bool) -> Result<()> {
    let all = runtime.list()?;
    if quiet {
        for (state, _) in &all {
            println!("{}", state.id);
        }
        return Ok(());
    }
    if format == "json" {
        let docs: Vec<_> = all.iter().map(|(s, st)| s.runc_json(*st)).collect();
        println!("{}", serde_json::to_string(&docs)?);
        return Ok(());
    }
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        .map(String::from)
        .to_vec()];
    for (state, status) in &all {
        let pid = if *status == Status::Stopped {
            0
        } else {
            state.pid
        };
        rows.push(vec![
            state.id.clone(),
            pid.to_string(),
            status.as_str().to_string(),
            state.bundle.display().to_string(),
            state.created.clone(),
            if state.owner.is_empty() {
                "root".into()
            } else {
                state.owner.clone()
            },
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| format!("{cell:<w$}", w = widths[i]))
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        let args = [
            "gorae-runc",
            "-root",
            "/r",
            "create",
            "-bundle=/b",
            "-d",
            "x",
        ]
        .map(OsString::from);
        let out = normalize_args(args.into_iter());
        assert_eq!(
            out,
            [
                "gorae-runc",
                "--root",
                "/r",
                "create",
                "--bundle=/b",
                "-d",
                "x"
            ]
            .map(OsString::from)
        );
    }

    fn parse(args: &[&str]) -> Cli {
        let args = normalize_args(args.iter().map(OsString::from));
        <Cli as Parser>::try_parse_from(args).expect("parses")
    }

    #[test]
    fn the_command_line_is_consistent() {
        // clap checks its definition only in debug builds, when a command is first parsed.
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn rootless_alone_means_true_before_or_after_the_subcommand() {
        for args in [
            &["gorae-runc", "spec", "--rootless"][..],
            &["gorae-runc", "--rootless", "spec"],
            &["gorae-runc", "-rootless", "spec", "-b", "/b"],
            &["gorae-runc", "spec", "-b", "/b", "-rootless"],
        ] {
            let cli = parse(args);
            assert_eq!(cli.global.rootless.as_deref(), Some("true"), "{args:?}");
            assert!(matches!(cli.command, Command::Spec { .. }), "{args:?}");
        }
    }

    #[test]
    fn rootless_keeps_its_value() {
        let cli = parse(&["gorae-runc", "--rootless", "false", "spec"]);
        assert_eq!(cli.global.rootless.as_deref(), Some("false"));
        let cli = parse(&["gorae-runc", "kill", "--rootless", "auto", "x"]);
        assert_eq!(cli.global.rootless.as_deref(), Some("auto"));
        assert!(
            matches!(cli.command, Command::Kill { ref container_id, .. } if container_id == "x")
        );
        let cli = parse(&["gorae-runc", "--rootless=auto", "spec"]);
        assert_eq!(cli.global.rootless.as_deref(), Some("auto"));
        let cli = parse(&["gorae-runc", "spec"]);
        assert_eq!(cli.global.rootless, None);
    }

    #[test]
    fn signals_parse_by_name_and_number() {
        use nix::sys::signal::Signal;
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("NOPE").is_err());
    }
}
