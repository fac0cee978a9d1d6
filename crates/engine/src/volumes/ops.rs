//! The volume operations of the API (`/volumes`: create, list, inspect, remove, prune; the
//! volumes of `/system/df`) and what a container's create, start and remove do with its
//! volumes: claim them, fill them from the image, bind them, remove the anonymous ones.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::{
    anonymous_name, check_driver, check_name, check_options, CreateVolume, Planned, Volume,
    VolumeMount, ANONYMOUS_LABEL,
};
use crate::container::{Container, Record};
use crate::engine::{Engine, Filters};
use crate::error::{Error, Result};
use crate::logging;

impl Engine {
    /// `POST /volumes/create`: an existing name gives the existing volume, as docker does.
    pub async fn volume_create(&self, req: CreateVolume) -> Result<Volume> {
        let name = match req.name.as_str() {
            "" => anonymous_name()?,
            n => n.to_string(),
        };
        check_name(&name)?;
        check_driver(&name, &req.driver)?;
        check_options(req.driver_opts.as_ref())?;
        let (volume, created) = {
            let _lock = self.volumes.lock();
            self.volumes
                .create_locked(&name, req.labels, req.driver_opts)?
        };
        if created {
            self.volume_event("create", &name);
        }
        Ok(volume)
    }

    /// `GET /volumes`: `{"Volumes": [...], "Warnings": []}`, filtered by name (a part of
    /// it), label, dangling and driver.
    pub async fn volume_list(&self, filters: Filters) -> Result<Value> {
        if let Some(bad) = filters.keys().find(|k| {
            !matches!(
                k.as_str(),
                "name" | "label" | "label!" | "dangling" | "driver"
            )
        }) {
            return Err(Error::InvalidParameter(format!("invalid filter '{bad}'")));
        }
        let dangling = match filters.get("dangling").and_then(|v| v.first()) {
            None => None,
            Some(v) => Some(match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(Error::InvalidParameter(format!(
                        "invalid filter 'dangling={v}'"
                    )))
                }
            }),
        };
        let refs = self.volume_refs();
        let mut out = Vec::new();
        for v in self.volumes.list()? {
            let names = filters.get("name");
            let drivers = filters.get("driver");
            let keep = names.is_none_or(|n| n.iter().any(|n| v.name.contains(n.as_str())))
                && drivers.is_none_or(|d| d.contains(&v.driver))
                && labels_match(&filters, v.labels.as_ref())
                && dangling.is_none_or(|d| d != refs.contains_key(&v.name));
            if keep {
                out.push(v);
            }
        }
        Ok(json!({"Volumes": out, "Warnings": []}))
    }

    /// `GET /volumes/{name}`.
    pub async fn volume_inspect(&self, name: &str) -> Result<Volume> {
        self.volumes.get(name)
    }

    /// `DELETE /volumes/{name}`: 409 while a container mounts it; `force` makes a missing
    /// volume no error (it does not remove one in use, as in docker).
    pub async fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let removed = {
            let _lock = self.volumes.lock();
            match self.volumes.get(name) {
                Err(Error::NotFound(_)) if force => return Ok(()),
                Err(e) => return Err(e),
                Ok(_) => {}
            }
            if let Some(ids) = self.volume_refs().get(name) {
                return Err(Error::Conflict(format!(
                    "remove {name}: volume is in use - [{}]",
                    ids.join(", ")
                )));
            }
            self.volumes.remove_locked(name)
        };
        removed?;
        self.volume_event("destroy", name);
        Ok(())
    }

    /// `POST /volumes/prune`: unused anonymous volumes, or every unused one with the
    /// `all=true` filter; `label`/`label!` narrow it.
    pub async fn volume_prune(&self, filters: Filters) -> Result<Value> {
        if let Some(bad) = filters
            .keys()
            .find(|k| !matches!(k.as_str(), "label" | "label!" | "all"))
        {
            return Err(Error::InvalidParameter(format!("invalid filter '{bad}'")));
        }
        let all = match filters
            .get("all")
            .and_then(|v| v.first())
            .map(String::as_str)
        {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(v) => return Err(Error::InvalidParameter(format!("invalid filter 'all={v}'"))),
        };
        let mut deleted = Vec::new();
        let mut reclaimed = 0i64;
        {
            let _lock = self.volumes.lock();
            let refs = self.volume_refs();
            for v in self.volumes.list()? {
                let wanted = (all || v.is_anonymous()) && labels_match(&filters, v.labels.as_ref());
                if !wanted || refs.contains_key(&v.name) {
                    continue;
                }
                let size = crate::container::list::dir_size(&self.volumes.data_path(&v.name));
                match self.volumes.remove_locked(&v.name) {
                    Ok(()) => {
                        reclaimed += size;
                        deleted.push(v.name);
                    }
                    Err(e) => logging::warn(&format!("volume prune: {}: {e}", v.name)),
                }
            }
        }
        for name in &deleted {
            self.volume_event("destroy", name);
        }
        Ok(json!({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}))
    }

    /// The volumes of `/system/df`, each with its `UsageData` (size of `_data`, number of
    /// containers that mount it).
    pub fn volume_usage(&self) -> Vec<Value> {
        let refs = self.volume_refs();
        let list = self.volumes.list().unwrap_or_default();
        list.into_iter()
            .map(|v| {
                let size = crate::container::list::dir_size(&self.volumes.data_path(&v.name));
                let count = refs.get(&v.name).map_or(0, Vec::len);
                let mut value = json!(v);
                value["UsageData"] = json!({"Size": size, "RefCount": count});
                value
            })
            .collect()
    }

    /// Volume name → the ids of the containers that mount it.
    fn volume_refs(&self) -> BTreeMap<String, Vec<String>> {
        let mut refs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in self.containers.all() {
            for m in c.record().volumes {
                refs.entry(m.name).or_default().push(c.id.clone());
            }
        }
        refs
    }

    /// Chooses and creates the container's volumes; the caller holds the store's lock until
    /// the container is registered. Returns the mounts and the names created now.
    pub(crate) fn claim_volumes(
        &self,
        planned: &[Planned],
    ) -> Result<(Vec<VolumeMount>, Vec<String>)> {
        let mut mounts = Vec::new();
        let mut created = Vec::new();
        for p in planned {
            let options = p.options.clone();
            let (name, labels) = match &p.name {
                Some(n) => (n.clone(), p.labels.clone()),
                None => {
                    let mut labels = p.labels.clone().unwrap_or_default();
                    labels.insert(ANONYMOUS_LABEL.into(), String::new());
                    (anonymous_name()?, Some(labels))
                }
            };
            match self.volumes.create_locked(&name, labels, options) {
                Ok((_, true)) => created.push(name.clone()),
                Ok((_, false)) => {}
                Err(e) => {
                    self.drop_volumes_locked(&created);
                    return Err(e);
                }
            }
            mounts.push(VolumeMount {
                source: self.volumes.data_path(&name).to_string_lossy().into_owned(),
                name,
                destination: p.destination.clone(),
                read_only: p.read_only,
                anonymous: p.name.is_none(),
                copy: p.copy,
                mode: p.mode.clone(),
            });
        }
        Ok((mounts, created))
    }

    /// Removes volumes a failed create made (the caller holds the lock).
    pub(crate) fn drop_volumes_locked(&self, names: &[String]) {
        for name in names {
            if let Err(e) = self.volumes.remove_locked(name) {
                logging::warn(&format!("volume {name}: {e}"));
            }
        }
    }

    /// Announces the volumes a create made, once it succeeded.
    pub(crate) fn announce_volumes(&self, names: &[String]) {
        for name in names {
            self.volume_event("create", name);
        }
    }

    /// (directory, destination, read-only) of each of the container's volumes, for
    /// [`super::spec_host`]. A bind volume's device must be there, as docker's mount needs.
    pub(crate) fn volume_binds(&self, rec: &Record) -> Result<Vec<(String, String, bool)>> {
        let mut out = Vec::new();
        for m in &rec.volumes {
            let volume = self.volumes.get(&m.name)?;
            let dir = volume.host_path();
            if !dir.is_dir() {
                return Err(Error::Internal(format!(
                    "error while mounting volume '{}': failed to mount local volume: mount \
                     {}:{}, flags: 0x1000: no such file or directory",
                    volume.mountpoint,
                    dir.display(),
                    volume.mountpoint
                )));
            }
            let dir = dir.to_string_lossy().into_owned();
            out.push((dir, m.destination.clone(), m.read_only));
        }
        Ok(out)
    }

    /// Fills the container's empty volumes from its image (at create: the root holds only
    /// the image's files). Mounts the root for it and unmounts it after.
    pub(crate) async fn copy_up_volumes(&self, c: &Arc<Container>) -> Result<()> {
        let rec = c.record();
        let jobs: Vec<(String, std::path::PathBuf)> = rec
            .volumes
            .iter()
            .filter(|m| m.copy)
            .filter_map(|m| {
                let dir = self.volumes.get(&m.name).ok()?.host_path();
                dir.is_dir().then(|| (m.destination.clone(), dir))
            })
            .collect();
        if jobs.is_empty() {
            return Ok(());
        }
        let rootfs = c.dir.join("bundle").join("rootfs");
        std::fs::create_dir_all(&rootfs).map_err(|e| Error::io(&rootfs, e))?;
        self.images().store().snapshots.mount(&c.id, &rootfs)?;
        let root = rootfs.clone();
        let copied = tokio::task::spawn_blocking(move || {
            for (dest, dir) in jobs {
                super::copy::copy_up(&root, &dest, &dir)?;
            }
            Ok::<(), Error>(())
        })
        .await
        .map_err(|e| Error::Internal(format!("volume copy-up: {e}")));
        self.unmount_rootfs(c);
        copied?
    }

    /// `rm -v` and `--rm`: the container's anonymous volumes that no other container
    /// mounts. Failures are logged: the container is gone already.
    pub(crate) fn remove_anonymous_volumes(&self, rec: &Record) {
        let names: Vec<&str> = rec
            .volumes
            .iter()
            .filter(|m| m.anonymous)
            .map(|m| m.name.as_str())
            .collect();
        if names.is_empty() {
            return;
        }
        let mut removed = Vec::new();
        {
            let _lock = self.volumes.lock();
            let refs = self.volume_refs();
            for name in names {
                if refs.contains_key(name) || self.volumes.get(name).is_err() {
                    continue;
                }
                match self.volumes.remove_locked(name) {
                    Ok(()) => removed.push(name.to_string()),
                    Err(e) => logging::warn(&format!("volume {name}: {e}")),
                }
            }
        }
        for name in &removed {
            self.volume_event("destroy", name);
        }
    }

    fn volume_event(&self, action: &str, name: &str) {
        self.emit_event("volume", action, name, &[("driver", "local".to_string())]);
    }
}

/// `label=key`, `label=key=value` (all must hold) and `label!=...` (none may).
fn labels_match(filters: &Filters, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let has = |v: &str| match v.split_once('=') {
        Some((k, val)) => labels.get(k).map(String::as_str) == Some(val),
        None => labels.contains_key(v),
    };
    filters
        .get("label")
        .is_none_or(|vs| vs.iter().all(|v| has(v)))
        && filters
            .get("label!")
            .is_none_or(|vs| vs.iter().all(|v| !has(v)))
}
