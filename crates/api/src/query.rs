//! Query strings as Docker reads them: percent-decoded pairs, booleans where only
//! "0", "no", "false" and "none" are false, numbers that must parse (a 400 naming the
//! parameter otherwise), and `filters` in both of Docker's JSON encodings.

use std::str::FromStr;

use gorae_engine::engine::Filters;

use crate::error::ApiError;

#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: &str) -> Query {
        let pairs = raw
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) => (decode_component(k), decode_component(v)),
                None => (decode_component(pair), String::new()),
            })
            .collect();
        Query { pairs }
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `key`, absent when empty.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// Every value of a repeated `key` (`?names=a&names=b`).
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Absent is false; present is true unless "0", "no", "false" or "none" (any case).
    /// A bare `?all` is true.
    pub fn flag(&self, key: &str) -> bool {
        self.flag_or(key, false)
    }

    pub fn flag_or(&self, key: &str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(v) => !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "0" | "no" | "false" | "none"
            ),
        }
    }

    /// A number, absent when the parameter is missing or empty.
    pub fn number<T: FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        match self.non_empty(key) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid value for query parameter {key}: {v:?} is not a valid number"
                ))
            }),
        }
    }

    /// A number the request must carry.
    pub fn required_number<T: FromStr>(&self, key: &str) -> Result<T, ApiError> {
        self.number(key)?.ok_or_else(|| {
            ApiError::bad_request(format!(
                "missing query parameter {key}: a number is required"
            ))
        })
    }

    pub fn required(&self, key: &str) -> Result<&str, ApiError> {
        self.non_empty(key)
            .ok_or_else(|| ApiError::bad_request(format!("missing query parameter {key}")))
    }

    /// `filters`, empty when absent.
    pub fn filters(&self) -> Result<Filters, ApiError> {
        parse_filters(self.get("filters").unwrap_or(""))
    }
}

/// Docker's two encodings: `{"k":["v"]}` and `{"k":{"v":true}}`. Every key of the second
/// form counts, as in Docker, whatever its boolean.
pub fn parse_filters(text: &str) -> Result<Filters, ApiError> {
    let mut filters = Filters::new();
    if text.trim().is_empty() {
        return Ok(filters);
    }
    let invalid = |why: String| ApiError::bad_request(format!("invalid filter: {why}"));
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| invalid(format!("{text:?}: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(invalid(format!("{text:?}: expected a JSON object")));
    };
    for (key, values) in map {
        let list = match values {
            serde_json::Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => Ok(s),
                    other => Err(invalid(format!("{key}: {other} is not a string"))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            serde_json::Value::Object(set) => set
                .into_iter()
                .map(|(v, flag)| match flag {
                    serde_json::Value::Bool(_) => Ok(v),
                    other => Err(invalid(format!("{key}.{v}: {other} is not a boolean"))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => {
                return Err(invalid(format!(
                    "{key}: expected a list or a set of values, got {other}"
                )))
            }
        };
        filters.entry(key).or_default().extend(list);
    }
    Ok(filters)
}

/// Percent-decoding with `+` as a space (form encoding); a malformed escape stays as it is.
pub fn decode_component(text: &str) -> String {
    decode(text, true)
}

/// Percent-decoding of a path segment (`+` is itself).
pub fn decode_path(text: &str) -> String {
    decode(text, false)
}

fn decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_read_as_docker_reads_them() {
        let q = Query::parse("a=1&b=true&c=True&d=0&e=false&f=&g&h=no&i=NONE&j=yes");
        for key in ["a", "b", "c", "f", "g", "j"] {
            assert!(q.flag(key), "{key}");
        }
        for key in ["d", "e", "h", "i", "absent"] {
            assert!(!q.flag(key), "{key}");
        }
        assert!(Query::parse("").flag_or("stream", true));
        assert!(!Query::parse("stream=0").flag_or("stream", true));
    }

    #[test]
    fn numbers_that_do_not_parse_name_the_parameter() {
        let q = Query::parse("t=abc&h=24&w=");
        let err = q.number::<i64>("t").unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("query parameter t"), "{}", err.message);
        assert_eq!(q.number::<u16>("h").unwrap(), Some(24));
        assert_eq!(q.number::<u16>("w").unwrap(), None);
        assert!(q
            .required_number::<u16>("w")
            .unwrap_err()
            .message
            .contains('w'));
        assert!(Query::parse("h=70000").number::<u16>("h").is_err());
    }

    #[test]
    fn values_are_percent_decoded() {
        let q = Query::parse("fromImage=localhost%3A5000%2Fa%2Fb&tag=v1&x=a+b&names=a&names=b%20c");
        assert_eq!(q.get("fromImage"), Some("localhost:5000/a/b"));
        assert_eq!(q.get("x"), Some("a b"));
        assert_eq!(q.all("names"), vec!["a", "b c"]);
        assert_eq!(decode_path("a+b%2"), "a+b%2");
        assert_eq!(decode_path("%zz%41"), "%zzA");
    }

    #[test]
    fn filters_in_both_encodings() {
        let a = parse_filters(r#"{"status":["running","exited"],"label":["a=b"]}"#).unwrap();
        let b = parse_filters(r#"{"status":{"running":true,"exited":true},"label":{"a=b":true}}"#)
            .unwrap();
        assert_eq!(a["status"], vec!["running", "exited"]);
        // The set form has no order (serde_json's maps sort their keys).
        assert_eq!(b["status"], vec!["exited", "running"]);
        assert_eq!(a["label"], b["label"]);
        assert!(parse_filters("").unwrap().is_empty());
        let q = Query::parse("filters=%7B%22name%22%3A%5B%22x%22%5D%7D");
        assert_eq!(q.filters().unwrap()["name"], vec!["x"]);
    }

    #[test]
    fn bad_filters_are_400() {
        for text in [
            "{",
            "[]",
            r#"{"a":1}"#,
            r#"{"a":[1]}"#,
            r#"{"a":{"b":"c"}}"#,
            "nope",
        ] {
            let err = parse_filters(text).unwrap_err();
            assert_eq!(err.status, 400, "{text}");
            assert!(err.message.starts_with("invalid filter"), "{}", err.message);
        }
    }
}
