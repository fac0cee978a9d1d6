//! Mount options of config.json (`"ro"`, `"nosuid"`, `"rbind"`, `"rshared"`, `"mode=755"`, ...)
//! turned into what mount(2) and mount_setattr(2) take.

use nix::mount::MsFlags;

/// Recursive attribute bits of mount_setattr(2) (`MOUNT_ATTR_*`).
pub mod attr {
    pub const RDONLY: u64 = 0x0000_0001;
    pub const NOSUID: u64 = 0x0000_0002;
    pub const NODEV: u64 = 0x0000_0004;
    pub const NOEXEC: u64 = 0x0000_0008;
    pub const RELATIME: u64 = 0x0000_0000;
    pub const NOATIME: u64 = 0x0000_0010;
    pub const STRICTATIME: u64 = 0x0000_0020;
    pub const ATIME_MASK: u64 = 0x0000_0070;
    pub const NODIRATIME: u64 = 0x0000_0080;
}

/// One mount's options, sorted into the calls that apply them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount(2) call (and the bind remount).
    pub flags: MsFlags,
    /// Propagation changes applied one by one after mounting.
    pub propagation: Vec<MsFlags>,
    /// Recursive attributes to set and clear with mount_setattr(AT_RECURSIVE).
    pub rec_set: u64,
    pub rec_clear: u64,
    /// Options the filesystem interprets itself (`mode=755`, `size=64m`, `newinstance`).
    pub data: Vec<String>,
    pub bind: bool,
    pub recursive_bind: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            rec_set: 0,
            rec_clear: 0,
            data: Vec::new(),
            bind: false,
            recursive_bind: false,
        }
    }
}

impl MountOptions {
    pub fn parse(options: &[String]) -> Result<Self, String> {
        let mut out = MountOptions::default();
        for option in options {
            out.apply(option)?;
        }
        if out.bind {
            out.flags |= MsFlags::MS_BIND;
            if out.recursive_bind {
                out.flags |= MsFlags::MS_REC;
            }
        }
        Ok(out)
    }

    /// Flags that a bind mount only takes on a remount.
    pub fn remount_flags(&self) -> MsFlags {
        self.flags
            & (MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC
                | MsFlags::MS_NOATIME
                | MsFlags::MS_NODIRATIME
                | MsFlags::MS_RELATIME
                | MsFlags::MS_STRICTATIME)
    }

    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }

    fn apply(&mut self, option: &str) -> Result<(), String> {
        if let Some((set, flag)) = plain_flag(option) {
            if set {
                self.flags |= flag;
            } else {
                self.flags &= !flag;
            }
            return Ok(());
        }
        if let Some(flag) = propagation_flag(option) {
            self.propagation.push(flag);
            return Ok(());
        }
        if let Some((set, bits)) = recursive_attr(option) {
            if set {
                self.rec_set |= bits;
                self.rec_clear &= !bits;
            } else {
                self.rec_clear |= bits;
                self.rec_set &= !bits;
            }
            if bits & attr::ATIME_MASK != 0 || option == "rrelatime" {
                self.rec_clear |= attr::ATIME_MASK;
            }
            return Ok(());
        }
        match option {
            "bind" => self.bind = true,
            "rbind" => {
                self.bind = true;
                self.recursive_bind = true;
            }
            "defaults" | "tmpcopyup" => {}
            "idmap" | "ridmap" => return Err(format!("mount option {option:?} is not supported")),
            _ if option.is_empty() || option.contains('\0') || option.contains(',') => {
                return Err(format!("invalid mount option {option:?}"))
            }
            _ => self.data.push(option.to_string()),
        }
        Ok(())
    }
}

fn plain_flag(option: &str) -> Option<(bool, MsFlags)> {
    Some(match option {
        "ro" => (true, MsFlags::MS_RDONLY),
        "rw" => (false, MsFlags::MS_RDONLY),
        "suid" => (false, MsFlags::MS_NOSUID),
        "nosuid" => (true, MsFlags::MS_NOSUID),
        "dev" => (false, MsFlags::MS_NODEV),
        "nodev" => (true, MsFlags::MS_NODEV),
        "exec" => (false, MsFlags::MS_NOEXEC),
        "noexec" => (true, MsFlags::MS_NOEXEC),
        "sync" => (true, MsFlags::MS_SYNCHRONOUS),
        "async" => (false, MsFlags::MS_SYNCHRONOUS),
        "dirsync" => (true, MsFlags::MS_DIRSYNC),
        "remount" => (true, MsFlags::MS_REMOUNT),
        "mand" => (true, MsFlags::MS_MANDLOCK),
        "nomand" => (false, MsFlags::MS_MANDLOCK),
        "atime" => (false, MsFlags::MS_NOATIME),
        "noatime" => (true, MsFlags::MS_NOATIME),
        "diratime" => (false, MsFlags::MS_NODIRATIME),
        "nodiratime" => (true, MsFlags::MS_NODIRATIME),
        "relatime" => (true, MsFlags::MS_RELATIME),
        "norelatime" => (false, MsFlags::MS_RELATIME),
        "strictatime" => (true, MsFlags::MS_STRICTATIME),
        "nostrictatime" => (false, MsFlags::MS_STRICTATIME),
        "silent" => (true, MsFlags::MS_SILENT),
        "loud" => (false, MsFlags::MS_SILENT),
        "iversion" => (true, MsFlags::MS_I_VERSION),
        "noiversion" => (false, MsFlags::MS_I_VERSION),
        "lazytime" => (true, MsFlags::MS_LAZYTIME),
        "nolazytime" => (false, MsFlags::MS_LAZYTIME),
        _ => return None,
    })
}

fn propagation_flag(option: &str) -> Option<MsFlags> {
    let rec = MsFlags::MS_REC;
    Some(match option {
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | rec,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | rec,
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | rec,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | rec,
        _ => return None,
    })
}

fn recursive_attr(option: &str) -> Option<(bool, u64)> {
    Some(match option {
        "rro" => (true, attr::RDONLY),
        "rrw" => (false, attr::RDONLY),
        "rnosuid" => (true, attr::NOSUID),
        "rsuid" => (false, attr::NOSUID),
        "rnodev" => (true, attr::NODEV),
        "rdev" => (false, attr::NODEV),
        "rnoexec" => (true, attr::NOEXEC),
        "rexec" => (false, attr::NOEXEC),
        "rnodiratime" => (true, attr::NODIRATIME),
        "rdiratime" => (false, attr::NODIRATIME),
        "rrelatime" => (true, attr::RELATIME),
        "rnorelatime" => (false, attr::RELATIME),
        "rnoatime" => (true, attr::NOATIME),
        "ratime" => (false, attr::NOATIME),
        "rstrictatime" => (true, attr::STRICTATIME),
        "rnostrictatime" => (false, attr::STRICTATIME),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(options: &[&str]) -> MountOptions {
        let options: Vec<String> = options.iter().map(|s| s.to_string()).collect();
        MountOptions::parse(&options).unwrap()
    }

    #[test]
    fn flags_data_and_propagation_are_separated() {
        let o = parse(&["nosuid", "strictatime", "mode=755", "size=65536k", "rslave"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data_string().as_deref(), Some("mode=755,size=65536k"));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let o = parse(&["ro", "rw", "noexec"]);
        assert_eq!(o.flags, MsFlags::MS_NOEXEC);
    }

    #[test]
    fn rbind_is_a_recursive_bind_with_remount_flags() {
        let o = parse(&["rbind", "ro", "nosuid"]);
        assert!(o.flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC));
        assert_eq!(o.remount_flags(), MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
    }

    #[test]
    fn recursive_attributes_go_to_mount_setattr() {
        let o = parse(&["rro", "rnoexec", "rnoatime"]);
        assert_eq!(o.rec_set, attr::RDONLY | attr::NOEXEC | attr::NOATIME);
        assert_ne!(o.rec_clear & attr::ATIME_MASK, 0);
    }

    #[test]
    fn bad_options_are_refused() {
        for bad in ["", "a,b", "idmap"] {
            assert!(MountOptions::parse(&[bad.to_string()]).is_err(), "{bad:?}");
        }
    }
}
