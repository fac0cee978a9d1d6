//! Request handlers: each turns one route into one engine call and the engine's answer into
//! Docker's response (status, headers, JSON or stream). Errors come back as [`ApiError`] and
//! become Docker's `{"message"}` bodies in [`handle`].

mod containers;
mod exec;
mod hijack;
mod images;
mod networks;
mod system;
mod volumes;

use std::sync::Arc;

use gorae_engine::Engine;
use hyper::body::Incoming;
use hyper::Request;

use crate::body::{self, Resp, Shutdown};
use crate::error::ApiError;
use crate::query::Query;
use crate::router::{self, Route};

/// `stop` ends the endless streams (events, followed logs, streamed stats) at shutdown.
pub async fn handle(engine: Arc<Engine>, stop: Shutdown, req: Request<Incoming>) -> Resp {
    match dispatch(&engine, stop, req).await {
        Ok(resp) => resp,
        Err(e) => body::error(&e),
    }
}

async fn dispatch(
    engine: &Arc<Engine>,
    stop: Shutdown,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let (_version, route) = router::route(req.method(), req.uri().path())?;
    let q = Query::parse(req.uri().query().unwrap_or(""));
    match route {
        Route::Ping => Ok(system::ping(req.method() == hyper::Method::HEAD)),
        Route::Version => Ok(body::json(200, &engine.version())),
        Route::Info => Ok(body::json(200, &engine.info().await?)),
        Route::SystemDf => Ok(body::json(200, &engine.system_df().await?)),
        Route::Events => system::events(engine, &q, stop),
        Route::ContainerCreate => containers::create(engine, &q, req).await,
        Route::ContainerList => containers::list(engine, &q).await,
        Route::ContainerPrune => Ok(body::json(200, &engine.prune(q.filters()?).await?)),
        Route::Container(id, op) => containers::operate(engine, &id, op, &q, req, stop).await,
        Route::ExecStart(id) => exec::start(engine, &id, req).await,
        Route::ExecResize(id) => exec::resize(engine, &id, &q).await,
        Route::ExecInspect(id) => Ok(body::json(200, &engine.exec_inspect(&id).await?)),
        Route::VolumeList => Ok(body::json(200, &engine.volume_list(q.filters()?).await?)),
        Route::VolumeCreate => volumes::create(engine, req).await,
        Route::VolumePrune => volumes::prune(engine, &q, _version).await,
        Route::VolumeInspect(name) => Ok(body::json(200, &engine.volume_inspect(&name).await?)),
        Route::VolumeRemove(name) => {
            engine.volume_remove(&name, q.flag("force")).await?;
            Ok(body::no_content(204))
        }
        Route::ImageCreate => images::create(engine, &q, &req).await,
        Route::ImageList => images::list(engine, &q).await,
        Route::ImageLoad => images::load(engine, &q, req).await,
        Route::ImageSave => images::save(engine, q.all("names")).await,
        Route::ImagePrune => images::prune(engine, &q).await,
        Route::Image(name, op) => images::operate(engine, &name, op, &q, &req).await,
        Route::NetworkList => Ok(body::json(200, &engine.network_list(q.filters()?).await?)),
        Route::NetworkCreate => networks::create(engine, req).await,
        Route::NetworkPrune => Ok(body::json(200, &engine.network_prune(q.filters()?).await?)),
        Route::Network(id, op) => networks::operate(engine, &id, op, req).await,
    }
}
