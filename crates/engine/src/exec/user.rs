//! `--user` of an exec (`name`, `uid`, `name:group`, `uid:gid`) resolved through the
//! container's own /etc/passwd and /etc/group, read inside its root (symlinks there cannot
//! point the daemon at the host's files).

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Resolves `spec` against the files of the container root `root`.
pub fn resolve(root: &Path, spec: &str) -> Result<Resolved> {
    let passwd = read_in_root(root, "/etc/passwd");
    let group = read_in_root(root, "/etc/group");
    resolve_with(spec, passwd.as_deref(), group.as_deref())
}

fn read_in_root(root: &Path, path: &str) -> Option<String> {
    let fd = crate::archive::open_in_root(root, path, nix::fcntl::OFlag::O_RDONLY).ok()?;
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(4 << 20)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// The resolution itself, on the files' text (`None`: the file does not exist).
pub fn resolve_with(spec: &str, passwd: Option<&str>, group: Option<&str>) -> Result<Resolved> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users: Vec<Vec<&str>> = passwd
        .unwrap_or("")
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let entry = users
        .iter()
        .find(|f| f[0] == user)
        .or_else(|| users.iter().find(|f| f[2] == user));
    let (uid, mut gid, name) = match (entry, user.parse::<u32>()) {
        (Some(f), _) => (num(f[2], spec)?, num(f[3], spec)?, Some(f[0])),
        (None, Ok(uid)) => (uid, 0, None),
        (None, Err(_)) => {
            return Err(Error::Internal(format!(
                "unable to find user {user}: no matching entries in passwd file"
            )))
        }
    };
    let groups: Vec<Vec<&str>> = group
        .unwrap_or("")
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    if let Some(g) = grp {
        gid = match groups.iter().find(|f| f[0] == g) {
            Some(f) => num(f[2], spec)?,
            None => g.parse().map_err(|_| {
                Error::Internal(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
    }
    // Supplementary groups as a login would get them, only when the group was not forced.
    let mut additional_gids = Vec::new();
    if let (Some(name), None) = (name, grp) {
        for f in &groups {
            let members = f.get(3).copied().unwrap_or("");
            if members.split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse::<u32>() {
                    if g != gid && !additional_gids.contains(&g) {
                        additional_gids.push(g);
                    }
                }
            }
        }
    }
    Ok(Resolved {
        uid,
        gid,
        additional_gids,
    })
}

fn num(field: &str, spec: &str) -> Result<u32> {
    field
        .parse()
        .map_err(|_| Error::Internal(format!("user {spec}: invalid id {field:?} in passwd/group")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n\
                          app:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:app,root\nnogroup:x:65534:\napp:x:1000:\n";

    fn r(spec: &str) -> Result<Resolved> {
        resolve_with(spec, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn names_and_numbers_resolve() {
        assert_eq!(
            r("app").unwrap(),
            Resolved {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![10]
            }
        );
        assert_eq!(r("1000").unwrap().gid, 1000);
        assert_eq!(
            r("nobody:wheel").unwrap(),
            Resolved {
                uid: 65534,
                gid: 10,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            r("4242:77").unwrap(),
            Resolved {
                uid: 4242,
                gid: 77,
                additional_gids: vec![]
            }
        );
        assert_eq!(resolve_with("5", None, None).unwrap().uid, 5);
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(r("ghost")
            .unwrap_err()
            .to_string()
            .contains("unable to find user ghost"));
        assert!(r("app:ghosts").is_err());
    }
}
