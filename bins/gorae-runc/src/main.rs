//! gorae-runc: runc's command line over the gorae-runtime library, so that podman, containerd
//! and anyone who scripts runc can use it as it is.
//!
//! Small and fast on purpose: one static binary, no async runtime, no threads; the container's
//! init is a fork of this process. clap parses the command line; everything else is the
//! library's. Started as `docker-init` (`docker run --init`), it is a minimal init instead.

mod cli;
mod docker_init;
mod exec_cmd;
mod log;
mod monitor;
mod ps;
mod update_events;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let argv0 = argv.next();
    if docker_init::invoked_as_init(argv0.as_ref()) {
        // Before anything touches the environment the command inherits.
        let args: Vec<_> = argv.collect();
        return ExitCode::from(docker_init::run(&args));
    }
    // Errors are one line for the user; capturing a backtrace for each (anyhow does when
    // RUST_BACKTRACE is set) costs ~15 M instructions in a static binary.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
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
