//! `update`: new cgroup limits for a container that exists and has not stopped.

use oci_spec::runtime::LinuxResources;

use crate::container::Runtime;
use crate::error::{Error, Result};
use crate::state::Status;

impl Runtime {
    /// Writes the limits set in `resources` to the container's cgroup; fields left unset
    /// keep their values, device rules are ignored (as `runc update` does). Fails, changing
    /// nothing, when the container does not exist, has stopped, or a value is invalid.
    pub fn update(&self, id: &str, resources: &LinuxResources) -> Result<()> {
        let (state, status) = self.state(id)?;
        if status == Status::Stopped {
            return Err(Error::WrongState {
                id: id.to_string(),
                status: status.as_str(),
                action: "cannot update a stopped container",
            });
        }
        let cgroup = state
            .cgroup
            .as_ref()
            .ok_or_else(|| Error::Init(format!("container {id} has no cgroup")))?;
        Ok(cgroup.update(resources)?)
    }
}
