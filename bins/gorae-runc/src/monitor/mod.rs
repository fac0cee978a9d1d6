//! `gorae-runc monitor`: the small process that holds one container's stdio for the engine,
//! like conmon does for podman. It creates the container from its own process (so the init is
//! its child and it can reap it), logs output in docker's json-file format, serves attach and
//! control sockets, and records the init's exit in `exit.json` before it deletes the
//! container and goes. The contract with the engine is the "monitor protocol" section of
//! design/engine-brief.md.
//!
//! Single-threaded and poll(2)-driven on purpose: the runtime forks the init from this
//! process, and a monitor per container must stay well under 1 MiB of RSS while idle.
//!
//! - [`front`]: the command's front process: forks the monitor, reports its readiness;
//! - [`setup`]: the monitor's first steps, from daemonizing to a created container;
//! - [`event_loop`]: the poll loop over stdio, sockets and signals;
//! - [`stdio`]: the container's end of its stdio;
//! - [`logfile`], [`attach`], [`control`]: the log writer, attach and control servers;
//! - [`exit`]: the exit record and the teardown;
//! - [`sys`]: the few system calls that need `unsafe`.

mod attach;
mod control;
mod event_loop;
mod exit;
mod front;
mod logfile;
mod setup;
mod stdio;
mod sys;

use std::path::PathBuf;

use clap::Args;

/// The flags of `gorae-runc monitor`. The json log path is the global `--log` (clap refuses
/// a subcommand flag of the same name as a global one), so the engine's command line
/// `--root R monitor ... --log PATH` reads as the protocol writes it.
#[derive(Args, Debug, Clone)]
pub struct MonitorArgs {
    /// Bundle directory (holds config.json).
    #[arg(short = 'b', long)]
    pub bundle: PathBuf,
    /// Monitor directory: monitor.pid, exit.json, attach.sock, control.sock.
    #[arg(long)]
    pub dir: PathBuf,
    /// Rotate the json log before it would exceed this many bytes (0: never).
    #[arg(long = "log-max-size", default_value_t = 0)]
    pub log_max_size: u64,
    /// Keep this many log files in all when rotating (1: truncate).
    #[arg(long = "log-max-file", default_value_t = 1)]
    pub log_max_file: u32,
    /// The container has a terminal (process.terminal): hold its pty master.
    #[arg(long)]
    pub tty: bool,
    /// Keep the container's stdin open for attach clients (else it is /dev/null).
    #[arg(long)]
    pub stdin: bool,
    /// Close the container's stdin when the first attached writer closes its end.
    #[arg(long = "stdin-once")]
    pub stdin_once: bool,
    /// Start the container before reporting ready.
    #[arg(long)]
    pub start: bool,
    pub container_id: String,
}

/// Everything the monitor runs with, the command line resolved.
#[derive(Debug, Clone)]
pub struct Options {
    pub state_root: PathBuf,
    pub args: MonitorArgs,
    /// The json-file log, or none.
    pub log: Option<PathBuf>,
}

/// Runs the command: returns the front process's exit code (0 ready, 1 failed). Errors are
/// printed here, as one line, so that nothing goes to the global `--log` file (which is the
/// container's json log for this command).
pub fn run(options: Options) -> u8 {
    match front::run(&options) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("gorae-runc: {message}");
            1
        }
    }
}
