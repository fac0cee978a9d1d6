//! The default `config.json` written by `gorae-runc spec`, and the OCI `features` document
//! printed by `gorae-runc features`.
//!
//! What it is: [`default_spec`] reproduces runc's `spec` command (runc's `specconv.Example`,
//! plus `specconv.ToRootless` for `--rootless`) with our hostname and OCI version 1.2.0, except
//! that every default is the safe one: Docker's default capabilities, masked and read-only
//! paths and seccomp profile ([`docker`], also usable on their own through
//! [`docker_default_capabilities`] and [`docker_default_seccomp`]);
//! [`features`] is the runtime-spec `features.md` document describing what this runtime
//! accepts. Both are written as JSON literals, which is what a runc user compares them with,
//! and the spec is then deserialized into oci-spec's [`Spec`] (never built with oci-spec's
//! builders or `Default`s, which fill in youki's defaults for fields left out).
//!
//! What it owns: nothing; these are pure functions (the rootless spec reads the caller's
//! effective uid and gid).
//!
//! What it must not do: write files or print (the binary does that), or claim in
//! [`features`] anything the runtime does not implement.

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use crate::capabilities;

pub mod docker;

pub use docker::{docker_default_capabilities, docker_default_seccomp};

/// The OCI runtime-spec version of the generated config and the newest one we accept.
pub const OCI_VERSION: &str = "1.2.0";

/// The oldest runtime-spec version we accept.
pub const OCI_VERSION_MIN: &str = "1.0.0";

/// Every mount option the runtime understands (runc's list, recursive variants included).
pub const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "remount",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "unbindable",
    // Recursive (mount_setattr(2)) variants.
    "ratime",
    "rdev",
    "rdiratime",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rrelatime",
    "rro",
    "rrw",
    "rstrictatime",
    "rsuid",
];

/// runc's default spec — `sh` in `rootfs` (read-only), the usual mounts and namespaces — with
/// Docker's defaults for the rest: its masked and read-only paths, its capability set and its
/// seccomp profile (see [`docker_default_seccomp`]). With `rootless`, converted like
/// `runc spec --rootless`: a user namespace mapping container root to the caller's euid/egid,
/// no network namespace, `/sys` bind-mounted from the host, no `uid=`/`gid=` mount options and
/// no cgroup resources.
pub fn default_spec(rootless: bool) -> Spec {
    let mut value = default_spec_json();
    if rootless {
        to_rootless(
            &mut value,
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
    }
    // The literal above is ours, not input: failing here is a bug caught by the unit tests.
    serde_json::from_value(value).expect("the built-in default spec is a valid OCI spec")
}

/// `spec` as `config.json` JSON with a stable order: oci-spec keeps capability sets in hash
/// sets, so plain serialization lists them in a different order on every run; this sorts each
/// `process.capabilities` list by name (the order runc writes). Use it when writing a spec.
pub fn to_json(spec: &Spec) -> Result<Value, serde_json::Error> {
    let mut value = serde_json::to_value(spec)?;
    if let Some(sets) = value
        .pointer_mut("/process/capabilities")
        .and_then(Value::as_object_mut)
    {
        for list in sets.values_mut().filter_map(Value::as_array_mut) {
            list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        }
    }
    Ok(value)
}

/// The default spec as JSON, laid out as runc's `specconv.Example()` writes it.
fn default_spec_json() -> Value {
    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": docker::capabilities_json(),
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "gorae",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            {
                "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]
            },
            {
                "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
            },
            {
                "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
            },
            {
                "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"]
            },
            {
                "destination": "/sys", "type": "sysfs", "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"]
            },
            {
                "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
            }
        ],
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" },
                { "type": "network" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" },
                { "type": "cgroup" }
            ],
            "maskedPaths": docker::MASKED_PATHS,
            "readonlyPaths": docker::READONLY_PATHS,
            "seccomp": docker::seccomp_json()
        }
    })
}

/// runc's `specconv.ToRootless` on the JSON form: drop the network (and any user) namespace,
/// append a user namespace with a one-id mapping of container root to `uid`/`gid`, replace the
/// `/sys` mount by a read-only rbind of the host's `/sys`, strip `uid=`/`gid=` mount options,
/// and remove `linux.resources`.
fn to_rootless(spec: &mut Value, uid: u32, gid: u32) {
    if let Some(linux) = spec.get_mut("linux").and_then(Value::as_object_mut) {
        let mut namespaces: Vec<Value> = linux
            .get("namespaces")
            .and_then(Value::as_array)
            .map(|nss| {
                nss.iter()
                    .filter(|ns| !matches!(ns["type"].as_str(), Some("network" | "user")))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        namespaces.push(json!({ "type": "user" }));
        linux.insert("namespaces".into(), Value::Array(namespaces));
        linux.insert(
            "uidMappings".into(),
            json!([{ "containerID": 0, "hostID": uid, "size": 1 }]),
        );
        linux.insert(
            "gidMappings".into(),
            json!([{ "containerID": 0, "hostID": gid, "size": 1 }]),
        );
        linux.remove("resources");
    }
    if let Some(mounts) = spec.get_mut("mounts").and_then(Value::as_array_mut) {
        for mount in mounts.iter_mut() {
            let destination = mount["destination"].as_str().unwrap_or_default();
            if destination.trim_end_matches('/') == "/sys" {
                *mount = json!({
                    "destination": "/sys", "type": "none", "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]
                });
                continue;
            }
            if let Some(options) = mount.get_mut("options").and_then(Value::as_array_mut) {
                options.retain(|o| {
                    !o.as_str()
                        .is_some_and(|o| o.starts_with("uid=") || o.starts_with("gid="))
                });
            }
        }
    }
}

/// The runtime-spec `features` document (features.md): versions, hooks, mount options,
/// namespaces, capabilities, cgroup and seccomp support of this runtime.
pub fn features() -> Value {
    let capabilities: Vec<String> = capabilities::ALL
        .iter()
        .map(|c| capabilities::name(*c))
        .collect();
    let seccomp_flags = json!([
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
    ]);
    json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION,
        "hooks": [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
            "capabilities": capabilities,
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": false,
                "systemdUser": false,
                "rdma": false
            },
            "seccomp": {
                "enabled": true,
                "actions": [
                    "SCMP_ACT_ALLOW",
                    "SCMP_ACT_ERRNO",
                    "SCMP_ACT_KILL",
                    "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD",
                    "SCMP_ACT_LOG",
                    "SCMP_ACT_NOTIFY",
                    "SCMP_ACT_TRACE",
                    "SCMP_ACT_TRAP"
                ],
                "operators": [
                    "SCMP_CMP_EQ",
                    "SCMP_CMP_GE",
                    "SCMP_CMP_GT",
                    "SCMP_CMP_LE",
                    "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ",
                    "SCMP_CMP_NE"
                ],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
                "knownFlags": seccomp_flags,
                "supportedFlags": seccomp_flags
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } }
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "io.github.gorae.version": env!("CARGO_PKG_VERSION")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{Features, LinuxNamespaceType};

    fn json_of(spec: &Spec) -> Value {
        to_json(spec).unwrap_or_else(|e| panic!("serialize: {e}"))
    }

    fn mount<'a>(spec: &'a Value, destination: &str) -> Option<&'a Value> {
        spec["mounts"]
            .as_array()?
            .iter()
            .find(|m| m["destination"] == destination)
    }

    fn namespaces(spec: &Value) -> Vec<&str> {
        spec["linux"]["namespaces"]
            .as_array()
            .map(|a| a.iter().filter_map(|n| n["type"].as_str()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn serializes_to_exactly_runc_style_json() {
        // Nothing added by oci-spec defaults, nothing lost, camelCase keys.
        assert_eq!(json_of(&default_spec(false)), default_spec_json());
    }

    #[test]
    fn round_trips() {
        for rootless in [false, true] {
            let spec = default_spec(rootless);
            let text = serde_json::to_string_pretty(&spec).unwrap_or_else(|e| panic!("{e}"));
            let back: Spec = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(back, spec);
        }
    }

    #[test]
    fn key_fields() {
        let spec = default_spec(false);
        assert_eq!(spec.version(), "1.2.0");
        assert_eq!(spec.hostname().as_deref(), Some("gorae"));
        let v = json_of(&spec);
        assert_eq!(v["process"]["args"], json!(["sh"]));
        assert_eq!(v["process"]["terminal"], json!(true));
        assert_eq!(v["process"]["noNewPrivileges"], json!(true));
        assert_eq!(v["process"]["user"], json!({"uid": 0, "gid": 0}));
        assert_eq!(
            v["process"]["capabilities"]["bounding"]
                .as_array()
                .map(Vec::len),
            Some(14)
        );
        assert!(v["process"]["capabilities"].get("ambient").is_none());
        assert!(v["process"]["capabilities"].get("inheritable").is_none());
        assert_eq!(v["root"], json!({"path": "rootfs", "readonly": true}));
        assert_eq!(
            namespaces(&v),
            ["pid", "network", "ipc", "uts", "mount", "cgroup"]
        );
        assert_eq!(v["linux"]["maskedPaths"].as_array().map(Vec::len), Some(12));
        assert_eq!(
            v["linux"]["readonlyPaths"].as_array().map(Vec::len),
            Some(5)
        );
        assert_eq!(
            v["linux"]["resources"]["devices"],
            json!([{"allow": false, "access": "rwm"}])
        );
        let dests: Vec<_> = v["mounts"]
            .as_array()
            .map(|m| m.iter().filter_map(|m| m["destination"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup"
            ]
        );
        assert!(mount(&v, "/dev/pts")
            .and_then(|m| m["options"].as_array())
            .is_some_and(|o| o.contains(&json!("gid=5"))));
    }

    #[test]
    fn rootless_differences() {
        let spec = default_spec(true);
        let v = json_of(&spec);
        let euid = nix::unistd::geteuid().as_raw();
        let egid = nix::unistd::getegid().as_raw();
        assert_eq!(
            namespaces(&v),
            ["pid", "ipc", "uts", "mount", "cgroup", "user"]
        );
        let linux = spec.linux().as_ref().unwrap_or_else(|| panic!("no linux"));
        assert!(linux
            .namespaces()
            .iter()
            .flatten()
            .all(|n| n.typ() != LinuxNamespaceType::Network));
        assert_eq!(
            v["linux"]["uidMappings"],
            json!([{"containerID": 0, "hostID": euid, "size": 1}])
        );
        assert_eq!(
            v["linux"]["gidMappings"],
            json!([{"containerID": 0, "hostID": egid, "size": 1}])
        );
        assert!(v["linux"].get("resources").is_none());
        assert_eq!(
            mount(&v, "/sys"),
            Some(&json!({
                "destination": "/sys", "type": "none", "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]
            }))
        );
        assert_eq!(
            mount(&v, "/dev/pts").map(|m| &m["options"]),
            Some(&json!([
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620"
            ]))
        );
        // Everything outside linux and mounts is unchanged.
        let rootful = json_of(&default_spec(false));
        for key in ["ociVersion", "process", "root", "hostname"] {
            assert_eq!(v[key], rootful[key], "{key}");
        }
    }

    #[test]
    fn features_has_the_documented_keys() {
        let f = features();
        assert_eq!(f["ociVersionMin"], "1.0.0");
        assert_eq!(f["ociVersionMax"], "1.2.0");
        assert_eq!(f["hooks"].as_array().map(Vec::len), Some(6));
        for opt in ["rbind", "rro", "nostrictatime", "rnodiratime", "remount"] {
            assert!(
                f["mountOptions"]
                    .as_array()
                    .is_some_and(|o| o.contains(&json!(opt))),
                "{opt}"
            );
        }
        let caps = f["linux"]["capabilities"].as_array();
        assert_eq!(caps.map(Vec::len), Some(41));
        assert!(caps.is_some_and(|c| c.contains(&json!("CAP_CHECKPOINT_RESTORE"))));
        assert_eq!(f["linux"]["cgroup"]["v2"], true);
        assert_eq!(f["linux"]["cgroup"]["systemd"], false);
        assert_eq!(f["linux"]["seccomp"]["enabled"], true);
        assert_eq!(f["linux"]["apparmor"]["enabled"], false);
        assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], false);
        assert_eq!(
            f["annotations"]["io.github.gorae.version"],
            env!("CARGO_PKG_VERSION")
        );
        // Valid JSON text.
        let text = serde_json::to_string(&f).unwrap_or_else(|e| panic!("{e}"));
        let _: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn features_deserializes_into_oci_spec_features() {
        let parsed: Features = serde_json::from_value(features()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.oci_version_max(), "1.2.0");
        let linux = parsed
            .linux()
            .as_ref()
            .unwrap_or_else(|| panic!("no linux"));
        assert_eq!(linux.namespaces().as_ref().map(Vec::len), Some(8));
        let seccomp = linux
            .seccomp()
            .as_ref()
            .unwrap_or_else(|| panic!("no seccomp"));
        assert_eq!(seccomp.actions().as_ref().map(Vec::len), Some(9));
        assert_eq!(seccomp.archs().as_ref().map(Vec::len), Some(3));
        // And back: nothing we publish is lost by the typed form.
        let again = serde_json::to_value(&parsed).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            again["linux"]["capabilities"],
            features()["linux"]["capabilities"]
        );
    }
}
