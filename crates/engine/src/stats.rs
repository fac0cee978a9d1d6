//! `docker stats`: the container's cgroup usage (gorae_runtime::cgroups, v1 or v2) in docker's
//! stats JSON: cpu and precpu (the previous sample, so the client can compute a rate), memory
//! with the memory.stat keys the CLI subtracts the page cache with, pids, blkio.
//!
//! `system_cpu_usage` is the host's total CPU time from /proc/stat in nanoseconds, as docker
//! reports it; the CLI divides the container's delta by it.

use std::path::Path;

use gorae_runtime::cgroups::{Cgroup, Stats};
use serde_json::{json, Value};

/// One sample: the cgroup's usage, the host's CPU time, and when it was taken.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub stats: Stats,
    pub system_cpu_ns: u64,
    pub online_cpus: u64,
    /// Unix nanoseconds.
    pub read_nanos: i128,
}

/// Resolves the container's cgroup from its spec's cgroupsPath.
pub fn cgroup(cgroups_path: &str, id: &str) -> Option<Cgroup> {
    Cgroup::resolve(Some(Path::new(cgroups_path)), id).ok()
}

/// A sample now; `None` when the cgroup is gone (the container stopped).
pub fn sample(cgroup: &Cgroup) -> Option<Sample> {
    let stats = cgroup.stats().ok()?;
    Some(Sample {
        stats,
        system_cpu_ns: system_cpu_ns().unwrap_or(0),
        online_cpus: online_cpus(),
        read_nanos: now_nanos(),
    })
}

fn now_nanos() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// The host's CPU time (user+nice+system+idle+iowait+irq+softirq of /proc/stat) in ns.
pub fn system_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_proc_stat(&text)
}

pub fn parse_proc_stat(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: u64 = line
        .split_whitespace()
        .skip(1)
        .take(7)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    // USER_HZ is 100 on every Linux ABI.
    Some(ticks.saturating_mul(10_000_000))
}

fn online_cpus() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

/// Total memory of the host, for a container without a memory limit.
fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

fn cpu_json(s: Option<&Sample>) -> Value {
    let Some(s) = s else {
        return json!({
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
        });
    };
    let cpu = &s.stats.cpu;
    let mut usage = json!({
        "total_usage": cpu.usage.total,
        "usage_in_kernelmode": cpu.usage.kernel,
        "usage_in_usermode": cpu.usage.user,
    });
    if !cpu.usage.percpu.is_empty() {
        usage["percpu_usage"] = json!(cpu.usage.percpu);
    }
    json!({
        "cpu_usage": usage,
        "system_cpu_usage": s.system_cpu_ns,
        "online_cpus": s.online_cpus,
        "throttling_data": {
            "periods": cpu.throttling.periods,
            "throttled_periods": cpu.throttling.throttled_periods,
            "throttled_time": cpu.throttling.throttled_time,
        }
    })
}

fn memory_json(s: &Stats, v2: bool) -> Value {
    let m = &s.memory;
    let host = host_memory();
    let limit = if m.usage.limit == 0 || (host > 0 && m.usage.limit > host) {
        host
    } else {
        m.usage.limit
    };
    let mut out = json!({
        "usage": m.usage.usage,
        "stats": m.raw,
        "limit": limit,
    });
    if !v2 {
        out["max_usage"] = json!(m.usage.max);
        out["failcnt"] = json!(m.usage.failcnt);
    }
    out
}

fn blkio_json(s: &Stats) -> Value {
    let list = |entries: &[gorae_runtime::cgroups::BlkioEntry]| -> Value {
        if entries.is_empty() {
            return Value::Null;
        }
        entries
            .iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
            .collect()
    };
    json!({
        "io_service_bytes_recursive": list(&s.blkio.io_service_bytes_recursive),
        "io_serviced_recursive": list(&s.blkio.io_serviced_recursive),
        "io_queue_recursive": null,
        "io_service_time_recursive": null,
        "io_wait_time_recursive": null,
        "io_merged_recursive": null,
        "io_time_recursive": null,
        "sectors_recursive": null,
    })
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Docker's stats JSON of `now` with `prev` as precpu (`None`: zero, as docker's first).
pub fn to_json(
    name: &str,
    id: &str,
    now: Option<&Sample>,
    prev: Option<&Sample>,
    v2: bool,
) -> Value {
    let time = |s: Option<&Sample>| {
        s.map_or(ZERO_TIME.to_string(), |s| {
            crate::logs::format_timestamp(s.read_nanos)
        })
    };
    let empty = Stats::default();
    let stats = now.map_or(&empty, |s| &s.stats);
    let mut pids = json!({"current": stats.pids.current});
    if stats.pids.limit > 0 {
        pids["limit"] = json!(stats.pids.limit);
    }
    json!({
        "name": format!("/{name}"),
        "id": id,
        "read": time(now),
        "preread": time(prev),
        "pids_stats": if now.is_some() { pids } else { json!({}) },
        "blkio_stats": blkio_json(stats),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(now),
        "precpu_stats": cpu_json(prev),
        "memory_stats": if now.is_some() { memory_json(stats, v2) } else { json!({}) },
    })
}

/// Whether the cgroup is on v2 (memory reported the v2 way).
pub fn is_v2(cgroup: &Cgroup) -> bool {
    cgroup.kind() == gorae_runtime::cgroups::LayoutKind::V2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_sums_seven_fields_in_ns() {
        let text = "cpu  10 1 5 100 2 0 1 7 0 0\ncpu0 1 1 1 1 1 1 1\n";
        assert_eq!(parse_proc_stat(text), Some(119 * 10_000_000));
    }

    #[test]
    fn a_stopped_container_has_zero_stats() {
        let v = to_json("web", "abc", None, None, true);
        assert_eq!(v["name"], "/web");
        assert_eq!(v["read"], ZERO_TIME);
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert_eq!(v["memory_stats"], json!({}));
    }
}
