//! A minimal closed-loop HTTP/1.1 load generator for bench/registry.sh, for the two loads wrk
//! 4.1 cannot make well:
//! - HEAD: wrk's response parser expects the body a HEAD response's Content-Length announces
//!   and waits for it until the connection times out (wg/wrk#198), and a registry's manifest
//!   HEAD always carries one;
//! - large bodies: wrk reads 8 KiB at a time, and on a 40 MiB blob its own reads were the
//!   limit (the same ~380 MB/s from gorae and from the CNCF registry, where this tool's
//!   64 KiB reads got twice that from gorae on the same machine).
//! For small GETs wrk stays the client: one epoll thread serves many connections, at about
//! a third of this tool's CPU per request (one blocking thread per connection).
//!
//! usage: httpload METHOD URL CONNECTIONS SECONDS [HEADER: VALUE ...]
//!
//! One thread per connection (keep-alive; reconnects when the server closes), each sending
//! the next request as soon as the last response is complete, until SECONDS have passed.
//! Bodies are read and thrown away (none for HEAD; only Content-Length framing: a chunked
//! response counts as a read error). Prints one JSON line in the format of bench/registry/
//! wrk.lua's, so the harness reads both tools alike. Built by the harness with plain
//! `rustc -O` (no dependencies, no Cargo project).
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Tally {
    requests: u64,
    bytes: u64,
    connect: u64,
    read: u64,
    write: u64,
    status: u64,
    timeout: u64,
    latencies_us: Vec<u32>,
}

enum Failure {
    Read,
    Timeout,
}

struct Target {
    host_port: String,
    request: Vec<u8>,
    head: bool,
}

fn parse_args(args: &[String]) -> Result<(Target, usize, Duration), String> {
    let [method, url, conns, secs, headers @ ..] = args else {
        return Err("usage: httpload METHOD URL CONNECTIONS SECONDS [HEADER: VALUE ...]".into());
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs"))?;
    let (host_port, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host_port}\r\n");
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    let conns: usize = conns.parse().map_err(|_| format!("{conns}: not a count"))?;
    let secs: f64 = secs.parse().map_err(|_| format!("{secs}: not seconds"))?;
    let target = Target {
        host_port: host_port.to_string(),
        request: request.into_bytes(),
        head: method.eq_ignore_ascii_case("HEAD"),
    };
    Ok((target, conns, Duration::from_secs_f64(secs)))
}

/// What one response was.
struct Response {
    status: u16,
    bytes: u64,
    /// The server said `Connection: close`.
    close: bool,
}

/// Reads one response.
fn read_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    head: bool,
) -> Result<Response, Failure> {
    buf.clear();
    let mut chunk = [0u8; 64 * 1024];
    let header_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Failure::Timeout,
            _ => Failure::Read,
        })?;
        if n == 0 {
            return Err(Failure::Read);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head_text = std::str::from_utf8(&buf[..header_end]).map_err(|_| Failure::Read)?;
    let status: u16 = head_text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or(Failure::Read)?;
    let (mut length, mut close) = (None::<u64>, false);
    for line in head_text.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok();
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.trim().eq_ignore_ascii_case("close");
            }
        }
    }
    let body = if head || status == 204 || status == 304 {
        0
    } else {
        length.ok_or(Failure::Read)?
    };
    // A response is complete at its announced end; a server never sends more unasked.
    let mut left = body.saturating_sub((buf.len() - header_end) as u64);
    while left > 0 {
        let want = left.min(chunk.len() as u64) as usize;
        let n = stream.read(&mut chunk[..want]).map_err(|_| Failure::Read)?;
        if n == 0 {
            return Err(Failure::Read);
        }
        left -= n as u64;
    }
    Ok(Response {
        status,
        bytes: header_end as u64 + body,
        close,
    })
}

fn connect(target: &Target) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(&target.host_port)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(stream)
}

fn run_connection(target: &Target, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let mut buf = Vec::with_capacity(4096);
    let mut stream: Option<TcpStream> = None;
    while !stop.load(Ordering::Relaxed) {
        let conn = match stream.as_mut() {
            Some(s) => s,
            None => match connect(target) {
                Ok(s) => stream.insert(s),
                Err(_) => {
                    tally.connect += 1;
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        let t0 = Instant::now();
        if conn.write_all(&target.request).is_err() {
            tally.write += 1;
            stream = None;
            continue;
        }
        match read_response(conn, &mut buf, target.head) {
            Ok(response) => {
                tally.requests += 1;
                tally.bytes += response.bytes;
                tally.status += u64::from(response.status >= 400);
                tally
                    .latencies_us
                    .push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                if response.close {
                    stream = None;
                }
            }
            Err(failure) => {
                match failure {
                    Failure::Read => tally.read += 1,
                    Failure::Timeout => tally.timeout += 1,
                }
                stream = None;
            }
        }
    }
    tally
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p / 100.0).round() as usize]
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (target, conns, duration) = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("httpload: {message}");
            return ExitCode::from(2);
        }
    };
    let target = Arc::new(target);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..conns)
        .map(|_| {
            let (target, stop) = (Arc::clone(&target), Arc::clone(&stop));
            std::thread::spawn(move || run_connection(&target, &stop))
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    for worker in workers {
        let Ok(t) = worker.join() else {
            eprintln!("httpload: a connection thread panicked");
            return ExitCode::FAILURE;
        };
        total.requests += t.requests;
        total.bytes += t.bytes;
        total.connect += t.connect;
        total.read += t.read;
        total.write += t.write;
        total.status += t.status;
        total.timeout += t.timeout;
        total.latencies_us.extend(t.latencies_us);
    }
    let elapsed = start.elapsed();
    total.latencies_us.sort_unstable();
    let l = &total.latencies_us;
    println!(
        "{{\"requests\": {}, \"duration_us\": {}, \"bytes\": {}, \"errors\": {{\"connect\": {}, \
         \"read\": {}, \"write\": {}, \"status\": {}, \"timeout\": {}}}, \"latency_us\": \
         {{\"p50\": {}, \"p99\": {}, \"max\": {}}}}}",
        total.requests,
        elapsed.as_micros(),
        total.bytes,
        total.connect,
        total.read,
        total.write,
        total.status,
        total.timeout,
        percentile(l, 50.0),
        percentile(l, 99.0),
        l.last().copied().unwrap_or(0),
    );
    ExitCode::SUCCESS
}
