//! Request bodies: read with a bound, decoded into the engine's typed requests. A body that
//! does not decode is a 400 that says why, and names the field when the JSON is well formed
//! but a value has the wrong type (serde's message alone does not say where, and does not
//! see through `#[serde(flatten)]`).

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// JSON request bodies larger than this are refused.
pub const JSON_LIMIT: usize = 1 << 20;

/// Past the limit the rest is read and dropped up to here, so that a client still writing
/// its body reads the 400 instead of a reset connection.
const DRAIN_LIMIT: usize = 64 << 20;

/// The whole body, at most `limit` bytes.
pub async fn read_limited(mut body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    let mut buf = BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > DRAIN_LIMIT {
            break;
        }
        if seen <= limit {
            buf.extend_from_slice(&data);
        }
    }
    if seen > limit {
        return Err(ApiError::bad_request(format!(
            "request body too large: more than {} bytes (1 MiB)",
            limit
        )));
    }
    Ok(buf.freeze())
}

/// Whether an empty body means `{}` (Docker's start and exec start) or is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Empty {
    IsDefault,
    Refused,
}

pub async fn json_body<T: DeserializeOwned>(body: Incoming, empty: Empty) -> Result<T, ApiError> {
    let bytes = read_limited(body, JSON_LIMIT).await?;
    decode_json(&bytes, empty)
}

pub fn decode_json<T: DeserializeOwned>(bytes: &[u8], empty: Empty) -> Result<T, ApiError> {
    let is_blank = bytes.iter().all(u8::is_ascii_whitespace);
    let value: Value = if is_blank {
        match empty {
            Empty::IsDefault => Value::Object(Default::default()),
            Empty::Refused => {
                return Err(ApiError::bad_request(
                    "invalid JSON: got EOF while reading request body",
                ))
            }
        }
    } else {
        serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?
    };
    // Every request body is an object; serde would take a struct from an array too.
    if !value.is_object() {
        return Err(ApiError::bad_request(format!(
            "invalid JSON: expected an object, got {}",
            kind_of(&value)
        )));
    }
    match T::deserialize(&value) {
        Ok(typed) => Ok(typed),
        Err(e) => {
            let message = e.to_string();
            let path = locate::<T>(&value, &message);
            Err(ApiError::bad_request(if path.is_empty() {
                format!("invalid JSON: {message}")
            } else {
                format!("invalid JSON: field {path}: {message}")
            }))
        }
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// The path to the value serde refused: narrows the document, one level at a time, to the
/// single member that still fails with the same message. Runs only on a bad body, and each
/// level costs about one decode of the document.
fn locate<T: DeserializeOwned>(root: &Value, message: &str) -> String {
    let mut path: Vec<Step> = Vec::new();
    let mut node = root;
    // Bounded by the document's depth; serde_json limits that to 128.
    loop {
        let found = match node {
            Value::Object(map) => map.iter().find_map(|(k, v)| {
                let step = Step::Key(k.clone());
                fails_alone::<T>(&path, &step, v, message).then_some((step, v))
            }),
            Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| {
                let step = Step::Index(i);
                fails_alone::<T>(&path, &step, v, message).then_some((step, v))
            }),
            _ => None,
        };
        match found {
            Some((step, child)) => {
                path.push(step);
                node = child;
            }
            None => break,
        }
    }
    render(&path)
}

/// Whether the document reduced to the path and then `step` alone still fails the same way.
fn fails_alone<T: DeserializeOwned>(
    path: &[Step],
    step: &Step,
    leaf: &Value,
    message: &str,
) -> bool {
    let mut value = leaf.clone();
    for s in std::iter::once(step).chain(path.iter().rev()) {
        value = match s {
            Step::Key(k) => Value::Object([(k.clone(), value)].into_iter().collect()),
            Step::Index(_) => Value::Array(vec![value]),
        };
    }
    match T::deserialize(&value) {
        Ok(_) => false,
        Err(e) => e.to_string() == message,
    }
}

fn render(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gorae_engine::types::{CreateRequest, ExecStartConfig};

    fn err<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> String {
        let e = decode_json::<T>(body.as_bytes(), Empty::Refused).unwrap_err();
        assert_eq!(e.status, 400);
        e.message
    }

    #[test]
    fn wrong_types_name_the_field_through_flatten() {
        let m = err::<CreateRequest>(r#"{"Image":"x","Tty":"yes"}"#);
        assert!(
            m.starts_with("invalid JSON: field Tty: invalid type"),
            "{m}"
        );
        let m = err::<CreateRequest>(r#"{"Image":"x","HostConfig":{"Binds":[],"Memory":"1g"}}"#);
        assert!(
            m.starts_with("invalid JSON: field HostConfig.Memory: "),
            "{m}"
        );
        let m = err::<CreateRequest>(r#"{"Cmd":["sh",1]}"#);
        assert!(m.starts_with("invalid JSON: field Cmd[1]: "), "{m}");
        let m = err::<CreateRequest>(r#"{"HostConfig":{"Ulimits":[{"Name":"a"},{"Soft":"x"}]}}"#);
        assert!(m.contains("field HostConfig.Ulimits[1].Soft: "), "{m}");
    }

    #[test]
    fn syntax_errors_and_empty_bodies() {
        assert!(err::<CreateRequest>(r#"{"Image":"#).starts_with("invalid JSON: EOF"));
        assert!(err::<CreateRequest>("not json").starts_with("invalid JSON: expected"));
        assert_eq!(
            err::<CreateRequest>(""),
            "invalid JSON: got EOF while reading request body"
        );
        assert_eq!(
            err::<CreateRequest>("[1]"),
            "invalid JSON: expected an object, got an array"
        );
        assert_eq!(
            err::<CreateRequest>("null"),
            "invalid JSON: expected an object, got null"
        );
        let start: ExecStartConfig = decode_json(b" \n", Empty::IsDefault).unwrap();
        assert!(!start.detach);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let req: CreateRequest =
            decode_json(br#"{"Image":"x","NoSuchField":[1,2]}"#, Empty::Refused).unwrap();
        assert_eq!(req.config.image, "x");
    }
}
