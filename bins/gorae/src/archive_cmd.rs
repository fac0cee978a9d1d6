//! save, load and import: images as tarballs.

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use gorae_image::archive::{self, ImportOptions, SaveFormat};
use gorae_image::Reference;

use crate::cli::Global;

#[derive(Args)]
pub struct SaveArgs {
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// `docker` (docker save's format, also a valid OCI layout) or `oci`.
    #[arg(long, default_value = "docker")]
    pub format: String,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args)]
pub struct LoadArgs {
    /// Read from this file instead of stdin.
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct ImportArgs {
    /// A Dockerfile instruction to apply (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL,
    /// STOPSIGNAL, VOLUME). Repeatable.
    #[arg(short, long = "change")]
    pub changes: Vec<String>,
    /// A commit message for the image's history.
    #[arg(short, long)]
    pub message: Option<String>,
    /// The rootfs tarball (plain, gzip or zstd), or `-` for stdin.
    pub file: String,
    /// The name to give the image.
    pub reference: Option<String>,
}

pub fn save(g: &Global, args: SaveArgs) -> Result<()> {
    let format = match args.format.as_str() {
        "docker" | "docker-archive" => SaveFormat::Docker,
        "oci" | "oci-archive" => SaveFormat::Oci,
        other => bail!("--format {other:?}: use docker or oci"),
    };
    let store = g.store()?;
    match &args.output {
        Some(path) => {
            // Written beside the target and renamed: a failed save leaves no partial file.
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            let dir = dir.unwrap_or(Path::new("."));
            let mut tmp = tempfile::Builder::new()
                .prefix(".gorae-save-")
                .tempfile_in(dir)
                .with_context(|| format!("creating a file in {}", dir.display()))?;
            {
                let mut out = BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
                archive::save(&store, &args.images, format, &mut out)?;
                out.flush()?;
            }
            tmp.persist(path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!("refusing to write a tar archive to a terminal: use -o FILE or redirect");
            }
            let stdout = std::io::stdout();
            let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
            archive::save(&store, &args.images, format, &mut out)?;
            out.flush()?;
        }
    }
    Ok(())
}

fn open_input(path: Option<&Path>) -> Result<Box<dyn Read>> {
    Ok(match path {
        Some(p) if p != Path::new("-") => Box::new(BufReader::with_capacity(
            1 << 20,
            File::open(p).with_context(|| format!("opening {}", p.display()))?,
        )),
        _ => Box::new(BufReader::with_capacity(1 << 20, std::io::stdin())),
    })
}

pub fn load(g: &Global, args: LoadArgs) -> Result<()> {
    if args.input.is_none() && std::io::stdin().is_terminal() {
        bail!("requested load from stdin, but stdin is a terminal: use -i FILE or redirect");
    }
    let store = g.store()?;
    let mut input = open_input(args.input.as_deref())?;
    let loaded = archive::load(&store, &mut input)?;
    if !args.quiet {
        for r in loaded {
            match r.reference() {
                Some(n) => println!("Loaded image: {}", n.familiar()),
                None => println!("Loaded image ID: {}", r.id),
            }
        }
    }
    Ok(())
}

pub fn import(g: &Global, args: ImportArgs) -> Result<()> {
    let reference = match &args.reference {
        Some(r) => Some(r.parse::<Reference>()?.with_default_tag()),
        None => None,
    };
    let store = g.store()?;
    let path = PathBuf::from(&args.file);
    let mut input = open_input(Some(&path))?;
    let options = ImportOptions {
        reference,
        changes: args.changes,
        message: args.message,
    };
    let record = archive::import(&store, &mut input, &options)?;
    println!("{}", record.id);
    Ok(())
}
