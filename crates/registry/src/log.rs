//! A minimal leveled logger to stderr: one line per event, RFC 3339 time first.
//! (The registry logs little: startup, errors, GC; per-request lines only at debug.)

use crate::config::LogLevel;

#[derive(Debug, Clone, Copy)]
pub struct Logger {
    level: LogLevel,
}

impl Logger {
    pub fn new(level: LogLevel) -> Logger {
        Logger { level }
    }

    pub fn error(&self, message: &str) {
        self.write(LogLevel::Error, message);
    }

    pub fn warn(&self, message: &str) {
        self.write(LogLevel::Warn, message);
    }

    pub fn info(&self, message: &str) {
        self.write(LogLevel::Info, message);
    }

    /// Debug lines are built only when they will be written.
    pub fn debug(&self, message: impl FnOnce() -> String) {
        if self.level >= LogLevel::Debug {
            self.write(LogLevel::Debug, &message());
        }
    }

    fn write(&self, level: LogLevel, message: &str) {
        if level <= self.level {
            let tag = match level {
                LogLevel::Error => "error",
                LogLevel::Warn => "warn",
                LogLevel::Info => "info",
                LogLevel::Debug => "debug",
            };
            eprintln!("{} {tag} {message}", gorae_image::store::now_rfc3339());
        }
    }
}
