//! Opening a data root: the engine lock (one daemon per root), and the containers found on
//! disk brought back — a live monitor (monitor.pid's pid with its start time) means the
//! container still runs and its exit is waited for again; a monitor that has gone left its
//! exit in exit.json, which is recorded (then the restart policy applies); a removal cut
//! short is finished; a root left mounted by a crash is unmounted; the remains of a
//! container without a record are removed.

use std::fs::File;
use std::sync::Arc;

use nix::fcntl::{Flock, FlockArg};

use crate::config::EngineConfig;
use crate::container::{time, Container, Record, Status, RECORD_FILE};
use crate::engine::Engine;
use crate::error::{Error, IoContext, Result};
use crate::logging;
use crate::supervisor::{self, ExitInfo};

/// Takes the exclusive flock on `<root>/engine.lock`.
pub fn lock_root(config: &EngineConfig) -> Result<Flock<File>> {
    std::fs::create_dir_all(&config.root).at(&config.root)?;
    let path = config.lock_file();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .at(&path)?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        if errno == nix::errno::Errno::EWOULDBLOCK {
            Error::Conflict(format!(
                "another gorae daemon is using the data root {} (it holds {})",
                config.root.display(),
                path.display()
            ))
        } else {
            Error::io(&path, errno.into())
        }
    })
}

impl Engine {
    async fn reap_orphan_monitor(&self, c: &Arc<Container>, dir: &std::path::Path) {
        let args = ["delete".to_string(), "--force".into(), c.id.clone()];
        if let Err(e) = supervisor::runc(self.config(), &args).await {
            logging::warn(&format!(
                "container {}: deleting an unstarted one: {e}",
                c.id
            ));
        }
        for _ in 0..100 {
            if supervisor::alive(dir).is_none() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A container directory without a record: a create cut short, or an AutoRemove
    /// container whose record a host crash lost (it is not synced). Its root and snapshot go
    /// with it, as a failed create removes them.
    fn remove_recordless(&self, dir: &std::path::Path) {
        let Some(id) = dir.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return;
        }
        let rootfs = dir.join("bundle").join("rootfs");
        let store = self.images().store();
        if crate::container::lifecycle::is_mounted(&rootfs) {
            let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
        }
        if let Err(e) = store.snapshots.remove(id) {
            logging::warn(&format!("container {id} without a record: {e}"));
            return;
        }
        match std::fs::remove_dir_all(dir) {
            Ok(()) => logging::info(&format!("removed container {id}: it had no record")),
            Err(e) => logging::warn(&format!("{}: {e}", dir.display())),
        }
    }

    pub(crate) async fn restore(&self) -> Result<()> {
        let config = self.config();
        for dir in [
            config.containers_dir(),
            config.runtime_root(),
            config.run_dir.join("m"),
        ] {
            std::fs::create_dir_all(&dir).at(&dir)?;
        }
        let containers_dir = config.containers_dir();
        let entries = std::fs::read_dir(&containers_dir).at(&containers_dir)?;
        let mut found = Vec::new();
        for entry in entries {
            let dir = entry.at(&containers_dir)?.path();
            if !dir.join(RECORD_FILE).exists() {
                self.remove_recordless(&dir);
                continue;
            }
            match Record::load(&dir) {
                Ok(rec) => {
                    let c = Container::new(rec, dir);
                    self.containers.insert(c.clone());
                    found.push(c);
                }
                Err(e) => logging::warn(&format!("skipping a container: {e}")),
            }
        }
        for c in found {
            self.restore_one(&c).await;
        }
        Ok(())
    }

    async fn restore_one(&self, c: &Arc<Container>) {
        let dir = self.config().monitor_dir(&c.id);
        match c.status() {
            Status::Running | Status::Paused => {
                if supervisor::alive(&dir).is_some() {
                    self.spawn_waiter(c.clone());
                    self.start_health(c);
                    return;
                }
                let info = supervisor::read_exit(&dir).unwrap_or_else(|| ExitInfo {
                    exit_code: 255,
                    finished_at: time::format_ns(time::now_ns()),
                    oom_killed: false,
                });
                self.on_exit(c, info).await;
            }
            Status::Restarting => {
                // The daemon went away during the restart delay: decide again.
                self.cleanup_after_exit(c).await;
                let _ = c.update(|r| r.state.status = Status::Exited);
                let rec = c.record();
                self.after_exit(c, &rec.host_config, &rec.state);
            }
            Status::Removing => {
                if let Err(e) = self.destroy(c) {
                    logging::warn(&format!("container {}: finishing its removal: {e}", c.id));
                }
            }
            Status::Created | Status::Exited | Status::Dead => {
                if supervisor::alive(&dir).is_some() {
                    // A start cut short by the crash: its monitor holds a created
                    // container that nobody will start.
                    self.reap_orphan_monitor(c, &dir).await;
                }
                self.unmount_rootfs(c);
            }
        }
    }
}
