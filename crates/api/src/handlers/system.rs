//! `/_ping` and `/events` (the rest of the system routes are one line in the dispatcher).

use std::sync::Arc;

use gorae_engine::Engine;
use hyper::header::{HeaderValue, CACHE_CONTROL, PRAGMA};

use crate::body::{self, Body, Resp, Shutdown};
use crate::error::ApiError;
use crate::query::Query;

/// "OK", or nothing for HEAD; the docker CLI reads the version headers from here.
pub fn ping(head: bool) -> Resp {
    let body = if head {
        Body::empty()
    } else {
        Body::full("OK")
    };
    let mut resp = body::with_type(200, "text/plain; charset=utf-8", body);
    let headers = resp.headers_mut();
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

pub fn events(engine: &Arc<Engine>, q: &Query, stop: Shutdown) -> Result<Resp, ApiError> {
    let since = q.number::<f64>("since")?;
    let until = q.number::<f64>("until")?;
    let rx = engine.events(since, until, q.filters()?)?;
    let stream = body::json_lines(rx).until(stop);
    Ok(body::with_type(200, "application/json", stream))
}
