//! From `LinuxResources` to a list of file writes: validation, routing each controller to its
//! hierarchy, the v1/v2 file names and the v2 conversions. Nothing here writes; `plan` reads
//! only (which files exist, the current memory limit for the write order).

use super::devices::{self, Rule};
use super::{read_file, Cgroup, CgroupError, Hierarchy};
use oci_spec::runtime::{LinuxResources, LinuxThrottleDevice};
use std::path::{Path, PathBuf};

/// One write of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    pub controller: String,
    pub path: PathBuf,
    pub value: String,
}

/// Everything `apply` will do, in order.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub writes: Vec<Write>,
    /// v2 device rules and the cgroup2 directory to attach their program to.
    pub bpf_devices: Option<(PathBuf, Vec<Rule>)>,
}

/// Where a controller is driven.
#[derive(Clone, Copy)]
enum Target<'a> {
    V1(&'a Hierarchy),
    V2(&'a Hierarchy),
}

impl Target<'_> {
    fn dir(&self) -> &Path {
        match self {
            Target::V1(h) | Target::V2(h) => &h.dir,
        }
    }
}

fn invalid(field: &str, value: impl ToString, reason: &str) -> CgroupError {
    CgroupError::Invalid {
        field: field.into(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// `-1` or a non-negative value.
fn check_limit(field: &str, v: Option<i64>) -> Result<(), CgroupError> {
    match v {
        Some(n) if n < -1 => Err(invalid(field, n, "must be -1 (unlimited) or >= 0")),
        _ => Ok(()),
    }
}

/// A cpuset list such as "0-3,5,7-8".
fn check_list(field: &str, s: &str) -> Result<(), CgroupError> {
    let ok = s.trim().split(',').all(|part| {
        let num = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
        match part.split_once('-') {
            Some((a, b)) => num(a) && num(b) && a.parse::<u64>().ok() <= b.parse::<u64>().ok(),
            None => num(part),
        }
    });
    if ok {
        Ok(())
    } else {
        Err(invalid(field, s, "not a list like 0-3,5"))
    }
}

/// Hugepage size as the kernel names it: digits then KB, MB or GB.
fn check_page_size(s: &str) -> Result<(), CgroupError> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && ["KB", "MB", "GB"].contains(&unit)
    {
        Ok(())
    } else {
        Err(invalid(
            "hugepageLimits.pageSize",
            s,
            "expected digits then KB, MB or GB",
        ))
    }
}

/// crun's cpu.shares → cpu.weight: a quadratic in log2 that maps 2→1, 1024→100, 262144→10000.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    10f64.powf(exponent).ceil() as u64
}

/// runc's blkio weight (10..1000) → io.weight (1..10000).
pub(crate) fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

/// "max" for -1, the number otherwise.
fn max_or(n: i64) -> String {
    if n < 0 {
        "max".into()
    } else {
        n.to_string()
    }
}

/// v1 limits at or above this are the kernel's "unlimited" (PAGE_COUNTER_MAX pages).
fn unlimited(bytes: u64) -> bool {
    bytes >= 1 << 62
}

/// The current v1 memory limit and memory+swap limit, when both files have a number.
fn v1_current(d: &Path) -> Option<(u64, u64)> {
    let num = |f: &str| {
        read_file(&d.join(f))
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
    };
    Some((
        num("memory.limit_in_bytes")?,
        num("memory.memsw.limit_in_bytes")?,
    ))
}

struct Planner<'a> {
    cg: &'a Cgroup,
    plan: Plan,
}

impl<'a> Planner<'a> {
    fn target(&self, controller: &str, field: &str) -> Result<Target<'a>, CgroupError> {
        if let Some(h) = self.cg.v1(controller) {
            return Ok(Target::V1(h));
        }
        if let Some(h) = self.cg.unified() {
            return Ok(Target::V2(h));
        }
        Err(CgroupError::NoController {
            controller: controller.into(),
            field: field.into(),
        })
    }

    /// Queues a write of a set value; the file must exist.
    fn put(
        &mut self,
        controller: &str,
        field: &str,
        dir: &Path,
        file: &str,
        value: String,
    ) -> Result<(), CgroupError> {
        let path = dir.join(file);
        if !path.exists() {
            return Err(CgroupError::MissingFile {
                controller: controller.into(),
                field: field.into(),
                path,
            });
        }
        self.plan.writes.push(Write {
            controller: controller.into(),
            path,
            value,
        });
        Ok(())
    }

    /// Queues a write only when the file exists.
    fn put_if_exists(&mut self, controller: &str, dir: &Path, file: &str, value: String) {
        let path = dir.join(file);
        if path.exists() {
            self.plan.writes.push(Write {
                controller: controller.into(),
                path,
                value,
            });
        }
    }

    fn v1_only(controller: &str, field: &str) -> CgroupError {
        CgroupError::V1Only {
            controller: controller.into(),
            field: field.into(),
        }
    }

    fn memory(&mut self, r: &LinuxResources) -> Result<(), CgroupError> {
        let Some(m) = r.memory() else { return Ok(()) };
        check_limit("memory.limit", m.limit())?;
        check_limit("memory.reservation", m.reservation())?;
        check_limit("memory.swap", m.swap())?;
        check_limit("memory.kernel", m.kernel())?;
        check_limit("memory.kernelTCP", m.kernel_tcp())?;
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(invalid("memory.swappiness", s, "must be 0..100"));
            }
        }
        // As runc: 0 means unset for the byte values.
        let nz = |v: Option<i64>| v.filter(|n| *n != 0);
        let (limit, swap, reservation) = (nz(m.limit()), nz(m.swap()), nz(m.reservation()));
        if let (Some(l), Some(s)) = (limit, swap) {
            if l > 0 && s > 0 && s < l {
                return Err(invalid(
                    "memory.swap",
                    s,
                    "memory+swap must be >= memory.limit",
                ));
            }
        }
        let any = limit.is_some()
            || swap.is_some()
            || reservation.is_some()
            || nz(m.kernel()).is_some()
            || nz(m.kernel_tcp()).is_some()
            || m.swappiness().is_some()
            || m.disable_oom_killer() == Some(true)
            || m.use_hierarchy().is_some();
        if !any {
            return Ok(());
        }
        let c = "memory";
        match self.target(c, "memory")? {
            Target::V1(h) => {
                let d = &h.dir;
                let mut swap = swap;
                if limit == Some(-1)
                    && swap.is_none()
                    && d.join("memory.memsw.limit_in_bytes").exists()
                {
                    swap = Some(-1);
                }
                let lim_w = |p: &mut Self, l: i64| {
                    p.put(c, "memory.limit", d, "memory.limit_in_bytes", l.to_string())
                };
                let sw_w = |p: &mut Self, s: i64| {
                    p.put(
                        c,
                        "memory.swap",
                        d,
                        "memory.memsw.limit_in_bytes",
                        s.to_string(),
                    )
                };
                match (limit, swap) {
                    (Some(l), Some(s)) => {
                        // memsw must stay >= limit at every step: raise memsw first when the new
                        // memsw is above the current limit, otherwise lower the limit first.
                        let cur = read_file(&d.join("memory.limit_in_bytes"))
                            .ok()
                            .and_then(|t| t.trim().parse::<u64>().ok())
                            .unwrap_or(0);
                        if s == -1 || cur < s as u64 {
                            sw_w(self, s)?;
                            lim_w(self, l)?;
                        } else {
                            lim_w(self, l)?;
                            sw_w(self, s)?;
                        }
                    }
                    (Some(l), None) => {
                        // The limit must stay <= memsw. Where memsw equals the current limit
                        // (a container without swap) it moves with the limit, in the order
                        // the kernel takes; a limit above a different memsw is refused.
                        match v1_current(d) {
                            Some((cur, memsw)) if l > 0 && memsw == cur && !unlimited(cur) => {
                                if cur < l as u64 {
                                    sw_w(self, l)?;
                                    lim_w(self, l)?;
                                } else {
                                    lim_w(self, l)?;
                                    sw_w(self, l)?;
                                }
                            }
                            Some((_, memsw)) if l > 0 && !unlimited(memsw) && l as u64 > memsw => {
                                return Err(invalid(
                                    "memory.limit",
                                    l,
                                    &format!(
                                        "above the current memory+swap limit {memsw}; set memory.swap too"
                                    ),
                                ));
                            }
                            _ => lim_w(self, l)?,
                        }
                    }
                    (None, Some(s)) => {
                        if let Some((cur, _)) = v1_current(d) {
                            if s > 0 && (s as u64) < cur {
                                return Err(invalid(
                                    "memory.swap",
                                    s,
                                    &format!(
                                        "memory+swap must be >= the current memory limit {cur}"
                                    ),
                                ));
                            }
                        }
                        sw_w(self, s)?
                    }
                    (None, None) => {}
                }
                if let Some(v) = reservation {
                    self.put(
                        c,
                        "memory.reservation",
                        d,
                        "memory.soft_limit_in_bytes",
                        v.to_string(),
                    )?;
                }
                if let Some(v) = nz(m.kernel()) {
                    self.put(
                        c,
                        "memory.kernel",
                        d,
                        "memory.kmem.limit_in_bytes",
                        v.to_string(),
                    )?;
                }
                if let Some(v) = nz(m.kernel_tcp()) {
                    self.put(
                        c,
                        "memory.kernelTCP",
                        d,
                        "memory.kmem.tcp.limit_in_bytes",
                        v.to_string(),
                    )?;
                }
                if let Some(v) = m.swappiness() {
                    self.put(
                        c,
                        "memory.swappiness",
                        d,
                        "memory.swappiness",
                        v.to_string(),
                    )?;
                }
                if m.disable_oom_killer() == Some(true) {
                    self.put(
                        c,
                        "memory.disableOOMKiller",
                        d,
                        "memory.oom_control",
                        "1".into(),
                    )?;
                }
                if let Some(v) = m.use_hierarchy() {
                    self.put(
                        c,
                        "memory.useHierarchy",
                        d,
                        "memory.use_hierarchy",
                        u8::from(v).to_string(),
                    )?;
                }
            }
            Target::V2(h) => {
                let d = &h.dir;
                if nz(m.kernel_tcp()).is_some() {
                    return Err(Self::v1_only(c, "memory.kernelTCP"));
                }
                if m.swappiness().is_some() {
                    return Err(Self::v1_only(c, "memory.swappiness"));
                }
                if m.disable_oom_killer() == Some(true) {
                    return Err(Self::v1_only(c, "memory.disableOOMKiller"));
                }
                if m.use_hierarchy() == Some(false) {
                    return Err(Self::v1_only(c, "memory.useHierarchy=false"));
                }
                if let Some(l) = limit {
                    self.put(c, "memory.limit", d, "memory.max", max_or(l))?;
                }
                // v1 swap is memory+swap; v2 memory.swap.max is swap alone (runc's conversion).
                let swap_v2 = match (swap, limit) {
                    (None, Some(-1)) => Some(-1),
                    (None, _) => None,
                    (Some(-1), _) => Some(-1),
                    (Some(s), Some(l)) if l > 0 => Some(s - l),
                    (Some(s), _) => {
                        return Err(invalid(
                            "memory.swap",
                            s,
                            "a swap limit needs a memory limit on cgroup v2",
                        ))
                    }
                };
                if let Some(s) = swap_v2 {
                    if swap.is_some() || d.join("memory.swap.max").exists() {
                        self.put(c, "memory.swap", d, "memory.swap.max", max_or(s))?;
                    }
                }
                if let Some(v) = reservation {
                    self.put(c, "memory.reservation", d, "memory.low", max_or(v))?;
                }
            }
        }
        Ok(())
    }

    fn cpu(&mut self, r: &LinuxResources) -> Result<(), CgroupError> {
        let Some(cpu) = r.cpu() else { return Ok(()) };
        if let Some(q) = cpu.quota() {
            if q < -1 {
                return Err(invalid("cpu.quota", q, "must be -1 (unlimited) or > 0"));
            }
            if q > 0 && cpu.period() == Some(0) {
                return Err(invalid(
                    "cpu.period",
                    0,
                    "must be > 0 when cpu.quota is set",
                ));
            }
        }
        check_limit("cpu.realtimeRuntime", cpu.realtime_runtime())?;
        if let Some(i) = cpu.idle() {
            if !(0..=1).contains(&i) {
                return Err(invalid("cpu.idle", i, "must be 0 or 1"));
            }
        }
        if let Some(s) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
            check_list("cpu.cpus", s)?;
        }
        if let Some(s) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
            check_list("cpu.mems", s)?;
        }
        let shares = cpu.shares().filter(|s| *s != 0);
        let quota = cpu.quota().filter(|q| *q != 0);
        let period = cpu.period().filter(|p| *p != 0);
        let rt_runtime = cpu.realtime_runtime().filter(|v| *v != 0);
        let rt_period = cpu.realtime_period().filter(|v| *v != 0);
        let burst = cpu.burst();
        let any_cpu = shares.is_some()
            || quota.is_some()
            || period.is_some()
            || rt_runtime.is_some()
            || rt_period.is_some()
            || burst.is_some()
            || cpu.idle().is_some();
        if any_cpu {
            let c = "cpu";
            match self.target(c, "cpu")? {
                Target::V1(h) => {
                    let d = &h.dir;
                    if let Some(s) = shares {
                        self.put(c, "cpu.shares", d, "cpu.shares", s.to_string())?;
                    }
                    if let Some(p) = period {
                        self.put(c, "cpu.period", d, "cpu.cfs_period_us", p.to_string())?;
                    }
                    if let Some(q) = quota {
                        self.put(c, "cpu.quota", d, "cpu.cfs_quota_us", q.to_string())?;
                    }
                    if let Some(b) = burst {
                        self.put_if_exists(c, d, "cpu.cfs_burst_us", b.to_string());
                    }
                    if let Some(p) = rt_period {
                        self.put(
                            c,
                            "cpu.realtimePeriod",
                            d,
                            "cpu.rt_period_us",
                            p.to_string(),
                        )?;
                    }
                    if let Some(v) = rt_runtime {
                        self.put(
                            c,
                            "cpu.realtimeRuntime",
                            d,
                            "cpu.rt_runtime_us",
                            v.to_string(),
                        )?;
                    }
                    if let Some(i) = cpu.idle() {
                        self.put(c, "cpu.idle", d, "cpu.idle", i.to_string())?;
                    }
                }
                Target::V2(h) => {
                    let d = &h.dir;
                    if rt_runtime.is_some() || rt_period.is_some() {
                        return Err(Self::v1_only(c, "cpu.realtimeRuntime/realtimePeriod"));
                    }
                    if let Some(s) = shares {
                        self.put(
                            c,
                            "cpu.shares",
                            d,
                            "cpu.weight",
                            shares_to_weight(s).to_string(),
                        )?;
                    }
                    if quota.is_some() || period.is_some() {
                        let mut v = match quota {
                            Some(q) if q > 0 => q.to_string(),
                            _ => "max".to_string(),
                        };
                        if let Some(p) = period {
                            v.push_str(&format!(" {p}"));
                        }
                        self.put(c, "cpu.quota/period", d, "cpu.max", v)?;
                    }
                    if let Some(b) = burst {
                        self.put_if_exists(c, d, "cpu.max.burst", b.to_string());
                    }
                    if let Some(i) = cpu.idle() {
                        self.put(c, "cpu.idle", d, "cpu.idle", i.to_string())?;
                    }
                }
            }
        }
        let cpus = cpu.cpus().as_deref().filter(|s| !s.is_empty());
        let mems = cpu.mems().as_deref().filter(|s| !s.is_empty());
        if cpus.is_some() || mems.is_some() {
            let t = self.target("cpuset", "cpu.cpus/mems")?;
            let d = t.dir().to_path_buf();
            if let Some(s) = cpus {
                self.put("cpuset", "cpu.cpus", &d, "cpuset.cpus", s.to_string())?;
            }
            if let Some(s) = mems {
                self.put("cpuset", "cpu.mems", &d, "cpuset.mems", s.to_string())?;
            }
        }
        Ok(())
    }

    fn pids(&mut self, r: &LinuxResources) -> Result<(), CgroupError> {
        let Some(p) = r.pids() else { return Ok(()) };
        let limit = p.limit();
        check_limit("pids.limit", Some(limit))?;
        let t = self.target("pids", "pids.limit")?;
        let d = t.dir().to_path_buf();
        let v = if limit <= 0 {
            "max".to_string()
        } else {
            limit.to_string()
        };
        self.put("pids", "pids.limit", &d, "pids.max", v)
    }

    fn block_io(&mut self, r: &LinuxResources) -> Result<(), CgroupError> {
        let Some(b) = r.block_io() else { return Ok(()) };
        let check_w = |field: &str, w: Option<u16>| match w {
            Some(w) if w != 0 && !(10..=1000).contains(&w) => {
                Err(invalid(field, w, "must be 10..1000"))
            }
            _ => Ok(()),
        };
        check_w("blockIO.weight", b.weight())?;
        check_w("blockIO.leafWeight", b.leaf_weight())?;
        let devs = b.weight_device().as_deref().unwrap_or(&[]);
        let check_dev = |field: &str, major: i64, minor: i64| {
            if major < 0 || minor < 0 || major > u32::MAX as i64 || minor > u32::MAX as i64 {
                Err(invalid(
                    field,
                    format!("{major}:{minor}"),
                    "major and minor must be >= 0",
                ))
            } else {
                Ok(())
            }
        };
        for d in devs {
            check_dev("blockIO.weightDevice", d.major(), d.minor())?;
            check_w("blockIO.weightDevice.weight", d.weight())?;
            check_w("blockIO.weightDevice.leafWeight", d.leaf_weight())?;
        }
        let throttles: [(&str, &str, &str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
            (
                "blockIO.throttleReadBpsDevice",
                "blkio.throttle.read_bps_device",
                "rbps",
                b.throttle_read_bps_device(),
            ),
            (
                "blockIO.throttleWriteBpsDevice",
                "blkio.throttle.write_bps_device",
                "wbps",
                b.throttle_write_bps_device(),
            ),
            (
                "blockIO.throttleReadIOPSDevice",
                "blkio.throttle.read_iops_device",
                "riops",
                b.throttle_read_iops_device(),
            ),
            (
                "blockIO.throttleWriteIOPSDevice",
                "blkio.throttle.write_iops_device",
                "wiops",
                b.throttle_write_iops_device(),
            ),
        ];
        for (field, _, _, list) in &throttles {
            for t in list.as_deref().unwrap_or(&[]) {
                check_dev(field, t.major(), t.minor())?;
            }
        }
        let weight = b.weight().filter(|w| *w != 0);
        let leaf = b.leaf_weight().filter(|w| *w != 0);
        let any = weight.is_some()
            || leaf.is_some()
            || !devs.is_empty()
            || throttles
                .iter()
                .any(|(_, _, _, l)| l.as_ref().is_some_and(|l| !l.is_empty()));
        if !any {
            return Ok(());
        }
        match self.target("blkio", "blockIO")? {
            Target::V1(h) => {
                let c = "blkio";
                let d = &h.dir;
                // CFQ's blkio.weight, or BFQ's blkio.bfq.weight on kernels without CFQ.
                let bfq = !d.join("blkio.weight").exists() && d.join("blkio.bfq.weight").exists();
                let (wf, wdf) = if bfq {
                    ("blkio.bfq.weight", "blkio.bfq.weight_device")
                } else {
                    ("blkio.weight", "blkio.weight_device")
                };
                if let Some(w) = weight {
                    self.put(c, "blockIO.weight", d, wf, w.to_string())?;
                }
                if let Some(w) = leaf {
                    self.put(
                        c,
                        "blockIO.leafWeight",
                        d,
                        "blkio.leaf_weight",
                        w.to_string(),
                    )?;
                }
                for dev in devs {
                    if let Some(w) = dev.weight().filter(|w| *w != 0) {
                        let v = format!("{}:{} {}", dev.major(), dev.minor(), w);
                        self.put(c, "blockIO.weightDevice", d, wdf, v)?;
                    }
                    if let Some(w) = dev.leaf_weight().filter(|w| *w != 0) {
                        let v = format!("{}:{} {}", dev.major(), dev.minor(), w);
                        self.put(
                            c,
                            "blockIO.weightDevice.leafWeight",
                            d,
                            "blkio.leaf_weight_device",
                            v,
                        )?;
                    }
                }
                for (field, file, _, list) in &throttles {
                    for t in list.as_deref().unwrap_or(&[]) {
                        let v = format!("{}:{} {}", t.major(), t.minor(), t.rate());
                        self.put(c, field, d, file, v)?;
                    }
                }
            }
            Target::V2(h) => {
                let c = "io";
                let d = &h.dir;
                if leaf.is_some() || devs.iter().any(|x| x.leaf_weight().is_some_and(|w| w != 0)) {
                    return Err(Self::v1_only(c, "blockIO.leafWeight"));
                }
                // BFQ takes the v1 scale as is; io.weight needs runc's conversion.
                let bfq = d.join("io.bfq.weight").exists();
                if let Some(w) = weight {
                    if bfq {
                        self.put(c, "blockIO.weight", d, "io.bfq.weight", w.to_string())?;
                    } else {
                        self.put(
                            c,
                            "blockIO.weight",
                            d,
                            "io.weight",
                            blkio_to_io_weight(w).to_string(),
                        )?;
                    }
                }
                for dev in devs {
                    if let Some(w) = dev.weight().filter(|w| *w != 0) {
                        let (file, w) = if bfq {
                            ("io.bfq.weight", u64::from(w))
                        } else {
                            ("io.weight", blkio_to_io_weight(w))
                        };
                        self.put(
                            c,
                            "blockIO.weightDevice",
                            d,
                            file,
                            format!("{}:{} {}", dev.major(), dev.minor(), w),
                        )?;
                    }
                }
                // One io.max line per device with every limit of that device.
                let mut lines: Vec<((i64, i64), String)> = Vec::new();
                for (_, _, key, list) in &throttles {
                    for t in list.as_deref().unwrap_or(&[]) {
                        let rate = if t.rate() == 0 {
                            "max".to_string()
                        } else {
                            t.rate().to_string()
                        };
                        let dev = (t.major(), t.minor());
                        match lines.iter_mut().find(|(k, _)| *k == dev) {
                            Some((_, line)) => line.push_str(&format!(" {key}={rate}")),
                            None => lines.push((dev, format!("{}:{} {key}={rate}", dev.0, dev.1))),
                        }
                    }
                }
                for (_, line) in lines {
                    self.put(c, "blockIO.throttle*", d, "io.max", line)?;
                }
            }
        }
        Ok(())
    }

    fn hugetlb(&mut self, r: &LinuxResources) -> Result<(), CgroupError> {
        let Some(list) = r.hugepage_limits().as_deref().filter(|l| !l.is_empty()) else {
            return Ok(());
        };
        for l in list {
            check_page_size(l.page_size())?;
            check_limit("hugepageLimits.limit", Some(l.limit()))?;
        }
        let t = self.target("hugetlb", "hugepageLimits")?;
        for l in list {
            let size = l.page_size();
            match t {
                Target::V1(h) => {
                    self.put(
                        "hugetlb",
                        "hugepageLimits",
                        &h.dir,
                        &format!("hugetlb.{size}.limit_in_bytes"),
                        l.limit().to_string(),
                    )?;
                }
                Target::V2(h) => {
                    let v = max_or(l.limit());
                    self.put(
                        "hugetlb",
                        "hugepageLimits",
                        &h.dir,
                        &format!("hugetlb.{size}.max"),
                        v.clone(),
                    )?;
                    self.put_if_exists("hugetlb", &h.dir, &format!("hugetlb.{size}.rsvd.max"), v);
                }
            }
        }
        Ok(())
    }

    fn network(&mut self, r: &LinuxResources) -> Result<(), CgroupError> {
        let Some(n) = r.network() else { return Ok(()) };
        if let Some(id) = n.class_id() {
            let h = self
                .cg
                .v1("net_cls")
                .ok_or_else(|| CgroupError::NoController {
                    controller: "net_cls".into(),
                    field: "network.classID".into(),
                })?;
            self.put(
                "net_cls",
                "network.classID",
                &h.dir.clone(),
                "net_cls.classid",
                id.to_string(),
            )?;
        }
        if let Some(prios) = n.priorities().as_deref().filter(|p| !p.is_empty()) {
            let h = self
                .cg
                .v1("net_prio")
                .ok_or_else(|| CgroupError::NoController {
                    controller: "net_prio".into(),
                    field: "network.priorities".into(),
                })?;
            for p in prios {
                let name = p.name();
                if name.is_empty() || name.contains(char::is_whitespace) {
                    return Err(invalid(
                        "network.priorities.name",
                        name,
                        "not an interface name",
                    ));
                }
                self.put(
                    "net_prio",
                    "network.priorities",
                    &h.dir.clone(),
                    "net_prio.ifpriomap",
                    format!("{name} {}", p.priority()),
                )?;
            }
        }
        Ok(())
    }

    fn rdma(&mut self, r: &LinuxResources) -> Result<(), CgroupError> {
        let Some(map) = r.rdma().as_ref().filter(|m| !m.is_empty()) else {
            return Ok(());
        };
        let mut names: Vec<&String> = map.keys().collect();
        names.sort();
        let t = self.target("rdma", "rdma")?;
        let d = t.dir().to_path_buf();
        for name in names {
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(invalid("rdma", name, "not a device name"));
            }
            let lim = &map[name];
            let mut v = name.clone();
            if let Some(h) = lim.hca_handles() {
                v.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = lim.hca_objects() {
                v.push_str(&format!(" hca_object={o}"));
            }
            if v.len() > name.len() {
                self.put("rdma", "rdma", &d, "rdma.max", v)?;
            }
        }
        Ok(())
    }

    fn unified(&mut self, r: &LinuxResources) -> Result<(), CgroupError> {
        let Some(map) = r.unified().as_ref().filter(|m| !m.is_empty()) else {
            return Ok(());
        };
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for key in keys {
            if key.is_empty() || key.contains('/') || key.contains("..") || key.contains('\0') {
                return Err(invalid("unified", key, "keys must be plain file names"));
            }
            let h = self.cg.unified().ok_or_else(|| CgroupError::NeedsV2 {
                key: key.clone(),
                reason: "no cgroup2 hierarchy is mounted".into(),
            })?;
            let controller = key.split('.').next().unwrap_or("");
            if self.cg.v1(controller).is_some() {
                return Err(CgroupError::NeedsV2 {
                    key: key.clone(),
                    reason: format!("the {controller} controller is on a v1 hierarchy"),
                });
            }
            let d = h.dir.clone();
            self.put(controller, "unified", &d, key, map[key].clone())?;
        }
        Ok(())
    }

    fn devices(&mut self, r: &LinuxResources) -> Result<(), CgroupError> {
        let Some(list) = r.devices().as_deref().filter(|l| !l.is_empty()) else {
            return Ok(());
        };
        let rules = devices::parse_rules(list)?;
        match self.target("devices", "devices")? {
            Target::V1(h) => {
                let d = h.dir.clone();
                for rule in &rules {
                    let file = if rule.allow {
                        "devices.allow"
                    } else {
                        "devices.deny"
                    };
                    self.put("devices", "devices", &d, file, rule.v1_line())?;
                }
            }
            Target::V2(h) => self.plan.bpf_devices = Some((h.dir.clone(), rules)),
        }
        Ok(())
    }
}

/// Validates `r` and turns it into writes (and a device program for v2).
pub(crate) fn plan(cg: &Cgroup, r: &LinuxResources) -> Result<Plan, CgroupError> {
    let mut p = Planner {
        cg,
        plan: Plan::default(),
    };
    p.devices(r)?;
    p.memory(r)?;
    p.cpu(r)?;
    p.pids(r)?;
    p.block_io(r)?;
    p.hugetlb(r)?;
    p.network(r)?;
    p.rdma(r)?;
    p.unified(r)?;
    Ok(p.plan)
}
