//! The image's run-time defaults merged under the request's config, by Docker's rules: the
//! request wins field by field; Env and Labels are merged key by key, ExposedPorts and
//! Volumes are unions; an Entrypoint in the request resets the image's Cmd; a Healthcheck
//! inherits the image's test and durations it leaves at zero.

use gorae_image::manifest::{ContainerConfig as ImageRunConfig, Healthcheck as ImageHealth};

use crate::error::{Error, Result};
use crate::types::{ContainerConfig, HealthConfig};

pub fn merge(req: &mut ContainerConfig, image: &ImageRunConfig) {
    if req.user.is_empty() {
        req.user = image.user.clone().unwrap_or_default();
    }
    if req.working_dir.is_empty() {
        req.working_dir = image.working_dir.clone().unwrap_or_default();
    }
    if req.stop_signal.as_deref().unwrap_or("").is_empty() {
        req.stop_signal = image.stop_signal.clone().filter(|s| !s.is_empty());
    }
    merge_env(req, image.env.as_deref().unwrap_or_default());
    if let Some(labels) = &image.labels {
        let mine = req.labels.get_or_insert_with(Default::default);
        for (k, v) in labels {
            mine.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if let Some(ports) = &image.exposed_ports {
        let mine = req.exposed_ports.get_or_insert_with(Default::default);
        for (k, v) in ports {
            mine.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if let Some(volumes) = &image.volumes {
        let mine = req.volumes.get_or_insert_with(Default::default);
        for (k, v) in volumes {
            mine.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if req.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if req.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            req.cmd = image.cmd.clone();
        }
        if req.entrypoint.is_none() {
            req.entrypoint = image.entrypoint.clone();
        }
    } else if req.entrypoint.as_deref() == Some(&[String::new()][..]) {
        // `--entrypoint ""`: no entrypoint at all, and no image Cmd either.
        req.entrypoint = Some(Vec::new());
    }
    if req.shell.is_none() {
        req.shell = image.shell.clone();
    }
    req.healthcheck = merge_health(req.healthcheck.take(), image.healthcheck.as_ref());
}

fn merge_env(req: &mut ContainerConfig, image_env: &[String]) {
    let env = req.env.get_or_insert_with(Vec::new);
    for entry in image_env {
        let key = entry.split('=').next().unwrap_or(entry);
        if !env.iter().any(|e| e.split('=').next() == Some(key)) {
            env.push(entry.clone());
        }
    }
}

fn merge_health(mine: Option<HealthConfig>, image: Option<&ImageHealth>) -> Option<HealthConfig> {
    let Some(image) = image else { return mine };
    let mut mine = mine.unwrap_or_default();
    if mine.test.as_ref().is_none_or(|t| t.is_empty()) {
        mine.test = image.test.clone();
    }
    let inherit = |v: &mut i64, from: Option<i64>| {
        if *v == 0 {
            *v = from.unwrap_or(0);
        }
    };
    inherit(&mut mine.interval, image.interval);
    inherit(&mut mine.timeout, image.timeout);
    inherit(&mut mine.retries, image.retries);
    inherit(&mut mine.start_period, image.start_period);
    inherit(&mut mine.start_interval, image.start_interval);
    Some(mine)
}

/// The process Docker runs: Entrypoint followed by Cmd, as (path, args).
pub fn command(config: &ContainerConfig) -> Result<(String, Vec<String>)> {
    let mut all: Vec<String> = config.entrypoint.clone().unwrap_or_default();
    all.extend(config.cmd.clone().unwrap_or_default());
    if all.is_empty() || all[0].is_empty() {
        return Err(Error::InvalidParameter("No command specified".into()));
    }
    let path = all.remove(0);
    Ok((path, all))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageRunConfig {
        serde_json::from_value(serde_json::json!({
            "Env": ["PATH=/bin", "A=image"], "Cmd": ["sh"], "Entrypoint": ["/init"],
            "WorkingDir": "/w", "User": "nobody", "Labels": {"l": "image", "m": "image"},
            "StopSignal": "SIGQUIT", "ExposedPorts": {"80/tcp": {}},
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5}
        }))
        .unwrap()
    }

    #[test]
    fn request_wins_and_maps_merge() {
        let mut req = ContainerConfig {
            env: Some(vec!["A=mine".into()]),
            labels: Some([("l".to_string(), "mine".to_string())].into()),
            cmd: Some(vec!["echo".into(), "hi".into()]),
            ..Default::default()
        };
        merge(&mut req, &image());
        assert_eq!(req.env.as_deref().unwrap(), ["A=mine", "PATH=/bin"]);
        let labels = req.labels.unwrap();
        assert_eq!(
            (labels["l"].as_str(), labels["m"].as_str()),
            ("mine", "image")
        );
        assert_eq!(req.entrypoint.as_deref().unwrap(), ["/init"]);
        assert_eq!(req.cmd.as_deref().unwrap(), ["echo", "hi"]);
        assert_eq!(
            (req.user.as_str(), req.working_dir.as_str()),
            ("nobody", "/w")
        );
        assert_eq!(req.stop_signal.as_deref(), Some("SIGQUIT"));
        assert!(req.exposed_ports.unwrap().contains_key("80/tcp"));
        assert_eq!(req.healthcheck.unwrap().interval, 5);
    }

    #[test]
    fn entrypoint_resets_image_cmd() {
        let mut req = ContainerConfig {
            entrypoint: Some(vec!["date".into()]),
            ..Default::default()
        };
        merge(&mut req, &image());
        assert_eq!(command(&req).unwrap(), ("date".to_string(), vec![]));
        let mut req = ContainerConfig::default();
        merge(&mut req, &image());
        assert_eq!(
            command(&req).unwrap(),
            ("/init".to_string(), vec!["sh".to_string()])
        );
        let mut req = ContainerConfig {
            entrypoint: Some(vec![String::new()]),
            ..Default::default()
        };
        merge(&mut req, &image());
        assert!(command(&req).is_err());
    }
}
