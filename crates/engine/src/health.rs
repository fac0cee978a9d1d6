//! Health checks: while a container with a `Healthcheck` runs, its test is run in it (as
//! `gorae-runc exec`, with the container's own process settings) every interval — every
//! start interval during the start period — and its status follows Docker's rules:
//! "starting" until the first success, "healthy" after a success, "unhealthy" after
//! `retries` failures in a row (failures in the start period do not count). The last five
//! results are kept; each change of status is a `health_status: <status>` event. A container
//! that is not running shows "unhealthy" (as Docker, whose checks stopping make it so) until
//! its next start makes it "starting" again.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::container::{time, Container, Status};
use crate::engine::Engine;
use crate::error::{Error, IoContext, Result};
use crate::types::{ContainerConfig, Health, HealthLogEntry};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
/// Results kept in `State.Health.Log`.
const LOG_ENTRIES: usize = 5;
/// Bytes of a probe's output kept.
const OUTPUT_LIMIT: usize = 4096;

/// A container's health check, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub args: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: i64,
}

/// The check of `config`, or None without one (or with `NONE`).
pub fn settings(config: &ContainerConfig) -> Option<Settings> {
    let hc = config.healthcheck.as_ref()?;
    let test = hc.test.as_deref()?;
    let args = match test {
        [kind, cmd] if kind == "CMD-SHELL" => vec!["/bin/sh".into(), "-c".into(), cmd.clone()],
        [kind, rest @ ..] if kind == "CMD" && !rest.is_empty() => rest.to_vec(),
        _ => return None,
    };
    let dur = |ns: i64, default: Duration| {
        if ns > 0 {
            Duration::from_nanos(ns as u64)
        } else {
            default
        }
    };
    Some(Settings {
        args,
        interval: dur(hc.interval, DEFAULT_INTERVAL),
        timeout: dur(hc.timeout, DEFAULT_TIMEOUT),
        start_period: dur(hc.start_period, Duration::ZERO),
        start_interval: dur(hc.start_interval, DEFAULT_START_INTERVAL),
        retries: if hc.retries > 0 {
            hc.retries
        } else {
            DEFAULT_RETRIES
        },
    })
}

/// Docker's limits on a healthcheck in a create request.
pub fn validate(config: &ContainerConfig) -> Result<()> {
    let Some(hc) = &config.healthcheck else {
        return Ok(());
    };
    for (name, v) in [
        ("Interval", hc.interval),
        ("Timeout", hc.timeout),
        ("StartPeriod", hc.start_period),
        ("StartInterval", hc.start_interval),
    ] {
        if v != 0 && v < 1_000_000 {
            return Err(Error::InvalidParameter(format!(
                "{name} in Healthcheck cannot be less than 1ms"
            )));
        }
    }
    if hc.retries < 0 {
        return Err(Error::InvalidParameter(
            "Retries in Healthcheck cannot be negative".into(),
        ));
    }
    Ok(())
}

/// One result folded into the health state: the new status if it changed.
pub fn record(
    health: &mut Health,
    entry: HealthLogEntry,
    in_start_period: bool,
    retries: i64,
) -> Option<String> {
    let before = health.status.clone();
    if entry.exit_code == 0 {
        health.failing_streak = 0;
        health.status = "healthy".into();
    } else if !in_start_period || health.status != "starting" {
        health.failing_streak += 1;
        if health.failing_streak >= retries {
            health.status = "unhealthy".into();
        }
    }
    health.log.push(entry);
    if health.log.len() > LOG_ENTRIES {
        let extra = health.log.len() - LOG_ENTRIES;
        health.log.drain(..extra);
    }
    (health.status != before).then(|| health.status.clone())
}

/// `State.Health` as inspect and the `health` filter see it: the checks' status while the
/// container runs (or is paused), "unhealthy" once it has stopped.
pub(crate) fn shown(c: &Container, status: Status) -> Option<Health> {
    let mut health = crate::container::lifecycle::lock(&c.health).clone();
    if let Some(h) = health.as_mut() {
        if !status.is_live() {
            h.status = "unhealthy".into();
        }
    }
    health
}

impl Engine {
    /// Starts the checks of a container that has just started (if it has a check).
    pub(crate) fn start_health(&self, c: &Arc<Container>) {
        let Some(settings) = settings(&c.record().config) else {
            return;
        };
        *crate::container::lifecycle::lock(&c.health) = Some(Health {
            status: "starting".into(),
            ..Default::default()
        });
        let weak = self.me.clone();
        let c = c.clone();
        tokio::spawn(async move { check_loop(weak, c, settings).await });
    }

    /// Runs the test once in the container: (exit code, output).
    async fn probe(&self, c: &Container, settings: &Settings) -> Result<(i64, String)> {
        let config = c.dir.join("bundle").join("config.json");
        let spec: Value = serde_json::from_slice(&std::fs::read(&config).at(&config)?)
            .map_err(|e| Error::Internal(format!("{}: {e}", config.display())))?;
        let mut process = spec["process"].clone();
        process["args"] = serde_json::json!(settings.args);
        process["terminal"] = Value::Bool(false);
        if let Some(p) = process.as_object_mut() {
            p.remove("consoleSize");
        }
        let file = c.dir.join(".health-process.json");
        std::fs::write(&file, process.to_string()).at(&file)?;
        let mut cmd = tokio::process::Command::new(&self.config().runtime);
        cmd.arg("--root")
            .arg(self.config().runtime_root())
            .arg("exec")
            .arg("--process")
            .arg(&file)
            .arg(&c.id)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(settings.timeout, cmd.output()).await;
        let _ = std::fs::remove_file(&file);
        let out = match out {
            Err(_) => {
                let secs = settings.timeout.as_secs_f64();
                return Ok((-1, format!("Health check exceeded timeout ({secs}s)")));
            }
            Ok(out) => out.map_err(|e| Error::Internal(format!("health check exec: {e}")))?,
        };
        let mut output = out.stdout;
        output.extend_from_slice(&out.stderr);
        output.truncate(OUTPUT_LIMIT);
        let code = out.status.code().map_or(-1, i64::from);
        Ok((code, String::from_utf8_lossy(&output).into_owned()))
    }
}

async fn check_loop(weak: Weak<Engine>, c: Arc<Container>, settings: Settings) {
    let mut rx = c.progress.subscribe();
    let exits = rx.borrow_and_update().exits;
    let started = Instant::now();
    loop {
        let in_start = started.elapsed() < settings.start_period;
        let delay = if in_start {
            settings.start_interval
        } else {
            settings.interval
        };
        let ended = |p: &crate::container::Progress| p.exits != exits || p.removed;
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = rx.wait_for(ended) => break,
        }
        let Some(engine) = weak.upgrade() else { break };
        match c.status() {
            Status::Running => {}
            Status::Paused => continue,
            _ => break,
        }
        let start = time::now_ns();
        let (exit_code, output) = match engine.probe(&c, &settings).await {
            Ok(r) => r,
            Err(e) => (-1, e.to_string()),
        };
        if ended(&rx.borrow()) {
            break;
        }
        let entry = HealthLogEntry {
            start: time::format_ns(start),
            end: time::format_ns(time::now_ns()),
            exit_code,
            output,
        };
        let in_start = started.elapsed() < settings.start_period;
        let changed = {
            let mut health = crate::container::lifecycle::lock(&c.health);
            let h = health.get_or_insert_with(Default::default);
            record(h, entry, in_start, settings.retries)
        };
        if let Some(status) = changed {
            engine.emit_container(&c, &format!("health_status: {status}"), &[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::HealthConfig;

    fn entry(code: i64) -> HealthLogEntry {
        HealthLogEntry {
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn settings_follow_docker() {
        let mut config = ContainerConfig::default();
        assert!(settings(&config).is_none());
        config.healthcheck = Some(HealthConfig {
            test: Some(vec!["CMD-SHELL".into(), "true".into()]),
            interval: 2_000_000_000,
            ..Default::default()
        });
        let s = settings(&config).unwrap();
        assert_eq!(s.args, ["/bin/sh", "-c", "true"]);
        assert_eq!(s.interval, Duration::from_secs(2));
        assert_eq!((s.timeout, s.retries), (DEFAULT_TIMEOUT, 3));
        config.healthcheck.as_mut().unwrap().test = Some(vec!["NONE".into()]);
        assert!(settings(&config).is_none());
        config.healthcheck.as_mut().unwrap().test = Some(vec!["CMD".into(), "x".into()]);
        assert_eq!(settings(&config).unwrap().args, ["x"]);
        config.healthcheck.as_mut().unwrap().interval = 10;
        assert!(validate(&config).is_err());
    }

    #[test]
    fn status_follows_streaks() {
        let mut h = Health {
            status: "starting".into(),
            ..Default::default()
        };
        assert_eq!(record(&mut h, entry(1), true, 2), None);
        assert_eq!(h.failing_streak, 0, "start period failures do not count");
        assert_eq!(
            record(&mut h, entry(0), true, 2).as_deref(),
            Some("healthy")
        );
        assert_eq!(record(&mut h, entry(1), false, 2), None);
        assert_eq!(
            record(&mut h, entry(1), false, 2).as_deref(),
            Some("unhealthy")
        );
        for _ in 0..10 {
            record(&mut h, entry(1), false, 2);
        }
        assert_eq!(h.log.len(), LOG_ENTRIES);
        assert_eq!(
            record(&mut h, entry(0), false, 2).as_deref(),
            Some("healthy")
        );
        assert_eq!(h.failing_streak, 0);
    }
}
