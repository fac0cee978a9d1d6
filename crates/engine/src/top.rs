//! `docker top`: the host's `ps` (default `-ef`), keeping the rows whose PID is in the
//! container's cgroup, in docker's `{"Titles": [...], "Processes": [[...]]}`.

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// Runs `ps` with `args` (whitespace-separated, as docker splits them) and filters its table.
pub async fn top(pids: &[i32], args: &str) -> Result<Value> {
    let args: Vec<&str> = args.split_whitespace().collect();
    let output = tokio::process::Command::new("ps")
        .args(&args)
        .output()
        .await
        .map_err(|e| Error::Internal(format!("running ps: {e}")))?;
    if !output.status.success() {
        return Err(Error::Internal(format!(
            "ps: {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    filter(&String::from_utf8_lossy(&output.stdout), pids)
}

/// The titles of `ps`'s header and the rows of `pids`. The last column (the command) keeps
/// its spaces.
pub fn filter(table: &str, pids: &[i32]) -> Result<Value> {
    let mut lines = table.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| Error::InvalidParameter("Couldn't find PID field in ps output".into()))?;
    let mut processes = Vec::new();
    for line in lines {
        let row = split_row(line, titles.len());
        let Some(pid) = row.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if pids.contains(&pid) {
            processes.push(row);
        }
    }
    Ok(json!({"Titles": titles, "Processes": processes}))
}

fn split_row(line: &str, columns: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(columns);
    let mut rest = line.trim_start();
    while out.len() + 1 < columns {
        let Some(end) = rest.find(char::is_whitespace) else {
            break;
        };
        out.push(rest[..end].to_string());
        rest = rest[end..].trim_start();
    }
    if !rest.is_empty() {
        out.push(rest.trim_end().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_the_container_keep_the_command_whole() {
        let table = "UID PID PPID C STIME TTY TIME CMD\n\
                     root 1 0 0 12:00 ? 00:00:01 /sbin/init splash\n\
                     root 42 1 0 12:01 ? 00:00:00 sleep 100\n";
        let v = filter(table, &[42]).unwrap();
        assert_eq!(v["Titles"][1], "PID");
        assert_eq!(v["Processes"].as_array().unwrap().len(), 1);
        assert_eq!(v["Processes"][0][7], "sleep 100");
        assert!(filter("USER COMMAND\nroot x\n", &[1]).is_err());
    }
}
