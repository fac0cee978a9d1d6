//! The command tree, spelled like docker's (`gorae images`, `gorae image ls`, ...).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use gorae_image::{DataRoot, Store};

use crate::{
    archive_cmd, container_cmd, daemon_cmd, images_cmd, network_cmd, registry_cmd, system_cmd,
    transfer_cmd, volume_cmd,
};

#[derive(Parser)]
#[command(
    name = "gorae",
    version,
    about = "gorae: containers, images and registries"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Clone)]
pub struct Global {
    /// Data root: images, layers and containers live here [default: /var/lib/gorae]. For
    /// `registry serve`, the registry's storage directory instead.
    #[arg(long, global = true, env = "GORAE_ROOT")]
    pub root: Option<PathBuf>,
    /// A registry (host[:port]) to reach over plain http. Repeatable. localhost always may.
    #[arg(long = "insecure-registry", global = true, value_name = "HOST")]
    pub insecure_registries: Vec<String>,
    /// The daemon to talk to (unix:///path or tcp://host:port) [default: the data root's
    /// socket].
    #[arg(short = 'H', long = "host", env = "GORAE_HOST")]
    pub host: Option<String>,
    #[command(flatten)]
    pub tls: container_cmd::TlsArgs,
}

impl Global {
    pub fn store(&self) -> Result<Store> {
        let root = self
            .root
            .clone()
            .unwrap_or_else(|| PathBuf::from(DataRoot::DEFAULT));
        Ok(Store::open(&root)?)
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Download an image from a registry.
    Pull(transfer_cmd::PullArgs),
    /// Upload an image to a registry.
    Push(transfer_cmd::PushArgs),
    /// List images.
    Images(images_cmd::ListArgs),
    /// Give an image another name.
    Tag(images_cmd::TagArgs),
    /// Remove images.
    Rmi(images_cmd::RemoveArgs),
    /// Write images to a tar archive (docker save format, or OCI).
    Save(archive_cmd::SaveArgs),
    /// Read images from a tar archive written by save (docker's or gorae's, or OCI).
    Load(archive_cmd::LoadArgs),
    /// Make a one-layer image from a rootfs tarball.
    Import(archive_cmd::ImportArgs),
    /// Save credentials for a registry.
    Login(transfer_cmd::LoginArgs),
    /// Forget credentials for a registry.
    Logout(transfer_cmd::LogoutArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Run an OCI distribution registry.
    #[command(subcommand)]
    Registry(registry_cmd::RegistryCommand),
    #[command(flatten)]
    Containers(container_cmd::Command),
    #[command(flatten)]
    System(system_cmd::Command),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(volume_cmd::VolumeCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(network_cmd::NetworkCommand),
    /// Run the engine: serve the Docker Engine API until SIGTERM or SIGINT.
    Daemon(daemon_cmd::DaemonArgs),
}

#[derive(Subcommand)]
pub enum ImageCommand {
    Pull(transfer_cmd::PullArgs),
    Push(transfer_cmd::PushArgs),
    #[command(alias = "list")]
    Ls(images_cmd::ListArgs),
    Tag(images_cmd::TagArgs),
    #[command(alias = "remove")]
    Rm(images_cmd::RemoveArgs),
    Save(archive_cmd::SaveArgs),
    Load(archive_cmd::LoadArgs),
    Import(archive_cmd::ImportArgs),
    /// Show images' details as JSON.
    Inspect(images_cmd::InspectArgs),
    /// Remove unused images, blobs and layers.
    Prune(images_cmd::PruneArgs),
    /// Re-hash every stored blob and report any that do not match their digest.
    Verify,
    /// Mount an image's layers read-only at a directory.
    Mount(images_cmd::MountArgs),
    /// Unmount what `image mount` mounted.
    Unmount(images_cmd::UnmountArgs),
}

pub fn dispatch(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => {
            container_cmd::images::pull(g, a)
        }
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => {
            container_cmd::images::push(g, a)
        }
        Command::Login(a) => transfer_cmd::login(g, a),
        Command::Logout(a) => transfer_cmd::logout(g, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => {
            container_cmd::images::list(g, a)
        }
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => container_cmd::images::tag(g, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => {
            container_cmd::images::remove(g, a)
        }
        Command::Image(ImageCommand::Inspect(a)) => container_cmd::images::inspect(g, a),
        Command::Image(ImageCommand::Prune(a)) => container_cmd::images::prune(g, a),
        Command::Image(ImageCommand::Verify) => images_cmd::verify(g),
        Command::Image(ImageCommand::Mount(a)) => images_cmd::mount(g, a),
        Command::Image(ImageCommand::Unmount(a)) => images_cmd::unmount(g, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => {
            container_cmd::images::save(g, a)
        }
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => {
            container_cmd::images::load(g, a)
        }
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => archive_cmd::import(g, a),
        Command::Registry(c) => registry_cmd::dispatch(g, c),
        Command::Containers(c) => container_cmd::dispatch(g, c),
        Command::System(c) => system_cmd::dispatch(g, c),
        Command::Volume(c) => volume_cmd::dispatch(g, c),
        Command::Network(c) => network_cmd::dispatch(g, c),
        Command::Daemon(a) => daemon_cmd::run(g, a),
    }
}
