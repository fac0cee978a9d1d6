//! Pause, unpause, rename and update: the operations that change a container without
//! starting or stopping it.

use crate::container::{names, Status};
use crate::engine::Engine;
use crate::error::{Error, IoContext, Result};
use crate::supervisor;
use crate::types::{Resources, UpdateRequest, UpdateResponse};

impl Engine {
    pub(crate) async fn pause_container(&self, id: &str) -> Result<()> {
        let c = self.containers.get(id)?;
        let _op = c.op.lock().await;
        match c.status() {
            Status::Running => {}
            Status::Paused => {
                return Err(Error::Conflict(format!(
                    "Container {} is already paused",
                    c.id
                )))
            }
            _ => {
                return Err(Error::Conflict(format!(
                    "Container {} is not running",
                    c.id
                )))
            }
        }
        supervisor::runc(self.config(), &["pause".to_string(), c.id.clone()]).await?;
        c.update(|r| r.state.status = Status::Paused)?;
        self.emit_container(&c, "pause", &[]);
        Ok(())
    }

    pub(crate) async fn unpause_container(&self, id: &str) -> Result<()> {
        let c = self.containers.get(id)?;
        let _op = c.op.lock().await;
        if c.status() != Status::Paused {
            return Err(Error::Conflict(format!("Container {} is not paused", c.id)));
        }
        supervisor::runc(self.config(), &["resume".to_string(), c.id.clone()]).await?;
        c.update(|r| r.state.status = Status::Running)?;
        self.emit_container(&c, "unpause", &[]);
        Ok(())
    }

    pub(crate) async fn rename_container(&self, id: &str, new_name: &str) -> Result<()> {
        let c = self.containers.get(id)?;
        let _op = c.op.lock().await;
        let new_name = names::validate(new_name)?;
        let old = c.name();
        if old == new_name {
            return Err(Error::InvalidParameter(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        self.containers.reserve_name(&new_name, &c.id)?;
        if let Err(e) = c.update(|r| r.name = new_name.clone()) {
            self.containers.release_name(&new_name, &c.id);
            let _ = c.update(|r| r.name = old);
            return Err(e);
        }
        self.containers.release_name(&old, &c.id);
        self.emit_container(&c, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    pub(crate) async fn update_container(
        &self,
        id: &str,
        req: UpdateRequest,
    ) -> Result<UpdateResponse> {
        let c = self.containers.get(id)?;
        let _op = c.op.lock().await;
        let rec = c.record();
        if let Some(policy) = &req.restart_policy {
            crate::restart::validate(policy, rec.host_config.auto_remove)?;
        }
        let mut resources = rec.host_config.resources.clone();
        merge_resources(&mut resources, &req.resources);
        crate::spec::resources_json(&resources)?;
        if rec.state.status.is_live() {
            let changed = crate::spec::resources_json(&only_given(&req.resources, &resources))?;
            let file = c.dir.join(".update-resources.json");
            std::fs::write(&file, changed.to_string()).at(&file)?;
            let args = [
                "update".to_string(),
                "--resources".into(),
                file.to_string_lossy().into_owned(),
                c.id.clone(),
            ];
            let result = supervisor::runc(self.config(), &args).await;
            let _ = std::fs::remove_file(&file);
            result
                .map_err(|e| Error::Internal(format!("Cannot update container {}: {e}", c.id)))?;
        }
        c.update(|r| {
            r.host_config.resources = resources;
            if let Some(policy) = req.restart_policy {
                r.host_config.restart_policy = policy;
            }
        })?;
        self.emit_container(&c, "update", &[]);
        Ok(UpdateResponse {
            warnings: Vec::new(),
        })
    }
}

/// The fields `update` sets (non-zero), over the container's current resources.
fn merge_resources(current: &mut Resources, given: &Resources) {
    let zero = Resources::default();
    macro_rules! take {
        ($($f:ident),*) => {$(
            if given.$f != zero.$f {
                current.$f = given.$f.clone();
            }
        )*};
    }
    take!(
        cpu_shares,
        memory,
        nano_cpus,
        cpu_period,
        cpu_quota,
        cpu_realtime_period,
        cpu_realtime_runtime,
        cpuset_cpus,
        cpuset_mems,
        blkio_weight,
        memory_reservation,
        memory_swap,
        pids_limit
    );
    if given.nano_cpus > 0 {
        current.cpu_quota = 0;
        current.cpu_period = 0;
    }
}

/// The merged values of just the fields the request gave, so the runtime changes only
/// those (a memory update must not rewrite the CPU limits, and the swap follows memory).
fn only_given(given: &Resources, merged: &Resources) -> Resources {
    let mut out = Resources::default();
    let zero = Resources::default();
    macro_rules! keep {
        ($($f:ident),*) => {$(
            if given.$f != zero.$f {
                out.$f = merged.$f.clone();
            }
        )*};
    }
    keep!(
        cpu_shares,
        nano_cpus,
        cpu_period,
        cpu_quota,
        cpu_realtime_period,
        cpu_realtime_runtime,
        cpuset_cpus,
        cpuset_mems,
        blkio_weight,
        memory_reservation,
        pids_limit
    );
    if given.memory != 0 || given.memory_swap != 0 {
        out.memory = merged.memory;
        out.memory_swap = merged.memory_swap;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_changes_only_given_fields() {
        let mut current = Resources {
            memory: 64 << 20,
            cpu_shares: 512,
            ..Default::default()
        };
        let given = Resources {
            pids_limit: Some(10),
            ..Default::default()
        };
        merge_resources(&mut current, &given);
        assert_eq!((current.memory, current.cpu_shares), (64 << 20, 512));
        assert_eq!(current.pids_limit, Some(10));
        let only = only_given(&given, &current);
        assert_eq!(
            (only.memory, only.cpu_shares, only.pids_limit),
            (0, 0, Some(10))
        );
    }
}
