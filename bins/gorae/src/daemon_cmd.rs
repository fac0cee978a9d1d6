//! `gorae daemon`: opens the engine on a data root (one daemon per root: the engine takes
//! the root's lock) and serves the Docker Engine API on its hosts until SIGTERM or SIGINT.
//!
//! Settings come from a TOML file (`-c`: the engine's fields, `hosts`, `insecure_plain_tcp`,
//! `insecure_registries` and a `[tls]` table with `cert`, `key`, `cacert`); flags override
//! it (the global `--insecure-registry` adds to the file's list). When the API is up
//! it prints one line, "gorae daemon: API listening on <hosts>", to stderr: scripts and
//! tests wait for it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use gorae_api::log::{self, Level};
use gorae_api::{Host, Server, ServerConfig, TlsFiles};
use gorae_engine::{Engine, EngineConfig};
use serde::Deserialize;

use crate::cli::Global;

#[derive(Args)]
pub struct DaemonArgs {
    /// Where to serve the API: unix:///path or tcp://host:port. Repeatable
    /// [default: unix://<run dir>/gorae.sock, /run/gorae/gorae.sock for the default root].
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// A TOML config file; flags override what it says.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// error, warn, info or debug (every request).
    #[arg(long = "log-level", value_name = "LEVEL")]
    log_level: Option<String>,
    /// The server's certificate chain (PEM) for tcp hosts.
    #[arg(long = "tls-cert", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The server's private key (PEM).
    #[arg(long = "tls-key", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// The CA whose client certificates may use the API.
    #[arg(long = "tls-cacert", value_name = "FILE")]
    tls_cacert: Option<PathBuf>,
    /// Serve tcp hosts without TLS: anyone who can reach the port is root on this host.
    #[arg(long = "insecure-plain-tcp")]
    insecure_plain_tcp: bool,
}

/// The config file. Engine fields left out keep the values derived from the root.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileConfig {
    root: Option<PathBuf>,
    run_dir: Option<PathBuf>,
    runtime: Option<PathBuf>,
    cgroup_parent: Option<String>,
    log_level: Option<String>,
    hosts: Vec<String>,
    insecure_plain_tcp: bool,
    /// Registries (`host[:port]`) reached over plain http, besides `--insecure-registry`.
    insecure_registries: Vec<String>,
    tls: Option<FileTls>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    cacert: Option<PathBuf>,
}

pub fn run(global: &Global, args: DaemonArgs) -> Result<()> {
    let file = match &args.config {
        Some(path) => read_config(path)?,
        None => FileConfig::default(),
    };
    let mut insecure = global.insecure_registries.clone();
    insecure.extend(file.insecure_registries.iter().cloned());
    let (engine_config, server_config) = settings(global, args, file)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(serve(engine_config, server_config, insecure));
    // Hijacked streams are not drained: they end with the daemon, as docker's do.
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

async fn serve(
    engine_config: EngineConfig,
    server_config: ServerConfig,
    insecure_registries: Vec<String>,
) -> Result<()> {
    // Handlers first, so that a signal right after the ready line is a clean stop.
    let stop = stop_signal()?;
    let root = engine_config.root.clone();
    let engine = Engine::open(engine_config)
        .await
        .with_context(|| format!("opening the engine on {}", root.display()))?;
    engine.images().set_insecure_registries(insecure_registries);
    let server = Server::bind(&server_config, engine.clone()).await?;
    eprintln!(
        "gorae daemon: API listening on {}",
        server.addresses().join(", ")
    );
    server.run(stop).await?;
    // Bridges and the firewall table go with the daemon unless containers still use them.
    engine.shutdown_networks();
    // The empty cgroup parent dirs too, when no container of this engine runs on.
    engine.release_cgroup_parent();
    log::info(format_args!("stopped"));
    Ok(())
}

fn read_config(path: &Path) -> Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}: invalid config", path.display()))
}

/// Flags over the file over the defaults derived from the root.
fn settings(
    global: &Global,
    args: DaemonArgs,
    file: FileConfig,
) -> Result<(EngineConfig, ServerConfig)> {
    let root = global
        .root
        .clone()
        .or(file.root)
        .unwrap_or_else(|| PathBuf::from(gorae_image::DataRoot::DEFAULT));
    let mut engine = EngineConfig::for_root(&root);
    if let Some(run_dir) = file.run_dir {
        engine.run_dir = run_dir;
    }
    if let Some(runtime) = file.runtime {
        engine.runtime = runtime;
    }
    if let Some(parent) = file.cgroup_parent {
        engine.cgroup_parent = parent;
    }
    let level_text = args
        .log_level
        .or(file.log_level)
        .unwrap_or_else(|| "info".into());
    let Some(level) = Level::parse(&level_text) else {
        bail!("log level {level_text:?}: expected error, warn, info or debug");
    };
    log::set_level(level);
    install_engine_log();
    engine.log_level = level_text;

    let host_texts = if args.hosts.is_empty() {
        file.hosts
    } else {
        args.hosts
    };
    let mut hosts = host_texts
        .iter()
        .map(|h| Host::parse(h))
        .collect::<Result<Vec<_>, _>>()?;
    if hosts.is_empty() {
        hosts.push(Host::Unix(engine.default_socket()));
    }
    let file_tls = file.tls.unwrap_or_default();
    let tls_parts = (
        args.tls_cert.or(file_tls.cert),
        args.tls_key.or(file_tls.key),
        args.tls_cacert.or(file_tls.cacert),
    );
    let tls = match tls_parts {
        (None, None, None) => None,
        (Some(cert), Some(key), Some(ca)) => Some(TlsFiles { cert, key, ca }),
        _ => bail!("TLS needs all three of --tls-cert, --tls-key and --tls-cacert"),
    };
    let server = ServerConfig {
        hosts,
        tls,
        insecure_plain_tcp: args.insecure_plain_tcp || file.insecure_plain_tcp,
    };
    Ok((engine, server))
}

/// The engine never prints: its messages come through this hook into the daemon's log.
fn install_engine_log() {
    use gorae_engine::logging::Level as EngineLevel;
    gorae_engine::logging::set_hook(std::sync::Arc::new(|level, message: &str| {
        let level = match level {
            EngineLevel::Error => Level::Error,
            EngineLevel::Warn => Level::Warn,
            EngineLevel::Info => Level::Info,
            EngineLevel::Debug => Level::Debug,
        };
        log::log(level, format_args!("{message}"));
    }));
}

/// Completes on SIGINT or SIGTERM.
fn stop_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => log::info(format_args!("SIGTERM: stopping")),
            _ = int.recv() => log::info(format_args!("SIGINT: stopping")),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn parse(argv: &[&str]) -> (Global, DaemonArgs) {
        let cli = crate::cli::Cli::try_parse_from(argv).unwrap();
        match cli.command {
            crate::cli::Command::Daemon(args) => (cli.global, args),
            _ => panic!("not the daemon command"),
        }
    }

    #[test]
    fn flags_override_the_file() {
        let (global, args) = parse(&[
            "gorae",
            "daemon",
            "--root",
            "/tmp/r",
            "-H",
            "unix:///tmp/a.sock",
            "--log-level",
            "debug",
        ]);
        let file: FileConfig = toml::from_str(
            r#"root = "/ignored"
               cgroup_parent = "custom"
               hosts = ["tcp://127.0.0.1:1"]
               log_level = "warn"
               [tls]
               cert = "c.pem"
               key = "k.pem"
               cacert = "ca.pem""#,
        )
        .unwrap();
        let (engine, server) = settings(&global, args, file).unwrap();
        assert_eq!(engine.root, Path::new("/tmp/r"));
        assert_eq!(engine.run_dir, Path::new("/tmp/r/run"));
        assert_eq!(engine.cgroup_parent, "custom");
        assert_eq!(engine.log_level, "debug");
        assert_eq!(server.hosts, vec![Host::Unix("/tmp/a.sock".into())]);
        assert_eq!(server.tls.unwrap().ca, Path::new("ca.pem"));
        log::set_level(Level::Info);
    }

    #[test]
    fn defaults_and_bad_settings() {
        let (global, args) = parse(&["gorae", "daemon", "--root", "/tmp/r"]);
        let (_, server) = settings(&global, args, FileConfig::default()).unwrap();
        assert_eq!(
            server.hosts,
            vec![Host::Unix("/tmp/r/run/gorae.sock".into())]
        );
        let (global, args) = parse(&["gorae", "daemon", "--tls-cert", "c.pem"]);
        assert!(settings(&global, args, FileConfig::default()).is_err());
        let (global, args) = parse(&["gorae", "daemon", "-H", "tcp://nowhere"]);
        assert!(settings(&global, args, FileConfig::default()).is_err());
        let (global, args) = parse(&["gorae", "daemon", "--log-level", "loud"]);
        assert!(settings(&global, args, FileConfig::default()).is_err());
        assert!(toml::from_str::<FileConfig>("nosuch = 1").is_err());
    }
}
