//! `run`, `create`, `start`, `attach` and `exec`: the commands that connect the terminal to
//! a container. `run` does what docker's does: create (pulling a missing image first),
//! attach before start, register a `next-exit` wait before start, start, stream, and exit
//! with the container's status.

use std::io::{IsTerminal, Write};

use anyhow::{bail, Result};
use clap::Args;
use gorae_api::client::{
    query, Client, ClientError, Demuxer, Hijacked, Method, RequestBody, StdStream,
};
use gorae_engine::types::{CreateResponse, ExecConfig, WaitResponse};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::create::CreateFlags;
use super::escape::EscapeProxy;
use super::{exit, images, parse, seg, tty, with_code, Exit};

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub flags: CreateFlags,
    /// Run container in background and print container ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Proxy received signals to the process (non-TTY only).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long)]
    pub detach_keys: Option<String>,
    pub image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub flags: CreateFlags,
    pub image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN.
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long)]
    pub detach_keys: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct AttachArgs {
    /// Do not attach STDIN.
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy all received signals to the process.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long)]
    pub detach_keys: Option<String>,
    pub container: String,
}

#[derive(Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Username or UID (format: "<name|uid>[:<group|gid>]").
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub privileged: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long)]
    pub detach_keys: Option<String>,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The exit status docker's CLI gives a failed start: 126 cannot execute, 127 not found.
fn start_failure(e: anyhow::Error) -> anyhow::Error {
    let text = format!("{e:#}");
    let code = if text.contains("executable file not found")
        || text.contains("no such file or directory")
    {
        127
    } else if text.contains("permission denied") || text.contains("is a directory") {
        126
    } else {
        125
    };
    with_code(code, e)
}

/// docker's form for a failed run/create: "docker: <error>" and a pointer to the help.
fn with_help(result: Result<()>, command: &str) -> Result<()> {
    result.map_err(|e| match e.downcast::<Exit>() {
        Ok(exit) if !exit.message.is_empty() => Exit {
            code: exit.code,
            message: format!(
                "gorae: {}\n\nRun 'gorae {command} --help' for more information",
                exit.message
            ),
        }
        .into(),
        Ok(exit) => exit.into(),
        Err(other) => other,
    })
}

pub async fn run(client: Client, args: RunArgs) -> Result<()> {
    with_help(run_container(client, args).await, "run")
}

async fn run_container(client: Client, args: RunArgs) -> Result<()> {
    let f = &args.flags;
    let stdin_tty = std::io::stdin().is_terminal();
    if f.tty && f.interactive && !stdin_tty && !args.detach {
        return Err(with_code(
            125,
            anyhow::anyhow!("the input device is not a TTY"),
        ));
    }
    let req = f
        .to_request(&args.image, &args.args, args.detach)
        .map_err(|e| with_code(125, e))?;
    let id = create_pulling(&client, f, req)
        .await
        .map_err(|e| with_code(125, e))?;
    if args.detach {
        start_container(&client, &id).await.map_err(start_failure)?;
        println!("{id}");
        return Ok(());
    }
    let session = attach_stream(&client, &id, f.interactive, args.detach_keys.as_deref())
        .await
        .map_err(|e| with_code(125, e))?;
    let condition = if f.rm { "removed" } else { "next-exit" };
    let mut wait = client
        .stream(
            Method::POST,
            &format!("/containers/{id}/wait?condition={condition}"),
            RequestBody::Empty,
            &[],
        )
        .await
        .map_err(|e| with_code(125, e))?;
    start_container(&client, &id).await.map_err(start_failure)?;
    let proxy = (!f.tty && args.sig_proxy).then(|| proxy_signals(client.clone(), id.clone()));
    let keys = args.detach_keys.as_deref();
    let ended = stream_session(
        &client,
        &id,
        session,
        f.interactive,
        f.tty,
        Resize::Container,
        keys,
    )
    .await?;
    if let Some(p) = proxy {
        p.abort();
    }
    if ended == Ended::Detached {
        return Ok(());
    }
    let status: WaitResponse = wait
        .json()
        .await
        .map_err(|e| with_code(125, e))?
        .unwrap_or_default();
    if let Some(err) = status.error.filter(|e| !e.message.is_empty()) {
        return Err(with_code(125, anyhow::anyhow!("{}", err.message)));
    }
    exit_status(status.status_code)
}

fn exit_status(code: i64) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(exit(u8::try_from(code).unwrap_or(255)))
    }
}

pub async fn create(client: Client, args: CreateArgs) -> Result<()> {
    with_help(create_container(client, args).await, "create")
}

async fn create_container(client: Client, args: CreateArgs) -> Result<()> {
    let req = args
        .flags
        .to_request(&args.image, &args.args, true)
        .map_err(|e| with_code(125, e))?;
    let id = create_pulling(&client, &args.flags, req)
        .await
        .map_err(|e| with_code(125, e))?;
    println!("{id}");
    Ok(())
}

/// POST /containers/create; a missing image is pulled ("Unable to find image ... locally")
/// and the create retried once.
async fn create_pulling(
    client: &Client,
    flags: &CreateFlags,
    req: gorae_engine::types::CreateRequest,
) -> Result<String> {
    // --cidfile: docker refuses an existing file before it creates anything, and removes
    // the file it made if the create fails.
    let cidfile = match &flags.cidfile {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("failed to create the container ID file: {e}"))?;
            Some((file, path))
        }
        None => None,
    };
    let result = create_request(client, flags, req).await;
    match (&result, cidfile) {
        (Ok(id), Some((mut file, _))) => file.write_all(id.as_bytes())?,
        (Err(_), Some((_, path))) => {
            let _ = std::fs::remove_file(path);
        }
        _ => {}
    }
    result
}

async fn create_request(
    client: &Client,
    flags: &CreateFlags,
    req: gorae_engine::types::CreateRequest,
) -> Result<String> {
    let mut params = Vec::new();
    if let Some(name) = &flags.name {
        params.push(("name", name.clone()));
    }
    if let Some(platform) = &flags.platform {
        params.push(("platform", platform.clone()));
    }
    let path = format!("/containers/create{}", query(&params));
    if flags.pull == "always" {
        images::pull_to(client, &req.config.image, flags.platform.as_deref(), true).await?;
    }
    let created = match client
        .post_json::<CreateResponse>(&path, RequestBody::json(&req))
        .await
    {
        Err(e) if is_missing_image(&e) && flags.pull == "missing" => {
            let reference = images::normalize(&req.config.image)?;
            eprintln!("Unable to find image '{reference}' locally");
            images::pull_to(client, &req.config.image, flags.platform.as_deref(), true).await?;
            client
                .post_json::<CreateResponse>(&path, RequestBody::json(&req))
                .await?
        }
        other => other?,
    };
    for warning in &created.warnings {
        eprintln!("WARNING: {warning}");
    }
    Ok(created.id)
}

fn is_missing_image(e: &ClientError) -> bool {
    e.status() == Some(404)
        && e.daemon_message()
            .is_some_and(|m| m.starts_with("No such image"))
}

async fn start_container(client: &Client, id: &str) -> Result<()> {
    client
        .call(
            Method::POST,
            &format!("/containers/{}/start", seg(id)),
            RequestBody::Empty,
        )
        .await?;
    Ok(())
}

async fn attach_stream(
    client: &Client,
    id: &str,
    stdin: bool,
    detach_keys: Option<&str>,
) -> Result<Hijacked> {
    let mut params = vec![("stream", "1".to_string())];
    if let Some(keys) = detach_keys {
        params.push(("detachKeys", keys.to_string()));
    }
    if stdin {
        params.push(("stdin", "1".into()));
    }
    params.push(("stdout", "1".into()));
    params.push(("stderr", "1".into()));
    let path = format!("/containers/{}/attach{}", seg(id), query(&params));
    Ok(client.hijack(&path, RequestBody::Empty).await?)
}

/// Forwards SIGINT and SIGTERM to the container, as docker's --sig-proxy does.
fn proxy_signals(client: Client, id: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            let path = format!("/containers/{}/kill?signal={name}", seg(&id));
            let _ = client.call(Method::POST, &path, RequestBody::Empty).await;
        }
    })
}

/// Where a terminal resize goes.
#[derive(Clone)]
pub enum Resize {
    Container,
    Exec(String),
}

async fn send_resize(client: &Client, id: &str, target: &Resize) {
    let Some((h, w)) = tty::size() else { return };
    let path = match target {
        Resize::Container => format!("/containers/{}/resize?h={h}&w={w}", seg(id)),
        Resize::Exec(exec) => format!("/exec/{exec}/resize?h={h}&w={w}"),
    };
    let _ = client.call(Method::POST, &path, RequestBody::Empty).await;
}

/// Pumps a hijacked session until the container's output ends: stdin to it (if `stdin`;
/// EOF half-closes), its output to stdout/stderr. With `tty` the terminal is raw and its
/// size follows SIGWINCH.
/// How a session ended: the container's output closed, or the user typed the detach keys.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Output,
    Detached,
}

pub async fn stream_session(
    client: &Client,
    id: &str,
    session: Hijacked,
    stdin: bool,
    tty: bool,
    resize: Resize,
    detach_keys: Option<&str>,
) -> Result<Ended> {
    super::sigpipe::ignore();
    let _raw = if tty && stdin {
        tty::RawMode::enter()
    } else {
        None
    };
    let resizer = tty.then(|| {
        let (client, id, resize) = (client.clone(), id.to_string(), resize.clone());
        tokio::spawn(async move {
            send_resize(&client, &id, &resize).await;
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut winch) = signal(SignalKind::window_change()) else {
                return;
            };
            while winch.recv().await.is_some() {
                send_resize(&client, &id, &resize).await;
            }
        })
    });
    // As docker's CLI: the container's tty setting decides, not the Content-Type (older
    // daemons and podman send none).
    let multiplexed = !tty;
    let (mut reader, mut writer) = tokio::io::split(session.stream);
    let (detached_tx, detached_rx) = tokio::sync::oneshot::channel::<()>();
    // docker watches for the detach keys in tty sessions only.
    let escape = tty.then(|| EscapeProxy::new(detach_keys));
    let input = stdin.then(|| {
        tokio::spawn(async move {
            if forward_stdin(&mut writer, escape).await {
                let _ = detached_tx.send(());
            }
        })
    });
    let result = tokio::select! {
        r = copy_output(&mut reader, multiplexed) => r.map(|()| Ended::Output),
        Ok(()) = detached_rx => Ok(Ended::Detached),
    };
    if let Some(r) = resizer {
        r.abort();
    }
    if let Some(i) = input {
        i.abort();
    }
    result
}

/// Copies stdin to the session until EOF (then half-closes) or the detach keys (true).
async fn forward_stdin<W: tokio::io::AsyncWrite + Unpin>(
    writer: &mut W,
    mut escape: Option<EscapeProxy>,
) -> bool {
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let (bytes, detached) = match escape.as_mut() {
            Some(e) => e.feed(&buf[..n]),
            None => (buf[..n].to_vec(), false),
        };
        if writer.write_all(&bytes).await.is_err() {
            return false;
        }
        if detached {
            return true;
        }
    }
    let _ = writer.shutdown().await;
    false
}

async fn copy_output<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut R,
    multiplexed: bool,
) -> Result<()> {
    let mut demuxer = Demuxer::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            // The daemon closing the connection abruptly ends the session, as EOF does.
            Err(_) => return Ok(()),
        };
        if multiplexed {
            for (stream, bytes) in demuxer.feed(&buf[..n])? {
                write_stream(stream, bytes)?;
            }
        } else {
            write_stream(StdStream::Stdout, &buf[..n])?;
        }
    }
}

/// Writes one piece of container output to the matching local stream.
pub fn write_stream(stream: StdStream, bytes: &[u8]) -> Result<()> {
    match stream {
        StdStream::Stdout | StdStream::Stdin => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()?;
        }
        StdStream::Stderr | StdStream::SystemErr => {
            let mut err = std::io::stderr().lock();
            err.write_all(bytes)?;
            err.flush()?;
        }
    }
    Ok(())
}

async fn inspect_value(client: &Client, name: &str) -> Result<Value> {
    Ok(client
        .get_json(&format!("/containers/{}/json", seg(name)))
        .await?)
}

pub async fn start(client: Client, args: StartArgs) -> Result<()> {
    if args.attach || args.interactive {
        if args.containers.len() > 1 {
            return Err(with_code(
                1,
                anyhow::anyhow!("you cannot start and attach multiple containers at once"),
            ));
        }
        let keys = args.detach_keys.as_deref();
        return start_attached(&client, &args.containers[0], args.interactive, keys).await;
    }
    let mut failed = false;
    for name in &args.containers {
        match start_container(&client, name).await {
            Ok(()) => println!("{name}"),
            Err(e) => {
                if e.downcast_ref::<ClientError>()
                    .is_some_and(ClientError::is_connect)
                {
                    return Err(with_code(125, e));
                }
                eprintln!("{}", super::message(&e));
                failed = true;
            }
        }
    }
    if failed {
        return Err(exit(1));
    }
    Ok(())
}

async fn start_attached(
    client: &Client,
    name: &str,
    interactive: bool,
    detach_keys: Option<&str>,
) -> Result<()> {
    let info = inspect_value(client, name)
        .await
        .map_err(|e| with_code(1, e))?;
    let id = info["Id"].as_str().unwrap_or(name).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = interactive && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let auto_remove = info["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false);
    let session = attach_stream(client, &id, stdin, detach_keys)
        .await
        .map_err(|e| with_code(1, e))?;
    let condition = if auto_remove { "removed" } else { "next-exit" };
    let mut wait = client
        .stream(
            Method::POST,
            &format!("/containers/{id}/wait?condition={condition}"),
            RequestBody::Empty,
            &[],
        )
        .await?;
    start_container(client, &id)
        .await
        .map_err(|e| with_code(1, e))?;
    let ended = stream_session(
        client,
        &id,
        session,
        stdin,
        tty,
        Resize::Container,
        detach_keys,
    )
    .await?;
    if ended == Ended::Detached {
        return Ok(());
    }
    let status: WaitResponse = wait.json().await?.unwrap_or_default();
    exit_status(status.status_code)
}

pub async fn attach(client: Client, args: AttachArgs) -> Result<()> {
    let info = inspect_value(&client, &args.container)
        .await
        .map_err(|e| with_code(1, e))?;
    let id = info["Id"].as_str().unwrap_or(&args.container).to_string();
    if !info["State"]["Running"].as_bool().unwrap_or(false) {
        bail!(Exit {
            code: 1,
            message: "You cannot attach to a stopped container, start it first".into()
        });
    }
    if info["State"]["Paused"].as_bool().unwrap_or(false) {
        bail!(Exit {
            code: 1,
            message: "You cannot attach to a paused container, unpause it first".into()
        });
    }
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !args.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let session = attach_stream(&client, &id, stdin, args.detach_keys.as_deref())
        .await
        .map_err(|e| with_code(1, e))?;
    let proxy = (!tty && args.sig_proxy).then(|| proxy_signals(client.clone(), id.clone()));
    let keys = args.detach_keys.as_deref();
    let ended = stream_session(&client, &id, session, stdin, tty, Resize::Container, keys).await?;
    if let Some(p) = proxy {
        p.abort();
    }
    if ended == Ended::Detached {
        return Ok(());
    }
    let status: WaitResponse = client
        .post_json(&format!("/containers/{id}/wait"), RequestBody::Empty)
        .await?;
    exit_status(status.status_code)
}

pub async fn exec(client: Client, args: ExecArgs) -> Result<()> {
    let mut env = Vec::new();
    for path in &args.env_file {
        let content = std::fs::read_to_string(path).map_err(|e| with_code(125, e))?;
        env.extend(parse::env_file(&content, path).map_err(|e| with_code(125, e))?);
    }
    env.extend(args.env.iter().filter_map(|e| parse::env_entry(e)));
    if args.tty && args.interactive && !std::io::stdin().is_terminal() && !args.detach {
        return Err(with_code(
            125,
            anyhow::anyhow!("the input device is not a TTY"),
        ));
    }
    let config = ExecConfig {
        attach_stdin: args.interactive && !args.detach,
        attach_stdout: !args.detach,
        attach_stderr: !args.detach,
        tty: args.tty,
        env: (!env.is_empty()).then_some(env),
        cmd: Some(args.command.clone()),
        privileged: args.privileged,
        user: args.user.clone().unwrap_or_default(),
        working_dir: args.workdir.clone().unwrap_or_default(),
        console_size: tty::size()
            .filter(|_| args.tty)
            .map(|(h, w)| vec![h as u32, w as u32]),
        detach_keys: args.detach_keys.clone().unwrap_or_default(),
    };
    let path = format!("/containers/{}/exec", seg(&args.container));
    let created: Value = client
        .post_json(&path, RequestBody::json(&config))
        .await
        .map_err(|e| with_code(125, e))?;
    let exec_id = created["Id"].as_str().unwrap_or_default().to_string();
    let start = serde_json::json!({ "Detach": args.detach, "Tty": args.tty });
    let start_path = format!("/exec/{exec_id}/start");
    if args.detach {
        client
            .call(Method::POST, &start_path, RequestBody::json(&start))
            .await
            .map_err(|e| with_code(125, e))?;
        return Ok(());
    }
    let session = client
        .hijack(&start_path, RequestBody::json(&start))
        .await
        .map_err(|e| with_code(125, e))?;
    let resize = Resize::Exec(exec_id.clone());
    let keys = args.detach_keys.as_deref();
    let ended = stream_session(
        &client,
        &args.container,
        session,
        args.interactive,
        args.tty,
        resize,
        keys,
    )
    .await?;
    if ended == Ended::Detached {
        return Ok(());
    }
    let inspect: Value = client
        .get_json(&format!("/exec/{exec_id}/json"))
        .await
        .map_err(|e| with_code(125, e))?;
    exit_status(inspect["ExitCode"].as_i64().unwrap_or(0))
}
