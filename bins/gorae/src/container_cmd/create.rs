//! The flags `run` and `create` share, with docker's names, and their mapping onto the
//! API's `CreateRequest` (what the docker CLI sends for the same command line).

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use clap::Args;
use gorae_engine::types::{CreateRequest, HealthConfig, LogConfig, PortBinding};

use super::parse;

#[derive(Args, Debug, Clone)]
pub struct CreateFlags {
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Set environment variables (KEY=VALUE, or KEY to take it from here).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<String>,
    /// Bind mount a volume (host-src:container-dest[:options], or an anonymous /dest).
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount (type=bind|volume|tmpfs,source=,target=,readonly).
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory (/path[:options]).
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set metadata on a container (key=value).
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// Memory limit (512m, 1g).
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 for unlimited swap.
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit.
    #[arg(long)]
    pub memory_reservation: Option<String>,
    /// Number of CPUs (1.5).
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (-1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Ulimit options (nofile=1024:2048).
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Add Linux capabilities.
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Mount the container's root filesystem as read only.
    #[arg(long)]
    pub read_only: bool,
    /// Restart policy to apply when a container exits (no, always, unless-stopped,
    /// on-failure[:max-retries]).
    #[arg(long)]
    pub restart: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub init: bool,
    /// Connect a container to a network (none, host, bridge).
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container.
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104).
    #[arg(long)]
    pub ip: Option<String>,
    /// Command to run to check health.
    #[arg(long)]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h).
    #[arg(long)]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h).
    #[arg(long)]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long)]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries
    /// countdown (ms|s|m|h).
    #[arg(long)]
    pub health_start_period: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long)]
    pub no_healthcheck: bool,
    /// Logging driver for the container (json-file, none).
    #[arg(long)]
    pub log_driver: Option<String>,
    /// Log driver options (max-size=10m, max-file=3).
    #[arg(long)]
    pub log_opt: Vec<String>,
    /// Signal to stop the container.
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long, allow_hyphen_values = true)]
    pub stop_timeout: Option<i64>,
    /// Container host name.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Pull image before running ("always", "missing", "never").
    #[arg(long, default_value = "missing", value_parser = ["always", "missing", "never"])]
    pub pull: String,
    /// Write the container ID to the file.
    #[arg(long)]
    pub cidfile: Option<String>,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    pub platform: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Set custom DNS servers.
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains.
    #[arg(long)]
    pub dns_search: Vec<String>,
    /// Set DNS options.
    #[arg(long, alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Size of /dev/shm.
    #[arg(long)]
    pub shm_size: Option<String>,
    /// Sysctl options (name=value).
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Security options.
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Add additional groups to join.
    #[arg(long)]
    pub group_add: Vec<String>,
    /// Disable OOM Killer.
    #[arg(long)]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000).
    #[arg(long, allow_hyphen_values = true)]
    pub oom_score_adj: Option<i64>,
    /// Optional parent cgroup for the container.
    #[arg(long)]
    pub cgroup_parent: Option<String>,
    /// PID namespace to use.
    #[arg(long)]
    pub pid: Option<String>,
    /// IPC mode to use.
    #[arg(long)]
    pub ipc: Option<String>,
    /// UTS namespace to use.
    #[arg(long)]
    pub uts: Option<String>,
    /// User namespace to use.
    #[arg(long)]
    pub userns: Option<String>,
    /// Cgroup namespace to use (host|private).
    #[arg(long)]
    pub cgroupns: Option<String>,
    /// Limit CPU CFS period.
    #[arg(long)]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS quota.
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// MEMs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable.
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// Tune container memory swappiness (0 to 100).
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swappiness: Option<i64>,
    /// Add a host device to the container (host[:container[:permissions]]).
    #[arg(long)]
    pub device: Vec<String>,
    /// Read in a line delimited file of labels.
    #[arg(long)]
    pub label_file: Vec<String>,
    /// Container NIS domain name.
    #[arg(long)]
    pub domainname: Option<String>,
    /// Publish a container's port(s) to the host ([ip:][hostPort:]containerPort[/proto]).
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Expose a port or a range of ports.
    #[arg(long)]
    pub expose: Vec<String>,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

impl CreateFlags {
    /// The request docker's CLI would send for these flags, `image` and `args`.
    /// `detach`: `run -d` (or `create`, which attaches nothing).
    pub fn to_request(&self, image: &str, args: &[String], detach: bool) -> Result<CreateRequest> {
        let mut req = CreateRequest::default();
        let c = &mut req.config;
        c.image = image.to_string();
        c.tty = self.tty;
        c.open_stdin = self.interactive;
        c.attach_stdin = self.interactive && !detach;
        c.stdin_once = self.interactive && !detach;
        c.attach_stdout = !detach;
        c.attach_stderr = !detach;
        c.hostname = self.hostname.clone().unwrap_or_default();
        c.user = self.user.clone().unwrap_or_default();
        c.working_dir = self.workdir.clone().unwrap_or_default();
        if !args.is_empty() {
            c.cmd = Some(args.to_vec());
        }
        if let Some(entrypoint) = &self.entrypoint {
            // docker takes the flag as one word; "" resets the image's entrypoint.
            c.entrypoint = Some(vec![entrypoint.clone()]);
        }
        let env = self.env()?;
        if !env.is_empty() {
            c.env = Some(env);
        }
        let mut labels = Vec::new();
        for path in &self.label_file {
            let content = std::fs::read_to_string(path).with_context(|| format!("open {path}"))?;
            labels.extend(
                content
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string),
            );
        }
        labels.extend(self.label.iter().cloned());
        if !labels.is_empty() {
            c.labels = Some(parse::key_values(&labels));
        }
        c.domainname = self.domainname.clone().unwrap_or_default();
        c.stop_signal = self.stop_signal.clone();
        c.stop_timeout = self.stop_timeout;
        c.healthcheck = self.healthcheck()?;
        self.volumes(&mut req)?;
        self.host_config(&mut req)?;
        self.more_host_config(&mut req)?;
        self.ports(&mut req)?;
        self.endpoint(&mut req);
        Ok(req)
    }

    fn env(&self) -> Result<Vec<String>> {
        let mut env = Vec::new();
        for path in &self.env_file {
            let content = std::fs::read_to_string(path).with_context(|| format!("open {path}"))?;
            env.extend(parse::env_file(&content, path)?);
        }
        env.extend(self.env.iter().filter_map(|e| parse::env_entry(e)));
        Ok(env)
    }

    fn healthcheck(&self) -> Result<Option<HealthConfig>> {
        let duration = |flag: &str, v: &Option<String>| -> Result<i64> {
            let Some(v) = v else { return Ok(0) };
            let d = parse::go_duration(v)
                .with_context(|| format!("invalid argument {v:?} for \"--{flag}\" flag"))?;
            if d < 0 {
                bail!("--{flag} cannot be negative");
            }
            Ok(d)
        };
        let health = HealthConfig {
            test: self
                .health_cmd
                .as_ref()
                .map(|cmd| vec!["CMD-SHELL".into(), cmd.clone()]),
            interval: duration("health-interval", &self.health_interval)?,
            timeout: duration("health-timeout", &self.health_timeout)?,
            retries: self.health_retries.unwrap_or(0),
            start_period: duration("health-start-period", &self.health_start_period)?,
            start_interval: 0,
        };
        if self.no_healthcheck {
            if health != HealthConfig::default() {
                bail!("--no-healthcheck conflicts with --health-* options");
            }
            return Ok(Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..HealthConfig::default()
            }));
        }
        if health.retries < 0 {
            bail!("--health-retries cannot be negative");
        }
        Ok((health != HealthConfig::default()).then_some(health))
    }

    fn volumes(&self, req: &mut CreateRequest) -> Result<()> {
        let mut binds = Vec::new();
        let mut anonymous = BTreeMap::new();
        for v in &self.volume {
            match v.split(':').count() {
                1 => {
                    anonymous.insert(v.clone(), serde_json::json!({}));
                }
                2 | 3 => binds.push(v.clone()),
                _ => bail!("invalid volume specification: '{v}'"),
            }
        }
        if !binds.is_empty() {
            req.host_config.binds = Some(binds);
        }
        if !anonymous.is_empty() {
            req.config.volumes = Some(anonymous);
        }
        if !self.mount.is_empty() {
            let mounts = self
                .mount
                .iter()
                .map(|m| parse::mount(m))
                .collect::<Result<_>>()?;
            req.host_config.mounts = Some(mounts);
        }
        if !self.tmpfs.is_empty() {
            let tmpfs = self
                .tmpfs
                .iter()
                .map(|t| match t.split_once(':') {
                    Some((path, opts)) => (path.to_string(), opts.to_string()),
                    None => (t.clone(), String::new()),
                })
                .collect();
            req.host_config.tmpfs = Some(tmpfs);
        }
        Ok(())
    }

    /// The less common HostConfig flags, passed through as docker's CLI does.
    fn more_host_config(&self, req: &mut CreateRequest) -> Result<()> {
        let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        let h = &mut req.host_config;
        h.extra_hosts = list(&self.add_host);
        h.dns = list(&self.dns);
        h.dns_search = list(&self.dns_search);
        h.dns_options = list(&self.dns_option);
        h.security_opt = list(&self.security_opt);
        h.group_add = list(&self.group_add);
        if let Some(size) = &self.shm_size {
            h.shm_size = flag_size(size, "--shm-size")?;
        }
        if !self.sysctl.is_empty() {
            if self.sysctl.iter().any(|s| !s.contains('=')) {
                bail!("sysctl must be name=value");
            }
            h.sysctls = Some(parse::key_values(&self.sysctl));
        }
        h.oom_score_adj = self.oom_score_adj.unwrap_or(0);
        h.pid_mode = self.pid.clone().unwrap_or_default();
        h.ipc_mode = self.ipc.clone().unwrap_or_default();
        h.uts_mode = self.uts.clone().unwrap_or_default();
        h.userns_mode = self.userns.clone().unwrap_or_default();
        h.cgroupns_mode = self.cgroupns.clone().unwrap_or_default();
        let r = &mut h.resources;
        r.oom_kill_disable = self.oom_kill_disable.then_some(true);
        r.cgroup_parent = self.cgroup_parent.clone().unwrap_or_default();
        r.cpu_period = self.cpu_period.unwrap_or(0);
        r.cpu_quota = self.cpu_quota.unwrap_or(0);
        r.cpuset_mems = self.cpuset_mems.clone().unwrap_or_default();
        r.blkio_weight = self.blkio_weight.unwrap_or(0);
        r.memory_swappiness = self.memory_swappiness;
        if !self.device.is_empty() {
            r.devices = Some(
                self.device
                    .iter()
                    .map(|d| parse::device(d))
                    .collect::<Result<_>>()?,
            );
        }
        Ok(())
    }

    /// `-p`, `-P`, `--expose`: ExposedPorts and PortBindings.
    /// `--network-alias`, `--ip`: the endpoint settings of the `--network` network.
    fn endpoint(&self, req: &mut CreateRequest) {
        if self.network_alias.is_empty() && self.ip.is_none() {
            return;
        }
        let mut endpoint = serde_json::json!({});
        if !self.network_alias.is_empty() {
            endpoint["Aliases"] = serde_json::json!(self.network_alias);
        }
        if let Some(ip) = &self.ip {
            endpoint["IPAMConfig"] = serde_json::json!({ "IPv4Address": ip });
        }
        let network = match self.network.as_deref() {
            None | Some("") => "default",
            Some(n) => n,
        };
        req.networking_config =
            Some(serde_json::json!({ "EndpointsConfig": { network: endpoint } }));
    }

    fn ports(&self, req: &mut CreateRequest) -> Result<()> {
        let mut exposed = BTreeMap::new();
        let mut bindings: BTreeMap<String, Option<Vec<PortBinding>>> = BTreeMap::new();
        for e in &self.expose {
            exposed.insert(parse::port_key(e)?, serde_json::json!({}));
        }
        for p in &self.publish {
            let (key, binding) = parse::publish(p)?;
            exposed.insert(key.clone(), serde_json::json!({}));
            bindings
                .entry(key)
                .or_default()
                .get_or_insert_with(Vec::new)
                .push(binding);
        }
        if !exposed.is_empty() {
            req.config.exposed_ports = Some(exposed);
        }
        if !bindings.is_empty() {
            req.host_config.port_bindings = Some(bindings);
        }
        req.host_config.publish_all_ports = self.publish_all;
        Ok(())
    }

    fn host_config(&self, req: &mut CreateRequest) -> Result<()> {
        let h = &mut req.host_config;
        h.auto_remove = self.rm;
        h.privileged = self.privileged;
        h.readonly_rootfs = self.read_only;
        h.init = self.init.then_some(true);
        h.network_mode = self.network.clone().unwrap_or_default();
        if !self.cap_add.is_empty() {
            h.cap_add = Some(self.cap_add.clone());
        }
        if !self.cap_drop.is_empty() {
            h.cap_drop = Some(self.cap_drop.clone());
        }
        if let Some(restart) = &self.restart {
            h.restart_policy = parse::restart_policy(restart)?;
            if h.auto_remove && !matches!(h.restart_policy.name.as_str(), "" | "no") {
                bail!("Conflicting options: --restart and --rm");
            }
        }
        h.log_config = LogConfig {
            kind: self.log_driver.clone().unwrap_or_default(),
            config: None,
        };
        if !self.log_opt.is_empty() {
            if self.log_opt.iter().any(|o| !o.contains('=')) {
                bail!("invalid log opt format: use key=value");
            }
            h.log_config.config = Some(parse::key_values(&self.log_opt));
        }
        let r = &mut h.resources;
        if let Some(m) = &self.memory {
            r.memory = flag_size(m, "-m, --memory")?;
        }
        if let Some(m) = &self.memory_reservation {
            r.memory_reservation = flag_size(m, "--memory-reservation")?;
        }
        if let Some(s) = &self.memory_swap {
            r.memory_swap = if s == "-1" {
                -1
            } else {
                flag_size(s, "--memory-swap")?
            };
        }
        if let Some(cpus) = self.cpus {
            if !(cpus.is_finite() && cpus >= 0.0) {
                bail!("invalid argument \"{cpus}\" for \"--cpus\" flag");
            }
            r.nano_cpus = (cpus * 1e9).round() as i64;
        }
        r.cpu_shares = self.cpu_shares.unwrap_or(0);
        r.cpuset_cpus = self.cpuset_cpus.clone().unwrap_or_default();
        r.pids_limit = self.pids_limit;
        if !self.ulimit.is_empty() {
            let limits = self
                .ulimit
                .iter()
                .map(|u| parse::ulimit(u))
                .collect::<Result<_>>()?;
            r.ulimits = Some(limits);
        }
        Ok(())
    }
}

/// A size flag's value, with docker's message naming the flag.
fn flag_size(value: &str, flag: &str) -> Result<i64> {
    parse::ram_in_bytes(value)
        .with_context(|| format!("invalid argument {value:?} for \"{flag}\" flag"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct T {
        #[command(flatten)]
        flags: CreateFlags,
        image: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    }

    fn request(line: &[&str], detach: bool) -> CreateRequest {
        let t = T::try_parse_from(std::iter::once("run").chain(line.iter().copied())).unwrap();
        t.flags.to_request(&t.image, &t.args, detach).unwrap()
    }

    #[test]
    fn maps_the_common_flags() {
        let req = request(
            &[
                "-it",
                "--rm",
                "--name",
                "x",
                "-e",
                "A=1",
                "-v",
                "/h:/c:ro",
                "-v",
                "/anon",
                "-w",
                "/tmp",
                "-u",
                "1000:1000",
                "-l",
                "k=v",
                "-m",
                "256m",
                "--memory-swap",
                "-1",
                "--cpus",
                "0.5",
                "--cpu-shares",
                "512",
                "--pids-limit",
                "64",
                "--ulimit",
                "nofile=10:20",
                "--cap-add",
                "NET_ADMIN",
                "--cap-drop",
                "ALL",
                "--read-only",
                "--restart",
                "no",
                "--init",
                "--network",
                "none",
                "-h",
                "box",
                "--stop-signal",
                "SIGINT",
                "--stop-timeout",
                "3",
                "--tmpfs",
                "/run:size=1m",
                "busybox",
                "sh",
                "-c",
                "echo hi",
            ],
            false,
        );
        let c = &req.config;
        assert_eq!(c.image, "busybox");
        assert_eq!(c.cmd.as_deref().unwrap(), ["sh", "-c", "echo hi"]);
        assert!(c.tty && c.open_stdin && c.attach_stdin && c.stdin_once);
        assert!(c.attach_stdout && c.attach_stderr);
        assert_eq!(c.env.as_deref().unwrap(), ["A=1"]);
        assert_eq!(
            (c.working_dir.as_str(), c.user.as_str()),
            ("/tmp", "1000:1000")
        );
        assert_eq!(c.hostname, "box");
        assert_eq!(c.labels.as_ref().unwrap()["k"], "v");
        assert!(c.volumes.as_ref().unwrap().contains_key("/anon"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(c.stop_timeout, Some(3));
        let h = &req.host_config;
        assert!(h.auto_remove && h.readonly_rootfs && h.init == Some(true));
        assert_eq!(h.binds.as_deref().unwrap(), ["/h:/c:ro"]);
        assert_eq!(h.tmpfs.as_ref().unwrap()["/run"], "size=1m");
        assert_eq!(h.network_mode, "none");
        assert_eq!(h.cap_add.as_deref().unwrap(), ["NET_ADMIN"]);
        assert_eq!(h.cap_drop.as_deref().unwrap(), ["ALL"]);
        assert_eq!(h.restart_policy.name, "no");
        let r = &h.resources;
        assert_eq!(r.memory, 256 << 20);
        assert_eq!(r.memory_swap, -1);
        assert_eq!(r.nano_cpus, 500_000_000);
        assert_eq!(r.cpu_shares, 512);
        assert_eq!(r.pids_limit, Some(64));
        assert_eq!(r.ulimits.as_ref().unwrap()[0].soft, 10);
        // The wire form is docker's.
        let wire = serde_json::to_value(&req).unwrap();
        assert_eq!(wire["HostConfig"]["Memory"], 268435456);
        assert_eq!(wire["Cmd"][0], "sh");
    }

    #[test]
    fn detached_attaches_nothing() {
        let req = request(&["-i", "busybox"], true);
        let c = &req.config;
        assert!(c.open_stdin && !c.attach_stdin && !c.stdin_once);
        assert!(!c.attach_stdout && !c.attach_stderr);
        assert!(c.cmd.is_none());
    }

    #[test]
    fn entrypoint_health_and_logs() {
        let req = request(
            &[
                "--entrypoint",
                "/bin/echo",
                "--health-cmd",
                "true",
                "--health-interval",
                "2s",
                "--health-retries",
                "4",
                "--health-timeout",
                "500ms",
                "--health-start-period",
                "1m",
                "--log-opt",
                "max-size=10m",
                "--log-opt",
                "max-file=3",
                "img",
                "a",
            ],
            false,
        );
        assert_eq!(req.config.entrypoint.as_deref().unwrap(), ["/bin/echo"]);
        assert_eq!(req.config.cmd.as_deref().unwrap(), ["a"]);
        let hc = req.config.healthcheck.unwrap();
        assert_eq!(hc.test.unwrap(), ["CMD-SHELL", "true"]);
        assert_eq!(hc.interval, 2_000_000_000);
        assert_eq!(hc.timeout, 500_000_000);
        assert_eq!(hc.start_period, 60_000_000_000);
        assert_eq!(hc.retries, 4);
        let logs = req.host_config.log_config.config.unwrap();
        assert_eq!(
            (logs["max-size"].as_str(), logs["max-file"].as_str()),
            ("10m", "3")
        );
        let more = request(
            &[
                "--add-host",
                "db:10.0.0.2",
                "--dns",
                "1.1.1.1",
                "--shm-size",
                "128m",
                "--sysctl",
                "net.core.somaxconn=1024",
                "--oom-kill-disable",
                "--pid",
                "host",
                "--device",
                "/dev/fuse",
                "-p",
                "8080:80",
                "--expose",
                "53/udp",
                "img",
            ],
            false,
        );
        let h = &more.host_config;
        assert_eq!(h.extra_hosts.as_deref().unwrap(), ["db:10.0.0.2"]);
        assert_eq!(h.dns.as_deref().unwrap(), ["1.1.1.1"]);
        assert_eq!(h.shm_size, 128 << 20);
        assert_eq!(h.sysctls.as_ref().unwrap()["net.core.somaxconn"], "1024");
        assert_eq!(h.resources.oom_kill_disable, Some(true));
        assert_eq!(h.pid_mode, "host");
        assert_eq!(
            h.resources.devices.as_ref().unwrap()[0]["PathOnHost"],
            "/dev/fuse"
        );
        let bound = h.port_bindings.as_ref().unwrap()["80/tcp"]
            .as_ref()
            .unwrap();
        assert_eq!(bound[0].host_port, "8080");
        let exposed = more.config.exposed_ports.as_ref().unwrap();
        assert!(exposed.contains_key("80/tcp") && exposed.contains_key("53/udp"));
        let off = request(&["--no-healthcheck", "img"], false);
        assert_eq!(off.config.healthcheck.unwrap().test.unwrap(), ["NONE"]);
    }

    #[test]
    fn a_flag_after_the_image_belongs_to_the_command() {
        let req = request(&["img", "-d", "--rm"], false);
        assert_eq!(req.config.cmd.as_deref().unwrap(), ["-d", "--rm"]);
        assert!(!req.host_config.auto_remove);
    }

    #[test]
    fn pull_policy_is_checked() {
        assert!(T::try_parse_from(["run", "--pull", "sometimes", "img"]).is_err());
        let t = T::try_parse_from(["run", "img"]).unwrap();
        assert_eq!(t.flags.pull, "missing");
        let t = T::try_parse_from(["run", "--pull", "never", "img"]).unwrap();
        assert_eq!(t.flags.pull, "never");
    }

    #[test]
    fn bad_values_are_errors() {
        for line in [
            &["-m", "lots", "img"][..],
            &["--restart", "sometimes", "img"],
            &["--rm", "--restart", "always", "img"],
            &["--ulimit", "nofile", "img"],
            &["--health-interval", "5", "img"],
            &["--log-opt", "max-size", "img"],
        ] {
            let t = T::try_parse_from(std::iter::once("run").chain(line.iter().copied())).unwrap();
            assert!(
                t.flags.to_request(&t.image, &t.args, false).is_err(),
                "{line:?}"
            );
        }
    }
}
