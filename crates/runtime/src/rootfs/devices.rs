//! /dev inside the container: the default device nodes, the config's devices, and the usual
//! symlinks. Nodes are made with mknod, or bind-mounted from the host inside a user namespace,
//! where mknod is not allowed.

use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::secure::{fd_path, Root};
use crate::error::{Result, SysContext};

/// A device node to create: path in the container, kind, numbers, mode and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub path: String,
    pub char: bool,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// runc's default devices: every container gets these whatever the config says.
pub fn default_devices() -> Vec<Device> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(path, major, minor)| Device {
        path: path.into(),
        char: true,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// The config's devices in the form `create` takes; a config device replaces a default one
/// at the same path.
pub fn all_devices(config: &[LinuxDevice]) -> Result<Vec<Device>, String> {
    let mut devices = default_devices();
    for dev in config {
        let path = dev.path().to_string_lossy().into_owned();
        if !path.starts_with("/dev/") || path.split('/').any(|c| c == "..") {
            return Err(format!("linux.devices: {path:?} is not a path under /dev"));
        }
        let char = match dev.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => true,
            LinuxDeviceType::B => false,
            other => {
                return Err(format!(
                    "linux.devices: {path}: type {other:?} cannot be created"
                ))
            }
        };
        devices.retain(|d| d.path != path);
        devices.push(Device {
            path,
            char,
            major: dev.major() as u64,
            minor: dev.minor() as u64,
            mode: dev.file_mode().unwrap_or(0o666) & 0o7777,
            uid: dev.uid().unwrap_or(0),
            gid: dev.gid().unwrap_or(0),
        });
    }
    Ok(devices)
}

/// Creates `devices` under the rootfs.
pub fn create(root: &Root, devices: &[Device], bind_from_host: bool) -> Result<()> {
    for dev in devices {
        let path = Path::new(&dev.path);
        if bind_from_host {
            let target = root.touch(path).ctx(|| format!("creating {}", dev.path))?;
            mount(
                Some(path),
                &fd_path(target.as_fd()),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .ctx(|| format!("bind-mounting device {}", dev.path))?;
            continue;
        }
        let (dir, name) = root
            .parent_of(path)
            .ctx(|| format!("creating {}", dev.path))?;
        match nix::unistd::unlinkat(
            dir.as_fd(),
            name.as_path(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => {
                return Err(crate::error::Error::sys(
                    format!("replacing {}", dev.path),
                    e,
                ))
            }
        }
        let kind = if dev.char {
            SFlag::S_IFCHR
        } else {
            SFlag::S_IFBLK
        };
        mknodat(
            dir.as_fd(),
            name.as_path(),
            kind,
            Mode::from_bits_truncate(dev.mode),
            makedev(dev.major, dev.minor),
        )
        .ctx(|| format!("mknod {}", dev.path))?;
        fchownat(
            dir.as_fd(),
            name.as_path(),
            Some(Uid::from_raw(dev.uid)),
            Some(Gid::from_raw(dev.gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .ctx(|| format!("chown {}", dev.path))?;
    }
    Ok(())
}

/// /dev/fd, stdin, stdout, stderr, ptmx and (when the host has it) core.
pub fn create_symlinks(root: &Root) -> Result<()> {
    let mut links = vec![
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "/dev/core"));
    }
    for (target, link) in links {
        let (dir, name) = root
            .parent_of(Path::new(link))
            .ctx(|| format!("creating {link}"))?;
        match nix::unistd::symlinkat(target, dir.as_fd(), name.as_path()) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(crate::error::Error::sys(format!("symlink {link}"), e)),
        }
    }
    // /dev/ptmx must be the devpts instance's ptmx, whatever the image put there.
    let (dir, name) = root
        .parent_of(Path::new("/dev/ptmx"))
        .ctx(|| "creating /dev/ptmx".into())?;
    match nix::unistd::unlinkat(
        dir.as_fd(),
        name.as_path(),
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    ) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(crate::error::Error::sys("replacing /dev/ptmx", e)),
    }
    nix::unistd::symlinkat("pts/ptmx", dir.as_fd(), name.as_path())
        .ctx(|| "symlink /dev/ptmx".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_devices_replace_defaults_and_bad_paths_are_refused() {
        let dev: LinuxDevice = serde_json::from_str(
            r#"{"path":"/dev/null","type":"c","major":1,"minor":3,"fileMode":384}"#,
        )
        .unwrap();
        let all = all_devices(&[dev]).unwrap();
        assert_eq!(all.iter().filter(|d| d.path == "/dev/null").count(), 1);
        assert_eq!(
            all.iter().find(|d| d.path == "/dev/null").unwrap().mode,
            0o600
        );
        let bad: LinuxDevice =
            serde_json::from_str(r#"{"path":"/etc/passwd","type":"c","major":1,"minor":3}"#)
                .unwrap();
        assert!(all_devices(&[bad]).is_err());
        let up: LinuxDevice =
            serde_json::from_str(r#"{"path":"/dev/../etc/x","type":"c","major":1,"minor":3}"#)
                .unwrap();
        assert!(all_devices(&[up]).is_err());
    }
}
