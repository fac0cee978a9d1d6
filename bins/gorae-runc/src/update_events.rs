//! `update` and `events`, with runc's flags and output.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use gorae_runtime::events::Event;
use gorae_runtime::Runtime;
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

/// `update`'s flags. Values are taken as text so that `-1`, suffixes and bad input get
/// messages naming the flag.
#[derive(Args, Debug, Default)]
pub struct UpdateArgs {
    /// Read the new limits from this OCI LinuxResources JSON file ("-" for stdin); flags
    /// override its values.
    #[arg(short = 'r', long)]
    resources: Option<String>,
    /// Memory limit in bytes (suffixes k, m, g, t; -1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory plus swap limit in bytes (suffixes; -1 for unlimited swap).
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Memory soft limit in bytes (suffixes; -1 for none).
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Kernel memory limit in bytes (cgroup v1; deprecated).
    #[arg(long = "kernel-memory", allow_hyphen_values = true)]
    kernel_memory: Option<String>,
    /// Kernel TCP buffer limit in bytes (cgroup v1).
    #[arg(long = "kernel-memory-tcp", allow_hyphen_values = true)]
    kernel_memory_tcp: Option<String>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-shares", allow_hyphen_values = true)]
    cpu_shares: Option<String>,
    /// CPU CFS quota in microseconds per period (-1 for unlimited).
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    cpu_quota: Option<String>,
    /// CPU CFS period in microseconds.
    #[arg(long = "cpu-period", allow_hyphen_values = true)]
    cpu_period: Option<String>,
    /// CPU realtime runtime in microseconds (-1 for unlimited).
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    cpu_rt_runtime: Option<String>,
    /// CPU realtime period in microseconds.
    #[arg(long = "cpu-rt-period", allow_hyphen_values = true)]
    cpu_rt_period: Option<String>,
    /// CPUs to run on (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory nodes to use (0-3, 0,1).
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Maximum number of processes (-1 for unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<String>,
    /// Block IO weight (10..1000).
    #[arg(long = "blkio-weight", allow_hyphen_values = true)]
    blkio_weight: Option<String>,
    container_id: String,
}

/// `events`' flags.
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Print one stats object and exit.
    #[arg(long)]
    stats: bool,
    /// Time between stats in the stream (Go duration: 500ms, 5s, 1m).
    #[arg(long, default_value = "5s")]
    interval: String,
    container_id: String,
}

/// Bytes from runc's (docker's RAMInBytes) syntax: "1024", "64m", "1.5g", "2GiB"; -1 as is.
pub fn parse_bytes(flag: &str, text: &str) -> Result<i64> {
    let t = text.trim();
    if t == "-1" {
        return Ok(-1);
    }
    if t.starts_with('-') {
        bail!("invalid value for --{flag}: {text:?} (must be -1 or >= 0)");
    }
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => bail!("invalid value for --{flag}: {text:?} (expected bytes like 1024, 64m or 2g)"),
    };
    let n: f64 = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .with_context(|| format!("invalid value for --{flag}: {text:?} (not a number)"))?;
    let bytes = n * mult as f64;
    if bytes >= i64::MAX as f64 {
        bail!("invalid value for --{flag}: {text:?} (too large)");
    }
    Ok(bytes as i64)
}

/// An integer that may be -1 (unlimited) but no other negative number.
fn parse_limit(flag: &str, text: &str) -> Result<i64> {
    let n: i64 = text
        .trim()
        .parse()
        .with_context(|| format!("invalid value for --{flag}: {text:?} (not an integer)"))?;
    if n < -1 {
        bail!("invalid value for --{flag}: {n} (must be -1 or >= 0)");
    }
    Ok(n)
}

/// An integer that must not be negative.
fn parse_unsigned(flag: &str, text: &str) -> Result<u64> {
    let t = text.trim();
    if t.starts_with('-') {
        bail!("invalid value for --{flag}: {t} (must be >= 0)");
    }
    t.parse()
        .with_context(|| format!("invalid value for --{flag}: {text:?} (not an integer)"))
}

/// The resources `update` asks for: the JSON of `-r` (`input` is its text), then every flag
/// given on top. Validates everything; nothing is written here.
pub fn build_resources(args: &UpdateArgs, input: Option<&str>) -> Result<LinuxResources> {
    let mut doc = match input {
        Some(text) => {
            let v: Value = serde_json::from_str(text).context("parsing the --resources JSON")?;
            if !v.is_object() {
                bail!("the --resources JSON must be an object (OCI LinuxResources)");
            }
            // Typed parse first, so a wrong field names itself.
            serde_json::from_value::<LinuxResources>(v.clone())
                .context("the --resources JSON is not an OCI LinuxResources")?;
            v
        }
        None => json!({}),
    };
    let mut set = |section: &str, key: &str, value: Value| {
        let s = &mut doc[section];
        if !s.is_object() {
            *s = json!({});
        }
        s[key] = value;
    };
    let bytes = [
        ("memory", &args.memory, "limit"),
        ("memory-swap", &args.memory_swap, "swap"),
        (
            "memory-reservation",
            &args.memory_reservation,
            "reservation",
        ),
        ("kernel-memory", &args.kernel_memory, "kernel"),
        ("kernel-memory-tcp", &args.kernel_memory_tcp, "kernelTCP"),
    ];
    for (flag, value, key) in bytes {
        if let Some(v) = value {
            set("memory", key, json!(parse_bytes(flag, v)?));
        }
    }
    for (flag, value, key) in [
        ("cpu-quota", &args.cpu_quota, "quota"),
        ("cpu-rt-runtime", &args.cpu_rt_runtime, "realtimeRuntime"),
    ] {
        if let Some(v) = value {
            set("cpu", key, json!(parse_limit(flag, v)?));
        }
    }
    for (flag, value, key) in [
        ("cpu-shares", &args.cpu_shares, "shares"),
        ("cpu-period", &args.cpu_period, "period"),
        ("cpu-rt-period", &args.cpu_rt_period, "realtimePeriod"),
    ] {
        if let Some(v) = value {
            set("cpu", key, json!(parse_unsigned(flag, v)?));
        }
    }
    if let Some(v) = &args.cpuset_cpus {
        set("cpu", "cpus", json!(v));
    }
    if let Some(v) = &args.cpuset_mems {
        set("cpu", "mems", json!(v));
    }
    if let Some(v) = &args.pids_limit {
        set("pids", "limit", json!(parse_limit("pids-limit", v)?));
    }
    if let Some(v) = &args.blkio_weight {
        let w = parse_unsigned("blkio-weight", v)?;
        if w != 0 && !(10..=1000).contains(&w) {
            bail!("invalid value for --blkio-weight: {w} (must be 10..1000)");
        }
        set("blockIO", "weight", json!(w));
    }
    // A negative value in the JSON is as wrong as on the command line.
    for (section, key) in [
        ("memory", "limit"),
        ("memory", "swap"),
        ("memory", "reservation"),
        ("memory", "kernel"),
        ("memory", "kernelTCP"),
        ("cpu", "quota"),
        ("cpu", "realtimeRuntime"),
        ("pids", "limit"),
    ] {
        if let Some(n) = doc[section][key].as_i64() {
            if n < -1 {
                bail!("invalid value for {section}.{key}: {n} (must be -1 or >= 0)");
            }
        }
    }
    serde_json::from_value(doc).context("building the resources")
}

pub fn update(runtime: &Runtime, args: Box<UpdateArgs>) -> Result<()> {
    let input = match args.resources.as_deref() {
        None => None,
        Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the resources JSON from stdin")?;
            Some(s)
        }
        Some(path) => {
            Some(std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?)
        }
    };
    let resources = build_resources(&args, input.as_deref())?;
    runtime.update(&args.container_id, &resources)?;
    Ok(())
}

/// A Go duration: "300ms", "5s", "1m30s", "1.5h"; must be positive.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let bad =
        || anyhow::anyhow!("invalid --interval {text:?} (expected a duration like 5s or 500ms)");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..end].parse().map_err(|_| bad())?;
        rest = &rest[end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * secs;
        rest = &rest[unit_end..];
    }
    let d = Duration::try_from_secs_f64(total).map_err(|_| bad())?;
    if d.is_zero() {
        bail!("invalid --interval {text:?}: must be positive");
    }
    Ok(d)
}

pub fn events(runtime: &Runtime, args: EventsArgs) -> Result<()> {
    let id = args.container_id;
    if args.stats {
        let stats = runtime.stats(&id)?;
        println!("{}", Event::Stats(Box::new(stats)).to_json(&id));
        return Ok(());
    }
    let interval = parse_duration(&args.interval)?;
    let mut out = std::io::stdout().lock();
    let mut write_err = None;
    runtime.events(&id, interval, &mut |event| {
        let r = writeln!(out, "{}", event.to_json(&id)).and_then(|()| out.flush());
        match r {
            Ok(()) => true,
            Err(e) => {
                write_err = Some(e);
                false
            }
        }
    })?;
    match write_err {
        // The reader went away: like runc, stop quietly.
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Some(e) => Err(e).context("writing events"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_take_runc_suffixes() {
        assert_eq!(parse_bytes("memory", "64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("memory", "64MB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("memory", "1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("memory", "2KiB").unwrap(), 2048);
        assert_eq!(parse_bytes("memory", "1024").unwrap(), 1024);
        assert_eq!(parse_bytes("memory", "-1").unwrap(), -1);
        let e = parse_bytes("memory", "-5").unwrap_err().to_string();
        assert!(e.contains("--memory"), "{e}");
        assert!(parse_bytes("memory", "12x").is_err());
        assert!(parse_bytes("memory", "m").is_err());
    }

    #[test]
    fn durations_are_go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn flags_override_the_json_and_only_given_fields_are_set() {
        let args = UpdateArgs {
            memory: Some("64m".into()),
            pids_limit: Some("-1".into()),
            container_id: "c".into(),
            ..Default::default()
        };
        let r = build_resources(
            &args,
            Some(r#"{"memory": {"limit": 1000, "reservation": 500}, "cpu": {"shares": 100}}"#),
        )
        .unwrap();
        let m = r.memory().as_ref().unwrap();
        assert_eq!(m.limit(), Some(64 << 20));
        assert_eq!(m.reservation(), Some(500));
        assert_eq!(m.swap(), None);
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(100));
        assert_eq!(r.pids().as_ref().unwrap().limit(), -1);
        assert!(r.block_io().is_none());
    }

    #[test]
    fn negative_values_name_their_flag() {
        for (flag, args) in [
            (
                "--memory",
                UpdateArgs {
                    memory: Some("-2".into()),
                    ..Default::default()
                },
            ),
            (
                "--pids-limit",
                UpdateArgs {
                    pids_limit: Some("-7".into()),
                    ..Default::default()
                },
            ),
            (
                "--cpu-shares",
                UpdateArgs {
                    cpu_shares: Some("-1".into()),
                    ..Default::default()
                },
            ),
            (
                "--cpu-quota",
                UpdateArgs {
                    cpu_quota: Some("-3".into()),
                    ..Default::default()
                },
            ),
        ] {
            let e = build_resources(&args, None).unwrap_err().to_string();
            assert!(e.contains(flag), "{flag}: {e}");
        }
        let e = build_resources(&UpdateArgs::default(), Some(r#"{"memory": {"limit": -9}}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("memory.limit"), "{e}");
    }
}
