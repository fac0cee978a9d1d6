//! The container commands (`run`, `ps`, `logs`, `exec`, ... and `gorae container *`), spoken
//! to the daemon through the Docker Engine API client, with docker's flags, output and exit
//! codes.
//!
//! Daemon discovery is docker's: `-H`/`--host` or `GORAE_HOST`, else the socket of the data
//! root's daemon. Errors print as the docker CLI prints them ("Error response from daemon:
//! ..."); [`report`] gives `main` the exit status (125 when the daemon cannot be reached or a
//! `run`/`create`/`exec` fails before the container runs).

mod cp;
pub mod create;
mod escape;
mod image_cmds;
pub mod images;
mod logs;
mod manage;
mod parse;
mod ps;
mod run;
mod stats;
pub mod template;
mod tty;

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use gorae_api::client::{Client, ClientError, Host};
use gorae_engine::EngineConfig;

use crate::cli::Global;

/// An error that decides the exit status; its message (if any) is printed as is.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// Exits with `code` and no further message (the output already said it).
pub fn exit(code: u8) -> anyhow::Error {
    Exit {
        code,
        message: String::new(),
    }
    .into()
}

/// Turns any error into an exit with `code`, keeping its docker-like message; a daemon that
/// cannot be reached is always 125.
pub fn with_code(code: u8, e: impl Into<anyhow::Error>) -> anyhow::Error {
    let e: anyhow::Error = e.into();
    if e.downcast_ref::<Exit>().is_some() {
        return e;
    }
    let code = match e.downcast_ref::<ClientError>() {
        Some(c) if c.is_connect() => 125,
        _ => code,
    };
    Exit {
        code,
        message: message(&e),
    }
    .into()
}

fn message(e: &anyhow::Error) -> String {
    match e.downcast_ref::<ClientError>() {
        Some(c) => c.to_string(),
        None => format!("{e:#}"),
    }
}

/// Prints an error of the container commands as docker would and returns the exit status;
/// `None` for other errors (main prints those its own way).
pub fn report(e: &anyhow::Error) -> Option<u8> {
    if let Some(exit) = e.downcast_ref::<Exit>() {
        if !exit.message.is_empty() {
            eprintln!("{}", exit.message);
        }
        return Some(exit.code);
    }
    let client = e.downcast_ref::<ClientError>()?;
    eprintln!("{client}");
    Some(if client.is_connect() { 125 } else { 1 })
}

/// The daemon's address: `-H`, `GORAE_HOST`, else the data root's default socket.
pub fn host(g: &Global) -> Result<Host> {
    if let Some(h) = &g.host {
        return Ok(Host::parse(h)?);
    }
    let root = g
        .root
        .clone()
        .unwrap_or_else(|| PathBuf::from(gorae_image::DataRoot::DEFAULT));
    Ok(Host::Unix(EngineConfig::for_root(&root).default_socket()))
}

pub fn client(g: &Global) -> Result<Client> {
    client_for(g, host(g)?)
}

/// A client of `host`, with TLS for a tcp host when the TLS flags ask for it.
pub fn client_for(g: &Global, host: Host) -> Result<Client> {
    let client = Client::new(host.clone());
    let t = &g.tls;
    if !matches!(host, Host::Tcp(_))
        || !(t.verify || t.ca.is_some() || t.cert.is_some() || t.key.is_some())
    {
        return Ok(client);
    }
    let dir = std::env::var_os("GORAE_CERT_PATH")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".gorae")))
        .unwrap_or_else(|| PathBuf::from("."));
    let pick =
        |given: &Option<PathBuf>, file: &str| given.clone().unwrap_or_else(|| dir.join(file));
    let config = gorae_api::client::tls_config(
        &pick(&t.ca, "ca.pem"),
        &pick(&t.cert, "cert.pem"),
        &pick(&t.key, "key.pem"),
    )?;
    Ok(client.with_tls(config))
}

/// docker's TLS flags for a tcp daemon (which always asks for a client certificate).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TlsArgs {
    /// Use TLS and verify the daemon (tcp hosts). Certificates default to
    /// $GORAE_CERT_PATH (or ~/.gorae)/{ca,cert,key}.pem.
    #[arg(long = "tlsverify", env = "GORAE_TLS_VERIFY")]
    pub verify: bool,
    /// Trust only daemons whose certificate this CA signed.
    #[arg(long = "tlscacert", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// The client certificate to present.
    #[arg(long = "tlscert", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key.
    #[arg(long = "tlskey", value_name = "FILE")]
    pub key: Option<PathBuf>,
}

/// Runs a command's future on a small runtime. Blocking stdin readers may still be parked
/// when the command ends: the runtime is shut down without waiting for them.
pub fn block_on<F: std::future::Future<Output = Result<()>>>(f: F) -> Result<()> {
    sigpipe::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(f);
    rt.shutdown_background();
    result
}

/// A client command whose reader went away (`gorae ps | head`) ends quietly, as C programs
/// and the docker CLI do, instead of failing (or panicking in `println!`) on EPIPE. Commands
/// that stream into a socket (attach, exec, cp uploads, load) go back to ignoring SIGPIPE
/// first: a unix socket write to a daemon that closed must be an error they handle, not a
/// kill. The daemon never runs this.
pub mod sigpipe {
    use nix::sys::signal::{signal, SigHandler, Signal};

    pub fn default() {
        set(SigHandler::SigDfl);
    }

    pub fn ignore() {
        set(SigHandler::SigIgn);
    }

    fn set(handler: SigHandler) {
        // SAFETY: SIG_DFL and SIG_IGN install no handler code, so nothing runs in signal
        // context; the call only changes this process's disposition of SIGPIPE.
        let _ = unsafe { signal(Signal::SIGPIPE, handler) };
    }
}

/// The top-level container commands (`gorae run`, `gorae ps`, ...).
#[derive(Subcommand)]
pub enum Command {
    /// Create and run a new container from an image.
    #[command(disable_help_flag = true)]
    Run(Box<run::RunArgs>),
    /// Create a new container.
    #[command(disable_help_flag = true)]
    Create(Box<run::CreateArgs>),
    /// Start one or more stopped containers.
    Start(run::StartArgs),
    /// Attach local standard input, output, and error streams to a running container.
    Attach(run::AttachArgs),
    /// List containers.
    Ps(ps::PsArgs),
    /// Fetch the logs of a container.
    Logs(logs::LogsArgs),
    /// Execute a command in a running container.
    Exec(run::ExecArgs),
    /// Stop one or more running containers.
    Stop(manage::StopArgs),
    /// Restart one or more containers.
    Restart(manage::StopArgs),
    /// Kill one or more running containers.
    Kill(manage::KillArgs),
    /// Remove one or more containers.
    Rm(manage::RmArgs),
    /// Return low-level information on containers or images.
    Inspect(manage::InspectArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(stats::StatsArgs),
    /// Display the running processes of a container.
    Top(manage::TopArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(cp::CpArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(manage::NamesArgs),
    /// Get real time events from the server.
    Events(logs::EventsArgs),
    /// Pause all processes within one or more containers.
    Pause(manage::NamesArgs),
    /// Unpause all processes within one or more containers.
    Unpause(manage::NamesArgs),
    /// Rename a container.
    Rename(manage::RenameArgs),
    /// Update configuration of one or more containers.
    Update(manage::UpdateArgs),
    /// List port mappings or a specific mapping for the container.
    Port(manage::PortArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerCommand),
}

/// `gorae container ...`.
#[derive(Subcommand)]
pub enum ContainerCommand {
    #[command(disable_help_flag = true)]
    Run(Box<run::RunArgs>),
    #[command(disable_help_flag = true)]
    Create(Box<run::CreateArgs>),
    Start(run::StartArgs),
    Attach(run::AttachArgs),
    #[command(alias = "ps", alias = "list")]
    Ls(ps::PsArgs),
    Logs(logs::LogsArgs),
    Exec(run::ExecArgs),
    Stop(manage::StopArgs),
    Restart(manage::StopArgs),
    Kill(manage::KillArgs),
    #[command(alias = "remove")]
    Rm(manage::RmArgs),
    Inspect(manage::InspectArgs),
    Stats(stats::StatsArgs),
    Top(manage::TopArgs),
    Cp(cp::CpArgs),
    Wait(manage::NamesArgs),
    Pause(manage::NamesArgs),
    Unpause(manage::NamesArgs),
    Rename(manage::RenameArgs),
    Update(manage::UpdateArgs),
    Port(manage::PortArgs),
    /// Remove all stopped containers.
    Prune(manage::PruneArgs),
}

pub fn dispatch(g: &Global, command: Command) -> Result<()> {
    let c = client(g)?;
    let command = match command {
        Command::Container(sub) => sub,
        Command::Run(a) => ContainerCommand::Run(a),
        Command::Create(a) => ContainerCommand::Create(a),
        Command::Start(a) => ContainerCommand::Start(a),
        Command::Attach(a) => ContainerCommand::Attach(a),
        Command::Ps(a) => ContainerCommand::Ls(a),
        Command::Logs(a) => ContainerCommand::Logs(a),
        Command::Exec(a) => ContainerCommand::Exec(a),
        Command::Stop(a) => ContainerCommand::Stop(a),
        Command::Restart(a) => ContainerCommand::Restart(a),
        Command::Kill(a) => ContainerCommand::Kill(a),
        Command::Rm(a) => ContainerCommand::Rm(a),
        Command::Inspect(mut a) => {
            a.any_object = true;
            ContainerCommand::Inspect(a)
        }
        Command::Stats(a) => ContainerCommand::Stats(a),
        Command::Top(a) => ContainerCommand::Top(a),
        Command::Cp(a) => ContainerCommand::Cp(a),
        Command::Wait(a) => ContainerCommand::Wait(a),
        Command::Events(a) => return block_on(logs::events(c, a)),
        Command::Pause(a) => ContainerCommand::Pause(a),
        Command::Unpause(a) => ContainerCommand::Unpause(a),
        Command::Rename(a) => ContainerCommand::Rename(a),
        Command::Update(a) => ContainerCommand::Update(a),
        Command::Port(a) => ContainerCommand::Port(a),
    };
    block_on(container(c, command))
}

async fn container(c: Client, command: ContainerCommand) -> Result<()> {
    use ContainerCommand as C;
    match command {
        C::Run(a) => run::run(c, *a).await,
        C::Create(a) => run::create(c, *a).await,
        C::Start(a) => run::start(c, a).await,
        C::Attach(a) => run::attach(c, a).await,
        C::Ls(a) => ps::ps(c, a).await,
        C::Logs(a) => logs::logs(c, a).await,
        C::Exec(a) => run::exec(c, a).await,
        C::Stop(a) => manage::stop(c, a, "stop").await,
        C::Restart(a) => manage::stop(c, a, "restart").await,
        C::Kill(a) => manage::kill(c, a).await,
        C::Rm(a) => manage::rm(c, a).await,
        C::Inspect(a) => manage::inspect(c, a).await,
        C::Stats(a) => stats::stats(c, a).await,
        C::Top(a) => manage::top(c, a).await,
        C::Cp(a) => cp::cp(c, a).await,
        C::Wait(a) => manage::wait(c, a).await,
        C::Pause(a) => manage::simple(c, a, "pause").await,
        C::Unpause(a) => manage::simple(c, a, "unpause").await,
        C::Rename(a) => manage::rename(c, a).await,
        C::Update(a) => manage::update(c, a).await,
        C::Port(a) => manage::port(c, a).await,
        C::Prune(a) => manage::prune(c, a).await,
    }
}

/// A path segment for a container or image name (names may hold `/` and `:`).
pub fn seg(name: &str) -> String {
    gorae_api::client::query_escape(name)
}

/// docker's HumanSize: decimal units, 4 significant digits ("4.26MB", "1.5kB").
pub fn human_size(bytes: f64) -> String {
    scaled(bytes, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB", "EB"], 4)
}

/// docker's HumanSizeWithPrecision(_, 3), for stats' network and block I/O.
pub fn human_size3(bytes: f64) -> String {
    scaled(bytes, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB", "EB"], 3)
}

/// docker's BytesSize: binary units ("1.5MiB", "7.63GiB").
pub fn bytes_size(bytes: f64) -> String {
    scaled(
        bytes,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"],
        4,
    )
}

fn scaled(mut value: f64, base: f64, units: &[&str], precision: usize) -> String {
    let mut i = 0;
    while value >= base && i + 1 < units.len() {
        value /= base;
        i += 1;
    }
    format!("{}{}", template::go_g(value, precision), units[i])
}

/// Unix nanoseconds as Go's `2006-01-02T15:04:05.000000000Z07:00` in UTC.
pub fn rfc3339_nano_fixed(nanos: i128) -> String {
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let frac = nanos.rem_euclid(1_000_000_000);
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:09}Z")
}

/// Unix seconds as Go's default time format, `2006-01-02 15:04:05 -0700 MST`, in UTC.
pub fn go_time(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} +0000 UTC")
}

fn civil(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_prints_them() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(4_260_000.0), "4.26MB");
        assert_eq!(human_size(4_265_000.0), "4.265MB");
        assert_eq!(bytes_size(1_572_864.0), "1.5MiB");
        assert_eq!(bytes_size(8_196_000_000.0), "7.633GiB");
        assert_eq!(human_size3(1_234.0), "1.23kB");
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339_nano_fixed(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nano_fixed(1_733_572_800_123_456_789),
            "2024-12-07T12:00:00.123456789Z"
        );
        assert_eq!(go_time(951_782_400), "2000-02-29 00:00:00 +0000 UTC");
        assert_eq!(parse::days_from_civil(2000, 2, 29) * 86400, 951_782_400);
    }

    #[test]
    fn exit_codes() {
        let e: anyhow::Error = ClientError::Daemon {
            status: 404,
            message: "No such container: x".into(),
        }
        .into();
        let e = with_code(125, e);
        let exit = e.downcast_ref::<Exit>().unwrap();
        assert_eq!(exit.code, 125);
        assert_eq!(
            exit.message,
            "Error response from daemon: No such container: x"
        );
        let e: anyhow::Error = ClientError::Connect {
            host: "unix:///x".into(),
            source: std::io::ErrorKind::NotFound.into(),
        }
        .into();
        assert_eq!(with_code(1, e).downcast_ref::<Exit>().unwrap().code, 125);
    }
}
