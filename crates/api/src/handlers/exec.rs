//! `/exec/{id}/...`: start (hijacked unless detached) and resize. Create is a container
//! route, inspect one line in the dispatcher.

use std::sync::Arc;

use gorae_engine::types::ExecStartConfig;
use gorae_engine::Engine;
use hyper::body::Incoming;
use hyper::Request;

use super::hijack;
use crate::body::{self, Resp};
use crate::decode::{json_body, Empty};
use crate::error::ApiError;
use crate::query::Query;

pub async fn start(
    engine: &Arc<Engine>,
    exec_id: &str,
    mut req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let upgrade = hijack::wants_upgrade(req.headers());
    let on_upgrade = hyper::upgrade::on(&mut req);
    let config: ExecStartConfig = json_body(req.into_body(), Empty::IsDefault).await?;
    Ok(match engine.exec_start(exec_id, config).await? {
        Some(prepared) => hijack::respond(prepared, upgrade, on_upgrade),
        None => body::no_content(200),
    })
}

pub async fn resize(engine: &Arc<Engine>, exec_id: &str, q: &Query) -> Result<Resp, ApiError> {
    let (h, w) = (q.required_number("h")?, q.required_number("w")?);
    engine.exec_resize(exec_id, h, w).await?;
    Ok(body::no_content(200))
}
