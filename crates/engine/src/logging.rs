//! The engine's log hook: the engine never prints; it hands each message to the hook the
//! daemon installs (`set_hook`), or drops it when there is none (tests, library users).

use std::sync::{Arc, RwLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

pub type LogHook = Arc<dyn Fn(Level, &str) + Send + Sync>;

static HOOK: RwLock<Option<LogHook>> = RwLock::new(None);

/// Installs the hook every engine of this process logs through (replacing any earlier one).
pub fn set_hook(hook: LogHook) {
    *HOOK.write().unwrap_or_else(|p| p.into_inner()) = Some(hook);
}

pub fn log(level: Level, message: &str) {
    let hook = HOOK.read().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(hook) = hook {
        hook(level, message);
    }
}

pub fn warn(message: &str) {
    log(Level::Warn, message);
}

pub fn info(message: &str) {
    log(Level::Info, message);
}

pub fn debug(message: &str) {
    log(Level::Debug, message);
}
