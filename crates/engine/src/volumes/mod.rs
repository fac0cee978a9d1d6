//! Volumes of the local driver, in docker's layout: `<root>/volumes/<name>/_data` holds the
//! content, `<root>/volumes/<name>/meta.json` (written atomically) what `volume inspect`
//! shows. The directory is the truth: nothing about volumes is kept only in memory.
//!
//! A volume is in use while any container (whatever its state) mounts it; the containers'
//! records say which volumes they mount ([`VolumeMount`]). Creating, removing and pruning
//! volumes, and the part of a container's create that claims its volumes, hold the store's
//! lock, so a volume cannot be removed between a container choosing it and the container
//! being registered.
//!
//! [`plan`] turns a create request's `-v`, `--mount type=volume` and anonymous volumes (the
//! image's `VOLUME`s, `-v /path`) into the volumes the container mounts; [`copy`] fills an
//! empty volume with the image's content at its mount path, as docker does on first use.

pub mod copy;
pub mod ops;
pub mod plan;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

pub use plan::{plan, spec_host, Planned, VolumeMount};

/// The label docker puts on the volumes it creates for a container's anonymous mounts.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";
const META: &str = "meta.json";
const DATA: &str = "_data";

/// A volume as the API shows it (`GET /volumes/{name}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    /// RFC 3339, seconds, UTC.
    pub created_at: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub options: Option<BTreeMap<String, String>>,
    pub scope: String,
}

impl Volume {
    pub fn is_anonymous(&self) -> bool {
        self.labels
            .as_ref()
            .is_some_and(|l| l.contains_key(ANONYMOUS_LABEL))
    }
}

/// The body of `POST /volumes/create`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateVolume {
    pub name: String,
    pub driver: String,
    pub driver_opts: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
}

/// The volumes directory of one data root.
pub struct VolumeStore {
    dir: PathBuf,
    lock: Mutex<()>,
}

impl VolumeStore {
    /// Finishes removals a crash cut short (their `.removing-*` directories).
    pub fn new(dir: PathBuf) -> VolumeStore {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(".removing-")
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        VolumeStore {
            dir,
            lock: Mutex::new(()),
        }
    }

    /// Held by whatever creates or removes volumes, or claims them for a container.
    pub fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `<root>/volumes/<name>/_data`.
    pub fn data_path(&self, name: &str) -> PathBuf {
        self.dir.join(name).join(DATA)
    }

    /// 404 "get X: no such volume" unless it exists (a name that cannot be a volume's
    /// included: it is never looked up on disk).
    pub fn get(&self, name: &str) -> Result<Volume> {
        let missing = || Error::NotFound(format!("get {name}: no such volume"));
        if check_name(name).is_err() {
            return Err(missing());
        }
        let path = self.dir.join(name).join(META);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
            Err(e) => return Err(Error::io(&path, e)),
        };
        serde_json::from_slice(&data)
            .map_err(|e| Error::Internal(format!("{}: cannot parse: {e}", path.display())))
    }

    /// Every volume with a readable record; a directory without one (a create cut short) is
    /// not a volume.
    pub fn list(&self) -> Result<Vec<Volume>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Ok(v) = self.get(&name) {
                out.push(v);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Creates `name` (the caller holds the lock and has checked the name and options), or
    /// returns the existing one as docker does. `true` when it was created now.
    pub fn create_locked(
        &self,
        name: &str,
        labels: Option<BTreeMap<String, String>>,
        options: Option<BTreeMap<String, String>>,
    ) -> Result<(Volume, bool)> {
        if let Ok(existing) = self.get(name) {
            return Ok((existing, false));
        }
        let dir = self.dir.join(name);
        let data = dir.join(DATA);
        std::fs::create_dir_all(&data).at(&data)?;
        let volume = Volume {
            name: name.to_string(),
            driver: "local".into(),
            mountpoint: data.to_string_lossy().into_owned(),
            created_at: now_rfc3339(),
            labels,
            options,
            scope: "local".into(),
        };
        let meta = dir.join(META);
        crate::state_file::replace_json(&meta, &meta.with_extension("json.tmp"), &volume, true)?;
        Ok((volume, true))
    }

    /// Removes the volume's directory (the caller holds the lock and checked it is unused).
    /// The record goes first, by renaming the directory away, so a removal cut short leaves
    /// no half volume behind a name.
    pub fn remove_locked(&self, name: &str) -> Result<()> {
        let dir = self.dir.join(name);
        let trash = self.dir.join(format!(".removing-{name}"));
        std::fs::rename(&dir, &trash).at(&dir)?;
        std::fs::remove_dir_all(&trash).at(&trash)
    }
}

/// The local driver's names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn check_name(name: &str) -> Result<()> {
    let b = name.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        return Ok(());
    }
    Err(Error::InvalidParameter(format!(
        "create {name}: {name:?} includes invalid characters for a local volume name, only \
         \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, \
         use absolute path"
    )))
}

/// The driver of a request: only the local one.
pub fn check_driver(name: &str, driver: &str) -> Result<()> {
    match driver {
        "" | "local" => Ok(()),
        other => Err(Error::NotFound(format!(
            "create {name}: error looking up volume plugin {other}: plugin \"{other}\" not found"
        ))),
    }
}

/// The local driver's options: `type`, `device` and `o`. A bind (`o=bind`, `device=/abs`,
/// `type=none`) is done (docker compose's `driver_opts` for a host directory); other mounts
/// at `_data` (tmpfs, nfs, block devices) are not yet: 501. Any other key is docker's 400.
pub fn check_options(options: Option<&BTreeMap<String, String>>) -> Result<()> {
    let Some(opts) = options.filter(|o| !o.is_empty()) else {
        return Ok(());
    };
    if let Some(bad) = opts
        .keys()
        .find(|k| !matches!(k.as_str(), "type" | "device" | "o" | "size"))
    {
        return Err(Error::InvalidParameter(format!(
            "invalid option key: {bad:?}"
        )));
    }
    if bind_device(opts).is_some() {
        let device = opts.get("device").map(String::as_str).unwrap_or("");
        if !device.starts_with('/') {
            return Err(Error::InvalidParameter(format!(
                "invalid bind device {device:?}: it must be an absolute path"
            )));
        }
        return Ok(());
    }
    Err(Error::NotImplemented(format!(
        "the local volume driver mounts only binds so far (type=none, o=bind, \
         device=/path): type={:?} o={:?} is not supported yet",
        opts.get("type").map(String::as_str).unwrap_or(""),
        opts.get("o").map(String::as_str).unwrap_or("")
    )))
}

/// The host directory of a bind volume (`o` has `bind`, `type` is none or unset).
pub fn bind_device(opts: &BTreeMap<String, String>) -> Option<PathBuf> {
    let o = opts.get("o")?;
    let is_bind = o.split(',').any(|f| f == "bind" || f == "rbind");
    let kind_ok = matches!(
        opts.get("type").map(String::as_str),
        None | Some("" | "none")
    );
    (is_bind && kind_ok).then(|| PathBuf::from(opts.get("device").map_or("", String::as_str)))
}

impl Volume {
    /// Where the content is on the host: a bind volume's device, else `_data`.
    pub fn host_path(&self) -> PathBuf {
        self.options
            .as_ref()
            .and_then(bind_device)
            .unwrap_or_else(|| PathBuf::from(&self.mountpoint))
    }
}

/// A new anonymous volume's name: 64 hex digits, as docker's.
pub fn anonymous_name() -> Result<String> {
    Ok(hex::encode(crate::container::random_bytes(32)?))
}

fn now_rfc3339() -> String {
    let now = crate::container::time::now_ns();
    crate::container::time::format_ns(now - now.rem_euclid(1_000_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_local_driver() {
        for good in ["ab", "a1", "data_1.x-y", "0abc"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["a", "", "_x", "-x", ".x", "a/b", "a b", "a:b", "../x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        let msg = check_name("ba$d").unwrap_err().to_string();
        assert_eq!(
            msg,
            "create ba$d: \"ba$d\" includes invalid characters for a local volume name, only \
             \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host \
             directory, use absolute path"
        );
    }

    #[test]
    fn create_get_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = VolumeStore::new(dir.path().join("volumes"));
        assert!(store.list().unwrap().is_empty());
        let labels = BTreeMap::from([("a".to_string(), "b".to_string())]);
        let (v, created) = store.create_locked("web", Some(labels), None).unwrap();
        assert!(created);
        assert_eq!(v.mountpoint, store.data_path("web").to_string_lossy());
        assert!(store.data_path("web").is_dir());
        assert!(v.created_at.ends_with('Z') && !v.created_at.contains('.'));
        let (again, created) = store.create_locked("web", None, None).unwrap();
        assert!(!created);
        assert_eq!(again, v);
        assert_eq!(store.list().unwrap(), vec![v]);
        store.remove_locked("web").unwrap();
        std::fs::create_dir_all(dir.path().join("volumes/.removing-old/_data")).unwrap();
        let store = VolumeStore::new(dir.path().join("volumes"));
        let err = store.get("web").unwrap_err().to_string();
        assert_eq!(err, "get web: no such volume");
        assert!(store.list().unwrap().is_empty());
        assert!(std::fs::read_dir(dir.path().join("volumes"))
            .unwrap()
            .next()
            .is_none());
        assert!(store.get("../etc").is_err());
    }

    #[test]
    fn drivers_and_options() {
        assert!(check_driver("x", "local").is_ok());
        let e = check_driver("x", "nfs").unwrap_err();
        assert_eq!(e.status(), 404);
        let opts = BTreeMap::from([("bogus".to_string(), "1".to_string())]);
        assert_eq!(check_options(Some(&opts)).unwrap_err().status(), 400);
        let opts = BTreeMap::from([("type".to_string(), "tmpfs".to_string())]);
        assert_eq!(check_options(Some(&opts)).unwrap_err().status(), 501);
        let bind = |device: &str| {
            BTreeMap::from([
                ("type".to_string(), "none".to_string()),
                ("o".to_string(), "bind".to_string()),
                ("device".to_string(), device.to_string()),
            ])
        };
        assert!(check_options(Some(&bind("/srv/x"))).is_ok());
        assert_eq!(check_options(Some(&bind("rel"))).unwrap_err().status(), 400);
        assert_eq!(bind_device(&bind("/srv/x")), Some(PathBuf::from("/srv/x")));
        assert!(check_options(None).is_ok());
    }
}
