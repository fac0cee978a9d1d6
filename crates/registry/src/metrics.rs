//! Prometheus metrics at `/metrics` (text exposition format 0.0.4): requests by route, method
//! and status; request durations; bytes in and out; storage use; garbage collection.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use http::StatusCode;

use crate::http::{Exchange, Response};
use crate::storage::{GcReport, Storage};

/// Upper bounds of the duration histogram, in seconds.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0, 5.0, 30.0,
];

type RequestKey = (&'static str, String, u16);

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    total: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<RequestKey, u64>>,
    durations: Mutex<BTreeMap<&'static str, Histogram>>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    gc_runs: AtomicU64,
    gc_blobs_removed: AtomicU64,
    gc_bytes_removed: AtomicU64,
    uploads_expired: AtomicU64,
}

impl Metrics {
    pub fn record(&self, exchange: &Exchange) {
        self.bytes_in
            .fetch_add(exchange.bytes_in, Ordering::Relaxed);
        self.bytes_out
            .fetch_add(exchange.bytes_out, Ordering::Relaxed);
        let route = if exchange.route.is_empty() {
            "none"
        } else {
            exchange.route
        };
        let key = (route, exchange.method.to_string(), exchange.status.as_u16());
        if let Ok(mut requests) = self.requests.lock() {
            *requests.entry(key).or_default() += 1;
        }
        let seconds = exchange.elapsed.as_secs_f64();
        if let Ok(mut durations) = self.durations.lock() {
            let h = durations.entry(route).or_default();
            for (count, bound) in h.counts.iter_mut().zip(BUCKETS) {
                if seconds <= bound {
                    *count += 1;
                }
            }
            h.sum += seconds;
            h.total += 1;
        }
    }

    pub fn record_gc(&self, report: &GcReport) {
        self.gc_runs.fetch_add(1, Ordering::Relaxed);
        self.gc_blobs_removed
            .fetch_add(report.blobs_removed as u64, Ordering::Relaxed);
        self.gc_bytes_removed
            .fetch_add(report.bytes_removed, Ordering::Relaxed);
    }

    pub fn record_expired_uploads(&self, count: usize) {
        self.uploads_expired
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, storage: &Storage) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str(
            "# HELP gorae_registry_requests_total Requests served, by route, method and status.\n",
        );
        out.push_str("# TYPE gorae_registry_requests_total counter\n");
        if let Ok(requests) = self.requests.lock() {
            for ((route, method, code), n) in requests.iter() {
                let _ = writeln!(
                    out,
                    "gorae_registry_requests_total{{route=\"{route}\",method=\"{method}\",code=\"{code}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP gorae_registry_request_duration_seconds Time from request head to the end of the response.\n");
        out.push_str("# TYPE gorae_registry_request_duration_seconds histogram\n");
        if let Ok(durations) = self.durations.lock() {
            for (route, h) in durations.iter() {
                let name = "gorae_registry_request_duration_seconds";
                for (count, bound) in h.counts.iter().zip(BUCKETS) {
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                    );
                }
                let _ = writeln!(
                    out,
                    "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.total
                );
                let _ = writeln!(out, "{name}_sum{{route=\"{route}\"}} {}", h.sum);
                let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {}", h.total);
            }
        }
        let usage = storage.usage();
        let counters = [
            (
                "gorae_registry_received_bytes_total",
                "Request body bytes received.",
                self.bytes_in.load(Ordering::Relaxed),
            ),
            (
                "gorae_registry_sent_bytes_total",
                "Response body bytes sent.",
                self.bytes_out.load(Ordering::Relaxed),
            ),
            (
                "gorae_registry_gc_runs_total",
                "Garbage collections run.",
                self.gc_runs.load(Ordering::Relaxed),
            ),
            (
                "gorae_registry_gc_removed_blobs_total",
                "Blobs removed by garbage collection.",
                self.gc_blobs_removed.load(Ordering::Relaxed),
            ),
            (
                "gorae_registry_gc_removed_bytes_total",
                "Bytes freed by garbage collection.",
                self.gc_bytes_removed.load(Ordering::Relaxed),
            ),
            (
                "gorae_registry_expired_uploads_total",
                "Abandoned upload sessions removed.",
                self.uploads_expired.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let gauges = [
            ("gorae_registry_storage_blobs", "Blobs stored.", usage.blobs),
            (
                "gorae_registry_storage_bytes",
                "Bytes of blobs stored.",
                usage.bytes,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }

    pub fn response(&self, storage: &Storage) -> Response {
        Response::new(StatusCode::OK)
            .bytes("text/plain; version=0.0.4", self.render(storage))
            .route("metrics")
    }
}
