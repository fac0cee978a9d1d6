//! gorae: the command line of the gorae container platform.
//!
//! `gorae daemon` runs the engine (the Docker Engine API); the container and system commands
//! (`run`, `ps`, `logs`, `exec`, `info`, ...) are its client, with docker's flags, output and
//! exit codes. The image commands (pull, push, images, tag, rmi, image inspect/prune, save,
//! load) go through the daemon when one answers for the data root, and otherwise work on the
//! data root directly, as do import, login, logout and `registry serve`.
//!
//! clap parses the command line; tokio runs the API client and the registry client's
//! concurrent transfers.

mod archive_cmd;
mod cli;
mod container_cmd;
mod daemon_cmd;
mod format;
mod images_cmd;
mod network_cmd;
mod registry_cmd;
mod system_cmd;
mod transfer_cmd;
mod volume_cmd;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match <cli::Cli as clap::Parser>::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(125)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(code) = container_cmd::report(&e) {
                return ExitCode::from(code);
            }
            eprintln!("gorae: {e:#}");
            ExitCode::from(1)
        }
    }
}
