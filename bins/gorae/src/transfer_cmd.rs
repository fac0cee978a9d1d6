//! Commands that talk to registries: pull, push, login, logout.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context, Result};
use clap::Args;
use gorae_image::registry::{self, PullOptions, RegistryOptions};
use gorae_image::{Platform, Reference};

use crate::cli::Global;

#[derive(Args)]
pub struct PullArgs {
    /// The platform to pick from a multi-platform image (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<String>,
    /// Print only the image name.
    #[arg(short, long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(Args)]
pub struct PushArgs {
    #[arg(short, long)]
    pub quiet: bool,
    /// The local image to push.
    pub image: String,
    /// Where to push it, if not to its own name.
    pub destination: Option<String>,
}

#[derive(Args)]
pub struct LoginArgs {
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// Registry host[:port] (default docker.io).
    pub server: Option<String>,
}

#[derive(Args)]
pub struct LogoutArgs {
    pub server: Option<String>,
}

fn registry_options(g: &Global, quiet: bool) -> RegistryOptions {
    RegistryOptions {
        insecure: g.insecure_registries.clone(),
        progress: if quiet {
            registry::ProgressMode::Quiet
        } else {
            registry::ProgressMode::Auto
        },
        ..RegistryOptions::default()
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn pull(g: &Global, args: PullArgs) -> Result<()> {
    let reference: Reference = args.image.parse()?;
    let reference = reference.with_default_tag();
    let platform = match &args.platform {
        Some(p) => p.parse::<Platform>()?,
        None => Platform::host(),
    };
    let store = g.store()?;
    let options = PullOptions {
        registry: registry_options(g, args.quiet),
        platform,
    };
    let before = store
        .images
        .resolve(&reference.to_string())
        .ok()
        .map(|r| r.manifest.digest);
    if !args.quiet {
        let what = reference
            .tag
            .clone()
            .unwrap_or_else(|| reference.manifest_ref());
        eprintln!("{what}: Pulling from {}", reference.repository);
    }
    let record = runtime()?.block_on(registry::pull(&store, &reference, &options))?;
    if !args.quiet {
        let digest = record
            .index
            .as_ref()
            .unwrap_or(&record.manifest)
            .digest
            .clone();
        eprintln!("Digest: {digest}");
        let status = if before.as_ref() == Some(&record.manifest.digest) {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        };
        eprintln!("Status: {status} {}", reference.familiar());
    }
    println!("{reference}");
    Ok(())
}

pub fn push(g: &Global, args: PushArgs) -> Result<()> {
    let destination: Reference = args
        .destination
        .as_deref()
        .unwrap_or(&args.image)
        .parse::<Reference>()?
        .with_default_tag();
    let store = g.store()?;
    if !args.quiet {
        eprintln!("The push refers to repository [{}]", destination.name());
    }
    let options = registry_options(g, args.quiet);
    let digest =
        runtime()?.block_on(registry::push(&store, &args.image, &destination, &options))?;
    let tag = destination.tag_or_latest().unwrap_or("latest");
    println!("{tag}: digest: {digest}");
    Ok(())
}

fn server_of(server: Option<&str>) -> String {
    server
        .map(|s| {
            s.trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string()
        })
        .unwrap_or_else(|| gorae_image::reference::DEFAULT_REGISTRY.to_string())
}

fn prompt(label: &str) -> Result<String> {
    eprint!("{label}: ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub fn login(g: &Global, args: LoginArgs) -> Result<()> {
    let server = server_of(args.server.as_deref());
    let username = match args.username {
        Some(u) => u,
        None if std::io::stdin().is_terminal() => prompt("Username")?,
        None => bail!("--username is required when stdin is not a terminal"),
    };
    let password = match (args.password, args.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => p,
        (None, true) => {
            let mut p = String::new();
            std::io::stdin().lock().read_line(&mut p)?;
            p.trim_end_matches(['\r', '\n']).to_string()
        }
        (None, false) => prompt("Password")?,
    };
    if username.is_empty() || password.is_empty() {
        bail!("username and password must not be empty");
    }
    let store = g.store()?;
    let options = registry_options(g, true);
    let credentials = registry::auth::Credentials { username, password };
    runtime()?.block_on(registry::login(
        &store.root,
        &server,
        &credentials,
        &options,
    ))?;
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(g: &Global, args: LogoutArgs) -> Result<()> {
    let server = server_of(args.server.as_deref());
    let store = g.store()?;
    if registry::logout(&store.root, &server)? {
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(())
}
