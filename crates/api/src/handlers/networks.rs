//! `/networks/...`: list, inspect, create, remove, connect, disconnect, prune.

use std::sync::Arc;

use gorae_engine::network::manager::CreateNetwork;
use gorae_engine::Engine;
use hyper::body::Incoming;
use hyper::Request;
use serde::Deserialize;

use crate::body::{self, Resp};
use crate::decode::{json_body, Empty};
use crate::error::ApiError;
use crate::router::NetworkOp;

/// The body of connect and disconnect.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Attach {
    container: String,
    endpoint_config: Option<serde_json::Value>,
    force: bool,
}

pub async fn create(engine: &Arc<Engine>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let create: CreateNetwork = json_body(req.into_body(), Empty::Refused).await?;
    Ok(body::json(201, &engine.network_create(create).await?))
}

pub async fn operate(
    engine: &Arc<Engine>,
    id: &str,
    op: NetworkOp,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    Ok(match op {
        NetworkOp::Inspect => body::json(200, &engine.network_inspect(id).await?),
        NetworkOp::Remove => {
            engine.network_remove(id).await?;
            body::no_content(204)
        }
        NetworkOp::Connect | NetworkOp::Disconnect => {
            let a: Attach = json_body(req.into_body(), Empty::Refused).await?;
            if a.container.is_empty() {
                return Err(ApiError::bad_request("container is required"));
            }
            if op == NetworkOp::Connect {
                engine
                    .network_connect(id, &a.container, a.endpoint_config.as_ref())
                    .await?;
            } else {
                engine.network_disconnect(id, &a.container, a.force).await?;
            }
            body::no_content(200)
        }
    })
}
