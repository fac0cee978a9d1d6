//! tcp listeners: refused without TLS unless asked for by name, TLS that requires a client
//! certificate from the configured CA (checked with a rustls client and with the docker CLI),
//! plain tcp when `insecure_plain_tcp` says so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use gorae_api::{Host, Server, ServerConfig, TlsFiles};
use gorae_engine::{Engine, EngineConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it.
fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=gorae test CA"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&ca, dir);
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let key = format!("{name}-key.pem");
        let csr = format!("{name}.csr");
        let mut req = vec!["req", "-subj", "/CN=gorae test"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr]);
        openssl(&req, dir);
        let cert = format!("{name}.pem");
        let extfile = format!("{name}.ext");
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &cert,
                "-extfile",
                &extfile,
            ],
            dir,
        );
    }
}

async fn engine(dir: &Path) -> Arc<Engine> {
    Engine::open(EngineConfig::for_root(&dir.join("root")))
        .await
        .unwrap()
}

fn tcp_config(tls: Option<TlsFiles>, insecure: bool) -> ServerConfig {
    ServerConfig {
        hosts: vec![Host::Tcp("127.0.0.1:0".into())],
        tls,
        insecure_plain_tcp: insecure,
    }
}

/// Starts the server; returns its `host:port` and the sender that stops it.
async fn start(config: ServerConfig, dir: &Path) -> (String, tokio::sync::oneshot::Sender<()>) {
    let server = Server::bind(&config, engine(dir).await).await.unwrap();
    let addr = server.addresses()[0]
        .trim_start_matches("tcp://")
        .to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

async fn ping<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) -> std::io::Result<String> {
    stream
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        .await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out))
        .await
        .map_err(|_| std::io::Error::other("timed out"))??;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn client_config(dir: &Path, with_cert: bool) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if with_cert {
        let chain = CertificateDer::pem_file_iter(dir.join("client.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("client-key.pem")).unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    Arc::new(config)
}

async fn tls_ping(addr: &str, config: Arc<ClientConfig>) -> std::io::Result<String> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?;
    ping(tls).await
}

fn files(dir: &Path) -> TlsFiles {
    TlsFiles {
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
        ca: dir.join("ca.pem"),
    }
}

#[tokio::test]
async fn tcp_without_tls_needs_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let refused = Server::bind(&tcp_config(None, false), engine(dir.path()).await).await;
    let err = refused.err().expect("plain tcp refused").to_string();
    assert!(err.contains("--insecure-plain-tcp"), "{err}");
    let (addr, stop) = start(tcp_config(None, true), dir.path()).await;
    let reply = ping(tokio::net::TcpStream::connect(&addr).await.unwrap())
        .await
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    stop.send(()).unwrap();
}

#[tokio::test]
async fn tls_requires_a_client_certificate_from_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let (addr, stop) = start(tcp_config(Some(files(dir.path())), false), dir.path()).await;
    let reply = tls_ping(&addr, client_config(dir.path(), true))
        .await
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(reply.ends_with("OK"), "{reply}");
    // Without a certificate the handshake (or, in TLS 1.3, the first read) fails.
    if let Ok(reply) = tls_ping(&addr, client_config(dir.path(), false)).await {
        assert!(!reply.contains("200 OK"), "{reply}");
    }
    // Plain HTTP on the TLS port gets nothing useful either.
    let plain = ping(tokio::net::TcpStream::connect(&addr).await.unwrap()).await;
    assert!(!plain.map(|r| r.contains("200 OK")).unwrap_or(false));
    // And the server still serves good clients.
    let reply = tls_ping(&addr, client_config(dir.path(), true))
        .await
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    stop.send(()).unwrap();
}

#[tokio::test]
async fn unusable_tls_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.pem"), "not pem").unwrap();
    let err = Server::bind(
        &tcp_config(Some(files(dir.path())), false),
        engine(dir.path()).await,
    )
    .await
    .err()
    .expect("refused")
    .to_string();
    assert!(err.contains("server.pem"), "{err}");
}

/// The docker CLI with `--tlsverify` and a client certificate.
#[tokio::test]
async fn docker_cli_over_tls() {
    let docker = PathBuf::from("/usr/local/bin/docker");
    if !docker.exists() {
        eprintln!("no docker CLI at {}: skipped", docker.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let (addr, stop) = start(tcp_config(Some(files(dir.path())), false), dir.path()).await;
    let d = dir.path();
    let out = tokio::process::Command::new(&docker)
        .env("DOCKER_CONFIG", d.join("docker-config"))
        .arg("--tlsverify")
        .arg("--tlscacert")
        .arg(d.join("ca.pem"))
        .arg("--tlscert")
        .arg(d.join("client.pem"))
        .arg("--tlskey")
        .arg(d.join("client-key.pem"))
        .args([
            "-H",
            &format!("tcp://{addr}"),
            "version",
            "--format",
            "{{.Server.APIVersion}}",
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stop.send(()).unwrap();
}
