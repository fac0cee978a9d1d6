//! The CLI against a real registry (Debian's CNCF docker-registry, started per test):
//! push/pull roundtrips, pull by digest, a shared base layer stored once, login with basic
//! auth, skopeo interop, and the crash test: kill -9 a pull halfway, pull again, it resumes
//! and the store verifies clean. Needs root, docker-registry, skopeo, umoci, htpasswd.

#[path = "../../../crates/image/tests/support/registry.rs"]
mod registry;
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use registry::{describe_tree, OciLayout, TestRegistry};
use support::Gorae;

fn mounted<T>(g: &Gorae, image: &str, f: impl FnOnce(&Path) -> T) -> T {
    let target = tempfile::tempdir().unwrap();
    let t = target.path().to_str().unwrap().to_string();
    g.ok(&["image", "mount", image, &t]);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(target.path())));
    g.ok(&["image", "unmount", &t]);
    result.unwrap_or_else(|e| std::panic::resume_unwind(e))
}

#[test]
fn push_then_pull_into_a_fresh_store() {
    let reg = TestRegistry::start();
    let image = format!("{}/tests/busybox:1", reg.host());
    let a = Gorae::new();
    let id = a.import_busybox(&image, &[("etc/motd", b"hello\n")]);
    let pushed = a.ok(&["push", "-q", &image]);
    let digest = pushed.trim().rsplit(' ').next().unwrap().to_string();
    assert!(digest.starts_with("sha256:"), "{pushed}");
    // Pushing again uploads nothing new.
    a.ok(&["push", "-q", &image]);

    let b = Gorae::new();
    b.ok(&["pull", "-q", &image]);
    assert_eq!(b.ok(&["images", "-q", "--no-trunc"]).trim(), id);
    mounted(&b, &image, |root| {
        assert_eq!(std::fs::read(root.join("etc/motd")).unwrap(), b"hello\n");
        assert_eq!(
            std::fs::read(root.join("bin/busybox")).unwrap(),
            std::fs::read("/bin/busybox").unwrap()
        );
    });
    let by_digest = format!("{}/tests/busybox@{digest}", reg.host());
    let c = Gorae::new();
    c.ok(&["pull", "-q", &by_digest]);
    c.ok(&["image", "inspect", &by_digest]);
    assert!(b.ok(&["image", "verify"]).contains("match"));
}

#[test]
fn images_sharing_a_base_layer_store_it_once() {
    let reg = TestRegistry::start();
    let layout = OciLayout::new();
    let trees = tempfile::tempdir().unwrap();
    let base = trees.path().join("base");
    registry::sample_tree(&base, "base");
    layout.new_image("one", "amd64");
    layout.insert("one", &base, "/");
    layout.new_image("two", "amd64");
    layout.insert("two", &base, "/");
    for (tag, seed) in [("one", "top-one"), ("two", "top-two")] {
        let top = trees.path().join(seed);
        std::fs::create_dir_all(&top).unwrap();
        std::fs::write(top.join(seed), seed).unwrap();
        layout.insert(tag, &top, "/opt");
        layout.push(tag, &reg, &format!("shared/{tag}:latest"));
    }
    let g = Gorae::new();
    g.ok(&["pull", "-q", &format!("{}/shared/one", reg.host())]);
    let after_one = g.disk_use();
    g.ok(&["pull", "-q", &format!("{}/shared/two", reg.host())]);
    let added = g.disk_use() - after_one;
    let layers = std::fs::read_dir(g.root().join("layers/sha256"))
        .unwrap()
        .count();
    assert_eq!(layers, 3, "base + two tops");
    // The base holds ~8 MB of text; the second pull may add only its small top layer.
    assert!(added < 512 * 1024, "second pull added {added} bytes");
}

#[test]
fn a_skopeo_pushed_image_unpacks_like_umoci() {
    let reg = TestRegistry::start();
    let layout = OciLayout::new();
    let trees = tempfile::tempdir().unwrap();
    registry::sample_tree(&trees.path().join("t"), "interop");
    layout.new_image("v1", "amd64");
    layout.insert("v1", &trees.path().join("t"), "/");
    layout.push("v1", &reg, "interop/app:v1");
    let reference = layout.unpack("v1", &trees.path().join("bundle"));
    let g = Gorae::new();
    let image = format!("{}/interop/app:v1", reg.host());
    g.ok(&["pull", "-q", &image]);
    let ours = mounted(&g, &image, describe_tree);
    assert_eq!(ours, describe_tree(&reference));
}

#[test]
fn basic_auth_needs_login() {
    let reg = TestRegistry::with_basic_auth("alice", "s3cret");
    let image = format!("{}/private/bb:1", reg.host());
    let g = Gorae::new();
    g.import_busybox(&image, &[]);
    let err = g.fails(&["push", "-q", &image]);
    assert!(
        err.contains("authentication") || err.contains("401"),
        "{err}"
    );
    let err = g.fails(&["login", "-u", "alice", "-p", "wrong", &reg.host()]);
    assert!(err.contains(&reg.host()), "{err}");
    assert!(g
        .ok(&["login", "-u", "alice", "-p", "s3cret", &reg.host()])
        .contains("Login Succeeded"));
    let auth = g.root().join("auth.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&auth).unwrap().permissions().mode() & 0o777,
        0o600
    );
    g.ok(&["push", "-q", &image]);
    g.ok(&["rmi", &image]);
    g.ok(&["pull", "-q", &image]);
    g.ok(&["logout", &reg.host()]);
    g.ok(&["rmi", &image]);
    g.fails(&["pull", "-q", &image]);
}

/// A TCP relay that passes at most `rate` bytes per second and counts what it relays from
/// the registry: it makes a pull slow enough to kill halfway, and shows what a resume
/// downloaded.
struct SlowRelay {
    port: u16,
    relayed: Arc<AtomicU64>,
}

impl SlowRelay {
    fn start(upstream: u16, rate: u64) -> SlowRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let relayed = Arc::new(AtomicU64::new(0));
        let counter = relayed.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    return;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pipe(c2, s2, None, 0));
                let counter = counter.clone();
                std::thread::spawn(move || pipe(server, client, Some(counter), rate));
            }
        });
        SlowRelay { port, relayed }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, count: Option<Arc<AtomicU64>>, rate: u64) {
    let mut buf = vec![0u8; 64 * 1024];
    let start = Instant::now();
    let mut sent = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
        if let Some(c) = &count {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
        if rate > 0 {
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

fn ingest_bytes(root: &Path) -> u64 {
    std::fs::read_dir(root.join("ingest"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn a_pull_killed_halfway_resumes() {
    const BIG: usize = 48 << 20;
    let reg = TestRegistry::start();
    let direct = format!("{}/crash/big:1", reg.host());
    let a = Gorae::new();
    // Incompressible, so the compressed blob is as big as the file.
    let mut noise = vec![0u8; BIG];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut noise)
        .unwrap();
    a.import_busybox(&direct, &[("big.bin", &noise)]);
    a.ok(&["push", "-q", &direct]);

    let relay = SlowRelay::start(reg.port, 16 << 20);
    let slow = format!("127.0.0.1:{}/crash/big:1", relay.port);
    let b = Gorae::new();
    let mut pull = b.cmd().args(["pull", "-q", &slow]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ingest_bytes(b.root()) < (BIG / 4) as u64 {
        assert!(Instant::now() < deadline, "the pull never got going");
        assert!(
            pull.try_wait().unwrap().is_none(),
            "the pull ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    pull.kill().unwrap();
    pull.wait().unwrap();
    let partial = ingest_bytes(b.root());
    assert!(partial < BIG as u64, "killed halfway: {partial} bytes");
    assert!(
        b.ok(&["images", "-q"]).trim().is_empty(),
        "no image from a killed pull"
    );

    relay.relayed.store(0, Ordering::Relaxed);
    b.ok(&["pull", "-q", &slow]);
    let second = relay.relayed.load(Ordering::Relaxed);
    assert!(
        second < BIG as u64 - partial / 2,
        "the second pull resumed: it fetched {second} bytes after {partial} were kept"
    );
    assert!(b.ok(&["image", "verify"]).contains("match"));
    mounted(&b, &slow, |root| {
        assert!(std::fs::read(root.join("big.bin")).unwrap() == noise);
    });
}
