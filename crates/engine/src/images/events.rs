//! Docker's image events (`docker events --filter type=image`): pull, push, tag, untag,
//! delete, import, load, save, prune. They go to the sink the engine installs (its event
//! bus); without one they are dropped.

use std::sync::{Arc, OnceLock};

use crate::types::{Event, EventActor};

type Sink = Box<dyn Fn(Event) + Send + Sync>;

/// Cheap to clone: transfers emit their event from their own task when they finish.
#[derive(Clone, Default)]
pub struct Events(Arc<OnceLock<Sink>>);

impl Events {
    /// Installs the sink; only the first call counts.
    pub fn install(&self, sink: impl Fn(Event) + Send + Sync + 'static) {
        let _ = self.0.set(Box::new(sink));
    }

    /// An image event about `id` (an image ID, or the reference for pull and push) with
    /// the `name` attribute docker gives it.
    pub fn emit(&self, action: &str, id: &str, name: &str) {
        self.emit_with(action, id, &[("name", name.to_string())]);
    }

    /// An image event with the given attributes (prune's `reclaimed`).
    pub fn emit_with(&self, action: &str, id: &str, attributes: &[(&str, String)]) {
        if let Some(sink) = self.0.get() {
            sink(event(action, id, attributes));
        }
    }
}

fn event(action: &str, id: &str, attributes: &[(&str, String)]) -> Event {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    let attributes = attributes
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Event {
        kind: "image".into(),
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
        from: None,
    }
}
