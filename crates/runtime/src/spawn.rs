//! Making the container's init process: one clone(2) with the new namespaces in the common
//! case, or an intermediate process that joins and unshares namespaces first when the order
//! of user namespace and joined namespaces requires it (as runc's nsexec stages do).

use std::os::fd::AsFd;

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Linux, LinuxNamespaceType};

use crate::cgroups::Cgroup;
use crate::error::{Error, Result, SysContext};
use crate::init::{self, InitContext};
use crate::namespaces::{self, clone_flag, NamespacePlan};
use crate::sync::{Channel, Msg};
use crate::sys;

/// Clones the init, maps its ids, puts it in its cgroup and lets it go. Returns its host pid.
/// `ours` is the runtime's end of the channel whose other end `ctx` carries into the init.
pub fn spawn_init(
    ctx: &InitContext<'_>,
    ours: &Channel,
    linux: &Linux,
    cgroup: Option<&Cgroup>,
) -> Result<i32> {
    let pid = if ctx.namespaces.single_clone() {
        single_clone(ctx, linux)?
    } else {
        through_intermediate(ctx, ours, linux)?
    };
    let go = cgroup
        .map_or(Ok(()), |c| c.add_process(pid))
        .map_err(Error::from)
        .and_then(|()| ours.send(&Msg::Go).ctx(|| "starting the init".into()));
    if let Err(e) = go {
        sys::kill_and_reap(pid);
        return Err(e);
    }
    Ok(pid)
}

fn single_clone(ctx: &InitContext<'_>, linux: &Linux) -> Result<i32> {
    // A joined pid namespace applies to the children of whoever joins it: the runtime joins it
    // for the clone and goes back to its own right after.
    let pid_ns = ctx
        .namespaces
        .join
        .iter()
        .find(|(t, _)| *t == LinuxNamespaceType::Pid);
    let own_pid_ns = match pid_ns {
        Some((_, path)) => {
            let own = open(
                "/proc/self/ns/pid",
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ctx(|| "opening /proc/self/ns/pid".into())?;
            namespaces::join(LinuxNamespaceType::Pid, path)?;
            Some(own)
        }
        None => None,
    };
    let cloned = sys::clone_process(ctx.namespaces.clone_flags().bits());
    if let Ok(None) = cloned {
        init::main(ctx);
    }
    if let Some(own) = own_pid_ns {
        setns(own.as_fd(), CloneFlags::CLONE_NEWPID)
            .ctx(|| "returning to the runtime's pid namespace".into())?;
    }
    let pid = match cloned {
        Ok(Some(pid)) => pid.as_raw(),
        Ok(None) => unreachable_child(),
        Err(e) => {
            return Err(Error::sys(
                format!("clone({:?})", ctx.namespaces.clone_flags()),
                e,
            ))
        }
    };
    if ctx.namespaces.creates(LinuxNamespaceType::User) {
        if let Err(e) = namespaces::write_id_maps(pid, linux) {
            sys::kill_and_reap(pid);
            return Err(e);
        }
    }
    Ok(pid)
}

fn unreachable_child() -> ! {
    sys::exit_now(1)
}

fn through_intermediate(ctx: &InitContext<'_>, ours: &Channel, linux: &Linux) -> Result<i32> {
    let stage = match sys::clone_process(0).ctx(|| "fork".into())? {
        None => stage_one(ctx, linux),
        Some(pid) => pid,
    };
    let result = serve_intermediate(ours, linux);
    let _ = nix::sys::wait::waitpid(stage, None);
    result
}

/// Answers the intermediate's requests until it reports the init's pid.
fn serve_intermediate(ours: &Channel, linux: &Linux) -> Result<i32> {
    loop {
        match ours
            .recv()
            .ctx(|| "waiting for the intermediate process".into())?
            .0
        {
            Msg::MapIds(pid) => {
                namespaces::write_id_maps(pid, linux)?;
                ours.send(&Msg::IdsMapped)
                    .ctx(|| "answering the intermediate".into())?;
            }
            Msg::InitPid(pid) => return Ok(pid),
            Msg::Error(e) => return Err(Error::Init(e)),
            other => {
                return Err(Error::Init(format!(
                    "unexpected message {other:?} from the intermediate"
                )))
            }
        }
    }
}

/// The intermediate process: joins namespaces (user first), creates the user namespace and
/// has it mapped, creates the rest, then clones the init as its sibling and exits.
fn stage_one(ctx: &InitContext<'_>, linux: &Linux) -> ! {
    let inner = InitContext {
        namespaces_done: true,
        ..ctx.clone()
    };
    match enter_namespaces(ctx, linux) {
        Ok(()) => {}
        Err(e) => {
            let _ = ctx.channel.send(&Msg::Error(e.to_string()));
            sys::exit_now(1)
        }
    }
    match sys::clone_sibling() {
        Ok(None) => init::main(&inner),
        Ok(Some(pid)) => {
            let _ = ctx.channel.send(&Msg::InitPid(pid.as_raw()));
            sys::exit_now(0)
        }
        Err(e) => {
            let _ = ctx
                .channel
                .send(&Msg::Error(format!("clone of the init: {e}")));
            sys::exit_now(1)
        }
    }
}

fn enter_namespaces(ctx: &InitContext<'_>, linux: &Linux) -> Result<()> {
    let plan: &NamespacePlan = ctx.namespaces;
    for (typ, path) in &plan.join {
        namespaces::join(*typ, path)?;
    }
    if plan.creates(LinuxNamespaceType::User) {
        unshare(CloneFlags::CLONE_NEWUSER).ctx(|| "unshare(CLONE_NEWUSER)".into())?;
        let me = std::process::id() as i32;
        ctx.channel
            .send(&Msg::MapIds(me))
            .ctx(|| "asking for id mappings".into())?;
        ctx.channel.expect(&Msg::IdsMapped, "id mappings")?;
        crate::process::become_user_ns_root()?;
    }
    let rest = [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Network,
    ]
    .into_iter()
    .filter(|t| plan.creates(*t))
    .fold(CloneFlags::empty(), |acc, t| acc | clone_flag(t));
    if !rest.is_empty() {
        unshare(rest).ctx(|| format!("unshare({rest:?})"))?;
    }
    if plan.creates(LinuxNamespaceType::Time) {
        unshare(clone_flag(LinuxNamespaceType::Time)).ctx(|| "unshare(CLONE_NEWTIME)".into())?;
        namespaces::write_time_offsets(linux)?;
    }
    if plan.creates(LinuxNamespaceType::Pid) {
        unshare(CloneFlags::CLONE_NEWPID).ctx(|| "unshare(CLONE_NEWPID)".into())?;
    }
    Ok(())
}
