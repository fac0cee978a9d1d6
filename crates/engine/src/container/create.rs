//! `POST /containers/create`: the image resolved and its config merged, the request
//! checked as far as it can be without running anything (the spec is generated once, without
//! the image's files), an id and a name, the root snapshot, the record.

use std::sync::Arc;

use gorae_image::ImageConfig;

use crate::container::{merge, names, new_id, random_bytes, time, Container, Record, State};
use crate::engine::Engine;
use crate::error::{Error, IoContext, Result};
use crate::spec::{self, SpecInput};
use crate::types::{CreateRequest, CreateResponse};

impl Engine {
    pub(crate) async fn create_container(
        &self,
        name: Option<String>,
        req: CreateRequest,
    ) -> Result<CreateResponse> {
        let CreateRequest {
            mut config,
            mut host_config,
            networking_config,
        } = req;
        if config.image.is_empty() {
            return Err(Error::InvalidParameter("No image specified".into()));
        }
        crate::restart::validate(&host_config.restart_policy, host_config.auto_remove)?;
        match host_config.log_config.kind.as_str() {
            "" => host_config.log_config.kind = "json-file".into(),
            "json-file" | "none" => {}
            other => {
                return Err(Error::InvalidParameter(format!(
                    "logging driver {other:?} is not supported: use json-file or none"
                )))
            }
        }
        crate::container::lifecycle::log_options(&host_config)?;
        let (image_id, image_config) = self.resolve_image(&config.image)?;
        merge::merge(
            &mut config,
            &image_config.config.clone().unwrap_or_default(),
        );
        let (path, args) = merge::command(&config)?;
        crate::health::validate(&config)?;
        let net_plan =
            self.network_plan(&mut config, &mut host_config, networking_config.as_ref())?;
        let id = new_id()?;
        config.hostname = spec::hostname(&config, &host_config, &id);
        let dir = self.config().container_dir(&id);
        let planned = crate::volumes::plan(&config, &host_config)?;
        spec::validate(&SpecInput {
            id: &id,
            config: &config,
            host: &crate::volumes::spec_host(&host_config, &[]),
            path: &path,
            args: &args,
            rootfs: None,
            container_dir: &dir,
            cgroup_parent: &self.config().cgroup_parent,
            runtime: &self.config().runtime,
        })?;
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => names::validate(&n)?,
            None => self.random_name()?,
        };
        self.containers.reserve_name(&name, &id)?;
        // Held until the container is registered: its volumes cannot be removed meanwhile.
        let volume_lock = self.volumes.lock();
        let (volumes, new_volumes) = match self.claim_volumes(&planned) {
            Ok(v) => v,
            Err(e) => {
                self.containers.release_name(&name, &id);
                return Err(e);
            }
        };
        let record = Record {
            id: id.clone(),
            name: name.clone(),
            created_ns: time::now_ns(),
            image_id,
            layers: image_config
                .rootfs
                .diff_ids
                .iter()
                .map(ToString::to_string)
                .collect(),
            path,
            args,
            config,
            host_config,
            state: State::default(),
            volumes,
        };
        let files = self.create_files(&record, &image_config);
        if let Err(e) = files.and_then(|()| net_plan.save(&dir, record.durable())) {
            self.drop_volumes_locked(&new_volumes);
            self.containers.release_name(&name, &id);
            let _ = self.images().store().snapshots.remove(&id);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        let container = Container::new(record, dir);
        // Nothing can start it before create answers (the lock is free), but the copy-up
        // mounts its root: a start must not.
        let op = container.op.clone().try_lock_owned().ok();
        self.containers.insert(container.clone());
        drop(volume_lock);
        self.announce_volumes(&new_volumes);
        if let Err(e) = self.copy_up_volumes(&container).await {
            drop(op);
            let _ = self.destroy_with(&container, true);
            return Err(e);
        }
        drop(op);
        self.emit_container(&container, "create", &[]);
        Ok(CreateResponse {
            id,
            warnings: Vec::new(),
        })
    }

    fn create_files(&self, record: &Record, image: &ImageConfig) -> Result<()> {
        let dir = self.config().container_dir(&record.id);
        let rootfs = dir.join("bundle").join("rootfs");
        std::fs::create_dir_all(&rootfs).at(&rootfs)?;
        let store = self.images().store();
        {
            let _shared = store.lock_shared()?;
            // An AutoRemove root is thrown away with its container, also after a host crash
            // (Record::durable): overlay need not sync it, nor the whole disk when unmounted.
            let volatile = record.host_config.auto_remove;
            store
                .snapshots
                .create_with(&record.id, &image.rootfs.diff_ids, volatile)?;
        }
        record.save(&dir)
    }

    /// The image's ID and config, or Docker's 404 "No such image: x:latest".
    pub(crate) fn resolve_image(&self, name: &str) -> Result<(String, ImageConfig)> {
        let store = self.images().store();
        let record = store.images.resolve(name).map_err(|e| match e {
            gorae_image::Error::ImageNotFound(_) => {
                Error::NotFound(format!("No such image: {}", with_latest(name)))
            }
            gorae_image::Error::InvalidReference { .. } => {
                Error::InvalidParameter(format!("invalid reference format: {e}"))
            }
            other => Error::Image(other),
        })?;
        let config = ImageConfig::parse(&store.content.read_document(&record.id)?)?;
        Ok((record.id.to_string(), config))
    }

    fn random_name(&self) -> Result<String> {
        let seed = random_bytes(5)?;
        for attempt in 0..20 {
            let name = names::random(&seed, attempt);
            if !self.containers.name_taken(&name) {
                return Ok(name);
            }
        }
        // Twenty clashes in a row: fall back to something that cannot clash.
        Ok(format!("gorae_{}", hex::encode(random_bytes(6)?)))
    }

    /// An `Arc` of this engine for a spawned task; None once it is being dropped.
    pub(crate) fn arc(&self) -> Option<Arc<Engine>> {
        self.me.upgrade()
    }
}

/// `busybox` -> `busybox:latest`, as Docker's messages name an untagged image.
fn with_latest(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') || name.starts_with("sha256:") {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn untagged_names_get_latest() {
        assert_eq!(super::with_latest("busybox"), "busybox:latest");
        assert_eq!(super::with_latest("busybox:1"), "busybox:1");
        assert_eq!(
            super::with_latest("localhost:5000/x"),
            "localhost:5000/x:latest"
        );
    }
}
