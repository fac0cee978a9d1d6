//! `/volumes`: create (201 with the volume) and prune, whose default depends on the API
//! version (before 1.42 it removed every unused volume, since then only anonymous ones
//! unless the `all` filter says otherwise). List, inspect and remove are one line each in
//! the dispatcher.

use std::sync::Arc;

use gorae_engine::volumes::CreateVolume;
use gorae_engine::Engine;
use hyper::body::Incoming;
use hyper::Request;

use crate::body::{self, Resp};
use crate::decode::{json_body, Empty};
use crate::error::ApiError;
use crate::query::Query;
use crate::router::ApiVersion;

pub async fn create(engine: &Arc<Engine>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let create: CreateVolume = json_body(req.into_body(), Empty::IsDefault).await?;
    Ok(body::json(201, &engine.volume_create(create).await?))
}

pub async fn prune(
    engine: &Arc<Engine>,
    q: &Query,
    version: Option<ApiVersion>,
) -> Result<Resp, ApiError> {
    let mut filters = q.filters()?;
    if version.is_some_and(|v| v < (1, 42)) {
        filters
            .entry("all".into())
            .or_insert_with(|| vec!["true".into()]);
    }
    Ok(body::json(200, &engine.volume_prune(filters).await?))
}
