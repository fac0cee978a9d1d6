//! Test helpers: one hyper server connection over a socket pair, with the server's own
//! connection settings, and raw reads of what it answers.

use std::convert::Infallible;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt as _;
use tokio::net::UnixStream;

use crate::body::Resp;

/// The client end of a connection served by `handler`.
pub fn serve<F>(handler: F) -> UnixStream
where
    F: Fn(Request<Incoming>) -> Resp + Send + Sync + Clone + 'static,
{
    let (client, server) = UnixStream::pair().unwrap();
    tokio::spawn(async move {
        let service = service_fn(move |req| {
            let resp = handler(req);
            async move { Ok::<_, Infallible>(resp) }
        });
        let _ = http1::Builder::new()
            .half_close(true)
            .serve_connection(TokioIo::new(server), service)
            .with_upgrades()
            .await;
    });
    client
}

/// Reads up to and including the blank line after the headers.
pub async fn read_head(stream: &mut UnixStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut byte))
            .await
            .expect("the head in time")
            .unwrap();
        assert_eq!(
            n,
            1,
            "EOF inside the head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

pub async fn read_exact(stream: &mut UnixStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(20), stream.read_exact(&mut buf))
        .await
        .expect("the bytes in time")
        .unwrap();
    buf
}

pub async fn read_to_end(stream: &mut UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out))
        .await
        .expect("EOF in time")
        .unwrap();
    out
}
