//! `pull --root DIR [--platform OS/ARCH] [--plain] REFERENCE`: the library's pull, for
//! bench/pull.sh until the `gorae pull` command exists.

use gorae_image::registry::{self, ProgressMode, PullOptions, RegistryOptions};
use gorae_image::{Platform, Reference, Store};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut root = None;
    let mut platform = Platform::host();
    let mut progress = ProgressMode::Quiet;
    let mut reference = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--root" => root = args.next(),
            "--platform" => platform = parse_or_exit(args.next().unwrap_or_default()),
            "--plain" => progress = ProgressMode::Plain,
            "--bars" => progress = ProgressMode::Auto,
            _ => reference = Some(arg),
        }
    }
    let (Some(root), Some(reference)) = (root, reference) else {
        eprintln!("usage: pull --root DIR [--platform OS/ARCH] [--plain|--bars] REFERENCE");
        std::process::exit(2);
    };
    let reference: Reference = parse_or_exit(reference);
    let options = PullOptions {
        registry: RegistryOptions {
            progress,
            ..RegistryOptions::default()
        },
        platform,
    };
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| exit(e));
    let result = runtime.block_on(async {
        let store = Store::open(root.as_ref())?;
        registry::pull(&store, &reference, &options).await
    });
    match result {
        Ok(record) => println!("{} {}", record.name, record.manifest.digest),
        Err(e) => exit(e),
    }
}

fn parse_or_exit<T: std::str::FromStr<Err = gorae_image::Error>>(s: String) -> T {
    s.parse().unwrap_or_else(|e| exit(e))
}

fn exit(e: impl std::fmt::Display) -> ! {
    eprintln!("pull: {e}");
    std::process::exit(1)
}
