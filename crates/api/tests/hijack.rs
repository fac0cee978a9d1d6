//! Hijacking against real containers, in raw HTTP over the unix socket: attach (stdin in,
//! stdout and stderr out in docker's multiplexed frames) with the wait's headers arriving
//! before the container starts, and exec start. Needs root, /bin/busybox and this build's
//! gorae-runc (beside the test binary's deps directory); says so and passes without them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gorae_api::{Host, Server, ServerConfig};
use gorae_engine::{Engine, EngineConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const IMAGE: &str = "gorae-test/api-busybox:latest";

fn runc_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(Path::parent)
        .unwrap()
        .join("gorae-runc")
}

fn can_run() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    // /proc/self belongs to the process's effective uid.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root || !Path::new("/bin/busybox").exists() || !runc_bin().exists() {
        eprintln!(
            "skipped: needs root, /bin/busybox and {} (cargo build -p gorae-runc)",
            runc_bin().display()
        );
        return false;
    }
    true
}

/// A data root with a busybox image imported.
fn make_root(dir: &Path) -> EngineConfig {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "echo", "sleep", "cat"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    let tar = dir.join("rootfs.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let root = dir.join("root");
    let store = gorae_image::Store::open(&root).unwrap();
    let options = gorae_image::archive::ImportOptions {
        reference: Some(IMAGE.parse().unwrap()),
        changes: vec![],
        message: None,
    };
    let mut file = std::fs::File::open(&tar).unwrap();
    gorae_image::archive::import(&store, &mut file, &options).unwrap();
    let mut config = EngineConfig::for_root(&root);
    config.runtime = runc_bin();
    config
}

async fn send(sock: &Path, method: &str, path: &str, headers: &str, body: &str) -> UnixStream {
    let mut s = UnixStream::connect(sock).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: docker\r\n{headers}Content-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    s
}

async fn read_head(s: &mut UnixStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(60), s.read(&mut b))
            .await
            .expect("head in time")
            .unwrap();
        assert_eq!(n, 1, "EOF in head: {}", String::from_utf8_lossy(&head));
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

async fn read_rest(s: &mut UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut out))
        .await
        .expect("EOF in time")
        .unwrap();
    out
}

/// A whole request with `Connection: close`: the status and the (de-chunked) body.
async fn call(sock: &Path, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = send(sock, method, path, "Connection: close\r\n", body).await;
    let head = read_head(&mut s).await;
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut rest = read_rest(&mut s).await;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        rest = dechunk(&rest);
    }
    (status, String::from_utf8_lossy(&rest).into_owned())
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&data[..end]).unwrap(), 16).unwrap();
        data = &data[end + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
    out
}

/// Docker's frames, split into (stdout, stderr).
fn demux(mut data: &[u8]) -> (String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while data.len() >= 8 {
        let len = u32::from_be_bytes([data[4], data[5], data[6], data[7]]) as usize;
        let payload = &data[8..8 + len];
        match data[0] {
            1 => out.extend_from_slice(payload),
            2 => err.extend_from_slice(payload),
            other => panic!("stream {other} in a frame"),
        }
        data = &data[8 + len..];
    }
    assert!(data.is_empty(), "a partial frame at the end");
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

async fn create(sock: &Path, body: serde_json::Value) -> String {
    let (status, reply) = call(sock, "POST", "/v1.50/containers/create", &body.to_string()).await;
    assert_eq!(status, 201, "{reply}");
    json(&reply)["Id"].as_str().unwrap().to_string()
}

async fn attach_and_exec(sock: &Path) {
    let id = create(
        sock,
        serde_json::json!({
            "Image": IMAGE,
            "Cmd": ["sh", "-c", "read line; echo got:$line; echo oops >&2"],
            "OpenStdin": true, "StdinOnce": true, "AttachStdin": true,
            "AttachStdout": true, "AttachStderr": true,
            "HostConfig": {"NetworkMode": "none"}
        }),
    )
    .await;
    let query = "stream=1&stdin=1&stdout=1&stderr=1";
    let upgrade = "Connection: Upgrade\r\nUpgrade: tcp\r\n";
    let mut attach = send(
        sock,
        "POST",
        &format!("/containers/{id}/attach?{query}"),
        upgrade,
        "",
    )
    .await;
    let head = read_head(&mut attach).await.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101 "), "{head}");
    assert!(
        head.contains("application/vnd.docker.multiplexed-stream"),
        "{head}"
    );
    // The wait's headers come before the container starts; the body when it exits.
    let path = format!("/containers/{id}/wait?condition=next-exit");
    let mut wait = send(sock, "POST", &path, "Connection: close\r\n", "").await;
    assert!(read_head(&mut wait).await.starts_with("HTTP/1.1 200 OK"));
    let (status, reply) = call(sock, "POST", &format!("/containers/{id}/start"), "").await;
    assert_eq!(status, 204, "{reply}");
    attach.write_all(b"hello\n").await.unwrap();
    let (out, err) = demux(&read_rest(&mut attach).await);
    assert_eq!((out.as_str(), err.as_str()), ("got:hello\n", "oops\n"));
    let waited = String::from_utf8(dechunk(&read_rest(&mut wait).await)).unwrap();
    assert_eq!(json(&waited)["StatusCode"], 0, "{waited}");

    let id = create(
        sock,
        serde_json::json!({"Image": IMAGE, "Cmd": ["sleep", "60"],
                           "HostConfig": {"NetworkMode": "none"}}),
    )
    .await;
    assert_eq!(
        call(sock, "POST", &format!("/containers/{id}/start"), "")
            .await
            .0,
        204
    );
    let exec = serde_json::json!({"Cmd": ["sh", "-c", "echo out; echo err >&2; exit 7"],
                                  "AttachStdout": true, "AttachStderr": true});
    let path = format!("/containers/{id}/exec");
    let (status, reply) = call(sock, "POST", &path, &exec.to_string()).await;
    assert_eq!(status, 201, "{reply}");
    let exec_id = json(&reply)["Id"].as_str().unwrap().to_string();
    let path = format!("/exec/{exec_id}/start");
    let mut started = send(
        sock,
        "POST",
        &path,
        upgrade,
        r#"{"Detach":false,"Tty":false}"#,
    )
    .await;
    let head = read_head(&mut started).await.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101 "), "{head}");
    let (out, err) = demux(&read_rest(&mut started).await);
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
    let (_, inspect) = call(sock, "GET", &format!("/exec/{exec_id}/json"), "").await;
    assert_eq!(json(&inspect)["ExitCode"], 7, "{inspect}");
}

/// Removes every container, then the engine's cgroup parent (the containers' are gone).
async fn teardown(sock: &Path, config: &EngineConfig) {
    let (_, list) = call(sock, "GET", "/containers/json?all=1", "").await;
    for c in json(&list).as_array().unwrap() {
        let id = c["Id"].as_str().unwrap();
        let (status, reply) = call(sock, "DELETE", &format!("/containers/{id}?force=1"), "").await;
        assert_eq!(status, 204, "{reply}");
    }
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = hierarchy.path().join(&config.cgroup_parent);
        if dir.is_dir() {
            std::fs::remove_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_and_exec_hijack_real_containers() {
    if !can_run() {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("gorae-api-")
        .tempdir()
        .unwrap();
    let config = make_root(dir.path());
    let sock = dir.path().join("api.sock");
    let engine = Engine::open(config.clone()).await.unwrap();
    let server_config = ServerConfig {
        hosts: vec![Host::Unix(sock.clone())],
        ..Default::default()
    };
    let server = Server::bind(&server_config, engine).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    // Clean up whatever the checks found before reporting it.
    let checks = tokio::spawn({
        let sock = sock.clone();
        async move { attach_and_exec(&sock).await }
    })
    .await;
    teardown(&sock, &config).await;
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = dir.path().to_string_lossy().into_owned();
    assert!(!mounts.contains(&root), "mounts left under {root}");
    if let Err(e) = checks {
        std::panic::resume_unwind(e.into_panic());
    }
}
