//! Error and warning output: to stderr, and to `--log` in text or JSON lines as runc writes
//! them (containerd reads the last error from that file).

use std::io::Write;
use std::sync::OnceLock;

use crate::cli::GlobalArgs;

struct LogTarget {
    file: Option<std::path::PathBuf>,
    json: bool,
    debug: bool,
}

static TARGET: OnceLock<LogTarget> = OnceLock::new();

pub fn init(global: &GlobalArgs) {
    let _ = TARGET.set(LogTarget {
        file: global.log.clone(),
        json: global.log_format == "json",
        debug: global.debug,
    });
}

fn write(level: &str, msg: &str) {
    let target = TARGET.get();
    let to_file = target.and_then(|t| t.file.as_ref().map(|f| (f, t.json)));
    if let Some((path, json)) = to_file {
        let time = gorae_runtime::state::rfc3339(std::time::SystemTime::now());
        let line = if json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time=\"{time}\" level={level} msg={msg:?}")
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path);
        if let Ok(mut file) = file {
            let _ = writeln!(file, "{line}");
        }
    }
    if level != "debug" || target.is_some_and(|t| t.debug) {
        let _ = writeln!(std::io::stderr(), "gorae-runc: {msg}");
    }
}

pub fn error(msg: &str) {
    write("error", msg);
}

pub fn warn(msg: &str) {
    write("warning", msg);
}
