//! Response bodies and the responses built from them: whole JSON documents, chunked
//! streams fed by a channel (logs, events, progress), and a single late chunk (wait, whose
//! headers must reach the client before the container exits).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::ApiError;

pub type BoxFuture = Pin<Box<dyn Future<Output = Bytes> + Send>>;

/// The one body type every handler answers with.
pub struct Body {
    kind: Kind,
    /// Ends an endless stream (events, followed logs, stats) early: daemon shutdown.
    end: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

/// Completes when the server shuts down.
pub type Shutdown = tokio::sync::watch::Receiver<bool>;

enum Kind {
    Empty,
    Full(Option<Bytes>),
    Channel(mpsc::Receiver<Bytes>),
    Late(Option<BoxFuture>),
}

impl Body {
    fn of(kind: Kind) -> Body {
        Body { kind, end: None }
    }

    pub fn empty() -> Body {
        Body::of(Kind::Empty)
    }

    pub fn full(bytes: impl Into<Bytes>) -> Body {
        Body::of(Kind::Full(Some(bytes.into())))
    }

    /// Each message is sent as it arrives; the body ends when every sender is gone.
    pub fn channel(rx: mpsc::Receiver<Bytes>) -> Body {
        Body::of(Kind::Channel(rx))
    }

    /// One chunk, sent when `future` completes; the headers go out before.
    pub fn late(future: BoxFuture) -> Body {
        Body::of(Kind::Late(Some(future)))
    }

    /// The body ends (cleanly, as Docker's event stream does) when the server shuts down.
    pub fn until(mut self, mut stop: Shutdown) -> Body {
        self.end = Some(Box::pin(async move {
            while !*stop.borrow_and_update() {
                if stop.changed().await.is_err() {
                    return;
                }
            }
        }));
        self
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let data = |b: Bytes| Poll::Ready(Some(Ok(Frame::data(b))));
        let this = self.get_mut();
        if let Some(end) = &mut this.end {
            if end.as_mut().poll(cx).is_ready() {
                this.kind = Kind::Empty;
                this.end = None;
            }
        }
        match &mut this.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(bytes) => match bytes.take() {
                Some(b) => data(b),
                None => Poll::Ready(None),
            },
            // An empty chunk would end a chunked body early: skip them.
            Kind::Channel(rx) => loop {
                match rx.poll_recv(cx) {
                    Poll::Ready(Some(b)) if b.is_empty() => continue,
                    Poll::Ready(Some(b)) => return data(b),
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Pending => return Poll::Pending,
                }
            },
            Kind::Late(slot) => match slot {
                None => Poll::Ready(None),
                Some(future) => match future.as_mut().poll(cx) {
                    Poll::Ready(b) => {
                        *slot = None;
                        data(b)
                    }
                    Poll::Pending => Poll::Pending,
                },
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Empty | Kind::Full(None) | Kind::Late(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty | Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            _ => SizeHint::default(),
        }
    }
}

pub type Resp = Response<Body>;

/// `value` as JSON with the trailing newline Docker's encoder writes.
pub fn json_bytes<T: Serialize + ?Sized>(value: &T) -> Bytes {
    // Serializing the engine's own types cannot fail: no maps with non-string keys.
    let mut out = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
    out.push(b'\n');
    Bytes::from(out)
}

pub fn with_type(status: u16, content_type: &'static str, body: Body) -> Resp {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Resp {
    with_type(status, "application/json", Body::full(json_bytes(value)))
}

/// A status with no body (204, 201 without content, 200 for resize...).
pub fn no_content(status: u16) -> Resp {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::NO_CONTENT);
    resp
}

/// Docker's error body; 304 has none.
pub fn error(e: &ApiError) -> Resp {
    if e.status == 304 {
        return no_content(304);
    }
    let status = if (400..600).contains(&e.status) {
        e.status
    } else {
        500
    };
    json(status, &serde_json::json!({ "message": e.message }))
}

/// A stream of JSON objects, one per line, as Docker sends events, stats and progress.
pub fn json_stream<T: Serialize + Send + 'static>(rx: mpsc::Receiver<T>) -> Resp {
    with_type(200, "application/json", json_lines(rx))
}

/// The body of [`json_stream`].
pub fn json_lines<T: Serialize + Send + 'static>(mut rx: mpsc::Receiver<T>) -> Body {
    let (tx, out) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Some(item) = rx.recv().await {
            // A client that went away drops the body: stop, which drops `rx` and tells
            // the engine's producer to stop too.
            if tx.send(json_bytes(&item)).await.is_err() {
                break;
            }
        }
    });
    Body::channel(out)
}

pub fn bytes_stream(content_type: &'static str, rx: mpsc::Receiver<Bytes>) -> Resp {
    with_type(200, content_type, Body::channel(rx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn channel_body_skips_empty_chunks_and_ends_with_the_senders() {
        let (tx, rx) = mpsc::channel(4);
        tx.send(Bytes::from_static(b"a")).await.unwrap();
        tx.send(Bytes::new()).await.unwrap();
        tx.send(Bytes::from_static(b"b")).await.unwrap();
        drop(tx);
        let collected = Body::channel(rx).collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"ab");
    }

    #[tokio::test]
    async fn an_endless_stream_ends_at_shutdown() {
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let (tx, rx) = mpsc::channel(4);
        tx.send(Bytes::from_static(b"event\n")).await.unwrap();
        let body = Body::channel(rx).until(stop);
        let collecting = tokio::spawn(body.collect());
        tokio::task::yield_now().await;
        stop_tx.send(true).unwrap();
        let collected = tokio::time::timeout(std::time::Duration::from_secs(20), collecting)
            .await
            .expect("the stream ended")
            .unwrap()
            .unwrap()
            .to_bytes();
        // `tx` is still open: the body ended because of the shutdown alone.
        assert!(collected.is_empty() || &collected[..] == b"event\n");
        drop(tx);
    }

    /// A wait left behind by `docker run -d` must not hold the daemon's stop until its
    /// container exits.
    #[tokio::test]
    async fn a_late_body_ends_at_shutdown() {
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let body = Body::late(Box::pin(std::future::pending::<Bytes>())).until(stop);
        let collecting = tokio::spawn(body.collect());
        tokio::task::yield_now().await;
        stop_tx.send(true).unwrap();
        let collected = tokio::time::timeout(std::time::Duration::from_secs(20), collecting)
            .await
            .expect("the body ended")
            .unwrap()
            .unwrap()
            .to_bytes();
        assert!(collected.is_empty());
    }

    #[tokio::test]
    async fn late_body_is_one_chunk() {
        let body = Body::late(Box::pin(async { Bytes::from_static(b"{}\n") }));
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"{}\n");
    }

    /// `docker run` waits for the wait's headers before it starts the container: they must
    /// leave before the body is ready.
    #[tokio::test]
    async fn late_body_headers_go_out_first() {
        use crate::testutil::{read_head, read_to_end, serve};
        use tokio::io::AsyncWriteExt as _;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let done_rx = std::sync::Arc::new(std::sync::Mutex::new(Some(done_rx)));
        let mut conn = serve(move |_req| {
            let rx = done_rx.lock().unwrap().take().unwrap();
            let late = Box::pin(async move {
                let _ = rx.await;
                json_bytes(&serde_json::json!({"StatusCode": 0}))
            });
            with_type(200, "application/json", Body::late(late))
        });
        conn.write_all(b"POST /containers/x/wait HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut conn).await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        done_tx.send(()).unwrap();
        let rest = String::from_utf8(read_to_end(&mut conn).await).unwrap();
        assert!(rest.contains("{\"StatusCode\":0}\n"), "{rest}");
    }

    #[test]
    fn not_modified_has_no_body() {
        let resp = error(&ApiError::new(304, "already started"));
        assert_eq!(resp.status(), 304);
        assert!(hyper::body::Body::is_end_stream(resp.body()));
    }
}
