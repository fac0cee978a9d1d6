//! The event bus: every container (and, through `emit`, exec and image) event goes to live
//! subscribers (`GET /events` streams) and to a bounded ring of past events, so `--since`
//! can replay what happened before the client connected.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use tokio::sync::{broadcast, mpsc};

use crate::engine::Filters;
use crate::error::{Error, Result};
use crate::types::{Event, EventActor};

/// How many past events are kept.
const RING: usize = 1024;

pub struct EventBus {
    ring: Mutex<VecDeque<Event>>,
    live: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            ring: Mutex::new(VecDeque::with_capacity(RING)),
            live: broadcast::channel(RING).0,
        }
    }
}

impl EventBus {
    pub fn publish(&self, event: Event) {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() == RING {
            ring.pop_front();
        }
        ring.push_back(event.clone());
        // Sent under the ring's lock, so a subscriber sees each event once: in its copy of
        // the ring or live.
        let _ = self.live.send(event);
    }

    /// Past events in [since, until], then (without `until`, or until it passes) live ones.
    pub fn subscribe(
        &self,
        since: Option<f64>,
        until: Option<f64>,
        filters: Filters,
    ) -> Result<mpsc::Receiver<Event>> {
        let filter = EventFilter::new(filters)?;
        let now = crate::container::time::now_ns();
        let since_ns = since.map(secs_to_ns);
        let until_ns = until.map(secs_to_ns);
        let (past, mut live) = {
            let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            let past: Vec<Event> = ring.iter().cloned().collect();
            (past, self.live.subscribe())
        };
        let in_range = move |e: &Event| {
            since_ns.is_none_or(|s| e.time_nano >= s) && until_ns.is_none_or(|u| e.time_nano <= u)
        };
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            let replay = since_ns.is_some() || until_ns.is_some();
            for e in past
                .into_iter()
                .filter(|e| replay && in_range(e) && filter.matches(e))
            {
                if tx.send(e).await.is_err() {
                    return;
                }
            }
            if until_ns.is_some_and(|u| u <= now) {
                return;
            }
            forward_live(&mut live, &tx, &filter, until_ns).await;
        });
        Ok(rx)
    }
}

async fn forward_live(
    live: &mut broadcast::Receiver<Event>,
    tx: &mpsc::Sender<Event>,
    filter: &EventFilter,
    until_ns: Option<i64>,
) {
    loop {
        let next = match until_ns {
            Some(u) => {
                let left = (u - crate::container::time::now_ns()).max(0) as u64;
                let sleep = tokio::time::sleep(std::time::Duration::from_nanos(left));
                tokio::select! {
                    e = live.recv() => e,
                    () = sleep => return,
                    () = tx.closed() => return,
                }
            }
            None => tokio::select! {
                e = live.recv() => e,
                () = tx.closed() => return,
            },
        };
        match next {
            Ok(e) if until_ns.is_some_and(|u| e.time_nano > u) => return,
            Ok(e) if filter.matches(&e) => {
                if tx.send(e).await.is_err() {
                    return;
                }
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

fn secs_to_ns(secs: f64) -> i64 {
    (secs * 1e9) as i64
}

/// A container event with Docker's attributes: the image, the name, the container's labels
/// and `extra` (exitCode, signal, ...).
pub fn container_event(
    action: &str,
    id: &str,
    name: &str,
    image: &str,
    labels: Option<&BTreeMap<String, String>>,
    extra: &[(&str, String)],
) -> Event {
    let mut attributes = labels.cloned().unwrap_or_default();
    attributes.insert("image".into(), image.to_string());
    attributes.insert("name".into(), name.to_string());
    for (k, v) in extra {
        attributes.insert((*k).to_string(), v.clone());
    }
    let now = crate::container::time::now_ns();
    Event {
        kind: "container".into(),
        action: action.to_string(),
        actor: EventActor {
            id: id.to_string(),
            attributes,
        },
        scope: "local".into(),
        time: now / 1_000_000_000,
        time_nano: now,
        status: Some(action.to_string()),
        id: Some(id.to_string()),
        from: Some(image.to_string()),
    }
}

/// Docker's event filters: type, event (action), container, image, label.
struct EventFilter {
    filters: Filters,
}

impl EventFilter {
    fn new(filters: Filters) -> Result<EventFilter> {
        const KNOWN: [&str; 10] = [
            "type",
            "event",
            "container",
            "image",
            "label",
            "daemon",
            "network",
            "volume",
            "plugin",
            "scope",
        ];
        if let Some(bad) = filters.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(Error::InvalidParameter(format!("invalid filter '{bad}'")));
        }
        Ok(EventFilter { filters })
    }

    fn matches(&self, e: &Event) -> bool {
        let any = |key: &str, ok: &dyn Fn(&str) -> bool| {
            self.filters
                .get(key)
                .is_none_or(|vs| vs.is_empty() || vs.iter().any(|v| ok(v)))
        };
        let attr = |k: &str| e.actor.attributes.get(k).map(String::as_str);
        // "exec_start: sh -c x" is the event "exec_start".
        let action = e.action.split(':').next().unwrap_or(&e.action);
        any("type", &|v| v == e.kind)
            && any("event", &|v| v == action || v == e.action)
            && any("container", &|v| {
                e.kind == "container" && (e.actor.id.starts_with(v) || attr("name") == Some(v))
            })
            && any("image", &|v| {
                attr("image") == Some(v) || (e.kind == "image" && e.actor.id == v)
            })
            && any("label", &|v| match v.split_once('=') {
                Some((k, val)) => attr(k) == Some(val),
                None => attr(v).is_some(),
            })
            && any("scope", &|v| v == e.scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(pairs: &[(&str, &str)]) -> Filters {
        let mut f = Filters::new();
        for (k, v) in pairs {
            f.entry(k.to_string()).or_default().push(v.to_string());
        }
        f
    }

    #[test]
    fn filters_match_like_docker() {
        let labels = [("tier".to_string(), "web".to_string())].into();
        let e = container_event("die", "abcdef", "web1", "busybox", Some(&labels), &[]);
        let ok = |pairs: &[(&str, &str)]| EventFilter::new(filters(pairs)).unwrap().matches(&e);
        assert!(ok(&[]));
        assert!(ok(&[
            ("type", "container"),
            ("event", "die"),
            ("event", "start")
        ]));
        assert!(!ok(&[("event", "start")]));
        assert!(ok(&[("container", "web1")]) && ok(&[("container", "abc")]));
        assert!(!ok(&[("container", "db")]));
        assert!(ok(&[
            ("image", "busybox"),
            ("label", "tier=web"),
            ("label", "tier")
        ]));
        assert!(!ok(&[("label", "tier=db")]));
        assert!(EventFilter::new(filters(&[("bogus", "x")])).is_err());
    }

    #[tokio::test]
    async fn replays_past_and_streams_live() {
        let bus = EventBus::default();
        bus.publish(container_event("create", "a", "n", "i", None, &[]));
        let mut rx = bus.subscribe(Some(0.0), None, Filters::new()).unwrap();
        let mut live_only = bus.subscribe(None, None, Filters::new()).unwrap();
        bus.publish(container_event("start", "a", "n", "i", None, &[]));
        assert_eq!(rx.recv().await.unwrap().action, "create");
        assert_eq!(rx.recv().await.unwrap().action, "start");
        assert_eq!(live_only.recv().await.unwrap().action, "start");
        let now = crate::container::time::now_ns() as f64 / 1e9;
        let mut past = bus.subscribe(Some(0.0), Some(now), Filters::new()).unwrap();
        let mut n = 0;
        while past.recv().await.is_some() {
            n += 1;
        }
        assert_eq!(n, 2);
    }
}
