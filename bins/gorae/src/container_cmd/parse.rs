//! Parsers for docker's flag values: byte sizes (`512m`), Go durations (`1m30s`), log
//! timestamps (`10m`, RFC 3339, Unix seconds), ulimits, restart policies, env files, `--mount`.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use gorae_engine::types::{Mount, PortBinding, RestartPolicy, TmpfsOptions, Ulimit};

/// docker's RAMInBytes: a number, an optional unit (b, k, m, g, t, p; binary), optionally
/// followed by "b" or "ib", any case: `512m`, `1.5GiB`, `100`.
pub fn ram_in_bytes(text: &str) -> Result<i64> {
    let invalid = || anyhow!("invalid size: '{text}'");
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let unit = unit.trim_start_matches(' ');
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let multiplier: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(invalid()),
    };
    let bytes = number * multiplier;
    if !bytes.is_finite() || bytes > i64::MAX as f64 {
        return Err(invalid());
    }
    Ok(bytes as i64)
}

/// Go's time.ParseDuration, in nanoseconds: `1h30m`, `1.5s`, `300ms`, `0`.
pub fn go_duration(text: &str) -> Result<i64> {
    let invalid = || anyhow!("time: invalid duration \"{text}\"");
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().map_err(|_| invalid())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => bail!("time: missing unit in duration \"{text}\""),
            other => bail!("time: unknown unit \"{other}\" in duration \"{text}\""),
        };
        rest = &rest[u..];
        total += value * scale;
    }
    if total > i64::MAX as f64 {
        return Err(invalid());
    }
    Ok(if negative {
        -(total as i64)
    } else {
        total as i64
    })
}

fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

fn seconds_dot_nanos(nanos: i128) -> String {
    format!(
        "{}.{:09}",
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000)
    )
}

/// docker's GetTimestamp for `--since`/`--until`: a Go duration before now, Unix seconds
/// (`1700000000.5`), or a date/time (RFC 3339, or `2006-01-02[T15:04[:05]]` in UTC). Returns
/// "seconds.nanoseconds" as the API takes it.
pub fn timestamp(text: &str) -> Result<String> {
    timestamp_at(text, now_nanos())
}

fn timestamp_at(text: &str, now: i128) -> Result<String> {
    if text != "0" {
        if let Ok(d) = go_duration(text) {
            return Ok(seconds_dot_nanos(now - d as i128));
        }
    }
    let numeric = text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if numeric && text.bytes().filter(|&b| b == b'.').count() <= 1 && !text.is_empty() {
        let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
        let frac: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        return Ok(format!(
            "{}.{frac}",
            if secs.is_empty() { "0" } else { secs }
        ));
    }
    let nanos = parse_date_time(text)
        .ok_or_else(|| anyhow!("failed to parse value as time or duration: \"{text}\""))?;
    Ok(seconds_dot_nanos(nanos))
}

/// `YYYY-MM-DD`, optionally `THH:MM`, `:SS`, `.fraction`, and `Z` or `±HH:MM`; UTC if no zone.
fn parse_date_time(text: &str) -> Option<i128> {
    let num = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (date, time) = match text.split_once(['T', 't', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut ymd = date.splitn(3, '-');
    let (y, m, d) = (num(ymd.next()?)?, num(ymd.next()?)?, num(ymd.next()?)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, m, d) * 86400;
    let mut nanos = 0i64;
    if let Some(time) = time {
        let (clock, offset) = split_zone(time)?;
        let (clock, frac) = clock.split_once('.').unwrap_or((clock, ""));
        let parts: Vec<&str> = clock.split(':').collect();
        if parts.len() < 2 || parts.len() > 3 {
            return None;
        }
        let h = num(parts[0])?;
        let mi = num(parts[1])?;
        let s = parts.get(2).map_or(Some(0), |s| num(s))?;
        if h > 23 || mi > 59 || s > 60 {
            return None;
        }
        if !frac.is_empty() {
            let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
            nanos = num(&digits)?;
        }
        secs += h * 3600 + mi * 60 + s - offset;
    }
    Some(secs as i128 * 1_000_000_000 + nanos as i128)
}

/// Splits `15:04:05.1+09:00` into the clock and the zone's offset in seconds.
fn split_zone(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        return Some((clock, 0));
    }
    if let Some(i) = time.rfind(['+', '-']) {
        let (clock, zone) = time.split_at(i);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone[1..].split_once(':')?;
        let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
        return Some((clock, sign * (h * 3600 + m * 60)));
    }
    Some((time, 0))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// `--ulimit nofile=1024:2048` (hard defaults to soft).
pub fn ulimit(text: &str) -> Result<Ulimit> {
    let (name, limits) = text
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid ulimit argument: {text}"))?;
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let parse = |v: &str| {
        v.parse::<i64>()
            .with_context(|| format!("invalid ulimit argument: {text}"))
    };
    let (soft, hard) = (parse(soft)?, parse(hard)?);
    if soft > hard {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// `--restart no|always|unless-stopped|on-failure[:N]`.
pub fn restart_policy(text: &str) -> Result<RestartPolicy> {
    let (name, count) = match text.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (text, None),
    };
    let maximum_retry_count = match (name, count) {
        ("on-failure", Some(c)) => c
            .parse()
            .with_context(|| format!("invalid restart policy: maximum retry count {c:?}"))?,
        ("no" | "always" | "unless-stopped" | "on-failure" | "", None) => 0,
        (_, Some(_)) => bail!("invalid restart policy format: maximum retry count cannot be used with restart policy '{name}'"),
        _ => bail!("invalid restart policy format: no such policy: {name}"),
    };
    Ok(RestartPolicy {
        name: name.to_string(),
        maximum_retry_count,
    })
}

/// One `-e`: `K=V` kept, a bare `K` takes the value of the CLI's environment (dropped when
/// unset, as docker does).
pub fn env_entry(entry: &str) -> Option<String> {
    if entry.contains('=') {
        return Some(entry.to_string());
    }
    std::env::var(entry).ok().map(|v| format!("{entry}={v}"))
}

/// An `--env-file`'s lines: blank lines and `#` comments skipped, bare names from the
/// environment.
pub fn env_file(content: &str, path: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (n, line) in content.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line.split_once('=').map_or(line, |(k, _)| k);
        if name.is_empty() || name.contains(char::is_whitespace) {
            bail!("{path}:{}: variable '{name}' contains whitespaces", n + 1);
        }
        out.extend(env_entry(line));
    }
    Ok(out)
}

/// `key=value` pairs (labels, log options); a bare key gets "".
pub fn key_values(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (item.clone(), String::new()),
        })
        .collect()
}

fn bool_option(key: &str, value: Option<&str>) -> Result<bool> {
    match value {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(v) => bail!("invalid value for {key}: {v}"),
    }
}

/// `--mount type=bind,source=/a,target=/b,readonly` (also volume and tmpfs).
pub fn mount(text: &str) -> Result<Mount> {
    let mut m = Mount {
        kind: "volume".into(),
        ..Mount::default()
    };
    let mut tmpfs = TmpfsOptions::default();
    let mut bind_options = serde_json::Map::new();
    let mut volume_options = serde_json::Map::new();
    for field in text.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let need =
            || value.ok_or_else(|| anyhow!("invalid field '{field}' must be a key=value pair"));
        match key.as_str() {
            "type" => m.kind = need()?.to_string(),
            "source" | "src" => m.source = need()?.to_string(),
            "target" | "destination" | "dst" => m.target = need()?.to_string(),
            "readonly" | "ro" => m.read_only = bool_option(&key, value)?,
            "consistency" => m.consistency = Some(need()?.to_string()),
            "bind-propagation" => {
                bind_options.insert("Propagation".into(), need()?.into());
            }
            "bind-recursive" | "bind-nonrecursive" => {}
            "volume-nocopy" => {
                let nocopy = bool_option(&key, value)?;
                volume_options.insert("NoCopy".into(), nocopy.into());
            }
            "volume-label" => {
                let (k, v) = need()?.split_once('=').unwrap_or((need()?, ""));
                let labels = volume_options
                    .entry("Labels")
                    .or_insert_with(|| serde_json::json!({}));
                labels[k] = v.into();
            }
            "volume-opt" => {
                let (k, v) = need()?.split_once('=').unwrap_or((need()?, ""));
                let driver = volume_options
                    .entry("DriverConfig")
                    .or_insert_with(|| serde_json::json!({}));
                // Null (no options yet) indexes as an empty object.
                driver["Options"][k] = v.into();
            }
            "volume-driver" => {
                let driver = volume_options
                    .entry("DriverConfig")
                    .or_insert_with(|| serde_json::json!({}));
                driver["Name"] = need()?.into();
            }
            "volume-subpath" => {
                volume_options.insert("Subpath".into(), need()?.into());
            }
            "tmpfs-size" => tmpfs.size_bytes = ram_in_bytes(need()?)?,
            "tmpfs-mode" => {
                tmpfs.mode = u32::from_str_radix(need()?, 8)
                    .with_context(|| format!("invalid value for tmpfs-mode: {field}"))?
            }
            _ => bail!("unexpected key '{key}' in '{field}'"),
        }
    }
    if m.target.is_empty() {
        bail!("target is required");
    }
    if !bind_options.is_empty() {
        m.bind_options = Some(bind_options.into());
    }
    if !volume_options.is_empty() {
        m.volume_options = Some(volume_options.into());
    }
    if m.kind == "tmpfs" {
        if !m.source.is_empty() {
            bail!("source is not supported for tmpfs mounts");
        }
        m.tmpfs_options = Some(tmpfs);
    }
    Ok(m)
}

/// `--device /dev/x[:/dev/y[:rwm]]` as docker's DeviceMapping.
pub fn device(text: &str) -> Result<serde_json::Value> {
    let parts: Vec<&str> = text.split(':').collect();
    let (host, container, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if !p.starts_with('/') => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => bail!("invalid device specification: {text}"),
    };
    if !host.starts_with('/') || perms.is_empty() || !perms.chars().all(|c| "rwm".contains(c)) {
        bail!("invalid device specification: {text}");
    }
    Ok(serde_json::json!({
        "PathOnHost": host, "PathInContainer": container, "CgroupPermissions": perms,
    }))
}

/// `80` or `80/udp` → `80/tcp`, `80/udp`.
pub fn port_key(text: &str) -> Result<String> {
    let (port, proto) = text.split_once('/').unwrap_or((text, "tcp"));
    if port.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp" | "sctp") {
        bail!("invalid port specification: \"{text}\"");
    }
    Ok(format!("{port}/{proto}"))
}

/// `-p [ip:][hostPort:]containerPort[/proto]`.
pub fn publish(text: &str) -> Result<(String, PortBinding)> {
    let (rest, container) = match text.rsplit_once(':') {
        Some((rest, c)) => (Some(rest), c),
        None => (None, text),
    };
    let key = port_key(container)?;
    let (host_ip, host_port) = match rest {
        None => ("", ""),
        Some(rest) => match rest.rsplit_once(':') {
            Some((ip, port)) => (ip.trim_start_matches('[').trim_end_matches(']'), port),
            None => ("", rest),
        },
    };
    if !host_port.is_empty() && host_port.parse::<u16>().is_err() {
        bail!("invalid hostPort: {host_port}");
    }
    Ok((
        key,
        PortBinding {
            host_ip: host_ip.to_string(),
            host_port: host_port.to_string(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_reads_them() {
        assert_eq!(ram_in_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(ram_in_bytes("100").unwrap(), 100);
        assert_eq!(ram_in_bytes("64K").unwrap(), 64 << 10);
        assert_eq!(ram_in_bytes("10mb").unwrap(), 10 << 20);
        assert_eq!(ram_in_bytes("7b").unwrap(), 7);
        for bad in ["", "m", "12x", "1..5m", "-1"] {
            assert!(ram_in_bytes(bad).is_err(), "{bad}");
        }
        assert_eq!(
            ram_in_bytes("lots").unwrap_err().to_string(),
            "invalid size: 'lots'"
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("0").unwrap(), 0);
        assert_eq!(go_duration("30s").unwrap(), 30_000_000_000);
        assert_eq!(go_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(go_duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(go_duration("300ms").unwrap(), 300_000_000);
        assert_eq!(go_duration("2us").unwrap(), 2000);
        assert_eq!(go_duration("-5s").unwrap(), -5_000_000_000);
        for bad in ["", "5", "s", "5x", "1h30"] {
            assert!(go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps() {
        let now = 1_000_000_000_000_000_000i128; // 1e9 s
        assert_eq!(timestamp_at("10m", now).unwrap(), "999999400.000000000");
        assert_eq!(
            timestamp_at("1700000000", now).unwrap(),
            "1700000000.000000000"
        );
        assert_eq!(
            timestamp_at("1700000000.5", now).unwrap(),
            "1700000000.500000000"
        );
        assert_eq!(timestamp_at("0", now).unwrap(), "0.000000000");
        assert_eq!(
            timestamp_at("1970-01-01T00:01:00Z", now).unwrap(),
            "60.000000000"
        );
        assert_eq!(
            timestamp_at("1970-01-01T09:00:00.25+09:00", now).unwrap(),
            "0.250000000"
        );
        assert_eq!(timestamp_at("1970-01-02", now).unwrap(), "86400.000000000");
        assert_eq!(
            timestamp_at("1970-01-01T00:02", now).unwrap(),
            "120.000000000"
        );
        assert!(timestamp_at("yesterday", now).is_err());
    }

    #[test]
    fn ulimits_and_restart() {
        let u = ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nofile", 1024, 2048));
        let u = ulimit("nproc=64").unwrap();
        assert_eq!((u.soft, u.hard), (64, 64));
        assert!(ulimit("nofile=2:1").is_err());
        assert!(ulimit("nofile").is_err());
        let p = restart_policy("on-failure:3").unwrap();
        assert_eq!((p.name.as_str(), p.maximum_retry_count), ("on-failure", 3));
        assert_eq!(restart_policy("always").unwrap().name, "always");
        assert!(restart_policy("always:3").is_err());
        assert!(restart_policy("sometimes").is_err());
    }

    #[test]
    fn env_files() {
        std::env::set_var("GORAE_TEST_ENV_FILE_VAR", "from-env");
        let content =
            "# comment\n\nA=1\n  B=two words\nGORAE_TEST_ENV_FILE_VAR\nGORAE_UNSET_VAR_X\n";
        assert_eq!(
            env_file(content, "f").unwrap(),
            vec!["A=1", "B=two words", "GORAE_TEST_ENV_FILE_VAR=from-env"]
        );
        assert!(env_file("BAD NAME=1\n", "f").is_err());
    }

    #[test]
    fn devices_and_ports() {
        assert_eq!(device("/dev/fuse").unwrap()["CgroupPermissions"], "rwm");
        let d = device("/dev/sda:/dev/xvda:r").unwrap();
        assert_eq!(
            (
                d["PathInContainer"].as_str(),
                d["CgroupPermissions"].as_str()
            ),
            (Some("/dev/xvda"), Some("r"))
        );
        assert_eq!(
            device("/dev/null:rw").unwrap()["PathInContainer"],
            "/dev/null"
        );
        assert!(device("relative").is_err());
        assert_eq!(port_key("53/udp").unwrap(), "53/udp");
        assert!(port_key("http").is_err());
        let (k, b) = publish("127.0.0.1:8080:80").unwrap();
        assert_eq!(
            (k.as_str(), b.host_ip.as_str(), b.host_port.as_str()),
            ("80/tcp", "127.0.0.1", "8080")
        );
        let (k, b) = publish("8443:443/tcp").unwrap();
        assert_eq!(
            (k.as_str(), b.host_ip.as_str(), b.host_port.as_str()),
            ("443/tcp", "", "8443")
        );
        let (_, b) = publish("80").unwrap();
        assert_eq!(b.host_port, "");
        let (_, b) = publish("[::1]:80:80").unwrap();
        assert_eq!(b.host_ip, "::1");
        assert!(publish("x:80").is_err());
    }

    #[test]
    fn mounts() {
        let m = mount("type=bind,source=/a,target=/b,readonly").unwrap();
        assert_eq!(
            (
                m.kind.as_str(),
                m.source.as_str(),
                m.target.as_str(),
                m.read_only
            ),
            ("bind", "/a", "/b", true)
        );
        let m = mount("type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1777").unwrap();
        let t = m.tmpfs_options.unwrap();
        assert_eq!((t.size_bytes, t.mode), (64 << 20, 0o1777));
        let m = mount("type=bind,src=/a,dst=/b,ro=false,bind-propagation=rshared").unwrap();
        assert!(!m.read_only);
        assert_eq!(m.bind_options.unwrap()["Propagation"], "rshared");
        assert_eq!(mount("src=vol,dst=/v").unwrap().kind, "volume");
        let m = mount(
            "src=v1,dst=/v,volume-nocopy,volume-label=a=1,volume-driver=local,volume-opt=o=x",
        )
        .unwrap();
        assert_eq!(
            m.volume_options.unwrap(),
            serde_json::json!({"NoCopy": true, "Labels": {"a": "1"},
                "DriverConfig": {"Name": "local", "Options": {"o": "x"}}})
        );
        assert!(mount("type=bind,source=/a").is_err());
        assert!(mount("type=bind,bogus=1,dst=/x").is_err());
    }
}
