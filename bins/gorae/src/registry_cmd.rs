//! `gorae registry serve`: the OCI distribution registry server (crates/registry).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use gorae_registry::config::LogLevel;
use gorae_registry::server::Server;
use gorae_registry::Config;

use crate::cli::Global;

#[derive(Subcommand)]
pub enum RegistryCommand {
    /// Serve the registry until SIGINT or SIGTERM. Flags override the config file.
    /// Storage: `--root` (or GORAE_ROOT) if given, else the config's `root`
    /// (default /var/lib/gorae/registry).
    Serve(ServeArgs),
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:5000].
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// A TOML config file (see the registry's config documentation).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Log level: error, warn, info or debug (every request).
    #[arg(long = "log-level", value_parser = parse_level)]
    log_level: Option<LogLevel>,
}

fn parse_level(text: &str) -> Result<LogLevel, String> {
    match text {
        "error" => Ok(LogLevel::Error),
        "warn" => Ok(LogLevel::Warn),
        "info" => Ok(LogLevel::Info),
        "debug" => Ok(LogLevel::Debug),
        _ => Err(format!("{text:?}: expected error, warn, info or debug")),
    }
}

pub fn dispatch(global: &Global, command: RegistryCommand) -> Result<()> {
    match command {
        RegistryCommand::Serve(args) => serve(global, args),
    }
}

fn serve(global: &Global, args: ServeArgs) -> Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(root) = &global.root {
        config.root = root.clone();
    }
    if let Some(addr) = args.addr {
        config.addr = addr;
    }
    if let Some(level) = args.log_level {
        config.log = level;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let server = Server::bind(config).await?;
        server.run(stop_signal()).await?;
        Ok(())
    })
}

/// Completes on SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the default action (exit) still stops the registry.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
