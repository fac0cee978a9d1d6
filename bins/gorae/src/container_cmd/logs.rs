//! `logs` (the json-file log through the daemon, demultiplexed onto stdout and stderr) and
//! `events` (the daemon's event stream, in docker's line format or a `--format`).

use anyhow::Result;
use clap::Args;
use gorae_api::client::{query, Client, Demuxer, Method, RequestBody, StdStream};
use gorae_engine::types::Event;
use serde_json::Value;

use super::ps::filters_json;
use super::run::write_stream;
use super::template::Template;
use super::{parse, rfc3339_nano_fixed, seg, with_code};

#[derive(Args)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Show logs since timestamp (2013-01-02T13:23:37Z) or relative (42m for 42 minutes).
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative time.
    #[arg(long)]
    pub until: Option<String>,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Number of lines to show from the end of the logs ("all").
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show extra details provided to logs.
    #[arg(long)]
    pub details: bool,
    pub container: String,
}

#[derive(Args)]
pub struct EventsArgs {
    /// Show all events created since timestamp.
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp.
    #[arg(long)]
    pub until: Option<String>,
    /// Filter output based on conditions provided (type=container, event=start, ...).
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format the output using the given Go template, or 'json'.
    #[arg(long)]
    pub format: Option<String>,
}

pub fn logs_query(args: &LogsArgs) -> Result<String> {
    let mut params = vec![("stdout", "1".to_string()), ("stderr", "1".to_string())];
    if args.follow {
        params.push(("follow", "1".into()));
    }
    if let Some(s) = &args.since {
        params.push(("since", parse::timestamp(s)?));
    }
    if let Some(u) = &args.until {
        params.push(("until", parse::timestamp(u)?));
    }
    if args.timestamps {
        params.push(("timestamps", "1".into()));
    }
    if args.details {
        params.push(("details", "1".into()));
    }
    params.push(("tail", args.tail.clone()));
    Ok(query(&params))
}

pub async fn logs(client: Client, args: LogsArgs) -> Result<()> {
    let q = logs_query(&args).map_err(|e| with_code(1, e))?;
    let info: Value = client
        .get_json(&format!("/containers/{}/json", seg(&args.container)))
        .await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let path = format!("/containers/{}/logs{q}", seg(&args.container));
    let mut stream = client
        .stream(Method::GET, &path, RequestBody::Empty, &[])
        .await?;
    let mut demuxer = Demuxer::new();
    while let Some(chunk) = stream.chunk().await? {
        if tty {
            write_stream(StdStream::Stdout, &chunk)?;
            continue;
        }
        for (s, bytes) in demuxer.feed(&chunk)? {
            write_stream(s, bytes)?;
        }
    }
    Ok(())
}

pub async fn events(client: Client, args: EventsArgs) -> Result<()> {
    let mut params = Vec::new();
    if let Some(s) = &args.since {
        params.push(("since", parse::timestamp(s).map_err(|e| with_code(1, e))?));
    }
    if let Some(u) = &args.until {
        params.push(("until", parse::timestamp(u).map_err(|e| with_code(1, e))?));
    }
    if !args.filter.is_empty() {
        params.push((
            "filters",
            filters_json(&args.filter).map_err(|e| with_code(1, e))?,
        ));
    }
    let template = match args.format.as_deref() {
        None => None,
        Some("json") => Some(Template::parse("{{json .}}")?),
        Some(f) => Some(Template::parse(&f.replace("\\t", "\t")).map_err(|e| with_code(1, e))?),
    };
    let path = format!("/events{}", query(&params));
    let mut stream = client
        .stream(Method::GET, &path, RequestBody::Empty, &[])
        .await?;
    while let Some(event) = stream.json::<Value>().await? {
        let line = match &template {
            Some(t) => t.render(&event)?,
            None => event_line(&serde_json::from_value(event)?),
        };
        println!("{line}");
    }
    Ok(())
}

/// docker's default event line: time, type, action, actor id, sorted attributes.
pub fn event_line(e: &Event) -> String {
    let nanos = if e.time_nano != 0 {
        e.time_nano as i128
    } else {
        e.time as i128 * 1_000_000_000
    };
    let mut line = format!(
        "{} {} {} {}",
        rfc3339_nano_fixed(nanos),
        e.kind,
        e.action,
        e.actor.id
    );
    if !e.actor.attributes.is_empty() {
        let attrs: Vec<String> = e
            .actor
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        line.push_str(&format!(" ({})", attrs.join(", ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use gorae_engine::types::EventActor;

    #[test]
    fn event_lines_like_docker() {
        let e = Event {
            kind: "container".into(),
            action: "start".into(),
            actor: EventActor {
                id: "abc".into(),
                attributes: [
                    ("name".into(), "web".into()),
                    ("image".into(), "busybox".into()),
                ]
                .into(),
            },
            time: 1,
            time_nano: 1_000_000_005,
            ..Event::default()
        };
        assert_eq!(
            event_line(&e),
            "1970-01-01T00:00:01.000000005Z container start abc (image=busybox, name=web)"
        );
    }

    #[test]
    fn logs_queries() {
        let args = LogsArgs {
            follow: true,
            since: Some("1700000000".into()),
            until: None,
            timestamps: true,
            tail: "5".into(),
            details: false,
            container: "x".into(),
        };
        assert_eq!(
            logs_query(&args).unwrap(),
            "?stdout=1&stderr=1&follow=1&since=1700000000.000000000&timestamps=1&tail=5"
        );
    }
}
