//! The Dockerfile-like instructions `import --change` applies to the new image's config:
//! CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL, VOLUME (what
//! `docker import --change` accepts that makes sense for an imported rootfs).

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::manifest::ContainerConfig;

/// Applies each change in order (later ones win, as in a Dockerfile).
pub fn apply_changes(config: &mut ContainerConfig, changes: &[String]) -> Result<()> {
    for change in changes {
        apply(config, change).map_err(|reason| Error::InvalidDocument {
            what: format!("change {change:?}"),
            reason,
        })?;
    }
    Ok(())
}

fn apply(config: &mut ContainerConfig, change: &str) -> Result<(), String> {
    let change = change.trim();
    let (instruction, args) = change
        .split_once(char::is_whitespace)
        .map_or((change, ""), |(i, a)| (i, a.trim()));
    if args.is_empty() {
        return Err(format!("{instruction} needs an argument"));
    }
    match instruction.to_ascii_uppercase().as_str() {
        "CMD" => config.cmd = Some(command(args)?),
        "ENTRYPOINT" => config.entrypoint = Some(command(args)?),
        "ENV" => set_env(config.env.get_or_insert_with(Vec::new), args)?,
        "WORKDIR" => config.working_dir = Some(args.to_string()),
        "USER" => config.user = Some(args.to_string()),
        "STOPSIGNAL" => config.stop_signal = Some(args.to_string()),
        "EXPOSE" => {
            let ports = config.exposed_ports.get_or_insert_with(BTreeMap::new);
            for port in words(args)? {
                ports.insert(port_key(&port)?, serde_json::json!({}));
            }
        }
        "LABEL" => {
            let labels = config.labels.get_or_insert_with(BTreeMap::new);
            for (key, value) in pairs(args)? {
                labels.insert(key, value);
            }
        }
        "VOLUME" => {
            let volumes = config.volumes.get_or_insert_with(BTreeMap::new);
            let paths = if args.starts_with('[') {
                json_array(args)?
            } else {
                words(args)?
            };
            for path in paths {
                volumes.insert(path, serde_json::json!({}));
            }
        }
        other => {
            return Err(format!(
                "unknown instruction {other:?} (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, \
                 LABEL, STOPSIGNAL and VOLUME are allowed)"
            ))
        }
    }
    Ok(())
}

/// Exec form (`["a","b"]`) as is; shell form runs under `/bin/sh -c`.
fn command(args: &str) -> Result<Vec<String>, String> {
    if args.starts_with('[') {
        return json_array(args);
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), args.into()])
}

fn json_array(args: &str) -> Result<Vec<String>, String> {
    serde_json::from_str(args).map_err(|e| format!("not a JSON array of strings: {e}"))
}

/// `ENV A=1 B="x y"`, or the old one-variable form `ENV A x y`.
fn set_env(env: &mut Vec<String>, args: &str) -> Result<(), String> {
    let first = args.split_whitespace().next().unwrap_or_default();
    let vars = if first.contains('=') {
        pairs(args)?
    } else {
        let value = args[first.len()..].trim();
        vec![(first.to_string(), value.to_string())]
    };
    for (key, value) in vars {
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        env.push(format!("{key}={value}"));
    }
    Ok(())
}

fn pairs(args: &str) -> Result<Vec<(String, String)>, String> {
    words(args)?
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
            _ => Err(format!("{word:?} is not KEY=VALUE")),
        })
        .collect()
}

fn port_key(port: &str) -> Result<String, String> {
    let (number, protocol) = port.split_once('/').unwrap_or((port, "tcp"));
    let valid_number = number.parse::<u16>().is_ok_and(|n| n > 0);
    if !valid_number || !matches!(protocol, "tcp" | "udp" | "sctp") {
        return Err(format!("{port:?} is not PORT[/tcp|udp|sctp]"));
    }
    Ok(format!("{number}/{protocol}"))
}

/// Splits on whitespace; double or single quotes group, backslash escapes the next character
/// (outside single quotes).
fn words(args: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut current: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut chars = args.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', q) if q != Some('\'') => {
                let next = chars.next().ok_or("ends with a backslash")?;
                current.get_or_insert_with(String::new).push(next);
            }
            ('"' | '\'', None) => {
                quote = Some(c);
                current.get_or_insert_with(String::new);
            }
            (c, Some(q)) if c == q => quote = None,
            (c, None) if c.is_whitespace() => words.extend(current.take()),
            (c, _) => current.get_or_insert_with(String::new).push(c),
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    words.extend(current);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(changes: &[&str]) -> ContainerConfig {
        let mut config = ContainerConfig::default();
        let changes: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
        apply_changes(&mut config, &changes).unwrap();
        config
    }

    #[test]
    fn applies_every_instruction() {
        let c = changed(&[
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /bin/init --fast",
            r#"ENV A=1 B="two words""#,
            "env A 3",
            "WORKDIR /srv",
            "USER 1000:1000",
            "EXPOSE 80 53/udp",
            r#"LABEL org.example.a=1 b='x y'"#,
            "STOPSIGNAL SIGINT",
            r#"VOLUME ["/data"]"#,
            "VOLUME /cache /tmp/x",
        ]);
        assert_eq!(c.cmd.unwrap(), ["sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "/bin/init --fast"]);
        assert_eq!(c.env.unwrap(), ["B=two words", "A=3"]);
        assert_eq!(c.working_dir.as_deref(), Some("/srv"));
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        let ports: Vec<_> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, ["53/udp", "80/tcp"]);
        assert_eq!(c.labels.unwrap()["b"], "x y");
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(c.volumes.unwrap().len(), 3);
    }

    #[test]
    fn refuses_what_it_cannot_apply() {
        for bad in [
            "RUN apt-get update",
            "CMD",
            "CMD [not json",
            "EXPOSE 99999",
            "EXPOSE 80/xyz",
            "LABEL novalue",
            "ENV A=\"unterminated",
        ] {
            let mut config = ContainerConfig::default();
            let err = apply_changes(&mut config, &[bad.to_string()]).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }
}
