//! gorae: the command line of the gorae container platform.
//!
//! Today it works on images directly in the data root (no daemon): pull, push, images, tag,
//! rmi, inspect, prune, save, load, import, login, logout. The engine's daemon will own the
//! same data root later, and these commands will then go through it.
//!
//! clap parses the command line; tokio runs the registry client's concurrent transfers.

mod archive_cmd;
mod cli;
mod container_cmd;
mod daemon_cmd;
mod format;
mod images_cmd;
mod registry_cmd;
mod system_cmd;
mod transfer_cmd;

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
