//! Resource usage of a container's cgroup in runc's `types.Stats` shape (what `runc events`
//! prints), read from v1 files (cpuacct.*, cpu.stat, memory.*, pids.*, blkio.*, hugetlb.*) or
//! from v2 files (cpu.stat, memory.current/max/peak/stat/events, memory.swap.*, pids.*,
//! io.stat, hugetlb.*.current/events), each controller from the hierarchy that drives it.
//!
//! Missing files leave their fields at zero (kernels differ in what they offer); a file that
//! exists but cannot be read is an error. Values that do not parse are skipped, never a panic.

use super::{Cgroup, CgroupError, Hierarchy};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io;
use std::path::Path;

/// USER_HZ, the unit of cpuacct.stat (runc assumes 100 as well; the kernel fixes it).
const USER_HZ: u64 = 100;
const NANOS_PER_SEC: u64 = 1_000_000_000;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// runc's `types.Stats` (the fields gorae fills).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// CPU time in nanoseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(rename = "percpu_kernel", skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(rename = "percpu_user", skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// One memory counter set (usage, limit, peak, failures), in bytes.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    /// Memory plus swap (v1's memsw; on v2 swap plus memory, as runc reports it).
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// Every key of memory.stat.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 when unlimited.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// The file's text, `None` when it does not exist.
fn read_opt(path: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A single-number file; "max" is `u64::MAX`; missing or unparsable is 0.
fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    Ok(read_opt(path)?.map_or(0, |t| parse_u64(t.trim())))
}

fn parse_u64(s: &str) -> u64 {
    if s == "max" {
        u64::MAX
    } else {
        s.parse().unwrap_or(0)
    }
}

/// "key value" lines (memory.stat, cpu.stat, memory.events) as a map.
pub(crate) fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

fn read_keyed(path: &Path) -> Result<BTreeMap<String, u64>, CgroupError> {
    Ok(read_opt(path)?
        .map(|t| parse_flat_keyed(&t))
        .unwrap_or_default())
}

/// v1 blkio lines "8:0 Read 123" (and a final "Total 456", which runc skips too).
fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (dev, op, value) = (it.next()?, it.next()?, it.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// v2 io.stat lines "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6" as runc converts
/// them: bytes to ioServiceBytesRecursive, ios to ioServicedRecursive, ops Read/Write/Discard.
fn parse_io_stat(text: &str) -> Blkio {
    let mut out = Blkio::default();
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((major, minor)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut out.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut out.io_service_bytes_recursive, "Write"),
                "dbytes" => (&mut out.io_service_bytes_recursive, "Discard"),
                "rios" => (&mut out.io_serviced_recursive, "Read"),
                "wios" => (&mut out.io_serviced_recursive, "Write"),
                "dios" => (&mut out.io_serviced_recursive, "Discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    out
}

fn parse_list(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

/// Hugepage sizes ("2MB") for which `dir` has a file named hugetlb.<size>.<suffix>.
fn hugepage_sizes(dir: &Path, suffix: &str) -> Result<Vec<String>, CgroupError> {
    let mut sizes: Vec<String> = super::dir_entries(dir)?
        .into_iter()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let size = name.strip_prefix("hugetlb.")?.strip_suffix(suffix)?;
            (!size.contains('.')).then(|| size.to_string())
        })
        .collect();
    sizes.sort();
    Ok(sizes)
}

impl Cgroup {
    /// The hierarchy driving `controller`: its v1 hierarchy, else the unified one.
    fn driver(&self, controller: &str) -> Option<&Hierarchy> {
        self.v1(controller).or_else(|| self.unified())
    }

    /// Resource usage now, in runc's shape. Fails when the cgroup no longer exists.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        if let Some(h) = self.hierarchies.iter().find(|h| !h.dir.is_dir()) {
            return Err(CgroupError::Fs {
                op: "reading stats of",
                path: h.dir.clone(),
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        }
        let mut s = Stats::default();
        self.cpu_stats(&mut s.cpu)?;
        self.memory_stats(&mut s.memory)?;
        if let Some(h) = self.driver("pids") {
            s.pids.current = read_u64(&h.dir.join("pids.current"))?;
            s.pids.limit = match read_u64(&h.dir.join("pids.max"))? {
                u64::MAX => 0,
                n => n,
            };
        }
        self.blkio_stats(&mut s.blkio)?;
        self.hugetlb_stats(&mut s.hugetlb)?;
        Ok(s)
    }

    fn cpu_stats(&self, cpu: &mut Cpu) -> Result<(), CgroupError> {
        let acct = self.v1("cpuacct");
        if let Some(h) = acct {
            let d = &h.dir;
            cpu.usage.total = read_u64(&d.join("cpuacct.usage"))?;
            if let Some(t) = read_opt(&d.join("cpuacct.usage_percpu"))? {
                cpu.usage.percpu = parse_list(&t);
            }
            if let Some(t) = read_opt(&d.join("cpuacct.usage_percpu_sys"))? {
                cpu.usage.percpu_kernel = parse_list(&t);
            }
            if let Some(t) = read_opt(&d.join("cpuacct.usage_percpu_user"))? {
                cpu.usage.percpu_user = parse_list(&t);
            }
            let st = read_keyed(&d.join("cpuacct.stat"))?;
            let ns = |ticks: u64| ticks.saturating_mul(NANOS_PER_SEC / USER_HZ);
            cpu.usage.user = ns(st.get("user").copied().unwrap_or(0));
            cpu.usage.kernel = ns(st.get("system").copied().unwrap_or(0));
        }
        if let Some(h) = self.v1("cpu") {
            let st = read_keyed(&h.dir.join("cpu.stat"))?;
            cpu.throttling = Throttling {
                periods: st.get("nr_periods").copied().unwrap_or(0),
                throttled_periods: st.get("nr_throttled").copied().unwrap_or(0),
                throttled_time: st.get("throttled_time").copied().unwrap_or(0),
            };
        }
        // v2: cpu.stat has usage in every cgroup; throttling only with the cpu controller.
        if let Some(h) = self.unified() {
            let st = read_keyed(&h.dir.join("cpu.stat"))?;
            let us = |k: &str| st.get(k).copied().unwrap_or(0).saturating_mul(1000);
            if acct.is_none() {
                cpu.usage.total = us("usage_usec");
                cpu.usage.user = us("user_usec");
                cpu.usage.kernel = us("system_usec");
            }
            if self.v1("cpu").is_none() {
                cpu.throttling = Throttling {
                    periods: st.get("nr_periods").copied().unwrap_or(0),
                    throttled_periods: st.get("nr_throttled").copied().unwrap_or(0),
                    throttled_time: us("throttled_usec"),
                };
            }
        }
        Ok(())
    }

    fn memory_stats(&self, m: &mut Memory) -> Result<(), CgroupError> {
        let Some(h) = self.driver("memory") else {
            return Ok(());
        };
        let d = &h.dir;
        m.raw = read_keyed(&d.join("memory.stat"))?;
        if !h.unified {
            m.cache = m.raw.get("cache").copied().unwrap_or(0);
            let entry = |prefix: &str| -> Result<MemoryEntry, CgroupError> {
                Ok(MemoryEntry {
                    limit: read_u64(&d.join(format!("{prefix}limit_in_bytes")))?,
                    usage: read_u64(&d.join(format!("{prefix}usage_in_bytes")))?,
                    max: read_u64(&d.join(format!("{prefix}max_usage_in_bytes")))?,
                    failcnt: read_u64(&d.join(format!("{prefix}failcnt")))?,
                })
            };
            m.usage = entry("memory.")?;
            m.swap = entry("memory.memsw.")?;
            m.kernel = entry("memory.kmem.")?;
            m.kernel_tcp = entry("memory.kmem.tcp.")?;
            return Ok(());
        }
        m.cache = m.raw.get("file").copied().unwrap_or(0);
        let events = read_keyed(&d.join("memory.events"))?;
        m.usage = MemoryEntry {
            limit: read_u64(&d.join("memory.max"))?,
            usage: read_u64(&d.join("memory.current"))?,
            max: read_u64(&d.join("memory.peak"))?,
            failcnt: events.get("max").copied().unwrap_or(0),
        };
        if d.join("memory.swap.current").exists() {
            let swap_events = read_keyed(&d.join("memory.swap.events"))?;
            let limit = read_u64(&d.join("memory.swap.max"))?;
            // As runc: v1 reports memory+swap, so v2's swap alone gets memory added.
            m.swap = MemoryEntry {
                limit: if limit == u64::MAX || m.usage.limit == u64::MAX {
                    u64::MAX
                } else {
                    limit.saturating_add(m.usage.limit)
                },
                usage: read_u64(&d.join("memory.swap.current"))?.saturating_add(m.usage.usage),
                max: read_u64(&d.join("memory.swap.peak"))?,
                failcnt: swap_events.get("max").copied().unwrap_or(0),
            };
        }
        Ok(())
    }

    fn blkio_stats(&self, b: &mut Blkio) -> Result<(), CgroupError> {
        let Some(h) = self.driver("blkio") else {
            return Ok(());
        };
        let d = &h.dir;
        if h.unified {
            if let Some(t) = read_opt(&d.join("io.stat"))? {
                *b = parse_io_stat(&t);
            }
            return Ok(());
        }
        // CFQ's files when they have data, else BFQ's, else the throttle layer's (always
        // there), as runc falls back.
        for prefix in ["blkio.", "blkio.bfq.", "blkio.throttle."] {
            let bytes = read_opt(&d.join(format!("{prefix}io_service_bytes_recursive")))?
                .map(|t| parse_blkio_v1(&t))
                .unwrap_or_default();
            if bytes.is_empty() && prefix != "blkio.throttle." {
                continue;
            }
            b.io_service_bytes_recursive = bytes;
            b.io_serviced_recursive = read_opt(&d.join(format!("{prefix}io_serviced_recursive")))?
                .map(|t| parse_blkio_v1(&t))
                .unwrap_or_default();
            break;
        }
        Ok(())
    }

    fn hugetlb_stats(&self, out: &mut BTreeMap<String, Hugetlb>) -> Result<(), CgroupError> {
        let Some(h) = self.driver("hugetlb") else {
            return Ok(());
        };
        let d = &h.dir;
        if h.unified {
            for size in hugepage_sizes(d, ".current")? {
                let events = read_keyed(&d.join(format!("hugetlb.{size}.events")))?;
                out.insert(
                    size.clone(),
                    Hugetlb {
                        usage: read_u64(&d.join(format!("hugetlb.{size}.current")))?,
                        max: 0,
                        failcnt: events.get("max").copied().unwrap_or(0),
                    },
                );
            }
        } else {
            for size in hugepage_sizes(d, ".usage_in_bytes")? {
                let f = |s: &str| d.join(format!("hugetlb.{size}.{s}"));
                out.insert(
                    size.clone(),
                    Hugetlb {
                        usage: read_u64(&f("usage_in_bytes"))?,
                        max: read_u64(&f("max_usage_in_bytes"))?,
                        failcnt: read_u64(&f("failcnt"))?,
                    },
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_stat_becomes_runc_entries() {
        let b = parse_io_stat("8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\nbad\n");
        assert_eq!(b.io_service_bytes_recursive.len(), 3);
        assert_eq!(b.io_service_bytes_recursive[1].op, "Write");
        assert_eq!(b.io_service_bytes_recursive[1].value, 20);
        assert_eq!(b.io_serviced_recursive[0].major, 8);
        assert_eq!(b.io_serviced_recursive[0].value, 1);
    }

    #[test]
    fn blkio_v1_lines_skip_the_total() {
        let e = parse_blkio_v1("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(e.len(), 2);
        assert_eq!(
            e[0],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 4096
            }
        );
    }

    #[test]
    fn zero_fields_are_left_out_of_json_as_runc_does() {
        let v = serde_json::to_value(Stats::default()).unwrap();
        assert_eq!(
            v["cpu"]["usage"],
            serde_json::json!({"kernel": 0, "user": 0})
        );
        assert_eq!(v["pids"], serde_json::json!({}));
        assert_eq!(
            v["memory"]["usage"],
            serde_json::json!({"limit": 0, "failcnt": 0})
        );
        assert!(v["memory"].get("kernelTCP").is_some());
    }
}
