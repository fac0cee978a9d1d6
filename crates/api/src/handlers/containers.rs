//! `/containers/...`: create, list, inspect, the lifecycle operations, logs, attach, stats,
//! archive. Query parameters are decoded here, with Docker's defaults.

use std::sync::Arc;

use bytes::Bytes;
use gorae_engine::engine::{AttachOptions, ListOptions, LogsOptions, WaitCondition};
use gorae_engine::types::{CreateRequest, ExecConfig, UpdateRequest};
use gorae_engine::Engine;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::Request;
use tokio::sync::mpsc;

use super::hijack;
use crate::body::{self, Body, Resp, Shutdown};
use crate::decode::{json_body, Empty};
use crate::error::ApiError;
use crate::query::Query;
use crate::router::ContainerOp;

const PATH_STAT_HEADER: &str = "x-docker-container-path-stat";

pub async fn create(
    engine: &Arc<Engine>,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let name = q.non_empty("name").map(str::to_string);
    let create: CreateRequest = json_body(req.into_body(), Empty::Refused).await?;
    Ok(body::json(201, &engine.create(name, create).await?))
}

pub async fn list(engine: &Arc<Engine>, q: &Query) -> Result<Resp, ApiError> {
    let opts = ListOptions {
        all: q.flag("all"),
        limit: q.number::<i64>("limit")?.filter(|n| *n > 0),
        size: q.flag("size"),
        filters: q.filters()?,
    };
    Ok(body::json(200, &engine.list(opts).await?))
}

pub async fn operate(
    engine: &Arc<Engine>,
    id: &str,
    op: ContainerOp,
    q: &Query,
    req: Request<Incoming>,
    stop: Shutdown,
) -> Result<Resp, ApiError> {
    use ContainerOp::*;
    let done = body::no_content(204);
    Ok(match op {
        Inspect => body::json(200, &engine.inspect(id, q.flag("size")).await?),
        Start => {
            engine.start(id).await?;
            done
        }
        Stop => {
            engine.stop(id, signal(q), q.number("t")?).await?;
            done
        }
        Restart => {
            engine.restart(id, signal(q), q.number("t")?).await?;
            done
        }
        Kill => {
            engine.kill(id, signal(q)).await?;
            done
        }
        Wait => wait(engine, id, q, stop).await?,
        Remove => {
            engine.remove(id, q.flag("force"), q.flag("v")).await?;
            done
        }
        Logs => logs(engine, id, q, stop).await?,
        Attach => attach(engine, id, q, req).await?,
        Resize => {
            let (h, w) = (q.required_number("h")?, q.required_number("w")?);
            engine.resize(id, h, w).await?;
            body::no_content(200)
        }
        Top => {
            let ps_args = q.non_empty("ps_args").map(str::to_string);
            body::json(200, &engine.top(id, ps_args).await?)
        }
        Stats => {
            let rx = engine
                .stats(id, q.flag_or("stream", true), q.flag("one-shot"))
                .await?;
            let stream = body::json_lines(rx).until(stop);
            body::with_type(200, "application/json", stream)
        }
        Pause => {
            engine.pause(id).await?;
            done
        }
        Unpause => {
            engine.unpause(id).await?;
            done
        }
        Rename => {
            engine.rename(id, q.required("name")?).await?;
            done
        }
        Update => {
            let update: UpdateRequest = json_body(req.into_body(), Empty::Refused).await?;
            body::json(200, &engine.update(id, update).await?)
        }
        ArchiveStat => {
            let stat = engine.archive_stat(id, q.required("path")?).await?;
            with_stat(body::no_content(200), &stat)?
        }
        ArchiveGet => {
            let (stat, rx) = engine.archive_get(id, q.required("path")?).await?;
            with_stat(body::bytes_stream("application/x-tar", rx), &stat)?
        }
        ArchivePut => archive_put(engine, id, q, req).await?,
        ExecCreate => {
            let config: ExecConfig = json_body(req.into_body(), Empty::Refused).await?;
            let exec_id = engine.exec_create(id, config).await?;
            body::json(201, &serde_json::json!({ "Id": exec_id }))
        }
    })
}

fn signal(q: &Query) -> Option<String> {
    q.non_empty("signal").map(str::to_string)
}

/// The 200 and its headers go out as soon as the container is known to exist; the body
/// follows when the wait is over (`docker run` starts the container only after that). A
/// daemon that stops ends it (`docker run -d` leaves its wait behind: it must not hold up
/// the stop until the container exits).
async fn wait(engine: &Arc<Engine>, id: &str, q: &Query, stop: Shutdown) -> Result<Resp, ApiError> {
    let condition = match q.get("condition").unwrap_or("") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid condition: {other:?} (expected not-running, next-exit or removed)"
            )))
        }
    };
    let waiting = engine.wait(id, condition).await?;
    let late = Box::pin(async move { body::json_bytes(&waiting.await) });
    Ok(body::with_type(
        200,
        "application/json",
        Body::late(late).until(stop),
    ))
}

async fn logs(engine: &Arc<Engine>, id: &str, q: &Query, stop: Shutdown) -> Result<Resp, ApiError> {
    let opts = LogsOptions {
        follow: q.flag("follow"),
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        since: q.number("since")?.unwrap_or(0.0),
        until: q.number("until")?.unwrap_or(0.0),
        timestamps: q.flag("timestamps"),
        tail: tail(q)?,
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let (kind, rx) = engine.logs(id, opts).await?;
    let stream = Body::channel(rx).until(stop);
    Ok(body::with_type(200, hijack::content_type(kind), stream))
}

/// "all" (or nothing, or a negative number): every line.
fn tail(q: &Query) -> Result<Option<usize>, ApiError> {
    match q.non_empty("tail") {
        None | Some("all") => Ok(None),
        Some(_) => Ok(q
            .number::<i64>("tail")?
            .and_then(|n| usize::try_from(n).ok())),
    }
}

async fn attach(
    engine: &Arc<Engine>,
    id: &str,
    q: &Query,
    mut req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let opts = AttachOptions {
        stream: q.flag("stream"),
        stdin: q.flag("stdin"),
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        logs: q.flag("logs"),
        detach_keys: q.non_empty("detachKeys").map(str::to_string),
    };
    let upgrade = hijack::wants_upgrade(req.headers());
    let on_upgrade = hyper::upgrade::on(&mut req);
    let prepared = engine.attach_prepare(id, opts).await?;
    Ok(hijack::respond(prepared, upgrade, on_upgrade))
}

fn with_stat(mut resp: Resp, stat: &str) -> Result<Resp, ApiError> {
    let value = HeaderValue::from_str(stat)
        .map_err(|_| ApiError::internal("the path's stat is not a valid header value"))?;
    resp.headers_mut().insert(PATH_STAT_HEADER, value);
    Ok(resp)
}

/// The tar body goes to the engine as it arrives, never whole in memory.
async fn archive_put(
    engine: &Arc<Engine>,
    id: &str,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let path = q.required("path")?.to_string();
    let no_overwrite = q.flag("noOverwriteDirNonDir");
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let mut incoming = req.into_body();
    // When the engine stops reading early (no such path, a bad archive) the rest of the upload
    // is read and dropped: answering and closing while the client still writes would leave it
    // with EPIPE instead of the error.
    let pump = async move {
        let mut engine_reads = true;
        while let Some(frame) = incoming.frame().await {
            let frame = frame
                .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
            if let (Ok(data), true) = (frame.into_data(), engine_reads) {
                engine_reads = tx.send(data).await.is_ok();
            }
        }
        Ok::<(), ApiError>(())
    };
    let (put, pumped) = tokio::join!(engine.archive_put(id, &path, no_overwrite, rx), pump);
    pumped?;
    put?;
    Ok(body::no_content(200))
}
