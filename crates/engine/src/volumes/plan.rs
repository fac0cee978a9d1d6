//! Which volumes a container mounts, from its create request, and the host config the spec
//! is built from once they are resolved to directories.
//!
//! Docker's sources, in its order of precedence: `HostConfig.Binds` entries whose source is
//! not an absolute path (`name:/path[:ro,nocopy]`), `HostConfig.Mounts` of type volume
//! (without a source: anonymous), then `Config.Volumes` (the image's `VOLUME`s and `-v /path`),
//! which are anonymous volumes unless something else is mounted at the same path.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec;
use crate::types::{ContainerConfig, HostConfig, Mount};

/// One volume a container mounts: part of its record.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct VolumeMount {
    pub name: String,
    pub destination: String,
    /// The volume's `_data`, for inspect's `Source`.
    pub source: String,
    pub read_only: bool,
    /// Created for this container (`rm -v` and `--rm` remove it with the container).
    pub anonymous: bool,
    /// Fill the volume from the image when it is empty (not `nocopy`).
    pub copy: bool,
    /// Inspect's `Mode`: the bind's options, "z" for a named volume without any.
    pub mode: String,
}

/// A volume mount before its volume is chosen: `name` is None for an anonymous one.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub name: Option<String>,
    pub destination: String,
    pub read_only: bool,
    pub copy: bool,
    pub mode: String,
    /// Labels for the volume if this creates it (`--mount volume-label=`).
    pub labels: Option<BTreeMap<String, String>>,
    /// The local driver's options for the volume if this creates it (`volume-opt=`).
    pub options: Option<BTreeMap<String, String>>,
}

/// The container's volume mounts, checked (names, paths, drivers, duplicates).
pub fn plan(config: &ContainerConfig, host: &HostConfig) -> Result<Vec<Planned>> {
    if let Some(from) = host.volumes_from.as_ref().filter(|f| !f.is_empty()) {
        return Err(Error::NotImplemented(format!(
            "--volumes-from is not supported yet: {}",
            from.join(", ")
        )));
    }
    if !matches!(host.volume_driver.as_str(), "" | "local") {
        super::check_driver("", &host.volume_driver)?;
    }
    let mut out = Vec::new();
    let mut taken: Vec<String> = Vec::new();
    let mut take = |dest: &str| -> Result<()> {
        let d = normalize(dest);
        if taken.contains(&d) {
            return Err(Error::InvalidParameter(format!(
                "Duplicate mount point: {d}"
            )));
        }
        taken.push(d);
        Ok(())
    };
    for bind in host.binds.iter().flatten() {
        let b = spec::parse_bind(bind)?;
        take(&b.destination)?;
        if b.source.starts_with('/') {
            continue;
        }
        super::check_name(&b.source)?;
        let opts: Vec<&str> = b.mode.split(',').collect();
        out.push(Planned {
            name: Some(b.source.clone()),
            destination: b.destination.clone(),
            read_only: b.read_only,
            copy: !opts.contains(&"nocopy"),
            mode: if b.mode.is_empty() {
                "z".into()
            } else {
                b.mode.clone()
            },
            labels: None,
            options: None,
        });
    }
    for m in host.mounts.iter().flatten() {
        take(&m.target)?;
        if m.kind == "volume" {
            out.push(mount_volume(m)?);
        }
    }
    for dest in host.tmpfs.iter().flatten().map(|(d, _)| d) {
        take(dest)?;
    }
    for dest in config.volumes.iter().flat_map(BTreeMap::keys) {
        if !dest.starts_with('/') {
            return Err(Error::InvalidParameter(format!(
                "invalid volume specification: '{dest}': invalid mount config for type \
                 \"volume\": invalid mount path: '{dest}' mount path must be absolute"
            )));
        }
        if take(dest).is_err() {
            // Mounted by the request already: the image's volume gives way, as in docker.
            continue;
        }
        out.push(Planned {
            name: None,
            destination: normalize(dest),
            read_only: false,
            copy: true,
            mode: String::new(),
            labels: None,
            options: None,
        });
    }
    Ok(out)
}

/// `--mount type=volume,...`.
fn mount_volume(m: &Mount) -> Result<Planned> {
    if !m.target.starts_with('/') {
        return Err(Error::InvalidParameter(format!(
            "invalid mount config for type \"volume\": invalid mount path: '{}' mount path \
             must be absolute",
            m.target
        )));
    }
    let opts = m.volume_options.as_ref();
    let field = |key: &str| opts.map(|o| &o[key]).filter(|v| !v.is_null());
    if let Some(sub) = field("Subpath")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
    {
        return Err(Error::NotImplemented(format!(
            "volume subpaths are not supported yet: {sub:?}"
        )));
    }
    let mut options = None;
    if let Some(driver) = field("DriverConfig") {
        let name = m.source.as_str();
        super::check_driver(name, driver["Name"].as_str().unwrap_or(""))?;
        options = serde_json::from_value(driver["Options"].clone())
            .map_err(|e| Error::InvalidParameter(format!("invalid volume options: {e}")))?;
        super::check_options(options.as_ref())?;
    }
    let labels: Option<BTreeMap<String, String>> = field("Labels")
        .map(|l| serde_json::from_value(l.clone()))
        .transpose()
        .map_err(|e| Error::InvalidParameter(format!("invalid volume labels: {e}")))?;
    let name = match m.source.as_str() {
        "" => None,
        s => {
            super::check_name(s)?;
            Some(s.to_string())
        }
    };
    Ok(Planned {
        name,
        destination: normalize(&m.target),
        read_only: m.read_only,
        copy: field("NoCopy") != Some(&serde_json::Value::Bool(true)),
        mode: "z".into(),
        labels,
        options,
    })
}

/// The host config the spec is built from: the volume binds and mounts replaced by binds of
/// the volumes' directories (`resolved`: directory, destination, read-only). With nothing
/// resolved (the checks at create), the volumes are just left out.
pub fn spec_host(host: &HostConfig, resolved: &[(String, String, bool)]) -> HostConfig {
    let mut out = host.clone();
    if let Some(binds) = &mut out.binds {
        binds.retain(|b| spec::parse_bind(b).map_or(true, |b| b.source.starts_with('/')));
    }
    let mounts = out.mounts.get_or_insert_with(Vec::new);
    mounts.retain(|m| m.kind != "volume");
    for (source, target, read_only) in resolved {
        mounts.push(Mount {
            kind: "bind".into(),
            source: source.clone(),
            target: target.clone(),
            read_only: *read_only,
            ..Mount::default()
        });
    }
    if mounts.is_empty() && host.mounts.is_none() {
        out.mounts = None;
    }
    out
}

fn normalize(dest: &str) -> String {
    match dest.trim_end_matches('/') {
        "" => "/".into(),
        d => d.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_with(binds: &[&str], mounts: Vec<Mount>) -> HostConfig {
        HostConfig {
            binds: Some(binds.iter().map(|s| s.to_string()).collect()),
            mounts: Some(mounts),
            ..Default::default()
        }
    }

    #[test]
    fn binds_mounts_and_anonymous() {
        let config = ContainerConfig {
            volumes: Some(
                [
                    ("/data/".to_string(), serde_json::json!({})),
                    ("/x".into(), serde_json::json!({})),
                ]
                .into(),
            ),
            ..Default::default()
        };
        let mounts = vec![Mount {
            kind: "volume".into(),
            target: "/m".into(),
            volume_options: Some(serde_json::json!({"NoCopy": true, "Labels": {"k": "v"}})),
            ..Default::default()
        }];
        let host = host_with(&["/host:/h", "web:/x:ro", "db:/db:nocopy"], mounts);
        let p = plan(&config, &host).unwrap();
        let names: Vec<_> = p
            .iter()
            .map(|p| (p.name.as_deref(), p.destination.as_str()))
            .collect();
        // /x is the named volume's: the image's anonymous /x gives way.
        assert_eq!(
            names,
            [
                (Some("web"), "/x"),
                (Some("db"), "/db"),
                (None, "/m"),
                (None, "/data")
            ]
        );
        assert!(p[0].read_only && p[0].copy && p[0].mode == "ro");
        assert!(!p[1].copy && !p[2].copy);
        assert_eq!(p[2].labels.as_ref().unwrap()["k"], "v");
        assert_eq!((p[3].mode.as_str(), p[3].copy), ("", true));
    }

    #[test]
    fn refusals() {
        let c = ContainerConfig::default();
        let err = plan(&c, &host_with(&["b@d:/x"], vec![])).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(
            err.to_string().contains("includes invalid characters"),
            "{err}"
        );
        let err = plan(&c, &host_with(&["a1:/x", "b1:/x/"], vec![])).unwrap_err();
        assert_eq!(err.to_string(), "Duplicate mount point: /x");
        let m = Mount {
            kind: "volume".into(),
            source: "v1".into(),
            target: "/v".into(),
            volume_options: Some(serde_json::json!({"DriverConfig": {"Name": "nfs"}})),
            ..Default::default()
        };
        assert_eq!(
            plan(&c, &host_with(&[], vec![m])).unwrap_err().status(),
            404
        );
        let from = HostConfig {
            volumes_from: Some(vec!["other".into()]),
            ..Default::default()
        };
        assert_eq!(plan(&c, &from).unwrap_err().status(), 501);
    }

    #[test]
    fn spec_host_swaps_volumes_for_binds() {
        let mounts = vec![Mount {
            kind: "volume".into(),
            target: "/m".into(),
            ..Default::default()
        }];
        let host = host_with(&["/host:/h", "web:/x:ro"], mounts);
        let out = spec_host(&host, &[("/v/web/_data".into(), "/x".into(), true)]);
        assert_eq!(out.binds.as_deref().unwrap(), ["/host:/h"]);
        let m = &out.mounts.as_deref().unwrap()[0];
        assert_eq!(
            (m.kind.as_str(), m.source.as_str(), m.read_only),
            ("bind", "/v/web/_data", true)
        );
        let bare = spec_host(&HostConfig::default(), &[]);
        assert_eq!(bare, HostConfig::default());
    }
}
