//! Linux capabilities: the five OCI capability sets (`process.capabilities`) applied to the
//! calling thread.
//!
//! What it is: thin, checked wrappers over `prctl(2)` (`PR_CAPBSET_DROP`, `PR_SET_KEEPCAPS`,
//! `PR_CAP_AMBIENT`) and `capset(2)` (version 3, two 32-bit words per set), plus the mapping
//! from oci-spec's [`Capability`] to the kernel's capability numbers.
//!
//! What it owns: nothing beyond the capability state of the calling thread, which it changes.
//! The container's init calls, in this order: [`drop_bounding_set`],
//! [`keep_capabilities_on_setuid`]`(true)`, `setgroups`/`setgid`/`setuid`, then
//! [`apply_process_sets`]; afterwards the effective, permitted, inheritable, bounding and
//! ambient sets are exactly those of the config (minus capabilities the running kernel does
//! not know, which are skipped silently, as runc does).
//!
//! What it must not do: start threads, print, or touch anything but the calling thread's
//! credentials. Capabilities are per thread; the caller runs this in the single-threaded
//! container init just before `exec`.

use std::collections::HashSet;

use nix::errno::Errno;
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

/// Where the kernel publishes the highest capability number it knows.
const CAP_LAST_CAP_PATH: &str = "/proc/sys/kernel/cap_last_cap";

/// `_LINUX_CAPABILITY_VERSION_3` from `<linux/capability.h>`: 64-bit sets as two u32 words.
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The highest capability number that fits the two 32-bit words of `capset(2)` v3.
const MAX_CAP_NUMBER: u32 = 63;

/// Why capabilities could not be applied. Every message names the capability or the set at
/// fault.
#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    /// `/proc/sys/kernel/cap_last_cap` could not be read and probing with `PR_CAPBSET_READ`
    /// failed too.
    #[error("capabilities: cannot find the last capability the kernel knows ({CAP_LAST_CAP_PATH}: {reason})")]
    LastCap {
        /// What went wrong reading or parsing the file.
        reason: String,
    },
    /// `prctl(PR_CAPBSET_DROP)` failed (usually `EPERM`: `CAP_SETPCAP` is missing).
    #[error("capabilities: cannot drop {name} (#{number}) from the bounding set: {errno}")]
    DropBounding {
        /// Capability name, e.g. `CAP_SYS_ADMIN`.
        name: String,
        /// Kernel number of the capability.
        number: u32,
        /// The error from the kernel.
        errno: Errno,
    },
    /// `capset(2)` failed; usually a set asks for a capability the thread no longer has in its
    /// permitted set (for example after `setuid` without keepcaps).
    #[error("capabilities: capset(effective={effective:#x}, permitted={permitted:#x}, inheritable={inheritable:#x}) failed: {errno}")]
    Capset {
        /// Requested effective mask.
        effective: u64,
        /// Requested permitted mask.
        permitted: u64,
        /// Requested inheritable mask.
        inheritable: u64,
        /// The error from the kernel.
        errno: Errno,
    },
    /// `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)` failed.
    #[error("capabilities: cannot clear the ambient set: {errno}")]
    ClearAmbient {
        /// The error from the kernel.
        errno: Errno,
    },
    /// `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE)` failed; an ambient capability must also be
    /// in the permitted and inheritable sets.
    #[error("capabilities: cannot raise ambient {name} (#{number}) (it must also be permitted and inheritable): {errno}")]
    RaiseAmbient {
        /// Capability name, e.g. `CAP_KILL`.
        name: String,
        /// Kernel number of the capability.
        number: u32,
        /// The error from the kernel.
        errno: Errno,
    },
    /// `prctl(PR_SET_KEEPCAPS)` failed.
    #[error("capabilities: cannot set keepcaps to {keep}: {errno}")]
    KeepCaps {
        /// The requested value.
        keep: bool,
        /// The error from the kernel.
        errno: Errno,
    },
}

/// Every capability oci-spec knows, in kernel-number order (index == kernel number).
pub const ALL: [Capability; 41] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::LinuxImmutable,
    Capability::NetBindService,
    Capability::NetBroadcast,
    Capability::NetAdmin,
    Capability::NetRaw,
    Capability::IpcLock,
    Capability::IpcOwner,
    Capability::SysModule,
    Capability::SysRawio,
    Capability::SysChroot,
    Capability::SysPtrace,
    Capability::SysPacct,
    Capability::SysAdmin,
    Capability::SysBoot,
    Capability::SysNice,
    Capability::SysResource,
    Capability::SysTime,
    Capability::SysTtyConfig,
    Capability::Mknod,
    Capability::Lease,
    Capability::AuditWrite,
    Capability::AuditControl,
    Capability::Setfcap,
    Capability::MacOverride,
    Capability::MacAdmin,
    Capability::Syslog,
    Capability::WakeAlarm,
    Capability::BlockSuspend,
    Capability::AuditRead,
    Capability::Perfmon,
    Capability::Bpf,
    Capability::CheckpointRestore,
];

/// The kernel number of `cap` (`CAP_CHOWN` = 0 … `CAP_CHECKPOINT_RESTORE` = 40), as in
/// `<linux/capability.h>`.
pub fn number(cap: Capability) -> u32 {
    match cap {
        Capability::Chown => 0,
        Capability::DacOverride => 1,
        Capability::DacReadSearch => 2,
        Capability::Fowner => 3,
        Capability::Fsetid => 4,
        Capability::Kill => 5,
        Capability::Setgid => 6,
        Capability::Setuid => 7,
        Capability::Setpcap => 8,
        Capability::LinuxImmutable => 9,
        Capability::NetBindService => 10,
        Capability::NetBroadcast => 11,
        Capability::NetAdmin => 12,
        Capability::NetRaw => 13,
        Capability::IpcLock => 14,
        Capability::IpcOwner => 15,
        Capability::SysModule => 16,
        Capability::SysRawio => 17,
        Capability::SysChroot => 18,
        Capability::SysPtrace => 19,
        Capability::SysPacct => 20,
        Capability::SysAdmin => 21,
        Capability::SysBoot => 22,
        Capability::SysNice => 23,
        Capability::SysResource => 24,
        Capability::SysTime => 25,
        Capability::SysTtyConfig => 26,
        Capability::Mknod => 27,
        Capability::Lease => 28,
        Capability::AuditWrite => 29,
        Capability::AuditControl => 30,
        Capability::Setfcap => 31,
        Capability::MacOverride => 32,
        Capability::MacAdmin => 33,
        Capability::Syslog => 34,
        Capability::WakeAlarm => 35,
        Capability::BlockSuspend => 36,
        Capability::AuditRead => 37,
        Capability::Perfmon => 38,
        Capability::Bpf => 39,
        Capability::CheckpointRestore => 40,
    }
}

/// The OCI name of `cap`, e.g. `CAP_NET_BIND_SERVICE` (the form used in `config.json`).
pub fn name(cap: Capability) -> String {
    format!("CAP_{cap}")
}

/// The bit mask of `set` as the kernel sees it: bit `number(cap)` for every capability in `set`
/// the kernel knows (number <= `last_cap`); others are skipped. `None` is the empty mask.
pub fn mask(set: Option<&Capabilities>, last_cap: u32) -> u64 {
    set.into_iter()
        .flatten()
        .map(|cap| number(*cap))
        .filter(|n| *n <= last_cap.min(MAX_CAP_NUMBER))
        .fold(0u64, |acc, n| acc | (1u64 << n))
}

/// The highest capability number the running kernel knows: `/proc/sys/kernel/cap_last_cap`,
/// or, when that cannot be read (no `/proc` yet), probed with `PR_CAPBSET_READ`.
pub fn last_cap() -> Result<u32, CapabilityError> {
    let file_err = match std::fs::read_to_string(CAP_LAST_CAP_PATH) {
        Ok(text) => match text.trim().parse::<u32>() {
            Ok(n) => return Ok(n.min(MAX_CAP_NUMBER)),
            Err(e) => format!("cannot parse {:?}: {e}", text.trim()),
        },
        Err(e) => e.to_string(),
    };
    // PR_CAPBSET_READ fails with EINVAL for a number the kernel does not know.
    let mut last = None;
    for n in 0..=MAX_CAP_NUMBER {
        match prctl(libc::PR_CAPBSET_READ, n.into(), 0, 0, 0) {
            Ok(_) => last = Some(n),
            Err(Errno::EINVAL) => break,
            Err(errno) => {
                return Err(CapabilityError::LastCap {
                    reason: format!("{file_err}; PR_CAPBSET_READ({n}): {errno}"),
                })
            }
        }
    }
    last.ok_or(CapabilityError::LastCap {
        reason: format!("{file_err}; PR_CAPBSET_READ(0) failed"),
    })
}

/// Drops from the calling thread's bounding set every capability 0..=last_cap that is not in
/// `caps.bounding`. `bounding: None` drops nothing. Needs `CAP_SETPCAP`.
pub fn drop_bounding_set(caps: &LinuxCapabilities) -> Result<(), CapabilityError> {
    let Some(bounding) = caps.bounding() else {
        return Ok(());
    };
    let last = last_cap()?;
    let keep = mask(Some(bounding), last);
    for n in 0..=last {
        if keep & (1u64 << n) != 0 {
            continue;
        }
        prctl(libc::PR_CAPBSET_DROP, n.into(), 0, 0, 0).map_err(|errno| {
            CapabilityError::DropBounding {
                name: ALL
                    .get(n as usize)
                    .map_or_else(|| format!("capability {n}"), |c| name(*c)),
                number: n,
                errno,
            }
        })?;
    }
    Ok(())
}

/// Sets the effective, permitted and inheritable sets with `capset(2)` (v3), then clears the
/// ambient set and raises each ambient capability. A set that is `None` is empty. Capabilities
/// the kernel does not know are skipped.
pub fn apply_process_sets(caps: &LinuxCapabilities) -> Result<(), CapabilityError> {
    let last = last_cap()?;
    let effective = mask(caps.effective().as_ref(), last);
    let permitted = mask(caps.permitted().as_ref(), last);
    let inheritable = mask(caps.inheritable().as_ref(), last);
    capset(effective, permitted, inheritable).map_err(|errno| CapabilityError::Capset {
        effective,
        permitted,
        inheritable,
        errno,
    })?;

    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
        0,
        0,
    )
    .map_err(|errno| CapabilityError::ClearAmbient { errno })?;
    // Raise in number order so errors are deterministic.
    let mut ambient: Vec<Capability> = caps
        .ambient()
        .iter()
        .flatten()
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .filter(|c| number(*c) <= last)
        .collect();
    ambient.sort_by_key(|c| number(*c));
    for cap in ambient {
        let n = number(cap);
        prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            n.into(),
            0,
            0,
        )
        .map_err(|errno| CapabilityError::RaiseAmbient {
            name: name(cap),
            number: n,
            errno,
        })?;
    }
    Ok(())
}

/// Sets `PR_SET_KEEPCAPS`: with `true`, the permitted set survives a `setuid` from root to a
/// non-root user (the effective and ambient sets are still cleared; [`apply_process_sets`]
/// restores them).
pub fn keep_capabilities_on_setuid(keep: bool) -> Result<(), CapabilityError> {
    prctl(libc::PR_SET_KEEPCAPS, keep.into(), 0, 0, 0)
        .map(drop)
        .map_err(|errno| CapabilityError::KeepCaps { keep, errno })
}

/// `prctl(2)` with five integer arguments.
fn prctl(
    option: libc::c_int,
    arg2: libc::c_ulong,
    arg3: libc::c_ulong,
    arg4: libc::c_ulong,
    arg5: libc::c_ulong,
) -> Result<libc::c_int, Errno> {
    // SAFETY: every option used in this module takes plain integer arguments (no pointers), so
    // the kernel reads nothing from our memory; the call only changes this thread's
    // capability state.
    let rc = unsafe { libc::prctl(option, arg2, arg3, arg4, arg5) };
    Errno::result(rc)
}

/// `struct __user_cap_header_struct` from `<linux/capability.h>`.
#[repr(C)]
struct CapUserHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct` from `<linux/capability.h>`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapUserData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `capset(2)` v3 for the calling thread with 64-bit masks split into two words.
fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno> {
    let mut header = CapUserHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let word = |mask: u64, i: u32| (mask >> (32 * i)) as u32;
    let data: [CapUserData; 2] = [0, 1].map(|i| CapUserData {
        effective: word(effective, i),
        permitted: word(permitted, i),
        inheritable: word(inheritable, i),
    });
    // SAFETY: `header` and `data` are live, properly aligned #[repr(C)] values matching the
    // kernel's v3 layout (one header, two data structs); the kernel reads them only during the
    // call (and may write the preferred version into `header`, which is mutable).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapUserHeader,
            data.as_ptr(),
        )
    };
    Errno::result(rc).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Independent table, copied by hand from `<linux/capability.h>`.
    const KERNEL: &[(&str, u32)] = &[
        ("CAP_CHOWN", 0),
        ("CAP_DAC_OVERRIDE", 1),
        ("CAP_DAC_READ_SEARCH", 2),
        ("CAP_FOWNER", 3),
        ("CAP_FSETID", 4),
        ("CAP_KILL", 5),
        ("CAP_SETGID", 6),
        ("CAP_SETUID", 7),
        ("CAP_SETPCAP", 8),
        ("CAP_LINUX_IMMUTABLE", 9),
        ("CAP_NET_BIND_SERVICE", 10),
        ("CAP_NET_BROADCAST", 11),
        ("CAP_NET_ADMIN", 12),
        ("CAP_NET_RAW", 13),
        ("CAP_IPC_LOCK", 14),
        ("CAP_IPC_OWNER", 15),
        ("CAP_SYS_MODULE", 16),
        ("CAP_SYS_RAWIO", 17),
        ("CAP_SYS_CHROOT", 18),
        ("CAP_SYS_PTRACE", 19),
        ("CAP_SYS_PACCT", 20),
        ("CAP_SYS_ADMIN", 21),
        ("CAP_SYS_BOOT", 22),
        ("CAP_SYS_NICE", 23),
        ("CAP_SYS_RESOURCE", 24),
        ("CAP_SYS_TIME", 25),
        ("CAP_SYS_TTY_CONFIG", 26),
        ("CAP_MKNOD", 27),
        ("CAP_LEASE", 28),
        ("CAP_AUDIT_WRITE", 29),
        ("CAP_AUDIT_CONTROL", 30),
        ("CAP_SETFCAP", 31),
        ("CAP_MAC_OVERRIDE", 32),
        ("CAP_MAC_ADMIN", 33),
        ("CAP_SYSLOG", 34),
        ("CAP_WAKE_ALARM", 35),
        ("CAP_BLOCK_SUSPEND", 36),
        ("CAP_AUDIT_READ", 37),
        ("CAP_PERFMON", 38),
        ("CAP_BPF", 39),
        ("CAP_CHECKPOINT_RESTORE", 40),
    ];

    fn parse(name: &str) -> Capability {
        serde_json::from_value(serde_json::Value::String(name.into()))
            .unwrap_or_else(|e| panic!("oci-spec does not know {name}: {e}"))
    }

    #[test]
    fn numbers_match_linux_capability_h() {
        for (cap_name, expected) in KERNEL {
            let cap = parse(cap_name);
            assert_eq!(number(cap), *expected, "{cap_name}");
            assert_eq!(name(cap), *cap_name);
        }
    }

    #[test]
    fn all_is_complete_and_ordered_by_number() {
        assert_eq!(ALL.len(), KERNEL.len());
        for (i, cap) in ALL.iter().enumerate() {
            assert_eq!(number(*cap) as usize, i, "{cap:?}");
        }
    }

    #[test]
    fn mask_sets_one_bit_per_capability() {
        let set: Capabilities = [
            Capability::Chown,
            Capability::Kill,
            Capability::NetBindService,
        ]
        .into_iter()
        .collect();
        assert_eq!(mask(Some(&set), 40), 0x421);
        assert_eq!(mask(None, 40), 0);
        assert_eq!(mask(Some(&Capabilities::new()), 40), 0);
        let all: Capabilities = ALL.into_iter().collect();
        assert_eq!(mask(Some(&all), 40), (1u64 << 41) - 1);
    }

    #[test]
    fn mask_skips_capabilities_unknown_to_the_kernel() {
        let set: Capabilities = [
            Capability::Chown,
            Capability::Bpf,
            Capability::CheckpointRestore,
        ]
        .into_iter()
        .collect();
        assert_eq!(mask(Some(&set), 40), 1 | (1 << 39) | (1 << 40));
        assert_eq!(mask(Some(&set), 39), 1 | (1 << 39));
        assert_eq!(mask(Some(&set), 37), 1);
    }

    #[test]
    fn last_cap_is_plausible() {
        let last = last_cap().unwrap_or_else(|e| panic!("{e}"));
        assert!((36..=MAX_CAP_NUMBER).contains(&last), "last_cap = {last}");
    }

    #[test]
    fn errors_name_the_capability() {
        let e = CapabilityError::RaiseAmbient {
            name: name(Capability::Kill),
            number: 5,
            errno: Errno::EPERM,
        };
        let text = e.to_string();
        assert!(
            text.contains("CAP_KILL") && text.contains("ambient"),
            "{text}"
        );
    }
}
