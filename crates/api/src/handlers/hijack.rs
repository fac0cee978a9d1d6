//! Hijacking for attach and exec start: the 101 answer, then the raw connection goes to the
//! engine's `run`. A client that did not ask to upgrade gets a 200 whose body carries the
//! output (it has no way to send stdin then).

use bytes::Bytes;
use gorae_engine::engine::{Hijack, StreamKind};
use hyper::header::{HeaderMap, HeaderValue, CONNECTION, UPGRADE};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;

use crate::body::{self, Body, Resp};
use crate::log;

pub fn content_type(kind: StreamKind) -> &'static str {
    match kind {
        StreamKind::Raw => "application/vnd.docker.raw-stream",
        StreamKind::Multiplexed => "application/vnd.docker.multiplexed-stream",
    }
}

/// `Connection: Upgrade` and an `Upgrade` header, as the docker CLI sends.
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers.get_all(CONNECTION).iter().any(|v| {
        v.to_str()
            .map(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
            .unwrap_or(false)
    });
    connection_upgrade && headers.contains_key(UPGRADE)
}

pub fn respond(hijack: Hijack, upgrade: bool, on_upgrade: OnUpgrade) -> Resp {
    let kind = content_type(hijack.kind);
    if upgrade {
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => (hijack.run)(Box::new(TokioIo::new(upgraded))).await,
                Err(e) => log::info(format_args!("hijacked connection lost: {e}")),
            }
        });
        let mut resp = body::with_type(101, kind, Body::empty());
        let headers = resp.headers_mut();
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static("tcp"));
        return resp;
    }
    let (mut ours, theirs) = tokio::io::duplex(64 * 1024);
    tokio::spawn((hijack.run)(Box::new(theirs)));
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        // No stdin on a plain response: the engine's side reads EOF at once.
        let _ = ours.shutdown().await;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match ours.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    body::with_type(200, kind, Body::channel(rx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{read_exact, read_head, read_to_end, serve};
    use gorae_engine::engine::DuplexStream;
    use hyper::Request;

    /// Echoes what it reads until EOF, then says "bye" and closes.
    fn echo() -> Hijack {
        Hijack {
            kind: StreamKind::Raw,
            run: Box::new(|mut io: DuplexStream| {
                Box::pin(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n @ 1..) = io.read(&mut buf).await {
                        if io.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                    let _ = io.write_all(b"bye").await;
                    let _ = io.shutdown().await;
                })
            }),
        }
    }

    fn hijacking(mut req: Request<hyper::body::Incoming>) -> Resp {
        let upgrade = wants_upgrade(req.headers());
        let on_upgrade = hyper::upgrade::on(&mut req);
        respond(echo(), upgrade, on_upgrade)
    }

    #[tokio::test]
    async fn upgrade_answers_101_then_carries_raw_bytes_both_ways() {
        let mut conn = serve(hijacking);
        conn.write_all(
            b"POST /containers/x/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: d\r\n\
              Connection: Upgrade\r\nUpgrade: tcp\r\n\r\nearly",
        )
        .await
        .unwrap();
        let head = read_head(&mut conn).await.to_ascii_lowercase();
        assert!(
            head.starts_with("http/1.1 101 switching protocols\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nupgrade: tcp\r\n"), "{head}");
        assert!(head.contains("\r\nconnection: upgrade\r\n"), "{head}");
        assert!(
            head.contains("content-type: application/vnd.docker.raw-stream"),
            "{head}"
        );
        // Bytes sent right behind the request are not lost in hyper's buffer.
        assert_eq!(read_exact(&mut conn, 5).await, b"early");
        conn.write_all(b"ping").await.unwrap();
        assert_eq!(read_exact(&mut conn, 4).await, b"ping");
        conn.shutdown().await.unwrap();
        assert_eq!(read_to_end(&mut conn).await, b"bye");
    }

    #[tokio::test]
    async fn without_upgrade_the_output_is_the_body_of_a_200() {
        let mut conn = serve(hijacking);
        conn.write_all(b"POST /exec/x/start HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let reply = String::from_utf8(read_to_end(&mut conn).await).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.contains("\r\n\r\n3\r\nbye\r\n0\r\n\r\n"), "{reply}");
    }

    #[test]
    fn upgrade_needs_both_headers() {
        let mut h = HeaderMap::new();
        assert!(!wants_upgrade(&h));
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(!wants_upgrade(&h));
        h.insert(UPGRADE, HeaderValue::from_static("tcp"));
        assert!(wants_upgrade(&h));
    }
}
