//! A container's Docker config turned into its OCI spec (`bundle/config.json`), starting
//! from gorae-runtime's default spec (Docker's capabilities, seccomp profile, masked and
//! read-only paths): process, user (resolved in the image's /etc/passwd and /etc/group),
//! rlimits, hostname, mounts (binds, `--mount`, `--tmpfs`, the /etc files from the
//! container directory), privileges, resources, cgroups path, namespaces.
//!
//! The spec is edited as JSON and parsed into oci-spec's `Spec` at the end, so every field
//! set here is checked by the same parser the runtime uses. Pure functions of their inputs
//! except for the reads this says: the image rootfs's passwd/group files, the daemon's own
//! nofile limit, the host's devices for `--privileged`, and where the runtime binary is for
//! `--init`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::types::{ContainerConfig, HostConfig, Mount, Resources};

/// Docker's PATH when neither the image nor the request sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The files of the container directory bind-mounted over the image's.
pub const ETC_FILES: [&str; 3] = ["hostname", "hosts", "resolv.conf"];

/// Where docker puts the init of `--init` in the container.
pub const INIT_PATH: &str = "/sbin/docker-init";

/// What the spec is made of.
pub struct SpecInput<'a> {
    pub id: &'a str,
    pub config: &'a ContainerConfig,
    pub host: &'a HostConfig,
    /// Entrypoint + Cmd, already merged.
    pub path: &'a str,
    pub args: &'a [String],
    /// The mounted image root, for user lookups; None checks everything else only.
    pub rootfs: Option<&'a Path>,
    /// Where hostname, hosts and resolv.conf are.
    pub container_dir: &'a Path,
    /// The engine's cgroup parent.
    pub cgroup_parent: &'a str,
    /// The engine's runtime binary as configured (a path, or a name looked up in PATH);
    /// with `Init` it is the container's pid 1, as docker-init.
    pub runtime: &'a Path,
}

/// How the container's network is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Its own network namespace: only the loopback device, or the engine's namespace file.
    None,
    /// The host's network namespace.
    Host,
}

/// `NetworkMode`: "host" shares the host's namespace; every other mode gets a namespace of
/// its own (the engine wires bridge and user networks, and gives the spec the path of the
/// namespace file for them and for `container:X`; see crate::network::endpoints). Which
/// networks exist is the engine's to check.
pub fn network(host: &HostConfig) -> Result<Network> {
    match host.network_mode.as_str() {
        "host" => Ok(Network::Host),
        _ => Ok(Network::None),
    }
}

/// Joins the network namespace at `path` (the runtime then uses that namespace).
pub fn set_netns_path(spec: &mut Value, path: &Path) {
    if let Some(nss) = spec["linux"]["namespaces"].as_array_mut() {
        for ns in nss.iter_mut() {
            if ns["type"] == "network" {
                ns["path"] = json!(path.display().to_string());
            }
        }
    }
}

/// The container's hostname: the request's, the host's with `--network host`, else the
/// short id.
pub fn hostname(config: &ContainerConfig, host: &HostConfig, id: &str) -> String {
    if !config.hostname.is_empty() {
        return config.hostname.clone();
    }
    if host.network_mode == "host" || host.uts_mode == "host" {
        if let Ok(name) = nix::unistd::gethostname() {
            return name.to_string_lossy().into_owned();
        }
    }
    id[..id.len().min(12)].to_string()
}

/// `linux.cgroupsPath`: `/<parent>/<id>`, the request's `CgroupParent` if it gives one.
pub fn cgroups_path(host: &HostConfig, engine_parent: &str, id: &str) -> String {
    let parent = match host.resources.cgroup_parent.trim_matches('/') {
        "" => engine_parent.trim_matches('/'),
        p => p,
    };
    format!("/{parent}/{id}")
}

/// Everything `build` would refuse that does not need the image's files: checked at create.
pub fn validate(input: &SpecInput<'_>) -> Result<()> {
    build(input).map(drop)
}

pub fn build(input: &SpecInput<'_>) -> Result<Spec> {
    let host = input.host;
    let net = network(host)?;
    let init = match host.init {
        Some(true) => Some(init_binary(input.runtime)?),
        _ => None,
    };
    let base = gorae_runtime::specgen::default_spec(false);
    let mut spec = gorae_runtime::specgen::to_json(&base)
        .map_err(|e| Error::Internal(format!("default spec: {e}")))?;
    set_process(&mut spec, input)?;
    spec["root"] = json!({"path": "rootfs", "readonly": host.readonly_rootfs});
    let hostname = hostname(input.config, host, input.id);
    if host.uts_mode == "host" {
        spec.as_object_mut().map(|o| o.remove("hostname"));
    } else {
        spec["hostname"] = json!(hostname);
        if !input.config.domainname.is_empty() {
            spec["domainname"] = json!(input.config.domainname);
        }
    }
    let mut mounts = mounts(input, &spec["mounts"])?;
    if let Some(init) = &init {
        let src = init.to_string_lossy();
        mounts.retain(|m| m["destination"] != INIT_PATH);
        mounts.push(bind_json(&src, INIT_PATH, &["rbind", "rprivate", "ro"]));
    }
    spec["mounts"] = Value::Array(mounts);
    set_linux(&mut spec, input, net)?;
    serde_json::from_value(spec).map_err(|e| Error::Internal(format!("generated spec: {e}")))
}

fn set_process(spec: &mut Value, input: &SpecInput<'_>) -> Result<()> {
    let (config, host) = (input.config, input.host);
    let mut args = Vec::new();
    if host.init == Some(true) {
        args.extend([INIT_PATH.to_string(), "--".to_string()]);
    }
    args.push(input.path.to_string());
    args.extend(input.args.iter().cloned());
    let p = &mut spec["process"];
    p["args"] = json!(args);
    p["env"] = json!(environment(config, &hostname(config, host, input.id)));
    p["cwd"] = json!(if config.working_dir.is_empty() {
        "/"
    } else {
        config.working_dir.as_str()
    });
    if !p["cwd"].as_str().is_some_and(|c| c.starts_with('/')) {
        return Err(Error::InvalidParameter(format!(
            "the working directory '{}' is invalid, it needs to be an absolute path",
            config.working_dir
        )));
    }
    p["terminal"] = json!(config.tty);
    if let (true, Some(&[h, w])) = (config.tty, host.console_size.as_deref()) {
        if h > 0 && w > 0 {
            p["consoleSize"] = json!({"height": h, "width": w});
        }
    }
    p["user"] = match input.rootfs {
        Some(rootfs) => user_json(rootfs, &config.user, host.group_add.as_deref())?,
        None => json!({"uid": 0, "gid": 0}),
    };
    p["rlimits"] = json!(rlimits(
        host.resources.ulimits.as_deref().unwrap_or_default()
    )?);
    let caps = capabilities(host)?;
    p["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
    let mut no_new_privs = false;
    for opt in host.security_opt.iter().flatten() {
        match security_opt(opt)? {
            SecurityOpt::NoNewPrivileges(on) => no_new_privs = on,
            SecurityOpt::Other => {}
        }
    }
    p["noNewPrivileges"] = json!(no_new_privs);
    if host.oom_score_adj != 0 {
        p["oomScoreAdj"] = json!(host.oom_score_adj);
    }
    Ok(())
}

/// The runtime binary's absolute path (gorae-runc is docker-init when started under that
/// name): a configured path as it is, a bare name looked up in the daemon's PATH.
pub fn init_binary(runtime: &Path) -> Result<PathBuf> {
    let not_found = |why: String| {
        Error::Internal(format!(
            "--init: the runtime {} (docker-init) {why}",
            runtime.display()
        ))
    };
    let found = if runtime.components().count() > 1 || runtime.is_absolute() {
        Some(runtime.to_path_buf())
    } else {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join(runtime))
            .find(|p| p.is_file())
    };
    let found = found.ok_or_else(|| not_found("is not in PATH".into()))?;
    let abs = std::fs::canonicalize(&found)
        .map_err(|e| not_found(format!("is not there ({}: {e})", found.display())))?;
    if !abs.is_file() {
        return Err(not_found(format!("is not a file ({})", abs.display())));
    }
    Ok(abs)
}

/// PATH (if the config has none), HOSTNAME, TERM with a tty, then the config's variables,
/// each replacing a daemon one of the same name.
pub fn environment(config: &ContainerConfig, hostname: &str) -> Vec<String> {
    let user = config.env.as_deref().unwrap_or_default();
    let key = |e: &str| e.split('=').next().unwrap_or(e).to_string();
    let mut env: Vec<String> = Vec::new();
    if !user.iter().any(|e| key(e) == "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env.push(format!("HOSTNAME={hostname}"));
    if config.tty {
        env.push("TERM=xterm".into());
    }
    for e in user {
        match env.iter_mut().find(|d| key(d) == key(e)) {
            Some(slot) => *slot = e.clone(),
            None => env.push(e.clone()),
        }
    }
    env
}

enum SecurityOpt {
    NoNewPrivileges(bool),
    Other,
}

fn security_opt(opt: &str) -> Result<SecurityOpt> {
    let (key, value) = opt.split_once(['=', ':']).unwrap_or((opt, ""));
    match key {
        "no-new-privileges" => match value {
            "" | "true" => Ok(SecurityOpt::NoNewPrivileges(true)),
            "false" => Ok(SecurityOpt::NoNewPrivileges(false)),
            _ => Err(Error::InvalidParameter(format!(
                "invalid --security-opt: {opt:?}"
            ))),
        },
        "seccomp" if value == "unconfined" => Ok(SecurityOpt::Other),
        "seccomp" => Err(Error::NotImplemented(
            "custom seccomp profiles are not supported yet (seccomp=unconfined is)".into(),
        )),
        "apparmor" | "label" | "systempaths" => Ok(SecurityOpt::Other),
        _ => Err(Error::InvalidParameter(format!(
            "invalid --security-opt 1: {opt:?}"
        ))),
    }
}

fn has_security_opt(host: &HostConfig, want: &str) -> bool {
    host.security_opt
        .iter()
        .flatten()
        .any(|o| o.replace(':', "=") == want)
}

/// Docker's capability rules: privileged gets all; `ALL` in cap-add is all but the dropped;
/// `ALL` in cap-drop leaves only the added; else the defaults minus dropped plus added.
pub fn capabilities(host: &HostConfig) -> Result<Vec<String>> {
    let all: Vec<String> = gorae_runtime::capabilities::ALL
        .iter()
        .map(|c| gorae_runtime::capabilities::name(*c))
        .collect();
    let normalize = |list: Option<&Vec<String>>| -> Result<Vec<String>> {
        let mut out = Vec::new();
        for cap in list.into_iter().flatten() {
            let upper = cap.trim().to_ascii_uppercase();
            let name = if upper == "ALL" || upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            };
            if name != "ALL" && !all.contains(&name) {
                return Err(Error::InvalidParameter(format!(
                    "unknown capability: \"{cap}\""
                )));
            }
            out.push(name);
        }
        Ok(out)
    };
    let add = normalize(host.cap_add.as_ref())?;
    let drop = normalize(host.cap_drop.as_ref())?;
    // "All" is what the daemon holds: a capability outside its bounding set cannot be
    // granted (the runtime's capset would fail).
    let held = held_capabilities();
    let all: Vec<String> = all
        .into_iter()
        .filter(|name| held.is_none_or(|mask| cap_number(name).is_some_and(|n| mask >> n & 1 == 1)))
        .collect();
    if host.privileged {
        return Ok(all);
    }
    let defaults: Vec<String> = gorae_runtime::specgen::docker::DOCKER_DEFAULT_CAPABILITIES
        .iter()
        .map(|c| gorae_runtime::capabilities::name(*c))
        .collect();
    let is_all = |l: &[String]| l.iter().any(|c| c == "ALL");
    let mut caps: Vec<String> = if is_all(&add) {
        all.into_iter().filter(|c| !drop.contains(c)).collect()
    } else if is_all(&drop) {
        add
    } else {
        let mut caps: Vec<String> = defaults.into_iter().filter(|c| !drop.contains(c)).collect();
        caps.extend(add);
        caps
    };
    caps.sort();
    caps.dedup();
    Ok(caps)
}

/// The daemon's bounding set (CapBnd of /proc/self/status); None if it cannot be read.
pub fn held_capabilities() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

fn cap_number(name: &str) -> Option<u32> {
    gorae_runtime::capabilities::ALL
        .iter()
        .find(|c| gorae_runtime::capabilities::name(**c) == name)
        .map(|c| gorae_runtime::capabilities::number(*c))
}

/// `--ulimit`s, and the daemon's own nofile limit unless one is given.
fn rlimits(ulimits: &[crate::types::Ulimit]) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for u in ulimits {
        let name = format!("RLIMIT_{}", u.name.to_ascii_uppercase());
        const KNOWN: [&str; 16] = [
            "AS",
            "CORE",
            "CPU",
            "DATA",
            "FSIZE",
            "LOCKS",
            "MEMLOCK",
            "MSGQUEUE",
            "NICE",
            "NOFILE",
            "NPROC",
            "RSS",
            "RTPRIO",
            "RTTIME",
            "SIGPENDING",
            "STACK",
        ];
        if !KNOWN.contains(&&name[7..]) {
            return Err(Error::InvalidParameter(format!(
                "invalid ulimit type: {}",
                u.name
            )));
        }
        if u.soft > u.hard {
            return Err(Error::InvalidParameter(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                u.soft, u.hard
            )));
        }
        out.push(json!({"type": name, "soft": u.soft, "hard": u.hard}));
    }
    if !out.iter().any(|r| r["type"] == "RLIMIT_NOFILE") {
        let (soft, hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .unwrap_or((1_048_576, 1_048_576));
        out.push(json!({"type": "RLIMIT_NOFILE", "soft": soft, "hard": hard}));
    }
    Ok(out)
}

/// The user as `{"uid","gid","additionalGids"}`, resolved in the image's files.
fn user_json(rootfs: &Path, user: &str, group_add: Option<&[String]>) -> Result<Value> {
    let (uid, gid, mut extra) = resolve_user(rootfs, user)?;
    for g in group_add.unwrap_or_default() {
        extra.push(resolve_group(rootfs, g)?);
    }
    extra.retain(|g| *g != gid);
    extra.sort_unstable();
    extra.dedup();
    let mut value = json!({"uid": uid, "gid": gid});
    if !extra.is_empty() {
        value["additionalGids"] = json!(extra);
    }
    Ok(value)
}

/// (uid, gid, supplementary groups) for `user` (`name`, `uid`, `name:group`, `uid:gid`).
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32, Vec<u32>)> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_db(rootfs, "etc/passwd");
    // name:x:uid:gid:...
    let entry = passwd.iter().find(|f| match user_part.parse::<u32>() {
        Ok(uid) => f.get(2).and_then(|u| u.parse::<u32>().ok()) == Some(uid),
        Err(_) => f.first().map(String::as_str) == Some(user_part),
    });
    let (uid, mut gid, name) = match (user_part, entry) {
        ("", _) => (0, 0, "root".to_string()),
        (_, Some(f)) => {
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
            (num(2), num(3), f.first().cloned().unwrap_or_default())
        }
        (u, None) => match u.parse::<u32>() {
            Ok(uid) => (uid, 0, String::new()),
            Err(_) => {
                return Err(Error::InvalidParameter(format!(
                    "unable to find user {u}: no matching entries in passwd file"
                )))
            }
        },
    };
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        gid = resolve_group(rootfs, g)?;
    }
    // name:x:gid:member,member
    let groups = read_db(rootfs, "etc/group");
    let extra = groups
        .iter()
        .filter(|f| {
            !name.is_empty()
                && f.get(3)
                    .is_some_and(|m| m.split(',').any(|member| member.trim() == name))
        })
        .filter_map(|f| f.get(2).and_then(|g| g.parse::<u32>().ok()))
        .collect();
    Ok((uid, gid, extra))
}

fn resolve_group(rootfs: &Path, group: &str) -> Result<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    read_db(rootfs, "etc/group")
        .iter()
        .find(|f| f.first().map(String::as_str) == Some(group))
        .and_then(|f| f.get(2).and_then(|g| g.parse().ok()))
        .ok_or_else(|| {
            Error::InvalidParameter(format!(
                "unable to find group {group}: no matching entries in group file"
            ))
        })
}

/// A colon-separated database of the image (passwd, group), empty if absent. A symlink is
/// not followed: it would be resolved against the host's root, not the image's.
fn read_db(rootfs: &Path, rel: &str) -> Vec<Vec<String>> {
    let path = rootfs.join(rel);
    let is_file = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
    if !is_file {
        return Vec::new();
    }
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_string).collect())
        .collect()
}

/// The default mounts, then the container's /etc files, binds, `--mount`s and `--tmpfs`;
/// a later mount at the same destination replaces an earlier one; parents sort first.
fn mounts(input: &SpecInput<'_>, defaults: &Value) -> Result<Vec<Value>> {
    let host = input.host;
    let mut list: Vec<Value> = defaults.as_array().cloned().unwrap_or_default();
    if host.privileged {
        for m in &mut list {
            if matches!(m["destination"].as_str(), Some("/sys" | "/sys/fs/cgroup")) {
                if let Some(opts) = m["options"].as_array_mut() {
                    opts.retain(|o| o != "ro");
                    opts.push(json!("rw"));
                }
            }
        }
    }
    if host.ipc_mode == "host" {
        list.retain(|m| m["destination"] != "/dev/shm");
        list.push(bind_json("/dev/shm", "/dev/shm", &["rbind", "rprivate"]));
    } else if host.ipc_mode == "none" {
        list.retain(|m| m["destination"] != "/dev/shm");
    } else if host.shm_size > 0 {
        for m in list.iter_mut().filter(|m| m["destination"] == "/dev/shm") {
            m["options"] = json!([
                "nosuid",
                "noexec",
                "nodev",
                "mode=1777",
                format!("size={}", host.shm_size)
            ]);
        }
    }
    let etc_opts: &[&str] = if host.readonly_rootfs {
        &["rbind", "rprivate", "ro"]
    } else {
        &["rbind", "rprivate"]
    };
    for file in ETC_FILES {
        let src = input.container_dir.join(file);
        list.push(bind_json(
            &src.to_string_lossy(),
            &format!("/etc/{file}"),
            etc_opts,
        ));
    }
    for bind in host.binds.iter().flatten() {
        let bind = parse_bind(bind)?;
        if bind.is_volume() {
            return Err(Error::Internal(format!(
                "volume {:?} at {} was not resolved to its directory",
                bind.source, bind.destination
            )));
        }
        list.push(bind.to_json());
    }
    for m in host.mounts.iter().flatten() {
        list.push(mount_json(m)?);
    }
    for (dest, opts) in host.tmpfs.iter().flatten() {
        list.push(tmpfs_json(dest, opts)?);
    }
    let mut out: Vec<Value> = Vec::new();
    for m in list {
        let dest = m["destination"]
            .as_str()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        out.retain(|o| o["destination"].as_str().map(|d| d.trim_end_matches('/')) != Some(&dest));
        out.push(m);
    }
    // Stable: equal depths keep their order.
    out.sort_by_key(|m| {
        m["destination"]
            .as_str()
            .map_or(0, |d| d.trim_end_matches('/').matches('/').count())
    });
    Ok(out)
}

fn bind_json(src: &str, dest: &str, opts: &[&str]) -> Value {
    json!({"destination": dest, "type": "bind", "source": src, "options": opts})
}

/// One `-v src:dst[:opts]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bind {
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    pub propagation: String,
    /// The options as given ("ro,z").
    pub mode: String,
}

impl Bind {
    /// A named volume (`name:/path`): the engine resolves it to the volume's directory
    /// before the spec is built (crate::volumes::spec_host).
    pub fn is_volume(&self) -> bool {
        !self.source.starts_with('/')
    }

    fn to_json(&self) -> Value {
        let mut opts = vec!["rbind", self.propagation.as_str()];
        opts.push(if self.read_only { "ro" } else { "rw" });
        bind_json(&self.source, &self.destination, &opts)
    }
}

pub fn parse_bind(spec: &str) -> Result<Bind> {
    let invalid = || Error::InvalidParameter(format!("invalid volume specification: '{spec}'"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(invalid()),
    };
    if !destination.starts_with('/') || source.is_empty() {
        return Err(invalid());
    }
    let mut bind = Bind {
        source: source.to_string(),
        destination: destination.to_string(),
        read_only: false,
        propagation: "rprivate".into(),
        mode: mode.to_string(),
    };
    for opt in mode.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => bind.read_only = true,
            "rw" => bind.read_only = false,
            "z" | "Z" | "nocopy" | "consistent" | "cached" | "delegated" => {}
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                bind.propagation = opt.to_string();
            }
            _ => return Err(Error::InvalidParameter(format!("invalid mode: {opt}"))),
        }
    }
    Ok(bind)
}

fn mount_json(m: &Mount) -> Result<Value> {
    if !m.target.starts_with('/') {
        return Err(Error::InvalidParameter(format!(
            "invalid mount config: the target path {:?} is not absolute",
            m.target
        )));
    }
    match m.kind.as_str() {
        "bind" => {
            if !m.source.starts_with('/') {
                return Err(Error::InvalidParameter(format!(
                    "invalid mount config for type \"bind\": invalid mount path: '{}' mount path must be absolute",
                    m.source
                )));
            }
            if !Path::new(&m.source).exists() {
                return Err(Error::InvalidParameter(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {}",
                    m.source
                )));
            }
            let opts = m.bind_options.as_ref();
            let propagation = opts
                .and_then(|o| o["Propagation"].as_str())
                .filter(|p| !p.is_empty())
                .unwrap_or("rprivate");
            let recursive = !opts.is_some_and(|o| o["NonRecursive"] == json!(true));
            let rw = if m.read_only { "ro" } else { "rw" };
            let kind = if recursive { "rbind" } else { "bind" };
            Ok(bind_json(&m.source, &m.target, &[kind, propagation, rw]))
        }
        "tmpfs" => {
            let mut opts = vec!["nosuid".to_string(), "nodev".into(), "noexec".into()];
            if let Some(t) = &m.tmpfs_options {
                if t.size_bytes > 0 {
                    opts.push(format!("size={}", t.size_bytes));
                }
                if t.mode != 0 {
                    opts.push(format!("mode={:o}", t.mode));
                }
            }
            if m.read_only {
                opts.push("ro".into());
            }
            Ok(
                json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": opts}),
            )
        }
        "volume" => Err(Error::Internal(format!(
            "the volume at {} was not resolved to its directory",
            m.target
        ))),
        "npipe" | "cluster" | "image" => Err(Error::NotImplemented(format!(
            "mounts of type {:?} are not supported yet (bind, volume and tmpfs are)",
            m.kind
        ))),
        other => Err(Error::InvalidParameter(format!(
            "invalid mount config: mount type unknown: {other:?}"
        ))),
    }
}

fn tmpfs_json(dest: &str, opts: &str) -> Result<Value> {
    if !dest.starts_with('/') {
        return Err(Error::InvalidParameter(format!(
            "invalid tmpfs mount: {dest:?} is not an absolute path"
        )));
    }
    let mut options = vec!["noexec".to_string(), "nosuid".into(), "nodev".into()];
    for o in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let key = o.split('=').next().unwrap_or(o);
        for pair in [["exec", "noexec"], ["suid", "nosuid"], ["dev", "nodev"]] {
            if pair.contains(&key) {
                options.retain(|x| !pair.contains(&x.as_str()));
            }
        }
        options.push(o.to_string());
    }
    Ok(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options}))
}

fn set_linux(spec: &mut Value, input: &SpecInput<'_>, net: Network) -> Result<()> {
    let host = input.host;
    let linux = &mut spec["linux"];
    let mut drop: Vec<&str> = Vec::new();
    if net == Network::Host {
        drop.push("network");
    }
    for (mode, ns, what) in [
        (&host.pid_mode, "pid", "PID"),
        (&host.ipc_mode, "ipc", "IPC"),
        (&host.uts_mode, "uts", "UTS"),
    ] {
        match mode.as_str() {
            "host" => drop.push(ns),
            "" | "private" | "shareable" | "none" => {}
            other => {
                return Err(Error::NotImplemented(format!(
                    "{what} mode {other:?} is not supported yet (\"host\" is)"
                )))
            }
        }
    }
    match host.cgroupns_mode.as_str() {
        "host" => drop.push("cgroup"),
        "" | "private" => {}
        other => {
            return Err(Error::InvalidParameter(format!(
                "invalid cgroup namespace mode: {other}"
            )))
        }
    }
    if !matches!(host.userns_mode.as_str(), "" | "host") {
        return Err(Error::NotImplemented(format!(
            "user namespace mode {:?} is not supported yet",
            host.userns_mode
        )));
    }
    if let Some(nss) = linux["namespaces"].as_array_mut() {
        nss.retain(|n| !n["type"].as_str().is_some_and(|t| drop.contains(&t)));
    }
    linux["cgroupsPath"] = json!(cgroups_path(host, input.cgroup_parent, input.id));
    let mut resources = resources_json(&host.resources)?;
    let mut devices = Vec::new();
    let mut rules = vec![json!({"allow": false, "access": "rwm"})];
    if host.privileged {
        devices = host_devices(Path::new("/dev"));
        rules = vec![json!({"allow": true, "access": "rwm"})];
    }
    for d in host.resources.devices.iter().flatten() {
        let (dev, rule) = device_json(d)?;
        devices.push(dev);
        rules.push(rule);
    }
    resources["devices"] = json!(rules);
    linux["resources"] = resources;
    if !devices.is_empty() {
        linux["devices"] = json!(devices);
    }
    if let Some(sysctls) = &host.sysctls {
        linux["sysctl"] = json!(sysctls);
    }
    let unconfined_paths = host.privileged || has_security_opt(host, "systempaths=unconfined");
    if unconfined_paths {
        linux["maskedPaths"] = json!([]);
        linux["readonlyPaths"] = json!([]);
    }
    if let Some(p) = &host.masked_paths {
        linux["maskedPaths"] = json!(p);
    }
    if let Some(p) = &host.readonly_paths {
        linux["readonlyPaths"] = json!(p);
    }
    if host.privileged || has_security_opt(host, "seccomp=unconfined") {
        linux.as_object_mut().map(|o| o.remove("seccomp"));
    }
    Ok(())
}

/// Docker's resources as OCI `linux.resources` (without devices): also the body of
/// `gorae-runc update --resources`.
pub fn resources_json(r: &Resources) -> Result<Value> {
    let mut out = json!({});
    let mut memory = serde_json::Map::new();
    if r.memory > 0 {
        if r.memory < 6 * 1024 * 1024 {
            return Err(Error::InvalidParameter(
                "Minimum memory limit allowed is 6MB".into(),
            ));
        }
        memory.insert("limit".into(), json!(r.memory));
        let swap = match r.memory_swap {
            0 => r.memory * 2,
            s => s,
        };
        if swap > 0 && swap < r.memory {
            return Err(Error::InvalidParameter(
                "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
            ));
        }
        memory.insert("swap".into(), json!(swap));
    } else if r.memory_swap > 0 {
        return Err(Error::InvalidParameter(
            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
        ));
    }
    if r.memory_reservation > 0 {
        memory.insert("reservation".into(), json!(r.memory_reservation));
    }
    if let Some(s) = r.memory_swappiness.filter(|s| *s >= 0) {
        if s > 100 {
            return Err(Error::InvalidParameter(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100"
            )));
        }
        memory.insert("swappiness".into(), json!(s));
    }
    if r.oom_kill_disable == Some(true) {
        memory.insert("disableOOMKiller".into(), json!(true));
    }
    if !memory.is_empty() {
        out["memory"] = Value::Object(memory);
    }
    let mut cpu = serde_json::Map::new();
    if r.nano_cpus > 0 {
        if r.cpu_quota > 0 || r.cpu_period > 0 {
            return Err(Error::InvalidParameter(
                "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set".into(),
            ));
        }
        cpu.insert("period".into(), json!(100_000));
        cpu.insert("quota".into(), json!(r.nano_cpus * 100_000 / 1_000_000_000));
    }
    if r.cpu_quota != 0 {
        cpu.insert("quota".into(), json!(r.cpu_quota));
    }
    if r.cpu_period > 0 {
        cpu.insert("period".into(), json!(r.cpu_period));
    }
    if r.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(r.cpu_shares));
    }
    if !r.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(r.cpuset_cpus));
    }
    if !r.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(r.cpuset_mems));
    }
    if r.cpu_realtime_period > 0 {
        cpu.insert("realtimePeriod".into(), json!(r.cpu_realtime_period));
    }
    if r.cpu_realtime_runtime > 0 {
        cpu.insert("realtimeRuntime".into(), json!(r.cpu_realtime_runtime));
    }
    if !cpu.is_empty() {
        out["cpu"] = Value::Object(cpu);
    }
    if let Some(limit) = r.pids_limit.filter(|l| *l > 0) {
        out["pids"] = json!({"limit": limit});
    }
    if r.blkio_weight > 0 {
        if !(10..=1000).contains(&r.blkio_weight) {
            return Err(Error::InvalidParameter(
                "Range of blkio weight is from 10 to 1000".into(),
            ));
        }
        out["blockIO"] = json!({"weight": r.blkio_weight});
    }
    Ok(out)
}

/// `--device /dev/x[:/dev/y[:rwm]]` as the API sends it.
fn device_json(d: &Value) -> Result<(Value, Value)> {
    let host_path = d["PathOnHost"].as_str().unwrap_or_default();
    let inside = d["PathInContainer"]
        .as_str()
        .filter(|p| !p.is_empty())
        .unwrap_or(host_path);
    let perms = d["CgroupPermissions"]
        .as_str()
        .filter(|p| !p.is_empty())
        .unwrap_or("rwm");
    let dev = device_node(Path::new(host_path), inside).ok_or_else(|| {
        Error::InvalidParameter(format!(
            "error gathering device information while adding custom device {host_path:?}: not a device node"
        ))
    })?;
    let rule = json!({"allow": true, "type": dev["type"], "major": dev["major"],
        "minor": dev["minor"], "access": perms});
    Ok((dev, rule))
}

fn device_node(path: &Path, inside: &str) -> Option<Value> {
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
    let meta = std::fs::symlink_metadata(path).ok()?;
    let kind = if meta.file_type().is_char_device() {
        "c"
    } else if meta.file_type().is_block_device() {
        "b"
    } else {
        return None;
    };
    let rdev = meta.rdev();
    Some(json!({
        "path": inside, "type": kind,
        "major": nix::sys::stat::major(rdev), "minor": nix::sys::stat::minor(rdev),
        "fileMode": meta.mode() & 0o7777, "uid": meta.uid(), "gid": meta.gid()
    }))
}

/// Every device node under /dev (not in pts, shm, mqueue): `--privileged` gets them all.
fn host_devices(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                let name = entry.file_name();
                if !matches!(name.to_str(), Some("pts" | "shm" | "mqueue" | "fd")) {
                    stack.push(path);
                }
            } else if let Some(dev) = device_node(&path, &path.to_string_lossy()) {
                if path != Path::new("/dev/console") {
                    out.push(dev);
                }
            }
        }
    }
    out
}

/// Writes hostname, hosts and resolv.conf into the container directory.
pub fn write_etc_files(dir: &Path, hostname: &str, host: &HostConfig) -> Result<()> {
    use crate::error::IoContext as _;
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).at(&path)
    };
    write("hostname", format!("{hostname}\n"))?;
    let mut hosts = if host.network_mode == "host" {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
             ff02::2\tip6-allrouters\n127.0.0.1\t{hostname}\n"
        )
    };
    for extra in host.extra_hosts.iter().flatten() {
        let (name, ip) = extra
            .split_once(['=', ':'])
            .ok_or_else(|| Error::InvalidParameter(format!("invalid extra host: {extra:?}")))?;
        if ip == "host-gateway" {
            return Err(Error::NotImplemented(
                "host-gateway needs the bridge network, which is not available yet (issue 6)"
                    .into(),
            ));
        }
        if !hosts.ends_with('\n') && !hosts.is_empty() {
            hosts.push('\n');
        }
        hosts.push_str(&format!("{ip}\t{name}\n"));
    }
    write("hosts", hosts)?;
    write("resolv.conf", resolv_conf(host))
}

fn resolv_conf(host: &HostConfig) -> String {
    let mut base = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let loopback_only = {
        let ns: Vec<&str> = base
            .lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .map(str::trim)
            .collect();
        !ns.is_empty() && ns.iter().all(|n| n.starts_with("127.") || *n == "::1")
    };
    if loopback_only && host.network_mode != "host" {
        // systemd-resolved's stub is not reachable from another network namespace.
        if let Ok(real) = std::fs::read_to_string("/run/systemd/resolve/resolv.conf") {
            base = real;
        }
    }
    let dns = host.dns.as_deref().unwrap_or_default();
    let search = host.dns_search.as_deref().unwrap_or_default();
    let options = host.dns_options.as_deref().unwrap_or_default();
    if dns.is_empty() && search.is_empty() && options.is_empty() {
        return base;
    }
    let mut out = String::new();
    fn keep<'a>(prefix: &'a str, given: &[String]) -> Option<&'a str> {
        given.is_empty().then_some(prefix)
    }
    for line in base.lines() {
        let t = line.trim_start();
        let dropped = [
            keep("nameserver", dns),
            keep("search", search),
            keep("domain", search),
            keep("options", options),
        ];
        let kept = dropped.iter().flatten().any(|p| t.starts_with(p));
        let is_directive = ["nameserver", "search", "domain", "options"]
            .iter()
            .any(|p| t.starts_with(p));
        if kept || !is_directive {
            out.push_str(line);
            out.push('\n');
        }
    }
    for n in dns {
        out.push_str(&format!("nameserver {n}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// Creates `dir` (absolute, inside the container) under `rootfs` if missing, as Docker does
/// for the working directory. Stops at a symlink: it would resolve against the host.
pub fn ensure_dir_in(rootfs: &Path, dir: &str) -> Result<()> {
    use crate::error::IoContext as _;
    let mut path = rootfs.to_path_buf();
    for part in Path::new(dir).components() {
        let std::path::Component::Normal(part) = part else {
            continue;
        };
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => return Ok(()),
            Err(_) => std::fs::create_dir(&path).at(&path)?,
        }
    }
    Ok(())
}

/// Labels as they are: used by list and events.
pub fn labels(config: &ContainerConfig) -> BTreeMap<String, String> {
    config.labels.clone().unwrap_or_default()
}
