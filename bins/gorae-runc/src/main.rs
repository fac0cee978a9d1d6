//! gorae-runc: runc's command line over the gorae-runtime library, so that podman, containerd
//! and anyone who scripts runc can use it as it is.
//!
//! Small and fast on purpose: one static binary, no async runtime, no threads; the container's
//! init is a fork of this process. clap parses the command line; everything else is the
//! library's.

mod cli;
mod log;
mod ps;
mod update_events;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::normalize_args(std::env::args_os());
    let cli = match <cli::Cli as clap::Parser>::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    log::init(&cli.global);
    match cli::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            log::error(&format!("{e:#}"));
            ExitCode::from(1)
        }
    }
}
